"""A Walmart channel's table: the API client its calls get tokens with, the secret its order
webhooks are signed with, the ship node whose quantities are set, and whether invsync
acknowledges new orders for the merchant."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from infrastructure.channels.config import ChannelConfig, ChannelText

API_BASE_URL = "https://marketplace.walmartapis.com"


class WalmartConfig(ChannelConfig):
    """`kind = "walmart"`; `webhook_secrets` holds the secret of the subscription's HMAC auth
    (several while rotating)."""

    api_credentials: ClassVar[tuple[str, ...]] = ("client_id", "client_secret")

    # Walmart publishes no per-endpoint rate we could read (CHANNELS.md §5: token buckets,
    # a 429 names when to come back, and the channel waits): a modest 5 a second.
    documented_rate: ClassVar[float] = 5.0

    kind: Literal["walmart"] = "walmart"
    api_base_url: str = API_BASE_URL
    client_id: ChannelText = ""
    client_secret: ChannelText = Field(default="", repr=False)
    # The ship node whose quantities are set and read; Walmart's default node when empty.
    ship_node: ChannelText = ""
    # Acknowledge each new order (Walmart requires it within 4 hours): off unless the merchant
    # lets invsync do it instead of their order system.
    acknowledge_orders: bool = False
    feed_poll_seconds: float = Field(default=60.0, ge=0, le=3600)  # between looks at a feed
    # Walmart's 10 inventory feeds an hour, spaced evenly (lower it for a sandbox's 30).
    feeds_per_hour: float = Field(default=10.0, gt=0, le=30)

    @property
    def selling_location(self) -> str:
        return self.ship_node

    @model_validator(mode="after")
    def _reconciling_has_credentials(self) -> WalmartConfig:
        # `api_base_url` has a default, so a table of webhook secrets alone would reconcile
        # with no credentials and fail every run: refused here, as pushing without them is.
        missing = self.missing_credentials() if self.reconciles else []
        if missing:
            raise ValueError(
                f"channel {self.id!r}: reconciling a walmart channel needs {', '.join(missing)} "
                "(or [channels.reconcile] enabled = false)"
            )
        return self
