"""Routes a delivery to its channel's verifier, translator and queue, by the configuration."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from application.intake import Delivery, Translation
from infrastructure.channels.base import (
    ChannelReads,
    ChannelReadUnavailable,
    Lane,
    SignedRequest,
    Verdict,
)
from infrastructure.channels.config import ChannelConfig
from infrastructure.channels.kind import ChannelKind
from infrastructure.channels.kinds import kind_of
from infrastructure.config import Config


class ChannelRouter:
    def __init__(self, config: Config, reads: ChannelReads | None = None) -> None:
        self.config = config
        self.reads = reads or _NoReads()

    def channel(self, channel_id: str) -> ChannelConfig | None:
        return self.config.channel(channel_id)

    def kind(self, channel: ChannelConfig) -> ChannelKind[Any]:
        return kind_of(channel)

    def verify(self, channel: ChannelConfig, request: SignedRequest) -> Verdict:
        return self.kind(channel).verify(channel, request, datetime.now(UTC))

    def translate(self, delivery: Delivery) -> Translation:
        channel = self.channel(delivery.channel_id)
        if channel is None:
            return Translation.park(f"channel {delivery.channel_id!r} is no longer configured")
        return self.kind(channel).translate(channel, delivery, self.reads)

    def acknowledge(self, delivery: Delivery) -> None:
        """Perform the hand-shake the delivery asks for (an SNS subscription's confirmation).
        Raises what the channel's hand-shake raises: the delivery is then parked, to retry."""
        channel = self.channel(delivery.channel_id)
        if channel is not None and (acknowledge := self.kind(channel).acknowledge):
            acknowledge(channel, delivery)

    def close(self) -> None:
        close = getattr(self.reads, "close", None)
        if close is not None:
            close()

    def lane(self, channel_id: str, topic: str) -> Lane:
        channel = self.channel(channel_id)
        return Lane.INCREMENTS if channel is None else self.kind(channel).lane(topic)


class _NoReads:
    """For a router that is given no way to read channels: a translator that needs to read
    raises, and the delivery is retried (then parked) with the reason."""

    def order_refunds(self, channel: ChannelConfig, order_id: str) -> Sequence[Any]:
        raise ChannelReadUnavailable(f"invsync cannot read channel {channel.id!r} here")

    def order_document(self, channel: ChannelConfig, order_id: str) -> dict[str, Any] | None:
        raise ChannelReadUnavailable(f"invsync cannot read channel {channel.id!r} here")
