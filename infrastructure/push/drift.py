"""What channels lost on their own (`push_drift`, created by migration 0001): units a channel
lost (its shoppers' sales, seen in compare-and-set refusals) since the ledger held `sold` of its
units sold of the SKU and none was unrecorded; no push raises the channel over the ones still
unrecorded (`decisions.py`). `since`: the last loss. `sold` counts the sales of days from `day`
on. The only module that writes the table; the outbox's `pending` and `held` join it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import Connection, Cursor

from infrastructure.outbox import Pending
from infrastructure.push.decisions import Drift
from infrastructure.push.windows import WINDOW_KEPT

_KEEP_LOSS = (
    "INSERT INTO push_drift (channel_id, sku, lost, sold, day, since, guesses) "
    "VALUES (%s, %s, %s, %s, %s, to_timestamp(%s), %s) ON CONFLICT (channel_id, sku) "
    "DO UPDATE SET lost = EXCLUDED.lost, sold = EXCLUDED.sold, day = EXCLUDED.day, "
    "since = EXCLUDED.since, guesses = EXCLUDED.guesses"
)
# A count with no loss starts again from yesterday's sales as recorded now (the projection's
# `availability_sales`): sales recorded since the push only make later counts high, never low.
_START_AFRESH = (
    "INSERT INTO push_drift (channel_id, sku, lost, sold, day, since, guesses) "
    "SELECT %(channel)s, %(sku)s, 0, coalesce(sum(units), 0), current_date - 1, "
    "to_timestamp(%(at)s), %(guesses)s FROM availability_sales "
    "WHERE channel_id = %(channel)s AND sku = %(sku)s AND day >= current_date - 1 "
    "ON CONFLICT (channel_id, sku) DO UPDATE SET lost = 0, sold = EXCLUDED.sold, "
    "day = EXCLUDED.day, since = EXCLUDED.since, guesses = EXCLUDED.guesses"
)


def keep(
    curs: Cursor[Any], channel_id: str, drifts: Sequence[tuple[Pending, Drift | None]]
) -> None:
    """Keep each SKU's drift (None: as it is). Losses are kept as counted, against the sales of
    the days the row's count read; a count with no loss starts afresh."""
    kept = sorted(((p.sku, p, d) for p, d in drifts if d is not None), key=lambda k: k[0])
    curs.executemany(
        _KEEP_LOSS,
        [
            (channel_id, sku, d.lost, d.sold, p.sold_from, d.at, d.guesses)
            for sku, p, d in kept
            if d.lost and p.sold_from is not None
        ],
    )
    curs.executemany(
        _START_AFRESH,
        [
            {"channel": channel_id, "sku": sku, "at": d.at, "guesses": d.guesses}
            for sku, p, d in kept
            if not d.lost or p.sold_from is None
        ],
    )


def forget_old(conn: Connection[Any]) -> None:
    # A count that old is waited out: the next refusal starts afresh anyway.
    conn.execute("DELETE FROM push_drift WHERE since < now() - %s", [WINDOW_KEPT])
