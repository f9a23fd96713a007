"""Propagation wired for one process: a pusher per channel with a gateway, their queues on the
intake's broker (so the same Dramatiq worker consumes them), and the dispatcher."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dramatiq.brokers.redis import RedisBroker

from infrastructure.channels.gateway import ChannelGateway, Gate
from infrastructure.config import PushConfig
from infrastructure.periodic import every
from infrastructure.push.dispatch import Dispatcher, PushQueues
from infrastructure.push.gate import ChannelGate, GatePolicy
from infrastructure.push.limits import LimitsBackend
from infrastructure.push.pusher import Pusher, PushPolicy
from infrastructure.push.store import PushStore
from infrastructure.settings import CONSISTENCY_TARGETS

# A channel's gateway, built behind the gate its pusher is given.
GatewayFactory = Callable[[Gate], ChannelGateway]
HOT_REFRESH_SECONDS = 5.0
WINDOWS_EXPIRY_SECONDS = 60.0


HOT_SHARE = 0.2  # the top sellers' share of the SKUs that sold


class Sellers:
    """Units sold a day by SKU and the top sellers among them (`hottest`), looked up again
    every `HOT_REFRESH_SECONDS`."""

    def __init__(self, store: PushStore) -> None:
        self._store, self._at = store, float("-inf")
        self._velocity: Mapping[str, float] = {}
        self._hot: set[str] = set()

    def velocity(self) -> Mapping[str, float]:
        if time.monotonic() - self._at > HOT_REFRESH_SECONDS:
            self._velocity, self._at = self._store.velocities(), time.monotonic()
            self._hot = hottest(self._velocity, HOT_SHARE)
        return self._velocity

    def hot(self) -> set[str]:
        self.velocity()
        return self._hot


def hottest(velocity: Mapping[str, float], share: float) -> set[str]:
    """The SKUs in the top `share` (rounded up) of `velocity`'s by units sold."""
    ranked = sorted(velocity, key=velocity.__getitem__, reverse=True)
    return set(ranked[: math.ceil(len(ranked) * share)])


@dataclass
class Propagation:
    store: PushStore
    pushers: dict[str, Pusher]
    queues: PushQueues
    dispatcher: Dispatcher
    _running: ExitStack = field(default_factory=ExitStack)

    def start(self) -> None:
        self.dispatcher.start()
        # The windows are read back over the last hour only; older ones are dropped.
        self._running.enter_context(
            every(WINDOWS_EXPIRY_SECONDS, self.store.forget_old_windows, name="push-windows")
        )

    def stop(self) -> None:
        self._running.close()
        self.dispatcher.stop()
        for pusher in self.pushers.values():
            pusher.gateway.close()
        self.store.close()

    def breakers(self) -> dict[str, bool]:
        """Each channel's circuit breaker, True while open (shared by every worker, in Redis)."""
        return {
            channel_id: pusher.gate.state()["breaker"] == "open"
            for channel_id, pusher in self.pushers.items()
        }

    def status(self, channel_id: str) -> dict[str, Any] | None:
        """How far behind the channel is, whether it may be called, how fast it followed (its
        accepted pushes), what it refused over the last hour (by its code), and how many SKUs
        wait for its own sales to be recorded before they may go up."""
        pusher = self.pushers.get(channel_id)
        if pusher is None:
            return None
        pending, oldest = self.store.backlog().get(channel_id, (0, None))
        lag = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        return {
            "channel_id": channel_id,
            "pending": pending,
            "lag_seconds": round(lag, 3),
            **pusher.gate.state(),
            "consistency_window_seconds": self.store.windows(channel_id),
            "refused": self.store.refusals(channel_id),
            "held": self.store.held(channel_id),
        }


def build_propagation(
    database_url: str,
    broker: RedisBroker,
    limits: LimitsBackend,
    gateways: Mapping[str, tuple[GatewayFactory, PushConfig]],
    namespace: str = "invsync",
    *,
    pool_max: int = 4,
    statement_timeout_ms: int | None = None,
    buffers: Mapping[str, int] | None = None,
    targets: Mapping[str, float] | None = None,
    store: PushStore | None = None,
) -> Propagation:
    """A pusher per channel of `gateways` (its gateway built behind the channel's gate, and how
    it pushes), their queues on `broker`, and the dispatcher; limits shared through `limits`;
    `buffers`: each channel's safety buffer (what puts a SKU at risk, with its sales);
    `targets`: the consistency targets by kind (default: the seed's); `store`: the pushers'
    store, when the gateways were given it already (their offer file), else one of its own
    (`pool_max`, `statement_timeout_ms`), closed with the rest."""
    if store is None:
        store = PushStore(
            database_url, max_size=pool_max, statement_timeout_ms=statement_timeout_ms
        )
    sellers, buffers = Sellers(store), buffers or {}
    pushers = {}
    for channel_id, (gateway, config) in gateways.items():
        gate = ChannelGate(limits, channel_id, gate_policy(config), namespace)
        policy = push_policy(config, buffers.get(channel_id, 0), targets)
        pushers[channel_id] = Pusher(
            gateway(gate), store, gate, policy, hot=sellers.hot, velocity=sellers.velocity
        )
    queues = PushQueues(broker, pushers)
    dispatcher = Dispatcher(database_url, store, queues, pushers, limits, namespace=namespace)
    return Propagation(store, pushers, queues, dispatcher)


def gate_policy(config: PushConfig) -> GatePolicy:
    return GatePolicy(
        rate=config.rate_per_second,
        calls_per_push=config.calls_per_push,
        failures=config.failures_to_open,
        cooldown=config.cooldown_seconds,
        max_cooldown=config.max_cooldown_seconds,
        hold=longest_drain(config),
    )


def push_policy(
    config: PushConfig, buffer: int = 0, targets: Mapping[str, float] | None = None
) -> PushPolicy:
    return PushPolicy(
        buffer=buffer,
        targets=dict(CONSISTENCY_TARGETS if targets is None else targets),
        batch_window=config.batch_window_seconds,
        sku_interval=config.sku_interval_seconds,
        linger=config.linger_seconds,
        unrecorded_wait=config.unrecorded_wait_seconds,
    )


# Calls one round of a drain may make: a lookup, the push, a re-read after a refusal, and one
# to spare.
CALLS_PER_ROUND = 4


def longest_drain(config: PushConfig) -> float:
    """How long a drain can hold its channel at most: its turn, then a round of calls each
    taking their whole timeout."""
    return max(60.0, PushPolicy.turn + CALLS_PER_ROUND * config.timeout_seconds + 10.0)
