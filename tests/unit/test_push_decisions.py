"""What a push may set after a channel moved under us (`infrastructure/push/decisions.py`), and
the invariant it keeps: over any interleaving of the channel's own sales, their webhooks (late,
in any order), other channels' sales, receipts and pushes, no push raises the channel above the
ledger's ATS less that channel's sales not recorded yet, and once every webhook is in and the
wait is over, the channel shows the ATS."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from infrastructure.push.decisions import (
    Drift,
    allowed,
    expected,
    refused,
    settled,
    unrecorded,
)

WAIT = 10.0


def test_a_first_push_or_one_without_drift_sets_the_target():
    assert allowed(7, None, 0) == 7
    assert allowed(7, 3, 0) == 7


def test_a_push_that_does_not_raise_the_channel_goes_at_once():
    assert allowed(0, 7, 3) == 0
    assert allowed(7, 7, 3) == 7


def test_a_raise_goes_only_as_far_as_the_unrecorded_sales_allow():
    assert allowed(15, 6, 4) == 11
    assert allowed(10, 6, 4) is None  # 6 would be no change: nothing goes
    assert allowed(8, 6, 4) is None


def test_a_first_refusal_counts_from_the_sales_recorded_before_the_push():
    assert refused(None, 10, 7, 5, now=0.0, wait=WAIT) == Drift(3, 5, 0.0)
    assert refused(None, 7, 7, 5, now=0.0, wait=WAIT) == Drift(0, 5, 0.0)


def test_refusals_add_up_from_the_count_kept_and_a_gain_takes_off():
    base = Drift(0, 4, 0.0)  # the channel accepted a push when the ledger held 4 of its sales
    assert refused(base, 10, 7, 5, now=1.0, wait=WAIT) == Drift(3, 4, 1.0)
    assert refused(Drift(3, 4, 1.0), 7, 5, 6, now=2.0, wait=WAIT) == Drift(5, 4, 2.0)
    assert refused(Drift(3, 4, 1.0), 7, 9, 5, now=2.0, wait=WAIT) == Drift(1, 4, 2.0)
    # A gain; the sale recorded since is counted seen (what it shows reflects it).
    assert refused(base, 7, 9, 5, now=WAIT * 2, wait=WAIT) == Drift(1, 4, WAIT * 2)


def test_a_count_waited_out_starts_afresh():
    assert refused(Drift(3, 4, 0.0), 7, 5, 6, now=WAIT, wait=WAIT) == Drift(2, 6, WAIT)


def test_the_channels_recorded_sales_pay_its_losses_off():
    drift = Drift(3, 5, 0.0)
    assert unrecorded(drift, sold=5, now=1.0, wait=WAIT) == 3
    assert unrecorded(drift, sold=7, now=1.0, wait=WAIT) == 1
    assert unrecorded(drift, sold=9, now=1.0, wait=WAIT) == 0


def test_a_cancelled_sale_never_makes_the_count_grow():
    assert unrecorded(Drift(3, 5, 0.0), sold=2, now=1.0, wait=WAIT) == 3


def test_after_the_wait_the_losses_count_no_more():
    assert unrecorded(Drift(3, 5, 0.0), sold=5, now=WAIT, wait=WAIT) == 0
    assert unrecorded(None, sold=5, now=0.0, wait=WAIT) == 0


def test_an_accepted_push_starts_the_count_again_once_nothing_is_missing():
    assert settled(None, 5, 1.0, WAIT) == Drift(0, 5, 1.0, guesses=True)  # the first: guesses
    assert settled(Drift(3, 5, 0.0), 8, 1.0, WAIT) == Drift(0, 8, 1.0)
    assert settled(Drift(3, 5, 0.0), 7, 1.0, WAIT) is None  # one still unrecorded: kept


def test_the_channels_sales_recorded_since_are_expected_off_what_it_showed():
    base = Drift(0, 4, 0.0, guesses=True)
    assert expected(10, base, 6) == (8, Drift(2, 4, 0.0, guesses=True))
    assert expected(10, base, 4) == (10, base)
    seen = Drift(3, 4, 0.0, guesses=True)
    assert expected(10, seen, 6) == (10, seen)  # seen already
    assert expected(7, seen, 9) == (5, Drift(5, 4, 0.0, guesses=True))
    assert expected(None, base, 9) == (None, base)
    assert expected(10, None, 9) == (10, None)


def test_a_skus_first_count_expects_the_channels_recorded_sales_to_have_moved_it():
    first = settled(None, 4, 0.0, WAIT)
    assert first is not None
    assert expected(10, first, 5) == (9, Drift(1, 4, 0.0, guesses=True))


def test_a_channel_not_known_to_move_by_its_recorded_sales_is_expected_to_show_the_same():
    base = Drift(0, 4, 0.0)
    assert expected(10, base, 6) == (10, base)


def test_a_read_that_found_the_channel_moved_by_its_recorded_sales_turns_expecting_on():
    assert refused(Drift(0, 4, 0.0), 10, 8, 6, now=1.0, wait=WAIT).guesses
    assert not refused(Drift(0, 4, 0.0), 10, 7, 6, now=1.0, wait=WAIT).guesses  # 3 for 2
    assert not refused(None, 10, 8, 6, now=1.0, wait=WAIT).guesses  # nothing to tell by


def test_a_read_counts_every_recorded_sale_seen_so_the_next_push_expects_none_of_them():
    # 5 recorded since the base, the channel lost only 3 by its own reading: the other 2 never
    # moved it (or long ago); the next push must not expect them to, or it is refused forever.
    drift = refused(Drift(1, 4, 0.0), 8, 6, 9, now=1.0, wait=WAIT)
    assert drift == Drift(5, 4, 1.0)
    assert expected(6, drift, 9) == (6, drift)


def test_a_channel_that_did_not_move_for_its_recorded_sales_is_expected_nothing_of_them():
    base = Drift(0, 4, 0.0, guesses=True)
    shows, _ = expected(10, base, 6)  # 2 recorded: 8 expected
    drift = refused(base, 10, 10, 6, now=1.0, wait=WAIT, guessed=shows)  # it shows 10
    assert not drift.guesses
    assert expected(10, replace(drift, lost=0), 9) == (10, replace(drift, lost=0))
    assert not settled(drift, 6, 2.0, WAIT).guesses  # for good


def test_a_wrong_guess_that_found_the_channel_moved_keeps_guessing():
    base = Drift(0, 4, 0.0, guesses=True)
    assert refused(base, 10, 7, 6, now=1.0, wait=WAIT, guessed=8).guesses


@dataclass
class World:
    """One SKU on a compare-and-set channel (Shopify), the ledger, and the pusher's memory."""

    on_hand: int
    recorded: int = 0  # every channel's sales the ledger holds
    sold: int = 0  # this channel's sales the ledger holds
    shows: int = 0  # on the channel
    acknowledged: int = 0  # what the pusher last saw it show
    drift: Drift | None = None
    webhooks: list[int] = field(default_factory=list)  # the channel's sales not recorded yet
    now: float = 0.0
    refusals: int = 0

    def ats(self) -> int:
        return max(0, self.on_hand - self.recorded)

    def push(self, wait: float) -> None:
        """One call, as the pusher makes it; asserts the invariant on every raise."""
        target, sold = self.ats(), self.sold  # as the pusher reads them with the row
        base, drift = expected(self.acknowledged, self.drift, sold)
        quantity = allowed(target, base, unrecorded(drift, sold, self.now, wait))
        if quantity is None:
            return
        if self.shows != base:  # CHANGE_FROM_QUANTITY_STALE, then a re-read
            guessed = base if base != self.acknowledged else None
            self.drift = refused(
                self.drift,
                self.acknowledged,
                self.shows,
                sold,
                now=self.now,
                wait=wait,
                guessed=guessed,
            )
            self.acknowledged = self.shows
            self.refusals += 1
            return
        if quantity > self.shows:
            assert quantity <= target - sum(self.webhooks), (quantity, target, self.webhooks)
        self.shows = self.acknowledged = quantity
        self.drift = drift
        if quantity == target:
            self.drift = settled(drift, sold, self.now, wait) or drift


STEPS = st.one_of(
    st.tuples(st.just("shopper"), st.integers(1, 4)),
    st.tuples(st.just("webhook"), st.integers(0, 10)),
    st.tuples(st.just("elsewhere"), st.integers(1, 4)),
    st.tuples(st.just("receipt"), st.integers(1, 6)),
    st.tuples(st.just("push"), st.just(0)),
    st.tuples(st.just("tick"), st.integers(1, 3)),
)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 20), st.lists(STEPS, max_size=60))
def test_no_push_raises_a_channel_over_what_it_may_sell_and_all_converges(on_hand, steps):
    world = World(on_hand)
    world.push(math.inf)
    for step, n in steps:
        if step == "shopper" and world.shows >= n:
            world.shows -= n  # bought on the channel; its webhook is on its way
            world.webhooks.append(n)
        elif step == "webhook" and world.webhooks:
            units = world.webhooks.pop(n % len(world.webhooks))  # in any order
            world.sold += units
            world.recorded += units
        elif step == "elsewhere":
            world.recorded += n  # another channel's sale, recorded at once
        elif step == "receipt":
            world.on_hand += n
        elif step == "push":
            world.push(math.inf)  # webhooks may take any time: the invariant never bends
        elif step == "tick":
            world.now += n
    while world.webhooks:
        units = world.webhooks.pop()
        world.sold += units
        world.recorded += units
    for _ in range(3):  # a refusal, a push: converged, no wait needed
        world.push(math.inf)
    assert world.shows == world.ats()


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 20), st.lists(STEPS, max_size=60))
def test_pushes_that_wait_a_bounded_time_converge_once_the_webhooks_are_in(on_hand, steps):
    """With a finite wait, a raise may go over a sale whose webhook is later than the wait
    (reconciliation's business), and a count waited out starts afresh counting high; once the
    webhooks are all in, the channel ends at the ATS within two waits."""
    world = World(on_hand)
    for step, n in steps:
        if step == "shopper" and world.shows >= n:
            world.shows -= n
            world.webhooks.append(n)
        elif step == "webhook" and world.webhooks:
            units = world.webhooks.pop(n % len(world.webhooks))
            world.sold += units
            world.recorded += units
        elif step == "receipt":
            world.on_hand += n
        elif step == "push" and not world.webhooks:
            world.push(WAIT)
        elif step == "tick":
            world.now += n * 4
    while world.webhooks:
        units = world.webhooks.pop()
        world.sold += units
        world.recorded += units
    for _ in range(2):
        world.push(WAIT)
        world.push(WAIT)
        world.now += WAIT
    world.push(WAIT)
    assert world.shows == world.ats()


def test_a_push_after_the_channels_recorded_sale_is_not_refused():
    world = World(10)
    world.push(WAIT)
    for _ in range(5):  # a shopper, the webhook, our push: the usual order
        world.shows -= 1
        world.sold += 1
        world.recorded += 1
        world.push(WAIT)
    world.on_hand += 4
    world.push(WAIT)
    # Not the first sale's either: a SKU's first count takes the channel to move by its
    # recorded sales (it was refused, and read, before that).
    assert (world.shows, world.refusals) == (9, 0)
