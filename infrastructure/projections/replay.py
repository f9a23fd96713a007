"""Folding the whole ledger into the availability state, as fast as the machine allows.

Reading and decoding cost most, and both are Python work under one GIL, so a long log is split
by SKU among processes, one per core: each reads only its SKUs' events (plus every rules event,
which all of them need in order), folds them, and sends its fold back. SKUs never share state,
so the folds merge by union.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from application.availability import AvailabilityFold, RuleBook
from application.ledger import Ledger
from domain.allocation import ChannelRule
from domain.rules import ChannelRules
from infrastructure.eventstore import LedgerRecorder
from infrastructure.postgres import eventsourcing_env

PAGE = 20_000
READ_AHEAD = 2  # pages read while one is folded: enough to hide the reads, bounded memory
# Below this many events a process of one's own costs more (its start) than it saves.
PARALLEL_FROM = 200_000
BROADCAST = (get_topic(ChannelRules.Changed), get_topic(ChannelRules.SkuOverridden))

Progress = Callable[[int, int], None]  # (position reached, position aimed at)
Part = tuple[int, int, Sequence[str]]  # (parts, this part, topics every part reads)


def read_log(
    ledger: Ledger, start: int, stop: int, page: int = PAGE, part: Part | None = None
) -> Iterator[Sequence[Notification]]:
    """Pages of the ledger's notifications in (start, stop], read ahead in a thread."""
    recorder = cast(LedgerRecorder, ledger.recorder)
    windows = [(after, min(after + page, stop)) for after in range(start, stop, page)]
    with ThreadPoolExecutor(1, thread_name_prefix="replay-read") as reader:
        ahead: deque[Future[list[Notification]]] = deque()
        for after, upto in windows:
            ahead.append(reader.submit(recorder.read_notifications, after, upto, part))
            if len(ahead) > READ_AHEAD and (notifications := ahead.popleft().result()):
                yield notifications
        while ahead:
            if notifications := ahead.popleft().result():
                yield notifications


@dataclass(frozen=True)
class Replay:
    """Fold the ledger at `database_url` up to position `stop` under `rules`."""

    database_url: str
    rules: tuple[ChannelRule, ...]
    stop: int
    page: int = PAGE


def replay(
    job: Replay, progress: Progress | None = None, processes: int | None = None
) -> tuple[AvailabilityFold, int]:
    """The fold of every ledger event up to position `stop`, and how many events there were."""
    processes = processes or (os.cpu_count() or 1 if job.stop >= PARALLEL_FROM else 1)
    if processes == 1:
        return _replay_part(job, None, progress)
    return _replay_in_parallel(job, processes, progress)


def _replay_part(
    job: Replay, part: Part | None, progress: Progress | None
) -> tuple[AvailabilityFold, int]:
    stop = job.stop
    ledger = Ledger(env={**eventsourcing_env(job.database_url), "CREATE_TABLE": "n"})
    try:
        fold = AvailabilityFold(RuleBook(job.rules))
        decode, count = ledger.mapper.to_domain_event, 0
        counts_broadcast = part is None or part[1] == 0  # rules events: counted by one part
        for notifications in read_log(ledger, 0, stop, job.page, part):
            fold.fold(decode(n) for n in notifications)
            count += sum(1 for n in notifications if counts_broadcast or n.topic not in BROADCAST)
            if progress is not None:
                progress(notifications[-1].id, stop)
        fold.recomputed()  # a copy computes every SKU anyway
        return fold, count
    finally:
        ledger.close()


def _replay_in_parallel(
    job: Replay, processes: int, progress: Progress | None
) -> tuple[AvailabilityFold, int]:
    # Spawned, not forked: the parent holds connection pools and threads a fork would copy.
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[tuple[str, int, Any]] = context.Queue()
    workers = [
        context.Process(
            target=_worker,
            args=(job, (processes, k, BROADCAST), results),
            name=f"replay-{k}",
        )
        for k in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        return _gather(workers, results, job.stop, progress)
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
            worker.join()


def _gather(
    workers: list[Any],
    results: multiprocessing.Queue[tuple[str, int, Any]],
    stop: int,
    progress: Progress | None,
) -> tuple[AvailabilityFold, int]:
    reached = dict.fromkeys(range(len(workers)), 0)
    folds: dict[int, tuple[AvailabilityFold, int]] = {}
    while len(folds) < len(workers):
        try:
            kind, k, value = results.get(timeout=1.0)
        except queue.Empty:
            if any(not w.is_alive() and n not in folds for n, w in enumerate(workers)):
                raise RuntimeError("a replay process died") from None
            continue
        if kind == "failed":
            raise RuntimeError(f"replay process {k} failed: {value}")
        if kind == "progress":
            reached[k] = value
            if progress is not None:
                progress(min(reached.values()), stop)
        else:
            folds[k] = value
    merged, total = folds[0]
    for fold, count in (folds[k] for k in range(1, len(workers))):
        merged.names.update(fold.names)
        merged.skus.update(fold.skus)
        merged.sales.update(fold.sales)
        total += count
    if progress is not None:
        progress(stop, stop)
    return merged, total


def _worker(job: Replay, part: Part, results: multiprocessing.Queue[tuple[str, int, Any]]) -> None:
    k = part[1]
    try:
        fold = _replay_part(job, part, lambda done, _: results.put(("progress", k, done)))
        results.put(("done", k, fold))
    except BaseException as error:
        results.put(("failed", k, f"{type(error).__name__}: {error}"))
