"""Client-caused log lines pass once per interval, with a count of those held back."""

from __future__ import annotations

import logging

from interfaces.http.log_limits import OnePerInterval


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _record(message: str, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord("uvicorn.error", level, __file__, 1, message, None, None)


def test_the_first_line_passes_and_the_rest_within_the_interval_are_held_back():
    clock = Clock()
    lines = OnePerInterval(every=10, clock=clock)
    passed = [lines.filter(_record("Invalid HTTP request received.")) for _ in range(50)]
    assert passed == [True] + [False] * 49


def test_the_next_line_after_the_interval_says_how_many_were_held_back():
    clock = Clock()
    lines = OnePerInterval(every=10, clock=clock)
    for _ in range(30):
        lines.filter(_record("Exceeded concurrency limit."))
    clock.now += 12
    record = _record("Exceeded concurrency limit.")
    assert lines.filter(record)
    assert record.getMessage() == (
        "Exceeded concurrency limit. (29 more like it held back in the last 12 s)"
    )
    clock.now += 11
    quiet_since = _record("Exceeded concurrency limit.")
    assert lines.filter(quiet_since)
    assert quiet_since.getMessage() == "Exceeded concurrency limit."


def test_each_kind_of_line_has_its_own_interval_and_other_lines_always_pass():
    lines = OnePerInterval(every=10, clock=Clock())
    assert lines.filter(_record("Invalid HTTP request received."))
    assert lines.filter(_record("Exceeded concurrency limit."))
    assert all(lines.filter(_record("Application startup complete.")) for _ in range(5))
    assert all(
        lines.filter(_record("Exception in ASGI application", logging.ERROR)) for _ in range(5)
    )


def test_installing_the_filter_again_replaces_it_rather_than_stacking_a_second():
    from interfaces.http.log_limits import SERVER_LOGGER, OnePerInterval, quiet_client_caused_lines

    logger = logging.getLogger(SERVER_LOGGER)
    first = quiet_client_caused_lines(every=10)
    second = quiet_client_caused_lines(every=1)
    try:
        assert [f for f in logger.filters if isinstance(f, OnePerInterval)] == [second]
        assert first not in logger.filters
    finally:
        logger.removeFilter(second)
