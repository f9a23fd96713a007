import pytest

from infrastructure.config import ChannelKind, ConfigError, load_config


def write(tmp_path, text: str):
    path = tmp_path / "invsync.toml"
    path.write_text(text)
    return path


def test_no_file_means_no_channels(tmp_path):
    assert load_config(tmp_path / "absent.toml").channels == ()


def test_channels_are_read_with_secrets_from_the_environment(tmp_path):
    path = write(
        tmp_path,
        """
[[channels]]
id = "shopify-us"
kind = "shopify"
webhook_secrets = ["env:SHOP_SECRET", "older"]
default_location = "east"
access_token = "env:SHOP_TOKEN"
[channels.locations]
"24826418" = "west"
""",
    )
    config = load_config(path, {"SHOP_SECRET": "s3cret", "SHOP_TOKEN": "tok"})
    channel = config.channel("shopify-us")
    assert channel is not None
    assert channel.kind is ChannelKind.SHOPIFY
    assert channel.webhook_secrets == ("s3cret", "older")
    assert channel.credential("access_token") == "tok"
    assert channel.location_for(24826418) == "west"
    assert channel.location_for(None) == "east"
    assert channel.location_for(999) == "east"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[channels]]\nid = "a"\nkind = "etsy"\nwebhook_secrets = ["s"]', "channels.0.kind"),
        ('[[channels]]\nkind = "shopify"\nwebhook_secrets = ["s"]', "channels.0.id"),
        ('[[channels]]\nid = "Bad Id"\nkind = "shopify"\nwebhook_secrets = ["s"]', "channels.0.id"),
        ('[[channels]]\nid = "a"\nkind = "shopify"', "channels.a.webhook_secrets"),
        (
            '[[channels]]\nid = "a"\nkind = "shopify"\nwebhook_secrets = ["env:NOPE"]',
            "environment variable NOPE is not set",
        ),
        (
            '[[channels]]\nid = "a"\nkind = "internal"\nwebhook_secrets = ["s"]\n'
            '[[channels]]\nid = "a"\nkind = "internal"\nwebhook_secrets = ["s"]',
            "declared twice",
        ),
        ("channels = [", "invsync.toml"),
        ("max_webhook_bytes = 0", "max_webhook_bytes"),
        ("unknown_key = 1", "unknown_key"),
    ],
)
def test_a_bad_configuration_names_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), {})


def test_a_missing_credential_names_the_channel_and_key(tmp_path):
    path = write(tmp_path, '[[channels]]\nid = "a"\nkind = "internal"\nwebhook_secrets = ["s"]')
    channel = load_config(path, {}).channels[0]
    with pytest.raises(ConfigError, match="channel 'a' needs 'access_token'"):
        channel.credential("access_token")


def test_allocation_rules_are_read_per_channel_with_defaults(tmp_path):
    path = write(
        tmp_path,
        """
[[channels]]
id = "shopify-us"
kind = "shopify"
webhook_secrets = ["s"]
[channels.rules]
locations = ["east"]
share_percent = 40
safety_buffer = 2

[[channels]]
id = "erp"
kind = "internal"
webhook_secrets = ["s"]
""",
    )
    shopify, erp = load_config(path, {}).allocation_rules()
    assert (shopify.locations, shopify.share_percent, shopify.safety_buffer) == (("east",), 40, 2)
    assert (erp.locations, erp.share_percent, erp.max_quantity) == (None, 100, None)


@pytest.mark.parametrize(
    ("rules", "key"),
    [
        ("share_percent = 140", "channels.0.rules.share_percent"),
        ("safety_buffer = -1", "channels.0.rules.safety_buffer"),
        ("sharepercent = 10", "channels.0.rules.sharepercent"),
    ],
)
def test_a_bad_rule_names_its_key(tmp_path, rules, key):
    path = write(
        tmp_path,
        f'[[channels]]\nid = "a"\nkind = "internal"\nwebhook_secrets = ["s"]\n'
        f"[channels.rules]\n{rules}\n",
    )
    with pytest.raises(ConfigError, match=key):
        load_config(path, {})


def test_api_tokens_are_digests_with_scopes(tmp_path):
    digest = "a" * 64
    path = write(
        tmp_path, f'[[api_tokens]]\nname = "ops"\nsha256 = "{digest}"\nscopes = ["read", "admin"]\n'
    )
    [token] = load_config(path, {}).api_tokens
    assert (token.name, token.scopes) == ("ops", ("read", "admin"))
    bad = write(tmp_path, '[[api_tokens]]\nname = "ops"\nsha256 = "plaintext"\n')
    with pytest.raises(ConfigError, match=r"api_tokens\.0\.sha256"):
        load_config(bad, {})
    worse = write(tmp_path, f'[[api_tokens]]\nname = "x"\nsha256 = "{digest}"\nscopes = ["root"]')
    with pytest.raises(ConfigError, match=r"api_tokens\.0\.scopes"):
        load_config(worse, {})
