from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from domain.drift import (
    SALE_MARGIN,
    Correct,
    Escalate,
    NoDrift,
    PushRecord,
    Sale,
    Unsettled,
    as_asked,
    classify,
    expected_at,
    judge,
    set_back_at_once,
)

ACKED = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
READ = ACKED + timedelta(minutes=10)
SETTLED = PushRecord(acknowledged=20, acknowledged_at=ACKED, in_flight=False)


def after_ack(minutes: float) -> datetime:
    return ACKED + timedelta(minutes=minutes)


def test_a_channel_showing_what_it_last_acknowledged_has_no_drift():
    assert judge(20, READ, SETTLED, [], auto_correct_below=3) == NoDrift()


def test_the_channels_own_sales_after_the_acknowledgement_lower_what_it_should_show():
    sales = [Sale(2, after_ack(1)), Sale(1, after_ack(5))]
    assert expected_at(20, ACKED, sales, READ) == 17
    assert judge(17, READ, SETTLED, sales, auto_correct_below=3) == NoDrift()


def test_sales_before_the_acknowledgement_are_already_in_the_acknowledged_quantity():
    assert expected_at(20, ACKED, [Sale(4, ACKED), Sale(1, ACKED - timedelta(1))], READ) == 20


def test_sales_newer_than_the_reading_are_not_counted_against_the_channel():
    assert expected_at(20, ACKED, [Sale(5, READ + timedelta(seconds=1))], READ) == 20


def test_a_cancelled_sale_gives_its_units_back():
    assert expected_at(20, ACKED, [Sale(3, after_ack(1)), Sale(-3, after_ack(2))], READ) == 20


def test_what_a_channel_should_show_is_never_negative():
    assert expected_at(2, ACKED, [Sale(5, after_ack(1))], READ) == 0


def test_hand_edits_of_one_unit_either_way_are_corrected():
    assert classify(21, 20, auto_correct_below=3) == Correct(21, 20)
    assert classify(19, 20, auto_correct_below=3) == Correct(19, 20)


def test_a_drift_of_the_threshold_or_more_is_escalated():
    assert classify(23, 20, auto_correct_below=3) == Escalate(23, 20)
    assert classify(8, 20, auto_correct_below=3) == Escalate(8, 20)
    assert Escalate(8, 20).difference == -12


def test_a_reading_while_a_push_is_in_flight_is_not_judged():
    in_flight = PushRecord(acknowledged=20, acknowledged_at=ACKED, in_flight=True)
    assert isinstance(judge(35, READ, in_flight, [], 3), Unsettled)


def test_a_reading_older_than_the_last_acknowledgement_is_not_judged():
    assert isinstance(judge(35, ACKED - timedelta(seconds=1), SETTLED, [], 3), Unsettled)


def test_a_reading_taken_as_a_sale_occurred_is_not_judged():
    sale = [Sale(1, READ - SALE_MARGIN + timedelta(seconds=1))]
    assert isinstance(judge(20, READ, SETTLED, sale, 3), Unsettled)
    assert isinstance(judge(19, READ, SETTLED, sale, 3), Unsettled)


def test_a_reading_after_a_sale_as_the_push_was_answered_is_not_judged():
    sale = [Sale(1, ACKED - timedelta(seconds=1))]
    assert isinstance(judge(19, READ, SETTLED, sale, 3), Unsettled)


def test_a_reading_just_after_the_acknowledgement_is_not_judged_the_channel_may_lag():
    just_after = ACKED + SALE_MARGIN - timedelta(seconds=1)
    assert isinstance(judge(35, just_after, SETTLED, [], 3), Unsettled)
    assert judge(35, just_after, SETTLED, [], 3, margin=timedelta(0)) == Escalate(35, 20)


def test_a_sku_never_pushed_is_not_judged():
    never = PushRecord(acknowledged=None, acknowledged_at=None, in_flight=False)
    assert isinstance(judge(35, READ, never, [], 3), Unsettled)


def test_an_open_discrepancy_sets_a_channel_showing_more_back_at_once_and_leaves_less_waiting():
    assert set_back_at_once(observed=32, expected=20)
    assert not set_back_at_once(observed=8, expected=20)


minutes = st.floats(min_value=0.01, max_value=120, allow_nan=False)
unsettled = (Unsettled, NoDrift)
sales = st.lists(st.tuples(st.integers(1, 5), minutes), max_size=30)


@given(sales=sales, read_after=minutes)
def test_a_channel_that_only_sold_to_its_shoppers_never_drifts(sales, read_after):
    """Whatever the order and number of its own sales, and whichever of them occurred after
    the reading, a channel whose count only its sales lowered shows what it should."""
    read_at = after_ack(read_after)
    happened = [Sale(units, after_ack(m)) for units, m in sales]
    shown = 100 - sum(s.units for s in happened if s.occurred_at <= read_at)
    assert isinstance(judge(max(shown, 0), read_at, SETTLED_100, happened, 3), unsettled)


@given(sales=sales, read_after=minutes, counted=st.booleans())
def test_a_sale_as_the_channel_is_read_never_counts_as_drift_whether_counted_or_not(
    sales, read_after, counted
):
    """A sale within the margin of the reading leaves the reading unjudged, whichever side of
    it the channel counted the sale on."""
    read_at = after_ack(read_after)
    happened = [Sale(units, after_ack(m)) for units, m in sales] + [Sale(1, read_at)]
    shown = 100 - sum(s.units for s in happened[:-1] if s.occurred_at <= read_at) - counted
    assert not isinstance(
        judge(max(shown, 0), read_at, SETTLED_100, happened, 3), Correct | Escalate
    )


SETTLED_100 = PushRecord(acknowledged=100, acknowledged_at=ACKED, in_flight=False)


@given(shown=st.integers(0, 200), read_after=minutes, sales=sales)
def test_no_reading_taken_while_a_push_is_in_flight_counts_as_drift(shown, read_after, sales):
    in_flight = PushRecord(acknowledged=100, acknowledged_at=ACKED, in_flight=True)
    happened = [Sale(units, after_ack(m)) for units, m in sales]
    assert isinstance(judge(shown, after_ack(read_after), in_flight, happened, 3), Unsettled)


@given(observed=st.integers(0, 100), expected=st.integers(0, 100), below=st.integers(1, 20))
def test_classify_corrects_exactly_the_drifts_under_the_threshold(observed, expected, below):
    verdict = classify(observed, expected, below)
    if observed == expected:
        assert verdict == NoDrift()
    elif abs(observed - expected) < below:
        assert verdict == Correct(observed, expected)
    else:
        assert verdict == Escalate(observed, expected)


def test_a_reading_of_what_was_acknowledged_and_is_still_wanted_needs_no_sales_looked_up():
    assert as_asked(20, SETTLED, wanted=20)


def test_a_reading_needs_the_sales_when_anything_differs_or_a_push_is_in_flight():
    in_flight = PushRecord(acknowledged=20, acknowledged_at=ACKED, in_flight=True)
    never = PushRecord(acknowledged=None, acknowledged_at=None, in_flight=False)
    assert not as_asked(19, SETTLED, wanted=20)  # a hand edit, or a sale
    assert not as_asked(20, SETTLED, wanted=19)  # the ledger moved since
    assert not as_asked(20, in_flight, wanted=20)
    assert not as_asked(20, never, wanted=20)
