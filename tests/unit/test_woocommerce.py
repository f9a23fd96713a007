import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from application.intake import Delivery, Translation
from domain.inventory import InventoryItem
from domain.stock import ChangeKind, Levels
from infrastructure.channels.base import Accepted, Lane, Ping, SignatureInvalid, body_digest
from infrastructure.channels.woocommerce.translator import lane, translate
from infrastructure.channels.woocommerce.verifier import verify
from infrastructure.config import ChannelConfig
from tests.helpers import change

K = ChangeKind
NOW = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
SECRET = "wc_webhook_secret"
CHANNEL = ChannelConfig(id="woo", kind="woocommerce", webhook_secrets=(SECRET,))

# CHANNELS.md §6, vector 2: PHP's escaped slashes, exact bytes, no trailing newline.
VECTOR_BODY = (
    b'{"id":727,"status":"processing","line_items":[{"id":315,"product_id":93,"variation_id":0,'
    b'"quantity":1,"sku":"WOO-1"}],"_links":{"self":[{"href":"https:\\/\\/example.com\\/wp-json'
    b'\\/wc\\/v3\\/orders\\/727"}]}}'
)
VECTOR_SIGNATURE = "nsCyW8dl+9zRA+loi/3ItSnkkxTj7uTtOIVRxsVzMXc="


def woo(*secrets: str) -> ChannelConfig:
    return ChannelConfig(id="woo", kind="woocommerce", webhook_secrets=secrets)


def php_json(payload: object) -> bytes:
    """What `wp_json_encode` sends: compact, with `/` escaped."""
    return json.dumps(payload, separators=(",", ":")).replace("/", "\\/").encode()


def signed(body: bytes, topic: str = "order.updated", secret: str = SECRET) -> dict[str, str]:
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    return {
        "x-wc-webhook-signature": signature.decode(),
        "x-wc-webhook-topic": topic,
        "x-wc-webhook-delivery-id": "same-second-hash",
    }


# Verifier ----------------------------------------------------------------------------------


def test_the_documented_woocommerce_vector_verifies_on_its_raw_bytes():
    headers = {"x-wc-webhook-signature": VECTOR_SIGNATURE, "x-wc-webhook-topic": "order.created"}
    verdict = verify(woo(SECRET), headers, VECTOR_BODY, NOW)
    # The vector names no modification time, so its bytes key it.
    assert verdict == Accepted(delivery_key=body_digest(VECTOR_BODY), topic="order.created")


def test_any_configured_secret_verifies_during_rotation():
    headers = {"x-wc-webhook-signature": VECTOR_SIGNATURE}
    assert verify(woo("new_secret", SECRET), headers, VECTOR_BODY, NOW)


@pytest.mark.parametrize(
    ("body", "signature", "secret"),
    [
        # Re-encoded by Python's json: same data, other bytes, so not what Woo signed.
        (VECTOR_BODY.replace(b"\\/", b"/"), VECTOR_SIGNATURE, SECRET),
        (VECTOR_BODY.replace(b'"quantity":1', b'"quantity":9'), VECTOR_SIGNATURE, SECRET),
        (VECTOR_BODY, VECTOR_SIGNATURE, "another_secret"),
        (VECTOR_BODY, "not base64!", SECRET),
        (VECTOR_BODY, hashlib.sha256(VECTOR_BODY).hexdigest(), SECRET),
    ],
)
def test_woocommerce_refuses_what_the_secret_did_not_sign(body, signature, secret):
    with pytest.raises(SignatureInvalid, match="not the base64 HMAC-SHA256"):
        verify(woo(secret), {"x-wc-webhook-signature": signature}, body, NOW)


@pytest.mark.parametrize("headers", [{}, {"x-wc-webhook-signature": ""}])
def test_a_delivery_without_signature_is_refused(headers):
    with pytest.raises(SignatureInvalid, match="missing"):
        verify(woo(SECRET), headers, VECTOR_BODY, NOW)


def test_the_unsigned_creation_ping_is_answered_without_storing():
    assert verify(woo(SECRET), {}, b"webhook_id=12", NOW) == Ping()


def test_only_the_exact_ping_form_goes_unsigned():
    with pytest.raises(SignatureInvalid, match="missing"):
        verify(woo(SECRET), {}, b"webhook_id=12&status=active", NOW)


def test_a_delivery_is_keyed_by_topic_resource_and_modification_time():
    body = php_json(order("processing", "2026-03-01T15:00:02"))
    verdict = verify(woo(SECRET), signed(body), body, NOW)
    assert verdict == Accepted("order.updated:727:2026-03-01T15:00:02", "order.updated")


def test_two_modifications_in_one_second_get_two_keys_despite_one_delivery_id():
    first = php_json(order("processing", "2026-03-01T15:00:02"))
    second = php_json(order("completed", "2026-03-01T15:00:03"))
    keys = {verify(woo(SECRET), signed(body), body, NOW).delivery_key for body in (first, second)}
    assert len(keys) == 2


def test_a_payload_naming_no_modification_time_is_keyed_by_its_bytes():
    body = b'{"id":727}'  # what `order.deleted` sends
    verdict = verify(woo(SECRET), signed(body, "order.deleted"), body, NOW)
    assert verdict == Accepted(body_digest(body), "order.deleted")


# Translator --------------------------------------------------------------------------------


class FakeOrderMemory:
    """Remembers what translations ask to, as the inbox does once the ledger applied them."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, str], dict] = {}

    def recall(self, channel_id: str, order_id: str):
        return self._states.get((channel_id, order_id))

    def store(self, channel_id: str, translation: Translation) -> None:
        for order_id, state in translation.remember.items():
            # Through JSON, as the JSONB column stores it.
            self._states[channel_id, order_id] = json.loads(json.dumps(state))


def order(
    status: str,
    modified: str,
    lines: tuple[tuple[int, str | None, int], ...] = ((315, "WOO-1", 2),),
) -> dict:
    return {
        "id": 727,
        "status": status,
        "date_created_gmt": "2026-03-01T15:00:00",
        "date_modified_gmt": modified,
        "line_items": [
            {"id": line_id, "product_id": 93, "variation_id": 0, "quantity": units, "sku": sku}
            for line_id, sku, units in lines
        ],
        "refunds": [],
    }


def delivery(topic: str, payload: object) -> Delivery:
    body = payload if isinstance(payload, bytes) else php_json(payload)
    return Delivery(1, "woo", "k", topic, {}, body, NOW)


def deliver(memory: FakeOrderMemory, payload: object, topic: str = "order.updated") -> Translation:
    """Translate, then remember as the infrastructure would after the ledger applied it."""
    translation = translate(CHANNEL, delivery(topic, payload), memory)
    if translation.parked is None:
        memory.store(CHANNEL.id, translation)
    return translation


def ledger_after(*translations: Translation, sku: str = "WOO-1", on_hand: int = 10) -> Levels:
    item = InventoryItem(sku)
    item.record(change(K.RECEIPT, sku, on_hand))
    for translation in translations:
        for stock_change in translation.changes:
            item.record(stock_change)
    return item.levels_at("main")


def kinds(translation: Translation) -> list[tuple[ChangeKind, str, int]]:
    return [(c.kind, c.sku, c.quantity) for c in translation.changes]


def test_a_processing_order_sells_each_line_under_a_key_naming_the_transition():
    lines = ((315, "WOO-1", 2), (316, "WOO-2", 1))
    memory = FakeOrderMemory()
    created = order("processing", "2026-03-01T15:00:02", lines)
    translation = deliver(memory, created, "order.created")
    first, second = translation.changes
    assert (first.kind, first.sku, first.quantity, first.location) == (K.SALE, "WOO-1", 2, "main")
    assert first.business_key == "woo:order:727:line:315:sale:2026-03-01T15:00:02"
    assert first.occurred_at == datetime(2026, 3, 1, 15, 0, 2, tzinfo=UTC)
    assert first.reference == "woocommerce://woo/orders/727"
    assert (second.sku, second.quantity) == ("WOO-2", 1)
    assert memory.recall("woo", "727")["date_modified_gmt"] == "2026-03-01T15:00:02"


def test_cancelling_and_reopening_an_order_sells_releases_and_sells_again():
    memory = FakeOrderMemory()
    steps = [
        deliver(memory, order("processing", "2026-03-01T15:00:02")),
        deliver(memory, order("cancelled", "2026-03-01T15:30:00")),
        deliver(memory, order("processing", "2026-03-01T16:00:00")),
    ]
    changes = [c for step in steps for c in step.changes]
    assert [(c.kind, c.quantity) for c in changes] == [
        (K.SALE, 2),
        (K.SALE_CANCELLATION, 2),
        (K.SALE, 2),
    ]
    assert len({c.business_key for c in changes}) == 3
    assert ledger_after(*steps[:2]) == Levels(on_hand=10)
    assert ledger_after(*steps) == Levels(on_hand=10, committed=2)


def test_completing_a_processing_order_ships_what_it_committed():
    memory = FakeOrderMemory()
    sold = deliver(memory, order("processing", "2026-03-01T15:00:02"))
    shipped = deliver(memory, order("completed", "2026-03-02T09:00:00"))
    assert kinds(shipped) == [(K.SHIPMENT, "WOO-1", 2)]
    assert ledger_after(sold, shipped) == Levels(on_hand=8)


def test_an_order_completed_straight_from_pending_is_sold_then_shipped():
    memory = FakeOrderMemory()
    pending = deliver(memory, order("pending", "2026-03-01T15:00:02"))
    completed = deliver(memory, order("completed", "2026-03-01T15:05:00"))
    assert kinds(pending) == []
    assert kinds(completed) == [(K.SALE, "WOO-1", 2), (K.SHIPMENT, "WOO-1", 2)]
    assert ledger_after(completed) == Levels(on_hand=8)


def test_refunding_a_shipped_order_brings_no_stock_back_without_a_return():
    memory = FakeOrderMemory()
    steps = [
        deliver(memory, order("completed", "2026-03-01T15:00:02")),
        deliver(memory, order("refunded", "2026-03-05T10:00:00")),
    ]
    assert kinds(steps[1]) == []
    assert ledger_after(*steps) == Levels(on_hand=8)


def test_a_redelivered_state_changes_nothing_and_remembers_nothing():
    memory = FakeOrderMemory()
    payload = order("processing", "2026-03-01T15:00:02")
    deliver(memory, payload)
    assert deliver(memory, payload) == Translation()


def test_a_delivery_processed_again_before_it_was_remembered_repeats_its_keys():
    memory = FakeOrderMemory()
    deliver(memory, order("processing", "2026-03-01T15:00:02"))
    cancelled = delivery("order.updated", order("cancelled", "2026-03-01T15:30:00"))
    # A worker killed after the ledger applied it, before the state was stored.
    first, again = translate(CHANNEL, cancelled, memory), translate(CHANNEL, cancelled, memory)
    assert first.changes == again.changes


def test_a_payload_older_than_the_remembered_one_is_stale():
    memory = FakeOrderMemory()
    deliver(memory, order("cancelled", "2026-03-01T15:30:00"))
    assert deliver(memory, order("processing", "2026-03-01T15:00:02")) == Translation()
    assert memory.recall("woo", "727")["status"] == "cancelled"


def test_raising_a_line_from_two_to_three_units_sells_one_more():
    memory = FakeOrderMemory()
    first = deliver(memory, order("processing", "2026-03-01T15:00:02"))
    edited = deliver(memory, order("processing", "2026-03-01T15:20:00", ((315, "WOO-1", 3),)))
    assert kinds(edited) == [(K.SALE, "WOO-1", 1)]
    assert edited.changes[0].business_key == "woo:order:727:line:315:sale:2026-03-01T15:20:00"
    assert ledger_after(first, edited) == Levels(on_hand=10, committed=3)


def test_an_edit_that_lowers_or_removes_lines_releases_their_units():
    memory = FakeOrderMemory()
    lines = ((315, "WOO-1", 3), (316, "WOO-2", 1))
    deliver(memory, order("processing", "2026-03-01T15:00:02", lines))
    edited = deliver(memory, order("processing", "2026-03-01T15:20:00", ((315, "WOO-1", 1),)))
    assert kinds(edited) == [(K.SALE_CANCELLATION, "WOO-1", 2), (K.SALE_CANCELLATION, "WOO-2", 1)]


def test_completing_an_order_with_fewer_units_ships_those_and_releases_the_rest():
    memory = FakeOrderMemory()
    sold = deliver(memory, order("processing", "2026-03-01T15:00:02", ((315, "WOO-1", 3),)))
    shipped = deliver(memory, order("completed", "2026-03-02T09:00:00", ((315, "WOO-1", 2),)))
    assert kinds(shipped) == [(K.SHIPMENT, "WOO-1", 2), (K.SALE_CANCELLATION, "WOO-1", 1)]
    assert ledger_after(sold, shipped) == Levels(on_hand=8)


def test_woocommerce_times_without_a_zone_are_read_as_utc():
    [sale] = deliver(FakeOrderMemory(), order("on-hold", "2026-03-01T15:00:02")).changes
    assert sale.occurred_at.tzinfo is not None
    assert sale.occurred_at == datetime(2026, 3, 1, 15, 0, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"<html>", "the body is not JSON"),
        (b"[1]", "the body is not a JSON object"),
        (order("processing", "2026-03-01T15:00:02", ((315, None, 2),)), "line 315 of order 727"),
        (order("shipped", "2026-03-01T15:00:02"), "status 'shipped'"),
        ({**order("processing", "x"), "date_modified_gmt": None}, "no date_modified_gmt"),
        (order("processing", "yesterday"), "'yesterday' is not an ISO 8601 time"),
        ({**order("processing", "2026-03-01T15:00:02"), "line_items": None}, "line_items"),
        (order("processing", "2026-03-01T15:00:02", ((315, "WOO-1", -1),)), "quantity -1"),
        ({**order("processing", "2026-03-01T15:00:02"), "id": None}, "order id is None"),
    ],
)
def test_what_cannot_be_read_is_parked_with_a_reason(payload, reason):
    memory = FakeOrderMemory()
    translation = deliver(memory, payload)
    assert translation.parked is not None
    assert reason in translation.parked
    assert (translation.changes, translation.remember) == ((), {})


def test_a_line_that_changed_sku_while_holding_stock_is_parked():
    memory = FakeOrderMemory()
    deliver(memory, order("processing", "2026-03-01T15:00:02"))
    renamed = deliver(memory, order("processing", "2026-03-01T15:20:00", ((315, "WOO-9", 2),)))
    assert "changed SKU from 'WOO-1' to 'WOO-9'" in (renamed.parked or "")


PRODUCT = {
    "id": 93,
    "sku": "WOO-1",
    "manage_stock": True,
    "stock_quantity": 7,
    "date_modified_gmt": "2026-03-01T15:10:00",
}


def test_a_product_update_is_an_observation_never_a_change():
    translation = deliver(FakeOrderMemory(), PRODUCT, "product.updated")
    assert translation.changes == ()
    [seen] = translation.observations
    assert (seen.channel_id, seen.sku, seen.location, seen.quantity) == ("woo", "WOO-1", "main", 7)
    assert seen.observed_at == datetime(2026, 3, 1, 15, 10, tzinfo=UTC)
    assert seen.reference == "woocommerce://woo/products/93"


def test_a_product_whose_stock_woocommerce_does_not_count_is_not_observed():
    unmanaged = {**PRODUCT, "manage_stock": False, "stock_quantity": None}
    assert deliver(FakeOrderMemory(), unmanaged, "product.updated") == Translation()


@pytest.mark.parametrize("topic", ["order.deleted", "coupon.updated", "action.woocommerce_x"])
def test_topics_that_move_no_stock_do_nothing(topic):
    assert deliver(FakeOrderMemory(), {"id": 727}, topic) == Translation()


def test_orders_take_the_decrement_lane():
    assert lane("order.updated") is Lane.DECREMENTS
    assert lane("product.updated") is Lane.INCREMENTS
