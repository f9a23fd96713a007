"""Shopify webhooks to stock, checked by their effect: what a line holds once deliveries are
applied in any order, any number of times."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from application.intake import Translation
from domain.orders import LineConflict
from domain.stock import ChangeKind, Levels
from infrastructure.channels.base import Lane
from infrastructure.channels.shopify.config import ShopifyConfig
from infrastructure.channels.shopify.translator import lane, translate
from tests.orders import Stock, delivery

CHANNEL = ShopifyConfig(
    id="shop",
    webhook_secrets=("s",),
    default_location="main",
    locations={"24826418": "west"},
)


def translated(topic: str, payload: Any) -> Translation:
    return translate(CHANNEL, delivery("shop", topic, payload), None)  # type: ignore[arg-type]


def after(
    *deliveries: tuple[str, Any], skus: tuple[str, ...] = ("A",), opening: int = 10
) -> dict[tuple[str, str], Levels]:
    stock = Stock()
    for sku in skus:
        stock.receive(sku, opening)
    stock.apply_all(translated(topic, payload) for topic, payload in deliveries)
    return stock.levels()


@dataclass
class ShopifyOrder:
    """One Shopify order as the shop changes it, and the webhooks each change sends (the REST
    shapes of CHANNELS.md §1.1: an order payload lists its refunds and fulfilments)."""

    quantities: dict[int, int]  # line id -> units ordered
    order_id: int = 1001
    minute: int = 0
    removed: dict[int, int] = field(default_factory=dict)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    fulfillments: list[dict[str, Any]] = field(default_factory=list)
    cancelled_at: str | None = None
    sent: list[tuple[str, Any]] = field(default_factory=list)

    SKUS: ClassVar[dict[int, str]] = {1: "A", 2: "B"}

    def _now(self) -> str:
        self.minute += 1
        return f"2026-03-01T10:{self.minute:02d}:00Z"

    def _refunded(self, line: int) -> int:
        return sum(
            i["quantity"]
            for r in self.refunds
            for i in r["refund_line_items"]
            if i["line_item_id"] == line
        )

    def shipped(self, line: int) -> int:
        return sum(
            i["quantity"] for f in self.fulfillments for i in f["line_items"] if i["id"] == line
        )

    def refundable(self, line: int) -> int:
        """Shipped units not refunded yet."""
        taken_back = sum(
            i["quantity"]
            for r in self.refunds
            for i in r["refund_line_items"]
            if i["line_item_id"] == line and i["restock_type"] != "cancel"
        )
        return self.shipped(line) - taken_back

    def unfulfilled(self, line: int) -> int:
        cancelled = sum(
            i["quantity"]
            for r in self.refunds
            for i in r["refund_line_items"]
            if i["line_item_id"] == line and i["restock_type"] == "cancel"
        )
        return self.quantities[line] - self.removed.get(line, 0) - cancelled - self.shipped(line)

    def payload(self) -> dict[str, Any]:
        return {
            "id": self.order_id,
            "created_at": "2026-03-01T10:00:00Z",
            "updated_at": self._now(),
            "cancelled_at": self.cancelled_at,
            "cancel_reason": "customer" if self.cancelled_at else None,
            "location_id": None,
            "line_items": [
                {
                    "id": line,
                    "sku": self.SKUS[line],
                    "quantity": units,
                    "current_quantity": units - self.removed.get(line, 0) - self._refunded(line),
                }
                for line, units in self.quantities.items()
            ],
            "refunds": copy.deepcopy(self.refunds),
            "fulfillments": copy.deepcopy(self.fulfillments),
        }

    def _send(self, topic: str, payload: Any) -> None:
        self.sent.append((topic, payload))

    def create(self) -> None:
        self._send("orders/create", self.payload())
        self._send("orders/paid", self.payload())

    def edit(self, line: int, units: int) -> None:
        self.removed[line] = self.removed.get(line, 0) + units
        edit = {
            "id": 500 + self.minute,
            "order_id": self.order_id,
            "committed_at": self._now(),
            "line_items": {"additions": [], "removals": [{"id": line, "delta": units}]},
        }
        self._send("orders/edited", {"order_edit": edit})
        self._send("orders/updated", self.payload())

    def fulfil(self, line: int, units: int, location_id: int | None = None) -> None:
        fulfillment = {
            "id": 700 + len(self.fulfillments),
            "order_id": self.order_id,
            "status": "success",
            "created_at": self._now(),
            "location_id": location_id,
            "line_items": [{"id": line, "sku": self.SKUS[line], "quantity": units}],
        }
        self.fulfillments.append(fulfillment)
        self._send("fulfillments/create", fulfillment)
        self._send("orders/updated", self.payload())

    def refund(self, line: int, units: int, restock_type: str) -> None:
        refund = {
            "id": 900 + len(self.refunds),
            "order_id": self.order_id,
            "created_at": self._now(),
            "refund_line_items": [
                {
                    "id": 9000 + len(self.refunds),
                    "line_item_id": line,
                    "quantity": units,
                    "restock_type": restock_type,
                    "location_id": None,
                    "line_item": {
                        "id": line,
                        "sku": self.SKUS[line],
                        "quantity": self.quantities[line],
                    },
                }
            ],
        }
        self.refunds.append(refund)
        self._send("refunds/create", refund)
        self._send("orders/updated", self.payload())

    def cancel(self) -> None:
        """Shopify's cancellation with restock: a refund cancels every unfulfilled unit."""
        refunded = False
        for line in self.quantities:
            if self.unfulfilled(line):
                self.refund(line, self.unfulfilled(line), "cancel")
                refunded = True
        if refunded:
            self.sent.pop()  # the last refund's orders/updated: the cancellation follows at once
        self.cancelled_at = self._now()
        self._send("orders/cancelled", self.payload())


def expected(order: ShopifyOrder, opening: int = 10) -> dict[tuple[str, str], Levels]:
    levels = {}
    for line in order.quantities:
        returned = sum(
            i["quantity"]
            for r in order.refunds
            for i in r["refund_line_items"]
            if i["line_item_id"] == line and i["restock_type"] in ("return", "legacy_restock")
        )
        committed = 0 if order.cancelled_at else order.unfulfilled(line)
        levels[order.SKUS[line], "main"] = Levels(
            on_hand=opening - order.shipped(line) + returned, committed=committed
        )
    return levels


# The cases found -----------------------------------------------------------------------------


def test_a_cancelled_order_whose_cancelling_refund_also_arrives_is_released_once():
    order = ShopifyOrder({1: 2})
    order.create()
    order.cancel()
    assert [topic for topic, _ in order.sent] == [
        "orders/create",
        "orders/paid",
        "refunds/create",
        "orders/cancelled",
    ]
    assert after(*order.sent) == {("A", "main"): Levels(on_hand=10)}
    # Another order's committed units are not taken: B keeps its sale.
    other = ShopifyOrder({2: 3}, order_id=1002)
    other.create()
    assert after(*other.sent, *order.sent, skus=("A", "B")) == {
        ("A", "main"): Levels(on_hand=10),
        ("B", "main"): Levels(on_hand=10, committed=3),
    }


def test_a_fulfilment_before_its_order_leaves_nothing_committed():
    order = ShopifyOrder({1: 2})
    order.create()
    order.fulfil(1, 2)
    fulfilment = order.sent[2]
    assert after(fulfilment, order.sent[0]) == {("A", "main"): Levels(on_hand=8)}


def test_a_cancelling_refund_before_its_order_leaves_nothing_committed():
    order = ShopifyOrder({1: 2})
    order.create()
    order.refund(1, 2, "cancel")
    assert after(order.sent[2], order.sent[0]) == {("A", "main"): Levels(on_hand=10)}


def test_an_order_edited_from_three_units_to_one_keeps_one_committed():
    order = ShopifyOrder({1: 3})
    order.create()
    order.edit(1, 2)
    edited, updated = order.sent[2], order.sent[3]
    want = {("A", "main"): Levels(on_hand=10, committed=1)}
    assert after(order.sent[0], edited) == want  # orders/edited alone
    assert after(order.sent[0], updated) == want  # current_quantity alone
    assert after(updated, edited, order.sent[0]) == want


def test_a_fulfilment_from_another_location_ships_there_and_releases_the_sale():
    order = ShopifyOrder({1: 2})
    order.create()
    order.fulfil(1, 2, location_id=24826418)
    assert after(*order.sent) == {
        ("A", "main"): Levels(on_hand=10),
        ("A", "west"): Levels(on_hand=-2),
    }


def test_a_refund_without_restock_moves_no_stock():
    order = ShopifyOrder({1: 2})
    order.create()
    order.fulfil(1, 2)
    order.refund(1, 1, "no_restock")
    assert after(*order.sent) == {("A", "main"): Levels(on_hand=8)}


def test_a_return_brings_units_back_at_the_refund_s_location():
    order = ShopifyOrder({1: 2})
    order.create()
    order.fulfil(1, 2)
    order.refund(1, 1, "return")
    assert after(*order.sent) == {("A", "main"): Levels(on_hand=9)}


def test_a_line_without_a_sku_is_no_stock_of_ours():
    payload = ShopifyOrder({1: 2}).payload()
    payload["line_items"].append({"id": 3, "sku": None, "quantity": 1, "current_quantity": 1})
    assert after(("orders/create", payload)) == {("A", "main"): Levels(on_hand=10, committed=2)}


def test_a_line_that_changes_sku_while_holding_stock_is_refused():
    order = ShopifyOrder({1: 2})
    stock = Stock()
    stock.apply(translated("orders/create", order.payload()))
    changed = order.payload()
    changed["line_items"][0]["sku"] = "Z"
    [update] = translated("orders/updated", changed).orders
    with pytest.raises(LineConflict):
        stock.orders["shop", "1001"].learn(update)


def test_an_order_s_changes_name_it_and_say_why():
    order = ShopifyOrder({1: 2})
    order.create()
    order.fulfil(1, 2)
    stock = Stock()
    stock.apply_all(translated(topic, payload) for topic, payload in order.sent)
    sale, shipment = stock.changes
    assert (sale.kind, sale.reference) == (ChangeKind.SALE, "shopify://shop/orders/1001")
    assert (shipment.kind, shipment.reference, shipment.reason) == (
        ChangeKind.SHIPMENT,
        "shopify://shop/orders/1001/fulfillments/700",
        "fulfilled",
    )
    assert sale.business_key.startswith("shop:order:1001:line:1:main:sale:v")


# Any order, any repetition -----------------------------------------------------------------

STEPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["edit", "fulfil", "refund_cancel", "refund_return", "legacy_restock", "no_restock"]
        ),
        st.sampled_from([1, 2]),
        st.integers(1, 3),
    ),
    max_size=4,
)


def lifecycle(
    steps: list[tuple[str, int, int]], cancel: bool, order: ShopifyOrder | None = None
) -> ShopifyOrder:
    """`order` (a fresh one of two lines by default) through `steps`, as the shop would."""
    order = order or ShopifyOrder({1: 3, 2: 2})
    order.create()
    for action, line, units in steps:
        open_units = order.unfulfilled(line)
        if action == "edit" and open_units:
            order.edit(line, min(units, open_units))
        elif action == "fulfil" and open_units:
            order.fulfil(line, min(units, open_units))
        elif action == "refund_cancel" and open_units:
            order.refund(line, min(units, open_units), "cancel")
        elif action == "refund_return" and order.refundable(line):
            order.refund(line, min(units, order.refundable(line)), "return")
        elif action == "legacy_restock" and order.refundable(line):
            order.refund(line, min(units, order.refundable(line)), "legacy_restock")
        elif action == "no_restock" and order.refundable(line):
            order.refund(line, min(units, order.refundable(line)), "no_restock")
    if cancel:
        order.cancel()
    return order


@settings(max_examples=200)
@given(steps=STEPS, cancel=st.booleans(), data=st.data())
def test_every_permutation_with_repeats_of_an_order_s_webhooks_ends_the_same(steps, cancel, data):
    order = lifecycle(steps, cancel)
    want = expected(order)
    assert after(*order.sent, skus=("A", "B")) == want
    repeats = data.draw(st.lists(st.sampled_from(order.sent), max_size=4))
    shuffled = data.draw(st.permutations([*order.sent, *repeats]))
    assert after(*shuffled, skus=("A", "B")) == want


# Observations, parking, lanes ----------------------------------------------------------------


def test_a_level_update_is_an_observation_never_a_change():
    level = {
        "inventory_item_id": 808950810,
        "location_id": 24826418,
        "available": 6,
        "updated_at": "2026-03-01T10:00:00-05:00",
        "admin_graphql_api_id": "gid://x",
    }
    translation = translated("inventory_levels/update", level)
    assert (translation.changes, translation.orders) == ((), ())
    [seen] = translation.observations
    assert (seen.quantity, seen.location) == (6, "west")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"<xml/>", "the body is not JSON"),
        ({"id": 1}, "line_items"),
        ({"id": "x", "line_items": []}, "not a Shopify id"),
        ({"id": 1, "line_items": [{"id": 2, "sku": "A", "quantity": -1}]}, "quantity -1"),
        ({"id": 1, "line_items": [{"id": 2, "sku": 7, "quantity": 1}]}, "SKU 7"),
    ],
)
def test_what_cannot_be_read_is_parked_with_a_reason(payload, reason):
    parked = translated("orders/create", payload).parked
    assert parked is not None
    assert reason in parked


def test_topics_that_move_no_stock_do_nothing():
    assert translated("products/update", {"id": 1}) == Translation()


def test_everything_about_an_order_takes_the_decrement_lane():
    for topic in ("orders/create", "orders/paid", "orders/edited", "refunds/create"):
        assert lane(topic) is Lane.DECREMENTS
    assert lane("fulfillments/create") is Lane.DECREMENTS
    assert lane("inventory_levels/update") is Lane.INCREMENTS


def test_a_mapped_channel_sku_is_recorded_under_ours():
    mapped = CHANNEL.model_copy(update={"sku_map": {"SHOP-A": "A"}})
    payload = ShopifyOrder({1: 2}).payload()
    payload["line_items"][0]["sku"] = "SHOP-A"
    stock = Stock()
    stock.receive("A", 10)
    stock.apply(translate(mapped, delivery("shop", "orders/create", payload), None))  # type: ignore[arg-type]
    assert stock.levels() == {("A", "main"): Levels(on_hand=10, committed=2)}


def test_a_replayed_order_under_another_topic_releases_nothing():
    """Shopify signs the body, not the topic header: meaning comes from the body."""
    order = ShopifyOrder({1: 2})
    created = order.payload()
    assert after(("orders/create", created), ("orders/cancelled", created)) == {
        ("A", "main"): Levels(on_hand=10, committed=2)
    }
    for topic in ("refunds/create", "fulfillments/create", "orders/edited"):
        assert translated(topic, created).parked is not None
