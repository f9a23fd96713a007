"""An eBay channel's table: the application's OAuth client, the seller's refresh token its Sell API
calls are made with, and what eBay's Notification API endpoint validation hashes."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from infrastructure.channels.config import ChannelConfig, ChannelText, ReconcileConfig

EBAY_API = "https://api.ebay.com"

# eBay sends order events only as Platform Notifications (SOAP), so orders are learned by polling
# the Fulfillment API: every minute by default, instead of the five minutes of the others.
ORDERS_EVERY_SECONDS = 60.0


class EbayConfig(ChannelConfig):
    """`kind = "ebay"`; `api_base_url` is eBay's REST API (`https://api.ebay.com`, the default).
    Its notifications are signed by eBay's own keys, so it needs no `webhook_secrets`."""

    api_credentials: ClassVar[tuple[str, ...]] = ("client_id", "client_secret", "refresh_token")
    signed_with_secrets: ClassVar[bool] = False

    # The Sell Inventory API's 2,000,000 calls a day (CHANNELS.md §4.3) are 23 a second on
    # average; listings' 250 revisions a day are counted apart (`ebay/revisions.py`).
    documented_rate: ClassVar[float] = 20.0

    kind: Literal["ebay"] = "ebay"
    api_base_url: str = EBAY_API
    client_id: ChannelText = ""  # the application's OAuth client (App ID)
    client_secret: ChannelText = Field(default="", repr=False)  # its Cert ID
    refresh_token: ChannelText = Field(default="", repr=False)  # the seller's consent
    # The endpoint validation token registered with the Notification API, and the exact public
    # URL registered: eBay's challenge hashes both.
    verification_token: ChannelText = Field(default="", repr=False)
    notification_endpoint: str = ""
    marketplace_id: ChannelText = ""  # `EBAY_US`, ...: sent as X-EBAY-C-MARKETPLACE-ID when set
    reconcile: ReconcileConfig = Field(
        default_factory=lambda: ReconcileConfig(orders_every_seconds=ORDERS_EVERY_SECONDS)
    )

    @field_validator("reconcile", mode="before")
    @classmethod
    def _orders_polled_every_minute(cls, value: Any) -> Any:
        if value is None:
            return {"orders_every_seconds": ORDERS_EVERY_SECONDS}
        if isinstance(value, dict) and "orders_every_seconds" not in value:
            return {**value, "orders_every_seconds": ORDERS_EVERY_SECONDS}
        return value
