"""Shopify as a channel kind: HMAC-signed webhooks, order payloads, the GraphQL Admin API."""

from __future__ import annotations

from infrastructure.channels.gateway import Gate
from infrastructure.channels.kind import ChannelKind, files_no_offers
from infrastructure.channels.shopify import level_reading, order_listing, translator, verifier
from infrastructure.channels.shopify.config import ShopifyConfig
from infrastructure.channels.shopify.gateway import ShopifyGateway


def gateway(channel: ShopifyConfig, gate: Gate) -> ShopifyGateway:
    return ShopifyGateway(
        channel.api_base_url,
        channel.access_token,
        channel.location_id,
        channel_id=channel.id,
        timeout=channel.push.timeout_seconds,
        gate=gate,
    )


SHOPIFY = ChannelKind(
    config=ShopifyConfig,
    verify=verifier.verify,
    translate=translator.translate,
    lane=translator.lane,
    gateway=files_no_offers(gateway),
    read_levels=level_reading.read_levels,
    read_page=level_reading.read_page,
    list_orders=order_listing.list_orders,
)
