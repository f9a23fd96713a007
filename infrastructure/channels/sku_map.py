"""A channel that names products apart from us (`[channels.sku_map]`, its SKU -> ours): its
gateway, wrapped so that the real one is given the channel's SKUs and every answer comes back in
ours. The pushers, the outbox and the push submissions only ever see our SKUs.

Every method of `ChannelGateway` that takes or returns SKUs is mapped here, by name: there is no
pass-through of whatever else a gateway offers, so a method added to the protocol cannot go to a
channel with our SKUs by accident (a test checks that each one is defined here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from infrastructure.channels.config import ChannelConfig
from infrastructure.channels.gateway import ChannelGateway, Push, PushResult, PushStatus


def with_sku_map(gateway: ChannelGateway, channel: ChannelConfig) -> ChannelGateway:
    """`gateway` speaking our SKUs, when `channel` maps any; else `gateway` itself."""
    if not channel.sku_map:
        return gateway
    if callable(getattr(gateway, "listings", None)):
        return SkuMappedListings(gateway, channel)
    return SkuMappedGateway(gateway, channel)


class SkuMappedGateway:
    """`ChannelGateway` in our SKUs around one in the channel's."""

    def __init__(self, gateway: ChannelGateway, channel: ChannelConfig) -> None:
        self.gateway, self.channel = gateway, channel
        self.channel_id = gateway.channel_id
        self.max_batch = gateway.max_batch

    def push(self, pushes: Sequence[Push]) -> list[PushResult]:
        """Raises what the real gateway raises."""
        sent, nameless = [], []
        for push in pushes:
            theirs = self._theirs(push.sku)
            if theirs is None:
                nameless.append(self._nameless(push.sku))
            else:
                sent.append(replace(push, sku=theirs))
        results = self.gateway.push(sent) if sent else []
        return [self._ours(result) for result in results] + nameless

    def turn_taken(self, calls: int = 1) -> None:
        self.gateway.turn_taken(calls)

    def settle(self, ticket: str, skus: Sequence[str]) -> list[PushResult] | None:
        # Only SKUs with a name on the channel were pushed, so only those are submitted.
        results = self.gateway.settle(ticket, [self.channel.channel_sku(sku) for sku in skus])
        return None if results is None else [self._ours(result) for result in results]

    def read(self, skus: Sequence[str]) -> Mapping[str, int | None]:
        named = {sku: theirs for sku in skus if (theirs := self._theirs(sku)) is not None}
        shown = self.gateway.read(list(named.values())) if named else {}
        return {sku: shown.get(named[sku]) if sku in named else None for sku in skus}

    def close(self) -> None:
        self.gateway.close()

    def _theirs(self, sku: str) -> str | None:
        """The channel's SKU for ours; None when the map gives our SKU's own name to another
        of ours (`"TEE" = "TEE-M"`: the channel's TEE is our TEE-M, so our TEE has no name)."""
        theirs = self.channel.channel_sku(sku)
        return theirs if self.channel.our_sku(theirs) == sku else None

    def _ours(self, result: PushResult) -> PushResult:
        return replace(result, sku=self.channel.our_sku(result.sku))

    def _nameless(self, sku: str) -> PushResult:
        named = self.channel.our_sku(sku)
        return PushResult(
            sku,
            PushStatus.UNKNOWN_SKU,
            detail=f"{self.channel_id}'s {sku!r} is our {named!r} (sku_map): ours has no name",
        )


class SkuMappedListings(SkuMappedGateway):
    """For a gateway that also files how the channel's webhooks name our SKUs (`listings`)."""

    def listings(self, skus: Sequence[str]) -> list[tuple[str, str]]:
        named = [theirs for sku in skus if (theirs := self._theirs(sku)) is not None]
        listings = getattr(self.gateway, "listings")  # noqa: B009 (not in the protocol)
        found: list[tuple[str, str]] = listings(named) if named else []
        return [(ref, self.channel.our_sku(theirs)) for ref, theirs in found]
