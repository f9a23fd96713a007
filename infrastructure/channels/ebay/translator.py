"""What eBay deliveries teach the ledger.

Notification API topics carry no stock: `MARKETPLACE_ACCOUNT_DELETION` (which eBay requires
every application to accept) is stored like any delivery and logged with the eBay user it names,
so it can be found and acted on; invsync keeps no eBay buyer data to delete. Orders come by
polling the Fulfillment API (`order_listing.py`), as topic `order`.
"""

from __future__ import annotations

import logging
from typing import Any

from application.intake import Delivery, Translation
from infrastructure.channels.base import ChannelReads, Lane, translate_json
from infrastructure.channels.ebay.config import EbayConfig

log = logging.getLogger(__name__)

ACCOUNT_DELETION = "MARKETPLACE_ACCOUNT_DELETION"
ORDER = "order"  # a Fulfillment API order, as `list_orders` found it


def lane(topic: str) -> Lane:
    return Lane.DECREMENTS if topic == ORDER else Lane.INCREMENTS


def translate(channel: EbayConfig, delivery: Delivery, reads: ChannelReads) -> Translation:
    def apply(handler: Any, payload: dict[str, Any]) -> Translation:
        return handler(channel, delivery, payload)  # type: ignore[no-any-return]

    return translate_json(delivery, {ACCOUNT_DELETION: _account_deleted}, apply)


def _account_deleted(
    channel: EbayConfig, delivery: Delivery, payload: dict[str, Any]
) -> Translation:
    data = payload["notification"]["data"]
    log.warning(
        "eBay channel %s: marketplace account deletion of user %s (%s), delivery %s: "
        "invsync keeps no eBay user data; delete it from any system fed from this one",
        channel.id,
        data.get("userId"),
        data.get("username"),
        delivery.delivery_key,
    )
    return Translation()
