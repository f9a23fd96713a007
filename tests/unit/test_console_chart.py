"""The SKU page's chart: the levels after each event, walked back from the totals now, and
their scaling into the SVG's box."""

from __future__ import annotations

from interfaces.http.console.chart import HEIGHT, MARGIN, WIDTH, Point, chart, levels_back

NOW = {"on_hand": 13, "committed": 1, "reserved": 2, "unavailable": 0, "available": 10}


def test_the_levels_after_each_event_are_walked_back_from_the_totals_now():
    newest_first = [
        (4, [("east", "on_hand", 4)]),
        (3, [("main", "committed", 1)]),
        (2, [("main", "reserved", 2)]),
        (1, [("main", "on_hand", 9)]),
    ]
    assert levels_back(NOW, newest_first) == [
        Point(1, 9, 9),
        Point(2, 9, 7),
        Point(3, 9, 6),
        Point(4, 13, 10),
    ]


def test_an_oversold_level_is_charted_below_the_zero_line():
    drawn = chart([Point(1, 2, 2), Point(2, 2, -3)])
    assert drawn is not None
    assert (drawn.low, drawn.high) == (-3, 2)
    first, last = (tuple(map(float, p.split(","))) for p in drawn.available.split())
    assert first == (MARGIN, MARGIN)  # the highest value at the top
    assert last == (WIDTH - MARGIN, HEIGHT - MARGIN)  # the lowest at the bottom
    assert MARGIN < drawn.zero_y < HEIGHT - MARGIN


def test_fewer_than_two_points_draw_no_chart():
    assert chart([Point(1, 5, 5)]) is None
    assert chart([]) is None
