"""An eBay channel's table, as the configuration file is read."""

from __future__ import annotations

import pytest

from infrastructure.config import ConfigError, load_config

EBAY = """
[[channels]]
id = "ebay-us"
kind = "ebay"
client_id = "app-id"
client_secret = "env:EBAY_CERT"
refresh_token = "env:EBAY_REFRESH"
verification_token = "verification_token_32_to_80_chars_long_abcdefgh"
notification_endpoint = "https://hub.example.com/webhooks/ebay-us"
marketplace_id = "EBAY_US"
"""
SECRETS = {"EBAY_CERT": "cert", "EBAY_REFRESH": "refresh"}


def write(tmp_path, text: str):
    path = tmp_path / "invsync.toml"
    path.write_text(text)
    return path


def test_an_ebay_channel_is_read_with_its_credentials_and_ebays_api_by_default(tmp_path):
    (channel,) = load_config(write(tmp_path, EBAY), SECRETS).channels
    assert channel.kind == "ebay"
    assert channel.api_base_url == "https://api.ebay.com"
    assert (channel.client_secret, channel.refresh_token) == ("cert", "refresh")
    assert channel.marketplace_id == "EBAY_US"
    assert channel.webhook_secrets == ()
    assert "cert" not in repr(channel)
    assert "refresh" not in repr(channel)


def test_an_ebay_channels_orders_are_polled_every_minute_unless_it_says_otherwise(tmp_path):
    (channel,) = load_config(write(tmp_path, EBAY), SECRETS).channels
    assert channel.reconcile.orders_every_seconds == 60
    text = EBAY + "[channels.reconcile]\nauto_correct_below = 5\n"
    (channel,) = load_config(write(tmp_path, text), SECRETS).channels
    assert (channel.reconcile.orders_every_seconds, channel.reconcile.auto_correct_below) == (60, 5)
    text = EBAY + "[channels.reconcile]\norders_every_seconds = 900\n"
    (channel,) = load_config(write(tmp_path, text), SECRETS).channels
    assert channel.reconcile.orders_every_seconds == 900


def test_a_misspelt_ebay_key_is_refused_by_name(tmp_path):
    path = write(tmp_path, EBAY.replace("verification_token", "verfication_token"))
    with pytest.raises(ConfigError) as refused:
        load_config(path, SECRETS)
    assert "channels.0.verfication_token" in str(refused.value)
    assert "did you mean 'verification_token'?" in str(refused.value)


def test_an_ebay_channel_takes_no_webhook_secrets_and_needs_its_oauth_client(tmp_path):
    path = write(tmp_path, EBAY.replace('client_id = "app-id"\n', ""))
    with pytest.raises(ConfigError, match="client_id"):
        load_config(path, SECRETS)
