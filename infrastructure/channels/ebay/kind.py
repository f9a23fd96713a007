"""eBay as a channel kind: Notification API webhooks (ECDSA, keys fetched from eBay) with its
endpoint validation, answered 204 as eBay's SDK does."""

from __future__ import annotations

from infrastructure.channels.ebay import challenge, translator, verifier
from infrastructure.channels.ebay.config import EbayConfig
from infrastructure.channels.kind import ChannelKind

EBAY = ChannelKind(
    config=EbayConfig,
    verify=verifier.verify,
    translate=translator.translate,
    lane=translator.lane,
    blocking=True,  # the first notification signed with a key fetches it from eBay
    challenge=challenge.answer,
    success_status=204,
)
