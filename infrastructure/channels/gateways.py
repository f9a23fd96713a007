"""Each channel's gateway built from its configuration: the credentials its kind needs, read
from the channel's table in the configuration file (values may be `env:NAME`)."""

from __future__ import annotations

from collections.abc import Callable

from infrastructure.channels.gateway import ChannelGateway
from infrastructure.channels.sku_map import with_sku_map
from infrastructure.config import ChannelConfig, ChannelKind, ConfigError

Factory = Callable[[ChannelConfig], ChannelGateway]


def _credential(channel: ChannelConfig, name: str) -> str:
    value = (channel.model_extra or {}).get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # an id written as a number
    if not isinstance(value, str) or not value:
        raise ConfigError(f"channels.{channel.id}: pushing to a {channel.kind} needs {name}")
    return value


def _woocommerce(channel: ChannelConfig) -> ChannelGateway:
    from infrastructure.channels.woocommerce.gateway import WooCommerceGateway

    try:
        return WooCommerceGateway(
            channel.api_base_url,
            _credential(channel, "consumer_key"),
            _credential(channel, "consumer_secret"),
            channel_id=channel.id,
            timeout=channel.push.timeout_seconds,
        )
    except ValueError as error:  # an api_base_url it cannot authenticate to
        raise ConfigError(f"channels.{channel.id}.api_base_url: {error}") from error


def _shopify(channel: ChannelConfig) -> ChannelGateway:
    from infrastructure.channels.shopify.gateway import ShopifyGateway

    return ShopifyGateway(
        channel.api_base_url,
        _credential(channel, "access_token"),
        _credential(channel, "location_id"),
        channel_id=channel.id,
        timeout=channel.push.timeout_seconds,
    )


def _amazon(channel: ChannelConfig) -> ChannelGateway:
    from infrastructure.channels.amazon.gateway import AmazonGateway
    from infrastructure.channels.amazon.lwa import TOKEN_URL, LwaCredentials

    extra = channel.model_extra or {}
    token_url = extra.get("lwa_token_url") or TOKEN_URL
    return AmazonGateway(
        channel.api_base_url,
        _credential(channel, "seller_id"),
        _credential(channel, "marketplace_id"),
        LwaCredentials(
            _credential(channel, "lwa_client_id"),
            _credential(channel, "lwa_client_secret"),
            _credential(channel, "lwa_refresh_token"),
        ),
        token_url=str(token_url),
        channel_id=channel.id,
        timeout=channel.push.timeout_seconds,
        feed_poll_interval=float(extra.get("feed_poll_seconds", 30.0)),
    )


FACTORIES: dict[ChannelKind, Factory] = {
    ChannelKind.AMAZON: _amazon,
    ChannelKind.SHOPIFY: _shopify,
    ChannelKind.WOOCOMMERCE: _woocommerce,
}


def gateway_for(channel: ChannelConfig) -> ChannelGateway | None:
    """The channel's gateway, or None when nothing is pushed to it (no API URL, pushing
    switched off, or a kind without one); in our SKUs, whatever its `sku_map`. Raises
    `ConfigError` for missing credentials."""
    factory = FACTORIES.get(channel.kind)
    if factory is None or not channel.api_base_url or not channel.push.enabled:
        return None
    return with_sku_map(factory(channel), channel)
