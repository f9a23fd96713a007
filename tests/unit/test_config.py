import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infrastructure.channels.gateway import UNGATED
from infrastructure.channels.internal.config import InternalConfig
from infrastructure.channels.kinds import KINDS, gateway_for
from infrastructure.channels.shopify.config import ShopifyConfig
from infrastructure.channels.walmart.config import WalmartConfig
from infrastructure.channels.woocommerce.config import WooCommerceConfig
from infrastructure.config import CHANNEL_MODELS, KIND_NAMES, ConfigError, PushConfig, load_config


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
    assert isinstance(channel, ShopifyConfig)
    assert channel.kind == "shopify"
    assert channel.webhook_secrets == ("s3cret", "older")
    assert channel.access_token == "tok"
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


def test_a_channel_that_pushes_without_a_credential_is_refused_naming_the_channel_and_key(
    tmp_path,
):
    path = write(
        tmp_path,
        '[[channels]]\nid = "a"\nkind = "shopify"\nwebhook_secrets = ["s"]\n'
        'api_base_url = "https://a.myshopify.com"\nlocation_id = 7',
    )
    needs = "channel 'a': pushing to a shopify channel needs access_token"
    with pytest.raises(ConfigError, match=needs):
        load_config(path, {})


def test_a_channel_that_does_not_push_needs_no_credentials(tmp_path):
    path = write(
        tmp_path,
        '[[channels]]\nid = "a"\nkind = "shopify"\nwebhook_secrets = ["s"]\n'
        'api_base_url = "https://a.myshopify.com"\n[channels.push]\nenabled = false',
    )
    assert load_config(path, {}).channels[0].missing_credentials() == [
        "access_token",
        "location_id",
    ]


def test_a_misspelt_credential_is_refused_by_name(tmp_path):
    path = write(
        tmp_path,
        '[[channels]]\nid = "shop"\nkind = "shopify"\nwebhook_secrets = ["s"]\nacess_token = "tok"',
    )
    with pytest.raises(ConfigError) as refused:
        load_config(path, {})
    message = str(refused.value)
    assert "channels.0.acess_token" in message
    assert "did you mean 'access_token'?" in message
    assert "\n" not in message


def test_a_location_id_written_as_a_number_is_read_as_text(tmp_path):
    path = write(
        tmp_path,
        '[[channels]]\nid = "a"\nkind = "shopify"\nwebhook_secrets = ["s"]\n'
        'api_base_url = "https://a.myshopify.com"\naccess_token = "t"\nlocation_id = 7',
    )
    assert load_config(path, {}).channels[0].location_id == "7"


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


@pytest.mark.parametrize("kind", ["etsy"])
def test_a_channel_kind_invsync_does_not_speak_is_refused_by_name(tmp_path, kind):
    path = write(
        tmp_path, f'[[channels]]\nid = "{kind}-us"\nkind = "{kind}"\nwebhook_secrets = ["s"]'
    )
    with pytest.raises(ConfigError) as refused:
        load_config(path, {})
    message = str(refused.value)
    assert "channels.0.kind" in message
    assert f"'{kind}-us'" in message
    assert "is none of shopify, woocommerce, amazon, ebay, walmart, internal" in message
    assert "Value error" not in message
    assert "\n" not in message


def test_every_kind_the_configuration_accepts_has_a_channel_folder():
    assert [kind.config for kind in KINDS.values()] == list(CHANNEL_MODELS)
    assert (
        list(KINDS)
        == list(KIND_NAMES)
        == [
            "shopify",
            "woocommerce",
            "amazon",
            "ebay",
            "walmart",
            "internal",
        ]
    )


def test_a_walmart_channel_takes_its_documented_keys_and_refuses_a_misspelt_one(tmp_path):
    table = (
        '[[channels]]\nid = "walmart-us"\nkind = "walmart"\nwebhook_secrets = ["s"]\n'
        'client_id = "id"\nclient_secret = "env:WM_SECRET"\nship_node = 721407\n'
    )
    channel = load_config(write(tmp_path, table), {"WM_SECRET": "secret"}).channels[0]
    assert channel.api_base_url == "https://marketplace.walmartapis.com"
    assert (channel.client_secret, channel.ship_node) == ("secret", "721407")
    assert channel.acknowledge_orders is False
    misspelt = write(tmp_path, table + 'clientsecret = "x"\n')
    with pytest.raises(ConfigError, match="clientsecret"):
        load_config(misspelt, {"WM_SECRET": "secret"})
    missing = table.replace('client_secret = "env:WM_SECRET"\n', "")
    with pytest.raises(ConfigError, match="client_secret"):
        load_config(write(tmp_path, missing), {})
    webhooks_only = missing + "[channels.push]\nenabled = false\n"
    with pytest.raises(ConfigError, match="reconciling a walmart channel needs client_secret"):
        load_config(write(tmp_path, webhooks_only), {})
    webhooks_only += "[channels.reconcile]\nenabled = false\n"
    assert not load_config(write(tmp_path, webhooks_only), {}).channels[0].reconciles


def test_an_amazon_channel_refuses_an_sns_origin_that_is_more_than_an_origin(tmp_path):
    path = write(
        tmp_path,
        '[[channels]]\nid = "a"\nkind = "amazon"\nsns_origins = ["https://sns.example/x"]',
    )
    with pytest.raises(ConfigError, match=r"channels\.0\.sns_origins"):
        load_config(path, {})


def _mapped(tmp_path, sku_map: str):
    path = write(
        tmp_path,
        '[[channels]]\nid = "woo"\nkind = "woocommerce"\nwebhook_secrets = ["s"]\n'
        f"[channels.sku_map]\n{sku_map}\n",
    )
    return load_config(path, {}).channels[0]


def test_a_sku_map_names_channel_skus_by_ours_and_back(tmp_path):
    channel = _mapped(tmp_path, '"WOO-TEE-M" = "TEE-M"\n"CAP" = "CAP-RED"')
    assert channel.sku_map == {"WOO-TEE-M": "TEE-M", "CAP": "CAP-RED"}
    assert channel.our_sku("WOO-TEE-M") == "TEE-M"
    assert channel.channel_sku("TEE-M") == "WOO-TEE-M"
    assert channel.channel_sku("CAP-RED") == "CAP"
    # Unmapped SKUs are the same on both sides.
    assert channel.our_sku("MUG-BLUE") == "MUG-BLUE"
    assert channel.channel_sku("MUG-BLUE") == "MUG-BLUE"


def test_a_channel_without_a_sku_map_uses_our_skus(tmp_path):
    channel = load_config(
        write(tmp_path, '[[channels]]\nid = "a"\nkind = "internal"\nwebhook_secrets = ["s"]'), {}
    ).channels[0]
    assert channel.sku_map == {}
    assert (channel.our_sku("X"), channel.channel_sku("X")) == ("X", "X")


@pytest.mark.parametrize(
    ("sku_map", "fragments"),
    [
        (
            '"WOO-TEE" = "TEE-M"\n"WOO-TEE-M" = "TEE-M"',
            ["channels.0.sku_map", "'WOO-TEE'", "'WOO-TEE-M'", "'TEE-M'"],
        ),
        ('"WOO-TEE" = ""', ["channels.0.sku_map", "'WOO-TEE'"]),
        ('"" = "TEE-M"', ["channels.0.sku_map", "''"]),
        ('"WOO-TEE" = 7', ["channels.0.sku_map.WOO-TEE"]),
    ],
)
def test_a_bad_sku_map_names_the_key(tmp_path, sku_map, fragments):
    with pytest.raises(ConfigError) as refused:
        _mapped(tmp_path, sku_map)
    for fragment in fragments:
        assert fragment in str(refused.value)
    assert "Value error" not in str(refused.value)


_SKUS = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=6
)


@given(st.dictionaries(_SKUS, _SKUS, max_size=8).filter(lambda m: len(set(m.values())) == len(m)))
def test_a_mapped_sku_goes_to_the_channel_and_comes_back_unchanged(sku_map):
    channel = InternalConfig(id="c", sku_map=sku_map)
    for channel_sku, ours in sku_map.items():
        assert channel.our_sku(channel_sku) == ours
        assert channel.channel_sku(ours) == channel_sku
        assert channel.our_sku(channel.channel_sku(ours)) == ours


def test_a_copy_with_another_map_names_skus_by_that_map():
    channel = InternalConfig(id="c", sku_map={"A-1": "A"})
    assert channel.channel_sku("A") == "A-1"
    copy = channel.model_copy(update={"sku_map": {"B-1": "B"}})
    assert (copy.channel_sku("A"), copy.channel_sku("B")) == ("A", "B-1")
    assert channel.channel_sku("A") == "A-1"


def test_a_woocommerce_store_at_no_http_url_is_refused_with_its_key():
    store = WooCommerceConfig(
        id="woo", api_base_url="ftp://shop.example", consumer_key="ck", consumer_secret="cs"
    )
    with pytest.raises(ConfigError, match=r"channels\.woo\.api_base_url"):
        gateway_for(store, UNGATED)


def test_two_tokens_with_one_digest_are_refused(tmp_path):
    digest = "a" * 64
    path = tmp_path / "invsync.toml"
    path.write_text(
        f'[[api_tokens]]\nname = "ops"\nsha256 = "{digest}"\nscopes = ["admin"]\n'
        f'[[api_tokens]]\nname = "bot"\nsha256 = "{digest}"\nscopes = ["read"]\n'
    )
    with pytest.raises(ConfigError, match="same sha256"):
        load_config(path)


def test_reconciliation_has_the_documented_defaults_and_needs_an_api(tmp_path):
    path = write(
        tmp_path,
        '[[channels]]\nid = "a"\nkind = "woocommerce"\nwebhook_secrets = ["s"]\n'
        '[[channels]]\nid = "b"\nkind = "woocommerce"\nwebhook_secrets = ["s"]\napi_base_url = "https://b.example"\n'
        'consumer_key = "ck"\nconsumer_secret = "cs"\n',
    )
    a, b = load_config(path).channels

    assert b.reconcile.model_dump() == {
        "enabled": True,
        "orders_every_seconds": 300,
        "orders_overlap_seconds": 120,
        "active_every_seconds": 21600,
        "catalog_every_seconds": 86400,
        "auto_correct_below": 3,
    }
    assert (a.reconciles, b.reconciles) == (False, True)


def test_reconciliation_is_configured_per_channel_and_may_be_switched_off(tmp_path):
    path = write(
        tmp_path,
        '[[channels]]\nid = "b"\nkind = "woocommerce"\nwebhook_secrets = ["s"]\napi_base_url = "https://b.example"\n'
        'consumer_key = "ck"\nconsumer_secret = "cs"\n'
        "[channels.reconcile]\nenabled = false\nauto_correct_below = 5\n",
    )
    (b,) = load_config(path).channels

    assert (b.reconciles, b.reconcile.auto_correct_below) == (False, 5)


def test_a_misspelt_reconciliation_key_is_refused_by_name(tmp_path):
    path = write(
        tmp_path,
        '[[channels]]\nid = "b"\nkind = "woocommerce"\nwebhook_secrets = ["s"]\n'
        "[channels.reconcile]\nevery = 1\n",
    )
    with pytest.raises(ConfigError, match="every"):
        load_config(path)


@pytest.mark.parametrize(
    ("kind", "rate"),
    [("shopify", 10), ("woocommerce", 10), ("amazon", 5), ("ebay", 20), ("walmart", 5)],
)
def test_each_kind_pushes_at_the_rate_its_api_documents_unless_the_table_sets_one(kind, rate):
    model = next(m for m in CHANNEL_MODELS if m.model_fields["kind"].default == kind)
    table = {"id": "a", "kind": kind, "api_base_url": ""}  # no API: no credentials needed
    without = model.model_validate({**table, "push": {"enabled": False}})
    alone = model.model_validate({**table, "push": None})
    bare = model.model_validate(table)
    assert without.push.rate_per_second == alone.push.rate_per_second == rate
    assert bare.push.rate_per_second == rate
    assert without.push.enabled is False
    given = model.model_validate({**table, "push": {"rate_per_second": 3}})
    assert given.push.rate_per_second == 3


def test_a_push_table_given_as_a_model_keeps_its_rate_or_takes_the_documented_one():
    set_ = ShopifyConfig(id="a", kind="shopify", push=PushConfig(rate_per_second=4))
    unset = ShopifyConfig(id="a", kind="shopify", push=PushConfig(batch_window_seconds=1))
    assert (set_.push.rate_per_second, unset.push.rate_per_second) == (4, 10)
    assert unset.push.batch_window_seconds == 1


@pytest.mark.parametrize("kind", ["shopify", "woocommerce", "amazon", "ebay", "walmart"])
def test_only_woocommerces_pushes_take_two_calls_together_unless_the_table_says(kind):
    model = next(m for m in CHANNEL_MODELS if m.model_fields["kind"].default == kind)
    table = {"id": "a", "kind": kind, "api_base_url": ""}
    together = 2 if kind == "woocommerce" else 1  # its compare-and-set: a read, then the write
    assert model.model_validate(table).push.calls_per_push == together
    assert model.model_validate({**table, "push": {"rate_per_second": 3}}).push.calls_per_push == (
        together
    )
    given = model.model_validate({**table, "push": PushConfig(calls_per_push=1)})
    assert given.push.calls_per_push == 1


WALMART = {"kind": "walmart", "client_id": "id", "client_secret": "secret"}


@pytest.mark.parametrize(
    ("model", "table", "where"),
    [
        (ShopifyConfig, {"location_id": "71", "locations": {"71": "east"}}, "east"),
        (
            ShopifyConfig,
            {"location_id": "gid://shopify/Location/71", "locations": {"71": "east"}},
            "east",
        ),
        (WalmartConfig, {**WALMART, "ship_node": "SN-2", "locations": {"SN-2": "dc2"}}, "dc2"),
        (ShopifyConfig, {"location_id": "72", "locations": {"71": "east"}}, None),
        (WooCommerceConfig, {"default_location": "shop-floor"}, "shop-floor"),
        (WooCommerceConfig, {}, None),  # `main` by default, said by no table
    ],
)
def test_a_channels_stock_location_is_the_one_its_table_maps_it_to(model, table, where):
    assert model.model_validate({"id": "shop", **table}).stock_location() == where


def test_a_token_from_the_environment_is_kept_only_as_its_digest(tmp_path):
    path = write(tmp_path, '[[api_tokens]]\nname = "ops"\ntoken = "env:OPS_TOKEN"\n')
    secret = "a-token-of-some-length"
    [token] = load_config(path, {"OPS_TOKEN": secret}).api_tokens
    assert token.sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(token.model_dump())
    with pytest.raises(ConfigError, match=r"api_tokens\.0\.token.*OPS_TOKEN is not set"):
        load_config(path, {})


@pytest.mark.parametrize(
    ("table", "complaint"),
    [
        ('token = "short"', "at least 16 characters"),
        (f'token = "{"x" * 20}"\nsha256 = "{"0" * 64}"', "sha256 or token, not both"),
    ],
)
def test_a_token_too_short_or_given_twice_is_refused(tmp_path, table, complaint):
    path = write(tmp_path, f'[[api_tokens]]\nname = "ops"\n{table}\n')
    with pytest.raises(ConfigError, match=rf"api_tokens\.0: .*{complaint}"):
        load_config(path, {})
