"""A SKU's history as an SVG line chart, drawn on the server.

Why SVG from the server and not a JavaScript chart library: the page needs two lines (on hand
and available over the SKU's recent events), which a polyline draws; SVG needs no script, so
the Content-Security-Policy stays `script-src 'self'` with nothing vendored, it works offline,
and the points are computed from the same events the page lists."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

WIDTH, HEIGHT, MARGIN = 640, 200, 24
Delta = tuple[str, str, int]  # location, state, units (as `StockEvent.deltas`)


@dataclass(frozen=True)
class Point:
    """The SKU's totals just after one event."""

    version: int
    on_hand: int
    available: int


def levels_back(
    totals: Mapping[str, int], newest_first: Iterable[tuple[int, Sequence[Delta]]]
) -> list[Point]:
    """The totals after each of the newest events, oldest first, from the totals now (`totals`:
    `Levels.as_dict()`) and each event's version and deltas, newest first: walking back undoes
    one event at a time, so the chart needs no fold of the SKU's whole history."""
    levels = {
        state: totals.get(state, 0) for state in ("on_hand", "committed", "reserved", "unavailable")
    }
    points = []
    for version, deltas in newest_first:
        points.append(Point(version, levels["on_hand"], _available(levels)))
        for _location, state, units in deltas:
            levels[state] -= units
    return points[::-1]


def _available(levels: Mapping[str, int]) -> int:
    return levels["on_hand"] - levels["committed"] - levels["reserved"] - levels["unavailable"]


@dataclass(frozen=True)
class Chart:
    """What the template draws: a polyline per series, the zero line and the axis's bounds."""

    on_hand: str
    available: str
    zero_y: float
    low: int
    high: int
    width: int = WIDTH
    height: int = HEIGHT


def chart(points: Sequence[Point]) -> Chart | None:
    """The chart of `points` (None with fewer than two: no line to draw)."""
    if len(points) < 2:
        return None
    low = min(0, *(p.available for p in points), *(p.on_hand for p in points))
    high = max(1, *(p.on_hand for p in points), *(p.available for p in points))
    x = _scale(0, len(points) - 1, MARGIN, WIDTH - MARGIN)
    y = _scale(low, high, HEIGHT - MARGIN, MARGIN)
    return Chart(
        on_hand=" ".join(f"{x(i):.1f},{y(p.on_hand):.1f}" for i, p in enumerate(points)),
        available=" ".join(f"{x(i):.1f},{y(p.available):.1f}" for i, p in enumerate(points)),
        zero_y=round(y(0), 1),
        low=low,
        high=high,
    )


def _scale(lo: float, hi: float, to_lo: float, to_hi: float) -> Callable[[float], float]:
    """The linear map of [lo, hi] onto [to_lo, to_hi] (SVG's y grows downwards: pass them
    reversed)."""
    span = hi - lo or 1
    return lambda v: to_lo + (v - lo) * (to_hi - to_lo) / span
