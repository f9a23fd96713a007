"""Properties of the ledger over random sequences of changes, on real PostgreSQL."""

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.ledger import Ledger
from application.ledger_queries import LedgerQueries
from application.receipts import HistoryFilter
from domain.inventory import InventoryItem, inventory_item_id
from domain.stock import AdjustmentReason, ChangeKind
from tests.helpers import change, random_sku

K = ChangeKind
LOCATIONS = ("east", "west")

simple_kinds = st.sampled_from(
    [K.RECEIPT, K.SALE, K.SALE_CANCELLATION, K.SHIPMENT, K.RETURN, K.TRANSFER, K.COUNT]
)


@st.composite
def stock_changes(draw, sku):
    kind = draw(st.one_of(simple_kinds, st.just(K.ADJUSTMENT), st.just(K.RESERVATION)))
    location = draw(st.sampled_from(LOCATIONS))
    quantity = draw(st.integers(min_value=1, max_value=20))
    fields = {"location": location}
    if kind is K.TRANSFER:
        fields["to_location"] = next(other for other in LOCATIONS if other != location)
    elif kind is K.ADJUSTMENT:
        fields["reason"] = draw(st.sampled_from(list(AdjustmentReason)))
        quantity = draw(st.sampled_from([quantity, -quantity]))
    elif kind is K.COUNT:
        quantity = draw(st.integers(min_value=0, max_value=40))
    elif kind is K.RESERVATION:
        fields["reservation_id"] = draw(st.sampled_from(["r1", "r2"]))
        if draw(st.booleans()):
            kind = K.RESERVATION_RELEASE
    return change(kind, sku, quantity, **fields)


@st.composite
def histories(draw):
    sku = random_sku("prop")
    changes = draw(st.lists(stock_changes(sku), min_size=1, max_size=40))
    batches = draw(st.integers(min_value=1, max_value=4))
    return sku, changes, batches


def replay(ledger, sku):
    item = None
    for event in ledger.events.get(inventory_item_id(sku)):
        item = event.mutate(item)
    return item


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories())
def test_snapshots_equal_replay_and_history_deltas_sum_to_the_state(database_url, history):
    from infrastructure.postgres import eventsourcing_env

    sku, changes, batches = history
    writer = Ledger(env=eventsourcing_env(database_url))
    writer.snapshot_interval = 5
    reader = Ledger(env=eventsourcing_env(database_url))
    reads = LedgerQueries(reader)
    try:
        size = -(-len(changes) // batches)
        applied = []
        for start in range(0, len(changes), size):
            applied += writer.record_batch(changes[start : start + size])
        if all(o.status == "rejected" for o in applied):
            return
        loaded: InventoryItem = reads.get_item(sku)  # from the newest snapshot, if any
        replayed: InventoryItem = replay(reader, sku)
        assert loaded.version == replayed.version
        assert loaded.locations == replayed.locations
        assert loaded._reservations == replayed._reservations

        totals: Counter = Counter()
        page = reads.history(sku, HistoryFilter(newest_first=False), limit=7)
        while True:
            for event in page.events:
                for location, state, units in event.deltas():
                    totals[location, state] += units
            if page.next_cursor is None:
                break
            page = reads.history(
                sku, HistoryFilter(newest_first=False, cursor=page.next_cursor), limit=7
            )
        state = {
            (location, name): units
            for location, levels in loaded.locations.items()
            for name, units in levels.as_dict().items()
            if name != "available"
        }
        assert {key: units for key, units in totals.items() if units} == {
            key: units for key, units in state.items() if units
        }
    finally:
        writer.close()
        reader.close()


def test_snapshots_are_actually_used_by_the_property_above(database_url):
    from infrastructure.postgres import eventsourcing_env

    sku = random_sku("prop")
    writer = Ledger(env=eventsourcing_env(database_url))
    writer.snapshot_interval = 5
    try:
        writer.record_batch([change(K.RECEIPT, sku, 1) for _ in range(12)])
        versions = [s.originator_version for s in writer.snapshots.get(inventory_item_id(sku))]
    finally:
        writer.close()
    assert versions == [13]
