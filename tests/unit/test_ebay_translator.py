"""eBay orders as the Fulfillment API lists them: what each state holds, and that the states of
one order, listed in any order and any number of times, end where the newest alone ends."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from application.intake import Delivery
from domain.stock import Levels
from infrastructure.channels.ebay import translator
from infrastructure.channels.ebay.config import EbayConfig
from tests.orders import levels_after

CHANNEL = EbayConfig(id="ebay-us", client_id="app", client_secret="cert", refresh_token="consent")


def order(
    minute: int,
    *,
    cancel: str = "NONE_REQUESTED",
    payment: str = "PAID",
    shipped: bool = False,
    lines=(("L1", "SKU-1", 2), ("L2", "SKU-2", 1)),
) -> bytes:
    status = "FULFILLED" if shipped else "NOT_STARTED"
    body = {
        "orderId": "27-00001-00001",
        "creationDate": "2026-12-02T08:00:00.000Z",
        "lastModifiedDate": f"2026-12-02T08:{minute:02d}:00.000Z",
        "orderFulfillmentStatus": status,
        "orderPaymentStatus": payment,
        "cancelStatus": {"cancelState": cancel, "cancelRequests": []},
        "lineItems": [
            {"lineItemId": i, "sku": s, "quantity": q, "lineItemFulfillmentStatus": status}
            for i, s, q in lines
        ],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def translated(body: bytes, topic: str = translator.ORDER):
    delivery = Delivery(1, CHANNEL.id, "key", topic, {}, body, datetime.now(UTC))
    return translator.translate(CHANNEL, delivery, None)


def levels(*bodies: bytes) -> dict[tuple[str, str], Levels]:
    return levels_after(map(translated, bodies), {"SKU-1": 10, "SKU-2": 10})


def held(*bodies: bytes) -> dict[str, tuple[int, int]]:
    """SKU -> (on hand, committed)."""
    return {sku: (lv.on_hand, lv.committed) for (sku, _), lv in levels(*bodies).items()}


def test_a_placed_order_commits_its_lines():
    assert held(order(1)) == {"SKU-1": (10, 2), "SKU-2": (10, 1)}


def test_a_shipped_order_takes_its_units_off_hand():
    assert held(order(1), order(2, shipped=True)) == {"SKU-1": (8, 0), "SKU-2": (9, 0)}


def test_a_cancelled_order_holds_nothing():
    assert held(order(1), order(2, cancel="CANCELED")) == {"SKU-1": (10, 0), "SKU-2": (10, 0)}


def test_a_refund_before_shipping_releases_and_after_shipping_moves_nothing():
    released = {"SKU-1": (10, 0), "SKU-2": (10, 0)}
    assert held(order(1), order(2, payment="FULLY_REFUNDED")) == released
    shipped = order(2, shipped=True)
    assert held(order(1), shipped, order(3, shipped=True, payment="FULLY_REFUNDED")) == held(
        shipped
    )


def test_a_line_without_a_sku_is_not_ours():
    body = order(1, lines=(("L1", "SKU-1", 2), ("L2", "", 5)))
    assert held(body) == {"SKU-1": (10, 2), "SKU-2": (10, 0)}


def test_the_sku_map_names_our_sku():
    channel = CHANNEL.model_copy(update={"sku_map": {"EBAY-1": "SKU-1"}})
    body = order(1, lines=(("L1", "EBAY-1", 2),))
    delivery = Delivery(1, channel.id, "key", translator.ORDER, {}, body, datetime.now(UTC))
    [update] = translator.translate(channel, delivery, None).orders
    assert update.skus() == {"SKU-1"}
    assert update.reference == "ebay://ebay-us/orders/27-00001-00001"


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'{"orderId": "1", "lastModifiedDate": "yesterday", "lineItems": []}',
        b'{"orderId": "1", "lastModifiedDate": "2026-12-02T08:00:00Z", "lineItems": '
        b'[{"lineItemId": "L", "sku": "S", "quantity": -1}]}',
        b'{"orderId": 5, "lastModifiedDate": "2026-12-02T08:00:00Z", "lineItems": []}',
    ],
)
def test_an_order_that_cannot_be_read_is_parked(body):
    assert translated(body).parked is not None


def test_an_account_deletion_moves_no_stock_and_is_not_parked():
    body = b'{"metadata":{"topic":"MARKETPLACE_ACCOUNT_DELETION"},"notification":{"data":{}}}'
    translation = translated(body, translator.ACCOUNT_DELETION)
    assert translation.parked is None
    assert not translation.changes
    assert not translation.orders


# The lives an eBay order may have, each state listed later than the one before it.
LIVES = {
    "cancelled": [order(1), order(2, cancel="CANCELED")],
    "shipped": [order(1), order(2, shipped=True), order(3, shipped=True, payment="FULLY_REFUNDED")],
    "refunded": [order(1), order(2, payment="FULLY_REFUNDED")],
}


@given(st.sampled_from(sorted(LIVES)), st.data())
def test_the_states_of_an_order_in_any_order_any_number_of_times_end_as_listed_in_order(life, data):
    states = LIVES[life]
    seen = data.draw(st.permutations(states)) + data.draw(st.lists(st.sampled_from(states)))
    assert levels(*seen) == levels(*states)
    assert levels(*states) != levels(states[0])  # the later states moved stock


@given(st.integers(min_value=1, max_value=5))
def test_an_order_listed_many_times_counts_once(times):
    assert levels(*[order(1)] * times) == levels(order(1))
