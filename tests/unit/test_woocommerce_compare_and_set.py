"""A WooCommerce push never puts back units the store sold that the ledger has not recorded yet:
the gateway's compare-and-set (read, compare with the acknowledgement, write or answer STALE),
with a pusher that keeps the STALE contract (`push/decisions.py`)."""

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from infrastructure.channels.woocommerce.compare_and_set import Decision, Verdict, decide

WAIT = 10  # seconds the ledger may take to record a store sale (the model's assumption)
WRITE, UNCHANGED, MOVED = Verdict.WRITE, Verdict.UNCHANGED, Verdict.MOVED


def test_a_store_that_shows_what_it_acknowledged_is_written():
    assert decide(7, acknowledged=5, current=5) == Decision(WRITE, 7)
    assert decide(3, acknowledged=5, current=5) == Decision(WRITE, 3)


def test_the_incident_a_unit_sold_after_the_acknowledgement_is_not_put_back():
    # The store showed 1 (acknowledged) and sold it; a push of 1 computed before that sale was
    # recorded must not list it again.
    assert decide(1, acknowledged=1, current=0) == Decision(MOVED, 0)


def test_a_moved_store_is_answered_stale_even_for_a_decrease():
    assert decide(3, acknowledged=10, current=7) == Decision(MOVED, 7)
    assert decide(9, acknowledged=4, current=6) == Decision(MOVED, 6)  # restocked by hand


def test_nothing_is_written_where_the_store_shows_the_target():
    assert decide(4, acknowledged=4, current=4) == Decision(UNCHANGED, 4)
    assert decide(4, acknowledged=None, current=4) == Decision(UNCHANGED, 4)


def test_a_store_that_moved_to_the_very_target_is_stale_so_its_lost_units_are_remembered():
    # It acknowledged 3 and sold 3 on its own (not recorded yet) while the ledger sold 3
    # elsewhere: 0 is the target and what it shows, but a receipt of 1 must not list a unit.
    assert decide(0, acknowledged=3, current=0) == Decision(MOVED, 0)


def test_a_first_push_or_an_unmanaged_stock_is_written():
    assert decide(5, acknowledged=None, current=2) == Decision(WRITE, 5)
    assert decide(5, acknowledged=3, current=None) == Decision(WRITE, 5)


# The property -----------------------------------------------------------------------------------


@dataclass
class Pusher:
    """The pusher's side of a STALE answer, as `push/pusher.py` documents it: the units the
    store lost since its acknowledgement are sales the ledger may not have recorded yet; its
    recorded sales of the SKU pay them off; after WAIT seconds they are given up. A raise goes
    only as far as the target less what is still missing; nothing goes if that is no raise."""

    acknowledged: int | None
    drift: int = 0
    drift_sold: int = 0  # the ledger's recorded store sales when the drift was taken
    drift_at: int = 0

    def missing(self, sold: int, now: int) -> int:
        if not self.drift or now - self.drift_at >= WAIT:
            return 0
        return min(self.drift, max(0, self.drift - (sold - self.drift_sold)))

    def allowed(self, target: int, sold: int, now: int) -> int | None:
        shows, missing = self.acknowledged, self.missing(sold, now)
        if shows is None or target <= shows or missing == 0:
            return target
        return target - missing if target - missing > shows else None

    def stale(self, shows: int, sold: int, now: int) -> None:
        expected = shows if self.acknowledged is None else self.acknowledged
        units = max(0, self.missing(sold, now) + expected - shows)
        self.drift, self.drift_sold, self.drift_at = units, sold, now
        self.acknowledged = shows


@dataclass
class World:
    """One SKU on one WooCommerce store and the ledger: the store sells on its own, the ledger
    records those sales within WAIT seconds, receives stock and sells on other channels; the
    pusher computes from the ledger and pushes; the gateway reads the store and decides."""

    store: int
    ledger: int
    pusher: Pusher
    now: int = 0
    sold: int = 0  # the store's sales the ledger has recorded
    unrecorded: list[int] = field(default_factory=list)  # when each unrecorded sale was made
    target: int | None = None  # what the pusher computed, and the store sales it misses
    missing: int = 0
    # The store sales the ledger had recorded when `target` was computed: the pusher reads them
    # with the outbox row, in one snapshot, never a count newer than the quantity.
    target_sold: int = 0

    def sale(self) -> None:
        if self.store > 0:
            self.store -= 1
            self.unrecorded.append(self.now)
            self.missing += 1

    def record(self) -> None:
        if self.unrecorded:
            self.unrecorded.pop(0)
            self.ledger -= 1
            self.sold += 1

    def receipt(self, units: int) -> None:
        self.ledger += units
        self.target = None  # the pusher would compute again

    def elsewhere(self, units: int) -> None:
        self.ledger -= units
        self.target = None

    def tick(self, seconds: int) -> None:
        self.now += seconds
        while self.unrecorded and self.unrecorded[0] <= self.now - WAIT:
            self.record()  # the model's assumption: recorded within WAIT seconds
        self.target = None  # a push reads the outbox just before it leaves

    def compute(self) -> None:
        self.target, self.missing = max(self.ledger, 0), len(self.unrecorded)
        self.target_sold = self.sold

    def push(self) -> None:
        if self.target is None:
            return
        quantity = self.pusher.allowed(self.target, self.target_sold, self.now)
        if quantity is None:
            return  # the row waits for the store's sales to be recorded
        before = self.store
        decision = decide(quantity, self.pusher.acknowledged, self.store)
        if decision.verdict is MOVED:
            self.pusher.stale(decision.quantity, self.target_sold, self.now)
            return
        self.store = self.pusher.acknowledged = decision.quantity
        if self.store > before:
            assert self.store <= self.target - self.missing, (
                f"raised the store from {before} to {self.store}; the ledger had "
                f"{self.target} less {self.missing} store sales it did not know of"
            )


steps = st.lists(
    st.one_of(
        st.just(("sale",)),
        st.just(("record",)),
        st.just(("compute",)),
        st.just(("push",)),
        st.tuples(st.just("receipt"), st.integers(1, 5)),
        st.tuples(st.just("elsewhere"), st.integers(1, 3)),
        st.tuples(st.just("tick"), st.integers(1, 2 * WAIT)),  # whole seconds: no float edges
    ),
    max_size=60,
)


@settings(max_examples=1000, deadline=None)
@given(start=st.integers(0, 6), steps=steps)
def test_no_push_raises_the_store_above_the_ledger_less_the_store_sales_it_has_not_recorded(
    start, steps
):
    world = World(store=start, ledger=start, pusher=Pusher(acknowledged=start))
    for name, *arguments in steps:
        getattr(world, name)(*arguments)
    # And it converges: once the ledger has recorded everything and the drift is given up,
    # pushes make the store show exactly what the ledger computes (the first may find the store
    # moved, and double-count sales recorded just before: it waits WAIT more).
    for _ in range(2):
        world.tick(WAIT)
        world.compute()
        world.push()
    assert world.store == max(world.ledger, 0)


def test_a_burst_of_store_sales_recorded_one_by_one_never_raises_the_store():
    # 5 acknowledged; the store sells 3; each recorded sale makes the pusher push. The first
    # push finds the store moved (STALE, 3 units missing); the next ones may not raise it.
    world = World(store=5, ledger=5, pusher=Pusher(acknowledged=5))
    for _ in range(3):
        world.sale()
    for _ in range(3):
        world.record()
        world.compute()
        world.push()
    assert (world.store, world.pusher.acknowledged) == (2, 2)
    world.receipt(4)
    world.compute()
    world.push()
    # The sale recorded before the STALE answer is counted missing until WAIT has passed.
    assert world.store == 5
    world.tick(WAIT)
    world.compute()
    world.push()
    assert world.store == 6
