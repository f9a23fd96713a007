"""WooCommerce as a channel kind: signed webhooks with the order's state, the REST v3 API."""

from __future__ import annotations

from infrastructure.channels.gateway import Gate
from infrastructure.channels.kind import ChannelKind, files_no_offers
from infrastructure.channels.woocommerce import (
    level_reading,
    order_listing,
    translator,
    verifier,
)
from infrastructure.channels.woocommerce.config import WooCommerceConfig
from infrastructure.channels.woocommerce.gateway import WooCommerceGateway
from infrastructure.config import ConfigError


def gateway(channel: WooCommerceConfig, gate: Gate) -> WooCommerceGateway:
    """Raises `ConfigError` for an `api_base_url` the gateway cannot authenticate to."""
    try:
        return WooCommerceGateway(
            channel.api_base_url,
            channel.consumer_key,
            channel.consumer_secret,
            channel_id=channel.id,
            timeout=channel.push.timeout_seconds,
            gate=gate,
        )
    except ValueError as error:
        raise ConfigError(f"channels.{channel.id}.api_base_url: {error}") from error


WOOCOMMERCE = ChannelKind(
    config=WooCommerceConfig,
    verify=verifier.verify,
    translate=translator.translate,
    lane=translator.lane,
    gateway=files_no_offers(gateway),
    read_levels=level_reading.read_levels,
    read_page=level_reading.read_page,
    list_orders=order_listing.list_orders,
)
