"""A run's level steps, one Dramatiq message each (Seam 2 as runs work it): a step reads one
page of the channel (a batch of named SKUs, or one API page of its catalogue through the kind's
`read_page`) and keeps its readings with the run (`readings`); the readings of earlier pages whose
settle time has passed are judged by the next step, while later pages are read, so no worker
waits out a page's settle time; the run's last step, once its page is read, answers how long its
readings need to settle, and is sent again with that delay to judge the rest (`judging`), so no
worker's thread waits either.

A reading is marked judged in the transaction that judges it and adds its counts to the run,
and stays with the run until it is done, so a step worked twice (a message delivered again, a
worker killed mid-step and its step resumed by another) reads its page again but judges each
SKU once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta

from domain.drift import SALE_MARGIN
from infrastructure import metrics
from infrastructure.channels.base import LevelPage, LevelReading
from infrastructure.channels.config import ChannelConfig
from infrastructure.channels.gateway import ChannelGateway
from infrastructure.channels.kinds import kind_of
from infrastructure.reconcile import readings, runs
from infrastructure.reconcile.levels import (
    ChannelSales,
    Connect,
    LevelsChecked,
    judged,
    settling_for,
)
from infrastructure.reconcile.runs import Counts, LevelStep, Stepped


class LevelChecks:
    """A run's level steps bound to one process's dependencies: each channel's gateway, built
    once by `gateway_for` (`api_for` behind the channel's gate; None: it has no API to read),
    the pool `connect` draws from (the run store's: a judgement and the run's counts commit
    together), and the channels' own sales."""

    def __init__(
        self,
        gateway_for: Callable[[ChannelConfig], ChannelGateway | None],
        connect: Connect,
        sales: ChannelSales,
        *,
        settle: float = SALE_MARGIN.total_seconds(),
    ) -> None:
        self._gateway_for, self._connect, self._sales = gateway_for, connect, sales
        self._settle = settle
        self._gateways: dict[str, ChannelGateway | None] = {}
        self._lock = threading.Lock()

    def __call__(self, channel: ChannelConfig, step: LevelStep) -> Stepped:
        """Judge the run's readings that settled, read the step's page, and at the run's last
        page judge the rest, or answer how long they need to settle first (`Stepped.settling`:
        the step is sent again then, `judging`, and reads nothing more).

        Raises what the kind's reads raise (`Throttled`, `ChannelUnavailable`, ...): the step
        is retried, from the same page."""
        gateway = self._gateway(channel)
        if gateway is None or kind_of(channel).read_levels is None:
            return Stepped()
        if step.judging:
            return self._judge_the_rest(channel, step.run_id)
        self._judge(channel, step.run_id, datetime.now(UTC) - timedelta(seconds=self._settle))
        page = read_page(channel, gateway, step)
        with self._connect() as conn:
            readings.put(conn, step.run_id, page.readings)
        if step.last and page.next is None:
            return self._judge_the_rest(channel, step.run_id)
        return Stepped(next_page=page.next)

    def close(self) -> None:
        for gateway in self._gateways.values():
            if gateway is not None:
                gateway.close()

    def _judge(self, channel: ChannelConfig, run_id: int, read_before: datetime) -> None:
        with self._connect() as conn:
            taken = readings.take(conn, run_id, read_before)
            checked = judged(channel, lambda: nullcontext(conn), self._sales, self._settle, taken)
            runs.add_counts(conn, run_id, _counts(checked))
        _measured(channel.id, checked)

    def _judge_the_rest(self, channel: ChannelConfig, run_id: int) -> Stepped:
        with self._connect() as conn:
            last = readings.last_read_at(conn, run_id)
        if last is None:
            return Stepped()
        wait = settling_for(last, datetime.now(UTC), self._settle)
        if wait is not None:
            return Stepped(settling=wait)
        self._judge(channel, run_id, last)
        return Stepped()

    def _gateway(self, channel: ChannelConfig) -> ChannelGateway | None:
        with self._lock:
            if channel.id not in self._gateways:
                self._gateways[channel.id] = self._gateway_for(channel)
            return self._gateways[channel.id]


def read_page(channel: ChannelConfig, gateway: ChannelGateway, step: LevelStep) -> LevelPage:
    """The readings of the step: its named SKUs, or the catalogue's page at its cursor (the
    whole catalogue at once for a kind that reads no page alone)."""
    kind = kind_of(channel)
    assert kind.read_levels is not None
    if step.skus is None and kind.read_page is not None:
        return kind.read_page(channel, gateway, step.cursor)
    return LevelPage(list[LevelReading](kind.read_levels(channel, gateway, step.skus)), None)


def _counts(checked: LevelsChecked) -> Counts:
    return Counts(skus_read=checked.read, corrected=checked.corrected, escalated=checked.escalated)


def _measured(channel_id: str, checked: LevelsChecked) -> None:
    metrics.RECONCILE_SKUS_READ.labels(channel_id).inc(checked.read)
    metrics.RECONCILE_DRIFT.labels(channel_id, "small").inc(checked.corrected)
    metrics.RECONCILE_DRIFT.labels(channel_id, "large").inc(checked.escalated)
