"""Amazon as a channel kind: SP-API notifications through an SNS topic, SP-API listings and
feeds for stock, listings searched for the quantities they show (`level_reading.py`), orders
listed for the notifications lost (`order_listing.py`)."""

from __future__ import annotations

from infrastructure.channels.amazon import level_reading, order_listing, translator, verifier
from infrastructure.channels.amazon.config import AmazonConfig
from infrastructure.channels.amazon.gateway import AmazonGateway
from infrastructure.channels.amazon.lwa import LwaCredentials
from infrastructure.channels.gateway import Gate
from infrastructure.channels.kind import ChannelKind, files_no_offers


def gateway(channel: AmazonConfig, gate: Gate) -> AmazonGateway:
    credentials = LwaCredentials(
        channel.lwa_client_id, channel.lwa_client_secret, channel.lwa_refresh_token
    )
    return AmazonGateway(
        channel.api_base_url,
        channel.seller_id,
        channel.marketplace_id,
        credentials,
        token_url=channel.lwa_token_url,
        channel_id=channel.id,
        timeout=channel.push.timeout_seconds,
        feed_poll_interval=channel.feed_poll_seconds,
        gate=gate,
    )


AMAZON = ChannelKind(
    config=AmazonConfig,
    verify=verifier.verify,
    translate=translator.translate,
    lane=translator.lane,
    gateway=files_no_offers(gateway),
    acknowledge=translator.acknowledge,
    blocking=True,  # the first message of a certificate fetches it over the network
    read_levels=level_reading.read_levels,
    read_page=level_reading.read_page,
    list_orders=order_listing.list_orders,
)
