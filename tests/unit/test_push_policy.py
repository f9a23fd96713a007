"""What a pusher decides (`infrastructure/push/policy.py`), without a database, a channel or a
clock: which rows a call carries, what each may set, what a failed call means, and what each
answer of the channel's comes to."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infrastructure.channels.gateway import (
    ChannelAuthFailed,
    ChannelError,
    ChannelUnavailable,
    Push,
    PushResult,
    PushStatus,
    Throttled,
)
from infrastructure.push.decisions import Drift, expected
from infrastructure.push.policy import (
    AUTH_PAUSE_SECONDS,
    STALE,
    Causes,
    Clock,
    Outgoing,
    Refusal,
    Risk,
    Setback,
    as_pending,
    counted,
    cover,
    due,
    outcomes,
    outgoing,
    overdue,
    quiet,
    refusal_code,
    sendable,
    setback,
    slow_mover,
    urgent,
    with_sales,
    zero_move,
)
from infrastructure.push.service import hottest
from infrastructure.push.store import Acknowledged, Pending, Shown

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
WAIT = 10.0
TODAY = date(2026, 12, 1)
CLOCK = Clock(now=100.0, today=TODAY, wait=WAIT)


def pending(sku: str = "TEE", quantity: int = 5, **fields: object) -> Pending:
    row = Pending(sku, quantity, 2, 1, "sale", T0, None, None, 1)
    return replace(row, **fields)


def rows(*skus: str, changed: datetime = T0) -> list[Outgoing]:
    return [as_pending(pending(sku, first_changed_at=changed)) for sku in skus]


def nothing_rests(sku: str) -> bool:
    return False


# -- due: what a call carries ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("hot", "cutoff", "resting", "expected"),
    [
        ({"B"}, T0 - timedelta(seconds=1), set(), ["B", "A", "C"]),  # hot first, riders after
        (set(), T0 - timedelta(seconds=1), set(), []),  # none hot, none waited the window
        (set(), T0, set(), ["A", "B", "C"]),  # all waited the window: in ledger order
        ({"B"}, T0 - timedelta(seconds=1), {"B"}, []),  # the only cause rests: no call
        ({"A", "C"}, T0 - timedelta(seconds=1), {"A"}, ["C", "A", "B"]),  # a rester rides
    ],
)
def test_a_call_is_caused_by_hot_or_waited_rows_and_carries_the_others_along(
    hot, cutoff, resting, expected
):
    carried = due(
        rows("A", "B", "C"), hot=hot, cutoff=cutoff, resting=resting.__contains__, max_batch=10
    )
    assert [o.sku for o in carried] == expected


def test_a_call_carries_no_more_than_the_batch_and_its_causes_come_first():
    many = rows(*(f"S{n}" for n in range(10)))
    carried = due(
        many, hot={"S9", "S8"}, cutoff=T0 - timedelta(seconds=1), resting=nothing_rests, max_batch=3
    )
    assert [o.sku for o in carried] == ["S8", "S9", "S0"]


def test_nothing_pending_is_nothing_due():
    assert due([], hot={"A"}, cutoff=T0, resting=nothing_rests, max_batch=5) == []


SKUS = st.lists(st.sampled_from([f"S{n}" for n in range(12)]), unique=True, max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    SKUS,
    st.sets(st.sampled_from([f"S{n}" for n in range(12)])),
    st.sets(st.sampled_from([f"S{n}" for n in range(12)])),
    st.lists(st.booleans(), min_size=12, max_size=12),
    st.integers(1, 15),
)
def test_a_call_never_passes_the_batch_never_holds_a_sku_twice_and_leaves_no_cause_for_a_rider(
    skus, hot, resting, waited, max_batch
):
    old, new = T0 - timedelta(seconds=5), T0 + timedelta(seconds=5)
    pending_rows = [
        as_pending(pending(sku, first_changed_at=old if waited[n] else new))
        for n, sku in enumerate(skus)
    ]
    carried = due(
        pending_rows, hot=hot, cutoff=T0, resting=resting.__contains__, max_batch=max_batch
    )
    carried_skus = [o.sku for o in carried]
    assert len(carried) <= max_batch
    assert len(set(carried_skus)) == len(carried_skus)
    causes = [
        o.sku
        for o in pending_rows
        if (o.sku in hot or o.pending.first_changed_at <= T0) and o.sku not in resting
    ]
    if not causes:
        assert carried == []
    else:
        assert carried_skus[0] == causes[0]  # the call's cause leads
        assert carried_skus == (causes + [s for s in skus if s not in causes])[:max_batch]


def test_a_sku_that_caused_a_call_rests_for_its_interval_then_may_cause_again():
    causes = Causes()
    assert not causes.resting("TEE", since=0.0)
    causes.caused("TEE", now=10.0, since=9.75)
    assert causes.resting("TEE", since=9.9)
    assert not causes.resting("TEE", since=10.0)
    assert not causes.resting("CAP", since=9.9)


# -- outgoing: what a row may set now ----------------------------------------------------------


def test_a_row_without_its_sales_read_goes_as_it_is():
    row = pending(quantity=9, acknowledged_quantity=4, drift=Drift(3, 1, 99.0))
    assert outgoing(row, 100.0, WAIT) == Outgoing(row, 9, 4, Drift(3, 1, 99.0))


@pytest.mark.parametrize(
    ("quantity", "acknowledged", "drift", "sold", "expected"),
    [
        (3, 7, Drift(4, 1, 99.0), 1, 3),  # a decrease goes at once, whatever is missing
        (7, 7, Drift(4, 1, 99.0), 1, 7),  # no change goes too
        (15, 6, Drift(4, 1, 99.0), 1, 11),  # a raise goes as far as the missing sales allow
        (9, 6, Drift(4, 1, 99.0), 1, None),  # ... or not at all
        (9, 6, Drift(4, 1, 99.0), 5, 9),  # the sales were recorded since: all of it
        (9, 6, Drift(4, 1, 80.0), 1, 9),  # waited out: all of it
        (9, None, Drift(4, 1, 99.0), 1, 9),  # a first push: nothing to compare
    ],
)
def test_a_row_read_with_its_sales_may_raise_the_channel_only_as_far_as_they_allow(
    quantity, acknowledged, drift, sold, expected
):
    row = pending(quantity=quantity, acknowledged_quantity=acknowledged, drift=drift, sold=sold)
    going = outgoing(row, 100.0, WAIT)
    assert (None if going is None else going.quantity) == expected


DRIFTS = st.builds(Drift, st.integers(0, 20), st.integers(0, 20), st.floats(80, 100), st.booleans())


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 50), st.none() | st.integers(0, 50), st.none() | DRIFTS, st.integers(0, 40))
def test_a_decrease_is_never_held_back_and_a_raise_never_passes_its_target(
    quantity, acknowledged, drift, sold
):
    row = pending(quantity=quantity, acknowledged_quantity=acknowledged, drift=drift, sold=sold)
    shows, _ = expected(acknowledged, drift, sold)
    going = outgoing(row, 100.0, WAIT)
    if shows is None or quantity <= shows:
        assert going is not None
        assert going.quantity == quantity  # a push that does not raise the channel goes whole
    elif going is not None:
        assert shows < going.quantity <= quantity  # a raise, maybe part of it


def test_a_row_asks_the_gateway_for_its_quantity_against_what_the_channel_should_show():
    row = Outgoing(pending("A", quantity=9, version=4), 7, 6, None)
    assert row.push() == Push("A", 7, 4, acknowledged=6)
    assert replace(row, urgent=True).push() == Push("A", 7, 4, acknowledged=6, urgent=True)


def test_rows_waiting_for_the_channels_sales_are_not_sendable():
    waiting = pending("A", quantity=9, acknowledged_quantity=6, drift=Drift(4, 1, 99.0), sold=1)
    free = pending("B", quantity=2)
    assert [o.sku for o in sendable([waiting, free], 100.0, WAIT)] == ["B"]


def test_rows_sent_without_their_sales_are_decided_again_once_read():
    unread = pending("A", quantity=9, acknowledged_quantity=6)
    read = replace(unread, drift=Drift(4, 1, 99.0), sold=1)
    other = as_pending(pending("B"))
    again = with_sales([as_pending(unread), other], {"A": read}, 100.0, WAIT)
    # Once read it may not go at all: it goes as it was (nothing was lost meanwhile).
    assert again == [as_pending(unread), other]
    lower = replace(read, quantity=3)
    assert with_sales([as_pending(unread)], {"A": lower}, 100.0, WAIT)[0].quantity == 3


def test_rows_decided_again_once_their_sales_are_read_keep_the_verdict_the_call_was_made_on():
    unread = pending("A", quantity=9, acknowledged_quantity=6)
    lower = replace(unread, quantity=3, drift=Drift(4, 1, 99.0), sold=1)
    judged = replace(as_pending(unread), urgent=True)
    again = with_sales([judged, as_pending(pending("B"))], {"A": lower}, 100.0, WAIT)
    assert [(o.quantity, o.urgent) for o in again] == [(3, True), (5, False)]


# -- setback: a call that failed as a whole -----------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (Throttled("429", retry_after=2.5), Setback("throttled", pause=2.5)),
        (ChannelUnavailable("503"), Setback("unavailable", failure=True)),
        (
            ChannelAuthFailed("401"),
            Setback("auth_failed", pause=AUTH_PAUSE_SECONDS, says="refuses our credentials"),
        ),
        (ChannelError("400 bad feed"), Setback("refused", failure=True, says="refused the call")),
    ],
)
def test_a_failed_call_pauses_the_channel_or_counts_against_its_breaker(error, expected):
    assert setback(error) == expected


# -- outcomes: what each answer comes to --------------------------------------------------------


def test_an_applied_push_is_acknowledged_with_what_the_channel_shows():
    row = as_pending(pending("A", quantity=5))
    found = outcomes([row], [PushResult("A", PushStatus.APPLIED)], CLOCK)
    assert found.acknowledged == [Acknowledged(row.pending, 5, True)]
    assert found.applied == ["A=5"]
    assert (found.shown, found.refusals, found.drifts) == ([], [], [])


def test_part_of_a_raise_is_shown_and_the_row_stays_pending():
    row = Outgoing(pending("A", quantity=9, sold=1), 7, 6, Drift(2, 1, 99.0))
    found = outcomes([row], [PushResult("A", PushStatus.APPLIED, 7)], CLOCK)
    assert found.acknowledged == []
    assert found.shown == [Shown(row.pending, 7, Drift(2, 1, 99.0))]


def test_a_stale_answer_is_observed_refused_and_shown_and_stays_pending_unless_it_matches():
    row = Outgoing(pending("A", quantity=9, acknowledged_quantity=10, sold=3), 9, 10, None)
    found = outcomes([row], [PushResult("A", PushStatus.STALE, 7)], CLOCK)
    assert found.observed == [("A", 7)]
    assert found.refusals == [Refusal("A", STALE, "A=9", 7)]
    assert found.shown == [Shown(row.pending, 7, Drift(3, 3, 100.0))]
    assert found.acknowledged == []
    matching = outcomes([row], [PushResult("A", PushStatus.STALE, 9)], CLOCK)
    assert matching.acknowledged == [Acknowledged(row.pending, 9, True)]


@pytest.mark.parametrize(
    ("result", "refusals", "unusual", "acknowledged"),
    [
        (
            PushResult("A", PushStatus.REJECTED, detail="INVALID_QUANTITY: too many"),
            [Refusal("A", "INVALID_QUANTITY", "A=5", None)],
            [],
            (None, False),
        ),
        (PushResult("A", PushStatus.UNKNOWN_SKU), [], ["A unknown_sku UNKNOWN_SKU"], (None, False)),
        (PushResult("A", PushStatus.STALE), [], ["A stale STALE"], (None, True)),
    ],
)
def test_an_answer_that_did_not_apply_is_answered_all_the_same(
    result, refusals, unusual, acknowledged
):
    row = as_pending(pending("A", quantity=5))
    found = outcomes([row], [result], CLOCK)
    assert (found.refusals, found.unusual) == (refusals, unusual)
    assert found.acknowledged == [Acknowledged(row.pending, *acknowledged)]


def test_submitted_pushes_are_kept_by_ticket_and_rows_without_an_answer_go_again():
    one, two, three = (as_pending(pending(sku)) for sku in ("A", "B", "C"))
    results = [
        PushResult("A", PushStatus.SUBMITTED, ticket="feed-1"),
        PushResult("B", PushStatus.SUBMITTED, ticket="feed-1"),
    ]
    found = outcomes([one, two, three], results, CLOCK)
    assert found.submitted == {"feed-1": [one.pending, two.pending]}
    assert found.acknowledged == []


@pytest.mark.parametrize(
    ("kept", "sold", "sold_from", "expected"),
    [
        (None, None, None, None),  # a submission settled: nothing read, nothing counted
        (None, 4, TODAY, Drift(0, 4, 100.0, guesses=True)),  # the first count starts here
        (Drift(0, 4, 50.0), 4, TODAY, None),  # nothing moved: the one on file stands
        (Drift(0, 4, 50.0), 4, TODAY - timedelta(days=3), Drift(0, 4, 100.0)),  # old days
        (Drift(2, 4, 99.0), 6, TODAY, Drift(0, 6, 100.0)),  # its losses all recorded
        (Drift(2, 4, 99.0), 5, TODAY, None),  # one still unrecorded: kept as it was
    ],
)
def test_a_push_taken_whole_starts_the_count_of_losses_again_once_none_is_missing(
    kept, sold, sold_from, expected
):
    row = as_pending(pending("A", drift=kept, sold=sold, sold_from=sold_from))
    assert counted(row, CLOCK) == expected


@pytest.mark.parametrize(
    ("detail", "status", "code"),
    [
        ("CHANGE_FROM_QUANTITY_STALE: moved", PushStatus.STALE, "CHANGE_FROM_QUANTITY_STALE"),
        ("not a code: at all", PushStatus.REJECTED, "REJECTED"),
        ("", PushStatus.UNKNOWN_SKU, "UNKNOWN_SKU"),
    ],
)
def test_a_refusal_is_named_by_the_channels_code_else_by_its_status(detail, status, code):
    assert refusal_code(PushResult("A", status, detail=detail)) == code


def test_a_submission_is_given_up_only_after_its_timeout():
    assert not overdue(T0, T0 + timedelta(seconds=60), 60.0)
    assert overdue(T0, T0 + timedelta(seconds=61), 60.0)


# -- risk: what goes at once whatever its velocity, and what leads a call ----------------------

LATER = T0 + timedelta(seconds=5)  # changed after the cutoff: a slow mover still waits


def row(sku: str, quantity: int, before: int | None = 50) -> Outgoing:
    return as_pending(pending(sku, quantity, acknowledged_quantity=before, first_changed_at=LATER))


@pytest.mark.parametrize(
    ("quantity", "before", "velocity", "buffer", "expected"),
    [
        (40, 50, 0.0, 0, False),  # plenty left, nothing sells: waits for company
        (0, 3, 0.0, 0, True),  # to zero
        (4, 0, 0.0, 0, True),  # up from zero
        (0, None, 0.0, 0, True),  # a first push of zero
        (4, None, 0.0, 0, False),  # a first push of some
        (3, 50, 0.0, 3, True),  # at the buffer
        (4, 50, 0.0, 3, False),  # above it
        (5, 50, 86_400.0 * 2, 3, True),  # 2 a second sell 4 in the 2 s window: 5 <= 4 + 3
        (8, 50, 86_400.0 * 2, 3, False),
    ],
)
def test_a_sku_is_at_risk_at_or_below_its_sales_in_the_window_plus_the_buffer_or_at_zero(
    quantity, before, velocity, buffer, expected
):
    risk = Risk({"A": velocity}, window=2.0, buffer=buffer)
    assert risk.at_risk(row("A", quantity, before)) is expected


def test_a_sku_at_risk_goes_at_once_whatever_its_velocity_and_a_safe_slow_mover_waits():
    risk = Risk({}, window=2.0, buffer=2)
    cutoff = T0
    assert (
        due([row("A", 40)], hot=set(), cutoff=cutoff, resting=nothing_rests, max_batch=5, risk=risk)
        == []
    )
    carried = due(
        [row("A", 40), row("B", 1)],
        hot=set(),
        cutoff=cutoff,
        resting=nothing_rests,
        max_batch=5,
        risk=risk,
    )
    assert [o.sku for o in carried] == ["B", "A"]  # the risk causes the call, the rest ride


def test_a_move_to_zero_goes_even_while_its_sku_rests_and_a_low_one_waits_its_interval():
    risk = Risk({}, window=2.0, buffer=2)
    resting = {"A", "B"}.__contains__
    assert due([row("A", 1)], hot=set(), cutoff=T0, resting=resting, max_batch=5, risk=risk) == []
    carried = due(
        [row("A", 1), row("B", 0, 3)], hot=set(), cutoff=T0, resting=resting, max_batch=5, risk=risk
    )
    assert [o.sku for o in carried] == ["B", "A"]


def test_a_call_leads_with_the_lowest_cover_at_risk_then_the_fastest_sellers():
    velocity = {"FAST": 100.0, "SLOW": 1.0, "LOW": 10.0, "LOWER": 1.0, "GONE": 0.5}
    risk = Risk(velocity, window=2.0, buffer=5)
    rows_ = [row("SLOW", 40), row("LOW", 5), row("FAST", 40), row("LOWER", 2), row("GONE", 0, 1)]
    carried = due(
        rows_, hot={"FAST", "SLOW"}, cutoff=T0, resting=nothing_rests, max_batch=10, risk=risk
    )
    # GONE covers 0 days, LOW 0.5, LOWER 2; then the hot by velocity.
    assert [o.sku for o in carried] == ["GONE", "LOW", "LOWER", "FAST", "SLOW"]


def test_each_push_carries_the_verdict_at_risk_or_hot_a_resting_rider_too_and_the_tail_not():
    risk = Risk({"HOT": 50.0, "TAIL": 1.0}, window=2.0, buffer=2)
    rows_ = [row("TAIL", 40), row("HOT", 40), row("LOW", 2), row("RESTING", 40), row("SAFE", 9)]
    carried = due(
        rows_,
        hot={"HOT", "RESTING"},
        cutoff=LATER,  # every row waited the window: the tail causes the call too
        resting={"RESTING"}.__contains__,
        max_batch=10,
        risk=risk,
    )
    assert [(o.sku, o.urgent) for o in carried] == [
        ("LOW", True),
        ("HOT", True),
        ("TAIL", False),
        ("SAFE", False),
        ("RESTING", True),
    ]
    assert [o.push().urgent for o in carried] == [o.urgent for o in carried]


def test_the_verdict_is_hot_or_at_risk_and_nothing_else():
    risk = Risk({}, window=2.0, buffer=2)
    assert urgent(row("A", 40), {"A"}, risk)
    assert urgent(row("A", 2), set(), risk)  # at the buffer
    assert urgent(row("A", 0, 3), set(), risk)  # to zero
    assert not urgent(row("A", 3), {"B"}, risk)


def test_days_of_cover_are_none_at_zero_and_endless_for_what_does_not_sell():
    assert cover(0, 5.0) == 0.0
    assert cover(10, 5.0) == 2.0
    assert cover(10, 0.0) == math.inf


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        ([], True),  # nothing called: a quiet store
        ([99.5, 99.6, 99.7, 99.8], True),  # 4 in the last second of a rate of 10
        ([99.5, 99.6, 99.7, 99.8, 99.9], False),  # half the rate: calls are in demand
        ([90.0, 91.0, 92.0, 93.0, 94.0, 95.0, 98.9], True),  # older than a second
    ],
)
def test_the_long_tail_waits_for_company_only_while_calls_are_in_demand(calls, expected):
    assert quiet(calls, 100.0, rate=10.0, share=0.5) is expected


def test_a_share_of_zero_is_never_quiet():
    assert not quiet([], 100.0, rate=10.0, share=0.0)


@pytest.mark.parametrize(
    ("store_quiet", "caused_in_window", "expected"),
    [(True, False, True), (True, True, False), (False, False, False), (False, True, False)],
)
def test_only_a_sku_that_caused_no_call_in_the_window_skips_it_in_a_quiet_store(
    store_quiet, caused_in_window, expected
):
    assert slow_mover(store_quiet, caused_in_window) is expected


def test_a_quiet_skus_change_goes_at_once_and_a_resting_one_waits_even_then():
    fresh = rows("A", "B", changed=T0 + timedelta(seconds=1))  # within the window
    carried = due(
        fresh, hot=set(), cutoff=T0, resting=nothing_rests, max_batch=5, quiet={"B"}.__contains__
    )
    assert [o.sku for o in carried] == ["B", "A"]
    resting = {"B"}.__contains__
    assert due(fresh, hot=set(), cutoff=T0, resting=resting, max_batch=5, quiet=resting) == []


INTERVAL, WINDOW, TICK = 0.25, 2.0, 0.01


def selling(gap: float, seconds: float) -> list[float]:
    """When each call of a pusher goes (by `due`) for one SKU, not hot, sold every `gap`
    seconds for `seconds` in a quiet store, the pusher looking every `TICK`."""
    causes, calls, changed = Causes(), [], None
    sales = {round(n * gap / TICK) for n in range(math.ceil(seconds / gap))}
    for step in range(round((seconds + 2 * WINDOW) / TICK)):
        now = step * TICK
        if step in sales and changed is None:
            changed = now  # the oldest change not pushed yet
        if changed is None:
            continue
        row = as_pending(pending("HOT-1", first_changed_at=T0 + timedelta(seconds=changed)))
        going = due(
            [row],
            hot=set(),
            cutoff=T0 + timedelta(seconds=now - WINDOW),
            resting=lambda sku, now=now: causes.resting(sku, now - INTERVAL),
            max_batch=5,
            quiet=lambda sku, now=now: slow_mover(True, causes.resting(sku, now - WINDOW)),
        )
        if going:
            causes.caused("HOT-1", now, now - WINDOW)
            calls.append(now - changed)
            changed = None
    return calls


@settings(max_examples=50, deadline=None)
@given(st.floats(0.005, 0.5), st.floats(1.0, 12.0))
def test_a_sku_selling_without_pause_in_a_quiet_store_calls_once_a_window_after_its_first(
    gap, seconds
):
    waits = selling(gap, seconds)
    assert waits[0] == 0.0  # the first sale goes at once
    assert len(waits) <= 2 + seconds / WINDOW
    assert max(waits) <= WINDOW + TICK  # none waits longer than the window


RISKY = st.builds(
    row,
    st.sampled_from([f"S{n}" for n in range(12)]),
    st.integers(0, 20),
    st.one_of(st.none(), st.integers(0, 20)),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(RISKY, max_size=12, unique_by=lambda o: o.sku),
    st.dictionaries(st.sampled_from([f"S{n}" for n in range(12)]), st.floats(0, 1e6)),
    st.integers(0, 5),
    st.sets(st.sampled_from([f"S{n}" for n in range(12)])),
    st.integers(1, 15),
)
def test_only_rows_at_risk_cause_a_call_of_slow_movers_and_they_lead_it_lowest_cover_first(
    candidates, velocity, buffer, resting, max_batch
):
    risk = Risk(velocity, window=2.0, buffer=buffer)
    carried = due(
        candidates,
        hot=set(),
        cutoff=T0,
        resting=resting.__contains__,
        max_batch=max_batch,
        risk=risk,
    )
    causes = [o for o in candidates if risk.at_risk(o) and (o.sku not in resting or zero_move(o))]
    if not causes:
        assert carried == []
        return
    led = carried[: len(causes)]
    assert {o.sku for o in led} == {o.sku for o in causes[:max_batch]} or len(causes) > max_batch
    covers = [cover(o.quantity, velocity.get(o.sku, 0.0)) for o in led]
    assert covers == sorted(covers)
    assert len(carried) == min(max_batch, len(candidates))
    assert [o.urgent for o in carried] == [risk.at_risk(o) for o in carried]


def test_the_hot_skus_are_the_top_fifth_by_velocity_rounded_up():
    velocity = {f"S{n}": float(n) for n in range(1, 11)}
    assert hottest(velocity, 0.2) == {"S10", "S9"}
    assert hottest({"A": 1.0}, 0.2) == {"A"}
    assert hottest({}, 0.2) == set()
