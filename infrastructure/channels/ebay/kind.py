"""eBay as a channel kind: Notification API webhooks (ECDSA, keys fetched from eBay) with its
endpoint validation, answered 204 as eBay's SDK does; orders polled from the Fulfillment API
(`order_listing.py`), stock pushed and read through the Inventory API (`gateway.py`,
`level_reading.py`) within each listing's daily revisions."""

from __future__ import annotations

from infrastructure.channels.ebay import (
    challenge,
    level_reading,
    order_listing,
    translator,
    verifier,
)
from infrastructure.channels.ebay.config import EbayConfig
from infrastructure.channels.ebay.gateway import EbayGateway
from infrastructure.channels.gateway import Gate
from infrastructure.channels.kind import ChannelKind
from infrastructure.channels.offer_file import UNFILED, OfferFile


def gateway(channel: EbayConfig, gate: Gate, *, offers: OfferFile = UNFILED) -> EbayGateway:
    return EbayGateway(
        channel.api_base_url,
        channel.client_id,
        channel.client_secret,
        channel.refresh_token,
        channel_id=channel.id,
        marketplace_id=channel.marketplace_id,
        timeout=channel.push.timeout_seconds,
        gate=gate,
        offers=offers,
    )


EBAY = ChannelKind(
    config=EbayConfig,
    verify=verifier.verify,
    translate=translator.translate,
    lane=translator.lane,
    gateway=gateway,
    blocking=True,  # the first notification signed with a key fetches it from eBay
    read_levels=level_reading.read_levels,
    read_page=level_reading.read_page,
    list_orders=order_listing.list_orders,
    challenge=challenge.answer,
    success_status=204,
)
