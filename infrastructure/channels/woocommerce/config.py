"""A WooCommerce channel's table: the REST API key invsync reads and writes stock with."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from infrastructure.channels.config import ChannelConfig, ChannelText


class WooCommerceConfig(ChannelConfig):
    """`kind = "woocommerce"`; `api_base_url` is the site's home URL, without `/wp-json`."""

    api_credentials: ClassVar[tuple[str, ...]] = ("consumer_key", "consumer_secret")

    # WooCommerce documents no limit (its host's PHP workers are the limit): 10 a second,
    # the same as Shopify's, which a modest host answers; raise it for a larger one.
    documented_rate: ClassVar[float] = 10.0
    # A push reads what the store shows, then writes (`compare_and_set`): both on one turn.
    documented_calls_per_push: ClassVar[int] = 2

    kind: Literal["woocommerce"] = "woocommerce"
    consumer_key: ChannelText = ""  # a key with read/write permission
    consumer_secret: ChannelText = Field(default="", repr=False)
