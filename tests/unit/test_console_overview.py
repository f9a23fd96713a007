"""The overview's consistency windows against the targets: a kind's p99 over its target is a
miss, a kind without a target is shown without a judgement."""

from __future__ import annotations

from interfaces.http.console.overview import against

TARGETS = {"sale": 5.0, "return": 60.0, "adjustment": 300.0}


def test_each_kinds_p99_is_judged_against_its_target():
    windows = {
        "sale": {"pushes": 40, "p50": 0.4, "p99": 7.5},
        "adjustment": {"pushes": 3, "p50": 1.0, "p99": 300.0},
        "receipt": {"pushes": 2, "p50": 0.5, "p99": 0.9},
    }
    judged = {row["kind"]: (row["target"], row["met"]) for row in against(windows, TARGETS)}
    assert judged == {"adjustment": (300.0, True), "receipt": (None, None), "sale": (5.0, False)}


def test_no_windows_judge_nothing():
    assert against({}, TARGETS) == []
