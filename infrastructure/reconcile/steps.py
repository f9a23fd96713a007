"""What a run's steps do for real: Seam 1's orders poll, bound here to the service's parts (the
database, intake's nudge) and each channel's gateway, built once behind the channel's gate so
reads take turns of the same rate limit as its pushes; and Seam 2's level check, bound by
`levels.LevelChecks`. Both answer with the run's `Counts`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from infrastructure.channels.config import ChannelConfig
from infrastructure.channels.gateway import ChannelGateway, Gate
from infrastructure.channels.kinds import api_for, kind_of
from infrastructure.inbox import Stored
from infrastructure.reconcile.actors import Reconcilers
from infrastructure.reconcile.level_steps import LevelChecks
from infrastructure.reconcile.orders import poll_orders
from infrastructure.reconcile.runs import Counts, LevelStep, Stepped


class ChannelSteps:
    """The steps of every channel's runs; `close` closes the gateways they built."""

    def __init__(
        self,
        database_url: str,
        gate_for: Callable[[ChannelConfig], Gate],
        nudge: Callable[[Sequence[Stored]], None],
        levels: LevelChecks,
    ) -> None:
        self._database_url, self._gate_for, self._nudge = database_url, gate_for, nudge
        self._levels = levels
        self._gateways: dict[str, ChannelGateway | None] = {}
        self._lock = threading.Lock()

    def reconcilers(self) -> Reconcilers:
        return Reconcilers(self.poll_orders, self.check_levels)

    def poll_orders(self, channel: ChannelConfig) -> Counts:
        """List the orders the channel modified since its watermark into intake (nothing for
        a kind whose orders invsync cannot list, or a channel without an API)."""
        gateway = self.gateway(channel)
        if kind_of(channel).list_orders is None or gateway is None:
            return Counts()
        overlap = timedelta(seconds=channel.reconcile.orders_overlap_seconds)
        polled = poll_orders(
            channel,
            database_url=self._database_url,
            gateway=gateway,
            nudge=self._nudge,
            overlap=overlap,
        )
        return Counts(orders_found=polled.found, orders_applied=polled.stored)

    def check_levels(self, channel: ChannelConfig, step: LevelStep) -> Stepped:
        """Read the step's page of levels, and act on the drift of those that settled."""
        return self._levels(channel, step)

    def gateway(self, channel: ChannelConfig) -> Any:
        """The channel's gateway, in its own SKUs, built once behind its gate (None: it has no
        API)."""
        with self._lock:
            if channel.id not in self._gateways:
                self._gateways[channel.id] = api_for(channel, self._gate_for(channel))
            return self._gateways[channel.id]

    def close(self) -> None:
        self._levels.close()
        with self._lock:
            gateways, self._gateways = list(self._gateways.values()), {}
        for gateway in gateways:
            if gateway is not None:
                gateway.close()
