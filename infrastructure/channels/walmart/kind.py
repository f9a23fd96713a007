"""Walmart as a channel kind: HMAC-signed order webhooks (`verifier.py`, `translator.py`),
quantities set by item and by bulk feed (`gateway.py`), levels read in pages
(`level_reading.py`), orders listed and acknowledged for the webhooks lost
(`order_listing.py`)."""

from __future__ import annotations

from infrastructure.channels.gateway import Gate
from infrastructure.channels.kind import ChannelKind, files_no_offers
from infrastructure.channels.walmart import level_reading, order_listing, translator, verifier
from infrastructure.channels.walmart.config import WalmartConfig
from infrastructure.channels.walmart.gateway import WalmartGateway


def gateway(channel: WalmartConfig, gate: Gate) -> WalmartGateway:
    return WalmartGateway(
        channel.api_base_url,
        channel.client_id,
        channel.client_secret,
        channel_id=channel.id,
        ship_node=channel.ship_node,
        feeds_per_hour=channel.feeds_per_hour,
        feed_poll_interval=channel.feed_poll_seconds,
        timeout=channel.push.timeout_seconds,
        gate=gate,
    )


WALMART = ChannelKind(
    config=WalmartConfig,
    verify=verifier.verify,
    translate=translator.translate,
    lane=translator.lane,
    gateway=files_no_offers(gateway),
    read_levels=level_reading.read_levels,
    read_page=level_reading.read_page,
    list_orders=order_listing.list_orders,
)
