"""Every translator, fed hostile payloads (any JSON shape, huge numbers, deep nesting, unicode,
NULs, lone surrogates, wrong types where the right ones belong): it never raises, and what it
does not park is valid to apply, so no payload can stall a lane or break a batch."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from application.intake import Delivery, Translation
from domain.errors import DomainError
from infrastructure.channels.amazon import translator as amazon
from infrastructure.channels.amazon.config import AmazonConfig
from infrastructure.channels.config import ChannelConfig
from infrastructure.channels.internal import translator as internal
from infrastructure.channels.internal.config import InternalConfig
from infrastructure.channels.shopify import translator as shopify
from infrastructure.channels.shopify.config import ShopifyConfig
from infrastructure.channels.woocommerce import translator as woocommerce
from infrastructure.channels.woocommerce.config import WooCommerceConfig
from tests.orders import Stock
from tests.unit.amazon_messages import order_change, order_item, sns_notification

HOSTILE_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["\x00", "\ud800", "a" * 5000, "1e999", "-1", "0", "NaN", "../x", "é/ü"]),
)
JSON = st.recursive(
    HOSTILE_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)


class NoStore:
    """The channel's API as the translators read it: it knows no refunds and no orders."""

    def order_refunds(self, channel: ChannelConfig, order_id: str) -> list[Any]:
        return []

    def order_document(self, channel: ChannelConfig, order_id: str) -> None:
        return None


CHANNELS = {
    "shopify": (ShopifyConfig(id="shop", webhook_secrets=("s",)), shopify),
    "woocommerce": (
        WooCommerceConfig(id="woo", webhook_secrets=("s",)),
        woocommerce,
    ),
    "amazon": (AmazonConfig(id="amz"), amazon),
    "internal": (InternalConfig(id="erp", webhook_secrets=("s",)), internal),
}
TOPICS = {
    "shopify": list(shopify._HANDLERS),
    "woocommerce": list(woocommerce._HANDLERS),
    "amazon": ["ORDER_CHANGE", "SubscriptionConfirmation"],
    "internal": ["stock.changes"],
}


def _body(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


def _survives(kind: str, topic: str, body: bytes) -> None:
    channel, module = CHANNELS[kind]
    delivery = Delivery(1, channel.id, "k", topic, {}, body, datetime(2026, 3, 1, tzinfo=UTC))
    translation = module.translate(channel, delivery, NoStore())
    assert isinstance(translation, Translation)
    if translation.parked is not None:
        return
    stock = Stock()
    for update in translation.orders:
        for sku in update.skus():
            stock.receive(sku, 1)
    # A domain rule may refuse it: the ledger then parks it with its reason, alone.
    with contextlib.suppress(DomainError):
        stock.apply(translation)


@settings(max_examples=300)
@given(kind=st.sampled_from(sorted(CHANNELS)), data=st.data(), value=JSON)
def test_no_payload_makes_a_translator_raise(kind, data, value):
    topic = data.draw(st.sampled_from(TOPICS[kind]))
    _survives(kind, topic, _body(value))


def _mutated(draw: Any, document: Any) -> Any:
    """`document` with one of its values, anywhere, replaced by something hostile."""
    if isinstance(document, dict) and document:
        key = draw(st.sampled_from(sorted(document)))
        changed = dict(document)
        changed[key] = (
            draw(st.one_of(JSON, st.just(None)))
            if draw(st.booleans())
            else (_mutated(draw, document[key]))
        )
        return changed
    if isinstance(document, list) and document:
        index = draw(st.integers(0, len(document) - 1))
        return [*document[:index], _mutated(draw, document[index]), *document[index + 1 :]]
    return draw(JSON)


SHOPIFY_ORDER = {
    "id": 1,
    "updated_at": "2026-03-01T10:00:00Z",
    "cancelled_at": None,
    "location_id": None,
    "line_items": [{"id": 2, "sku": "A", "quantity": 2, "current_quantity": 2}],
    "refunds": [
        {
            "id": 3,
            "refund_line_items": [
                {"id": 4, "line_item_id": 2, "quantity": 1, "restock_type": "cancel"}
            ],
        }
    ],
    "fulfillments": [
        {"id": 5, "location_id": None, "line_items": [{"id": 2, "sku": "A", "quantity": 1}]}
    ],
}
WOO_ORDER = {
    "id": 727,
    "status": "processing",
    "date_modified_gmt": "2026-03-01T15:00:02",
    "date_completed_gmt": None,
    "line_items": [{"id": 315, "sku": "WOO-1", "quantity": 2}],
    "refunds": [],
}


@settings(max_examples=300)
@given(data=st.data())
def test_a_valid_order_with_any_one_value_made_hostile_never_raises(data):
    kind, topic, document = data.draw(
        st.sampled_from(
            [
                ("shopify", "orders/updated", SHOPIFY_ORDER),
                ("woocommerce", "order.updated", WOO_ORDER),
                ("amazon", "ORDER_CHANGE", order_change("Unshipped", [order_item()])),
            ]
        )
    )
    hostile = _mutated(data.draw, document)
    body = sns_notification(hostile) if kind == "amazon" else hostile
    _survives(kind, topic, _body(body))


def test_a_body_nested_beyond_the_parser_is_parked_not_raised():
    deep = b"[" * 100_000 + b"]" * 100_000
    for kind, topics in TOPICS.items():
        for topic in topics:
            _survives(kind, topic, deep)
