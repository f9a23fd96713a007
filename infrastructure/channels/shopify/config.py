"""A Shopify channel's table: the Admin API token and the location whose stock invsync sets."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from infrastructure.channels.config import ChannelConfig, ChannelText


class ShopifyConfig(ChannelConfig):
    """`kind = "shopify"`; `api_base_url` is the shop's `https://<shop>.myshopify.com`."""

    api_credentials: ClassVar[tuple[str, ...]] = ("access_token", "location_id")

    # GraphQL Admin's cost budget on a standard plan: 100 points a second restored, 10 an
    # inventorySetQuantities (CHANNELS.md §1.3); Advanced and Plus plans may raise it.
    documented_rate: ClassVar[float] = 10.0

    kind: Literal["shopify"] = "shopify"
    access_token: ChannelText = Field(default="", repr=False)  # X-Shopify-Access-Token
    # The location whose `available` quantity is set: its number or its gid.
    location_id: ChannelText = ""

    @property
    def selling_location(self) -> str:
        return self.location_id
