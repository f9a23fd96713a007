"""Reading from channels during intake, for facts their webhooks leave out: each channel's own
gateway, built once, taking turns of the channel's rate limit like the pushers' calls do."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from infrastructure.channels.base import ChannelReadUnavailable
from infrastructure.channels.config import ChannelConfig
from infrastructure.channels.gateway import (
    UNGATED,
    ChannelAuthFailed,
    ChannelGateway,
    ChannelUnavailable,
    Gate,
    Throttled,
)
from infrastructure.channels.kinds import api_for

GateFor = Callable[[ChannelConfig], Gate]


class GatewayReads:
    """Implements `ChannelReads` with the channels' gateways (in the channel's SKUs: what is
    read is matched by the channel's own ids, never by SKU)."""

    def __init__(self, gate_for: GateFor = lambda channel: UNGATED) -> None:
        self._gate_for = gate_for
        self._gateways: dict[str, ChannelGateway] = {}
        self._lock = threading.Lock()

    def order_refunds(self, channel: ChannelConfig, order_id: str) -> Sequence[Any]:
        result: Sequence[Any] = self._read(channel, "refunds", order_id)
        return result

    def order_document(self, channel: ChannelConfig, order_id: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self._read(channel, "order", order_id)
        return result

    def _read(self, channel: ChannelConfig, what: str, order_id: str) -> Any:
        read = getattr(self._gateway(channel), what, None)
        if read is None:
            raise ChannelReadUnavailable(f"invsync reads no {what} from {channel.kind} channels")
        try:
            return read(order_id)
        except (Throttled, ChannelUnavailable, ChannelAuthFailed) as error:
            # It will pass (or a person will mend the credentials): the delivery waits.
            raise ChannelReadUnavailable(f"cannot read {channel.id} now: {error}") from error

    def close(self) -> None:
        for gateway in self._gateways.values():
            gateway.close()

    def _gateway(self, channel: ChannelConfig) -> ChannelGateway:
        with self._lock:
            gateway = self._gateways.get(channel.id)
            if gateway is None:
                gateway = api_for(channel, self._gate_for(channel))
                if gateway is None:
                    raise ChannelReadUnavailable(
                        f"channel {channel.id!r} has no API to read (set its api_base_url "
                        "and credentials)"
                    )
                self._gateways[channel.id] = gateway
            return gateway
