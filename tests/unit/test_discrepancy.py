from datetime import UTC, datetime, timedelta

import pytest

from domain.discrepancy import (
    CountLocationUnclear,
    Discrepancy,
    DiscrepancyResolved,
    InvalidResolution,
    Resolution,
    count_location,
    discrepancy_id,
    overridden,
)

READ = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def detected(observed=32, expected=20):
    evidence = {"readings": [observed]}
    return Discrepancy(
        "shop", "TEE-M", observed=observed, expected=expected, read_at=READ, evidence=evidence
    )


def test_a_detected_discrepancy_is_open_with_its_difference_and_evidence():
    discrepancy = detected()
    assert discrepancy.is_open
    assert discrepancy.difference == 12
    assert discrepancy.evidence == {"readings": [32]}
    assert [type(e).__name__ for e in discrepancy.collect_events()] == ["Detected"]


def test_the_same_reading_names_the_same_discrepancy():
    assert detected().id == discrepancy_id("shop", "TEE-M", READ)


def test_resolving_says_how_why_and_by_whom():
    discrepancy = detected(observed=8)
    discrepancy.resolve("accept_channel", "counted the shelf: 8", by="alice")
    assert not discrepancy.is_open
    assert discrepancy.resolution is Resolution.ACCEPT_CHANNEL
    assert (discrepancy.reason, discrepancy.resolved_by) == ("counted the shelf: 8", "alice")
    assert [type(e).__name__ for e in discrepancy.collect_events()] == ["Detected", "Resolved"]


def test_a_resolved_discrepancy_cannot_be_resolved_again():
    discrepancy = detected()
    discrepancy.resolve("push_ledger", "a typo in the admin", by="alice")
    with pytest.raises(DiscrepancyResolved):
        discrepancy.resolve("accept_channel", "changed my mind", by="bob")


@pytest.mark.parametrize(
    ("action", "reason", "by"),
    [
        ("ignore", "why not", "alice"),
        ("superseded", "invsync's alone", "alice"),
        ("push_ledger", " ", "alice"),
        ("push_ledger", "ok", ""),
    ],
)
def test_a_resolution_needs_a_known_action_a_reason_and_an_author(action, reason, by):
    with pytest.raises(InvalidResolution):
        detected().resolve(action, reason, by=by)


LATER = READ + timedelta(minutes=5)


def test_a_channel_showing_less_is_overridden_once_it_acknowledged_another_quantity_since():
    assert overridden(8, 20, READ, acknowledged=19, acknowledged_at=LATER)


@pytest.mark.parametrize(
    ("observed", "acknowledged", "acknowledged_at"),
    [
        (8, 19, READ - timedelta(seconds=1)),  # acknowledged before the reading
        (8, 19, None),  # never acknowledged
        (8, 8, LATER),  # a compare-and-set refused: the channel still shows the hand edit
        (32, 20, LATER),  # a channel that showed more was set back at once by design
    ],
)
def test_nothing_else_overrides_an_open_discrepancy(observed, acknowledged, acknowledged_at):
    assert not overridden(observed, 20, READ, acknowledged, acknowledged_at)


def test_a_superseded_discrepancy_is_resolved_by_invsync_saying_what_the_channel_acknowledged():
    discrepancy = detected(observed=8)
    discrepancy.supersede(19, LATER, by="invsync")

    assert (discrepancy.resolution, discrepancy.resolved_by) == (Resolution.SUPERSEDED, "invsync")
    assert "acknowledged 19" in discrepancy.reason
    with pytest.raises(DiscrepancyResolved):
        discrepancy.resolve("accept_channel", "too late", by="alice")
    with pytest.raises(DiscrepancyResolved):
        discrepancy.supersede(18, LATER, by="invsync")


@pytest.mark.parametrize(
    ("feeding", "held", "mapped", "where"),
    [
        (None, ["main"], None, "main"),  # one location: today's case
        (None, ["east", "main"], "east", "east"),  # the channel's location maps to east
        (("east", "main"), ["main"], "east", "east"),  # counted where mapped, held there or not
        (("east",), ["east", "main"], None, "east"),  # the one held that feeds it
        (("east",), ["main"], None, "east"),  # fed from one location only, not held there yet
    ],
)
def test_an_accepted_quantity_is_counted_where_the_channels_stock_lives(
    feeding, held, mapped, where
):
    assert count_location("shop", feeding, held, mapped) == where


@pytest.mark.parametrize(
    ("feeding", "held", "mapped", "says"),
    [
        (None, ["east", "main"], None, "sells the sum of east, main"),
        (("east", "west"), ["main"], None, "sells the sum of east, west"),
        (("main",), ["main"], "east", "maps to 'east', which does not feed it"),
    ],
)
def test_an_accepted_quantity_with_no_one_location_to_count_at_is_refused_saying_why(
    feeding, held, mapped, says
):
    with pytest.raises(CountLocationUnclear, match=says):
        count_location("shop", feeding, held, mapped)
