import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from application.intake import Delivery, Translation
from domain.orders import LineConflict
from domain.stock import ChangeKind, Levels
from infrastructure.channels.base import (
    Accepted,
    Lane,
    Ping,
    SignatureInvalid,
    SignedRequest,
    body_digest,
)
from infrastructure.channels.config import ChannelConfig
from infrastructure.channels.woocommerce.config import WooCommerceConfig
from infrastructure.channels.woocommerce.translator import lane, translate
from infrastructure.channels.woocommerce.verifier import verify
from tests.orders import Stock

K = ChangeKind
NOW = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
SECRET = "wc_webhook_secret"
CHANNEL = WooCommerceConfig(id="woo", webhook_secrets=(SECRET,))

# CHANNELS.md §6, vector 2: PHP's escaped slashes, exact bytes, no trailing newline.
VECTOR_BODY = (
    b'{"id":727,"status":"processing","line_items":[{"id":315,"product_id":93,"variation_id":0,'
    b'"quantity":1,"sku":"WOO-1"}],"_links":{"self":[{"href":"https:\\/\\/example.com\\/wp-json'
    b'\\/wc\\/v3\\/orders\\/727"}]}}'
)
VECTOR_SIGNATURE = "nsCyW8dl+9zRA+loi/3ItSnkkxTj7uTtOIVRxsVzMXc="


def woo(*secrets: str) -> ChannelConfig:
    return WooCommerceConfig(id="woo", webhook_secrets=secrets)


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
    verdict = verify(woo(SECRET), SignedRequest(headers, VECTOR_BODY), NOW)
    # The vector names no modification time, so its bytes key it.
    assert verdict == Accepted(delivery_key=body_digest(VECTOR_BODY), topic="order.created")


def test_any_configured_secret_verifies_during_rotation():
    headers = {"x-wc-webhook-signature": VECTOR_SIGNATURE}
    assert verify(woo("new_secret", SECRET), SignedRequest(headers, VECTOR_BODY), NOW)


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
        verify(woo(secret), SignedRequest({"x-wc-webhook-signature": signature}, body), NOW)


@pytest.mark.parametrize("headers", [{}, {"x-wc-webhook-signature": ""}])
def test_a_delivery_without_signature_is_refused(headers):
    with pytest.raises(SignatureInvalid, match="missing"):
        verify(woo(SECRET), SignedRequest(headers, VECTOR_BODY), NOW)


def test_the_unsigned_creation_ping_is_answered_without_storing():
    assert verify(woo(SECRET), SignedRequest({}, b"webhook_id=12"), NOW) == Ping()


def test_only_the_exact_ping_form_goes_unsigned():
    with pytest.raises(SignatureInvalid, match="missing"):
        verify(woo(SECRET), SignedRequest({}, b"webhook_id=12&status=active"), NOW)


def test_a_delivery_is_keyed_by_topic_resource_and_modification_time():
    body = php_json(order("processing", "2026-03-01T15:00:02"))
    verdict = verify(woo(SECRET), SignedRequest(signed(body), body), NOW)
    assert verdict == Accepted("order.updated:727:2026-03-01T15:00:02", "order.updated")


def test_two_modifications_in_one_second_get_two_keys_despite_one_delivery_id():
    first = php_json(order("processing", "2026-03-01T15:00:02"))
    second = php_json(order("completed", "2026-03-01T15:00:03"))
    keys = {
        verify(woo(SECRET), SignedRequest(signed(body), body), NOW).delivery_key
        for body in (first, second)
    }
    assert len(keys) == 2


def test_a_payload_naming_no_modification_time_is_keyed_by_its_bytes():
    body = b'{"id":727}'  # what `order.deleted` sends
    verdict = verify(woo(SECRET), SignedRequest(signed(body, "order.deleted"), body), NOW)
    assert verdict == Accepted(body_digest(body), "order.deleted")


# Translator --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefundLine:
    line_id: str
    quantity: int
    restocked: bool


@dataclass(frozen=True)
class Refund:
    id: str
    created_at: datetime
    lines: tuple[RefundLine, ...]


class Refunds:
    """The store's API as the translator reads it (`ChannelReads`): its refunds, and the order
    as it is now (`current`; None once deleted for good)."""

    def __init__(self, *refunds: Refund, current: dict | None = None) -> None:
        self.refunds = list(refunds)
        self.current = current
        self.asked = 0

    def order_refunds(self, channel: ChannelConfig, order_id: str) -> list[Refund]:
        self.asked += 1
        return self.refunds

    def order_document(self, channel: ChannelConfig, order_id: str) -> dict | None:
        return self.current


def order(
    status: str,
    modified: str,
    lines: tuple[tuple[int, str | None, int], ...] = ((315, "WOO-1", 2),),
    *,
    refunds: int = 0,
    completed: str | None = None,
) -> dict:
    return {
        "id": 727,
        "status": status,
        "date_created_gmt": "2026-03-01T15:00:00",
        "date_modified_gmt": modified,
        "date_completed_gmt": completed,
        "line_items": [
            {"id": line_id, "product_id": 93, "variation_id": 0, "quantity": units, "sku": sku}
            for line_id, sku, units in lines
        ],
        "refunds": [{"id": 900 + i, "reason": "", "total": "-1.00"} for i in range(refunds)],
    }


def delivery(topic: str, payload: object, received_at: datetime = NOW) -> Delivery:
    body = payload if isinstance(payload, bytes) else php_json(payload)
    return Delivery(1, "woo", "k", topic, {}, body, received_at)


def deliver(payload: object, topic: str = "order.updated", reads=None) -> Translation:
    return translate(CHANNEL, delivery(topic, payload), reads or Refunds())


def after(*payloads: dict, reads=None, on_hand: int = 10) -> dict[tuple[str, str], Levels]:
    stock = Stock()
    for sku in ("WOO-1", "WOO-2"):
        stock.receive(sku, on_hand)
    stock.apply_all(deliver(p, reads=reads) for p in payloads)
    return {key: levels for key, levels in stock.levels().items() if key[0] == "WOO-1"}


def woo1(on_hand: int = 10, committed: int = 0) -> dict[tuple[str, str], Levels]:
    return {("WOO-1", "main"): Levels(on_hand=on_hand, committed=committed)}


def test_a_processing_order_commits_its_lines():
    assert after(order("processing", "2026-03-01T15:00:02")) == woo1(committed=2)


def test_cancelling_and_reopening_an_order_sells_releases_and_sells_again():
    sold = order("processing", "2026-03-01T15:00:02")
    cancelled = order("cancelled", "2026-03-01T15:20:00")
    reopened = order("on-hold", "2026-03-01T15:40:00")
    assert after(sold, cancelled) == woo1()
    assert after(sold, cancelled, reopened) == woo1(committed=2)


def test_completing_a_processing_order_ships_what_it_committed():
    done = order("completed", "2026-03-01T15:20:00", completed="2026-03-01T15:20:00")
    assert after(order("processing", "2026-03-01T15:00:02"), done) == woo1(on_hand=8)


def test_an_order_completed_straight_from_pending_is_sold_then_shipped():
    stock = Stock()
    stock.receive("WOO-1", 10)
    stock.apply(deliver(order("pending", "2026-03-01T15:00:02")))
    stock.apply(deliver(order("completed", "2026-03-01T15:20:00")))
    assert [(c.kind, c.quantity) for c in stock.changes[1:]] == [(K.SALE, 2), (K.SHIPMENT, 2)]
    assert stock.levels() == woo1(on_hand=8)


def test_refunding_a_shipped_order_brings_no_stock_back_without_a_return():
    done = order("completed", "2026-03-01T15:20:00", completed="2026-03-01T15:20:00")
    refunded = order("refunded", "2026-03-01T16:00:00", completed="2026-03-01T15:20:00")
    assert after(done, refunded) == woo1(on_hand=8)


def test_a_stale_payload_changes_nothing():
    newer = order("cancelled", "2026-03-01T15:20:00")
    older = order("processing", "2026-03-01T15:00:02")
    assert after(newer, older) == woo1()


def test_raising_a_line_from_two_to_three_units_sells_one_more():
    raised = order("processing", "2026-03-01T15:20:00", ((315, "WOO-1", 3),))
    assert after(order("processing", "2026-03-01T15:00:02"), raised) == woo1(committed=3)


def test_an_edit_that_lowers_or_removes_lines_releases_their_units():
    both = ((315, "WOO-1", 2), (316, "WOO-2", 1))
    removed = order("processing", "2026-03-01T15:20:00", ((316, "WOO-2", 1),))
    assert after(order("processing", "2026-03-01T15:00:02", both), removed) == woo1()


def test_a_partial_refund_with_restock_of_a_processing_order_releases_those_units():
    reads = Refunds(
        Refund("901", datetime(2026, 3, 1, 15, 10, tzinfo=UTC), (RefundLine("315", 1, True),))
    )
    refunded = order("processing", "2026-03-01T15:10:00", refunds=1)
    assert after(order("processing", "2026-03-01T15:00:02"), refunded, reads=reads) == woo1(
        committed=1
    )
    assert reads.asked == 1  # the refunds were read once: the payload without them needs none


def test_a_refund_after_completion_that_restocks_brings_the_units_back():
    reads = Refunds(Refund("901", datetime(2026, 3, 2, tzinfo=UTC), (RefundLine("315", 1, True),)))
    done = order("completed", "2026-03-01T15:20:00", completed="2026-03-01T15:20:00")
    refunded = order("completed", "2026-03-02T00:00:00", completed="2026-03-01T15:20:00", refunds=1)
    assert after(done, refunded, reads=reads) == woo1(on_hand=9)


def test_a_refund_after_completion_without_restock_brings_nothing_back():
    reads = Refunds(Refund("901", datetime(2026, 3, 2, tzinfo=UTC), (RefundLine("315", 1, False),)))
    refunded = order("completed", "2026-03-02T00:00:00", completed="2026-03-01T15:20:00", refunds=1)
    assert after(refunded, reads=reads) == woo1(on_hand=8)


def test_a_trashed_order_holds_nothing_until_it_is_restored():
    sold = order("processing", "2026-03-01T15:00:02")
    trashed = Refunds(current=order("trash", "2026-03-01T15:30:00"))
    stock = Stock()
    stock.receive("WOO-1", 10)
    stock.apply(deliver(sold))
    stock.apply(translate(CHANNEL, delivery("order.deleted", {"id": 727}), trashed))
    assert stock.levels() == woo1()
    stock.apply(deliver(order("processing", "2026-03-01T15:45:00"), "order.restored"))
    assert stock.levels() == woo1(committed=2)


def test_an_order_deleted_for_good_holds_nothing_whatever_comes_after():
    sold = order("processing", "2026-03-01T15:00:02")
    stock = Stock()
    stock.receive("WOO-1", 10)
    stock.apply(translate(CHANNEL, delivery("order.deleted", {"id": 727}), Refunds()))
    stock.apply(deliver(sold))
    assert stock.levels() == woo1()


def test_woocommerce_times_without_a_zone_are_read_as_utc():
    [update] = deliver(order("on-hold", "2026-03-01T15:00:02")).orders
    assert update.occurred_at == datetime(2026, 3, 1, 15, 0, 2, tzinfo=UTC)


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
    translation = deliver(payload)
    assert translation.parked is not None
    assert reason in translation.parked
    assert (translation.changes, translation.orders) == ((), ())


def test_a_line_that_changed_sku_while_holding_stock_is_refused():
    stock = Stock()
    stock.apply(deliver(order("processing", "2026-03-01T15:00:02")))
    [renamed] = deliver(order("processing", "2026-03-01T15:20:00", ((315, "WOO-9", 2),))).orders
    with pytest.raises(LineConflict, match="changed SKU from 'WOO-1' to 'WOO-9'"):
        stock.orders["woo", "727"].learn(renamed)


# Any order, any repetition ------------------------------------------------------------------

STATUSES = st.sampled_from(
    ["pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed"]
)


@settings(max_examples=200)
@given(
    history=st.lists(st.tuples(STATUSES, st.integers(0, 4)), min_size=1, max_size=5),
    data=st.data(),
)
def test_every_permutation_with_repeats_of_an_order_s_states_ends_as_its_newest(history, data):
    """WooCommerce sends an order's states in any order, some twice: the ledger ends as the
    newest state (with what completion shipped) says, whatever the order of arrival."""
    payloads = []
    completed_at = None
    for minute, (status, units) in enumerate(history):
        modified = f"2026-03-01T15:{minute:02d}:00"
        if status == "completed" and completed_at is None:
            completed_at = modified
        payloads.append(order(status, modified, ((315, "WOO-1", units),), completed=completed_at))
    in_order = after(*payloads)
    repeats = data.draw(st.lists(st.sampled_from(payloads), max_size=3))
    assert after(*data.draw(st.permutations([*payloads, *repeats]))) == in_order
    newest_status, newest_units = history[-1]
    shipped = max((units for status, units in history if status == "completed"), default=0)
    owed = max(0, newest_units - shipped)
    committed = owed if newest_status in ("processing", "on-hold") else 0
    assert in_order == woo1(on_hand=10 - shipped, committed=committed)


PRODUCT = {
    "id": 93,
    "sku": "WOO-1",
    "manage_stock": True,
    "stock_quantity": 7,
    "date_modified_gmt": "2026-03-01T15:10:00",
}


def test_a_product_update_is_an_observation_never_a_change():
    translation = deliver(PRODUCT, "product.updated")
    assert translation.changes == ()
    [seen] = translation.observations
    assert (seen.channel_id, seen.sku, seen.location, seen.quantity) == ("woo", "WOO-1", "main", 7)
    assert seen.observed_at == datetime(2026, 3, 1, 15, 10, tzinfo=UTC)
    assert seen.reference == "woocommerce://woo/products/93"


def test_a_product_whose_stock_woocommerce_does_not_count_is_not_observed():
    unmanaged = {**PRODUCT, "manage_stock": False, "stock_quantity": None}
    assert deliver(unmanaged, "product.updated") == Translation()


@pytest.mark.parametrize("topic", ["coupon.updated", "action.woocommerce_x"])
def test_topics_that_move_no_stock_do_nothing(topic):
    assert deliver({"id": 727}, topic) == Translation()


def test_orders_take_the_decrement_lane():
    assert lane("order.updated") is Lane.DECREMENTS
    assert lane("product.updated") is Lane.INCREMENTS


def test_a_mapped_product_sku_is_recorded_under_ours():
    mapped = CHANNEL.model_copy(update={"sku_map": {"WOO-SHOP-1": "WOO-1"}})
    payload = order("processing", "2026-03-01T15:00:02", ((315, "WOO-SHOP-1", 2),))
    stock = Stock()
    stock.receive("WOO-1", 10)
    stock.apply(translate(mapped, delivery("order.created", payload), Refunds()))
    assert stock.levels() == woo1(committed=2)


@dataclass
class WooStore:
    """One WooCommerce order as the store changes it, the webhooks it sends (each built at
    delivery time from the order as it is then) and what the store's refunds API answers."""

    units: int
    minute: int = 0
    status: str = "pending"
    completed_at: str | None = None
    shipped: int = 0
    refunds: list[Refund] = field(default_factory=list)
    sent: list[tuple[str, object, datetime]] = field(default_factory=list)

    def _tick(self) -> datetime:
        self.minute += 1
        return datetime(2026, 3, 1, 15, self.minute, tzinfo=UTC)

    def _payload(self, modified: datetime) -> dict:
        gmt = modified.strftime("%Y-%m-%dT%H:%M:%S")
        return order(
            self.status,
            gmt,
            ((315, "WOO-1", self.units),),
            refunds=len(self.refunds),
            completed=self.completed_at,
        )

    def _send(self, topic: str = "order.updated") -> None:
        when = self._tick()
        self.sent.append((topic, self._payload(when), when))

    def move(self, status: str) -> None:
        self.status = status
        if status == "completed" and self.completed_at is None:
            when = datetime(2026, 3, 1, 15, self.minute + 1, tzinfo=UTC)
            self.completed_at = when.strftime("%Y-%m-%dT%H:%M:%S")
            self.shipped = self.units - self.refunded()
        self._send()

    def refund(self, units: int, restock: bool) -> None:
        when = self._tick()
        self.refunds.append(
            Refund(str(900 + len(self.refunds)), when, (RefundLine("315", units, restock),))
        )
        self._send()

    def delete(self) -> None:
        """To the trash: its status until restored."""
        self.before_trash, self.status = self.status, "trash"
        self.sent.append(("order.deleted", {"id": 727}, self._tick()))
        self.deleted = True

    def restore(self) -> None:
        self.deleted = False
        self.status = self.before_trash
        self._send("order.restored")

    def current(self) -> dict:
        """The order as the store's API shows it now."""
        return self._payload(datetime(2026, 3, 1, 15, self.minute, tzinfo=UTC))

    def refunded(self) -> int:
        return sum(line.quantity for r in self.refunds for line in r.lines)

    deleted: bool = False
    before_trash: str = "pending"

    def truth(self) -> dict[tuple[str, str], Levels]:
        """What the warehouse holds for this order, from 10 on hand."""
        after = [
            r
            for r in self.refunds
            if self.completed_at and _gmt_text(r.created_at) > self.completed_at
        ]
        back = sum(line.quantity for r in after for line in r.lines if line.restocked)
        before = self.refunded() - sum(line.quantity for r in after for line in r.lines)
        owed = max(0, self.units - before - self.shipped)
        held = not self.deleted and self.status in ("processing", "on-hold")
        return woo1(on_hand=10 - self.shipped + back, committed=owed if held else 0)


def _gmt_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


WOO_STEPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("move"),
            st.sampled_from(["processing", "on-hold", "completed", "cancelled", "refunded"]),
        ),
        st.tuples(st.just("refund"), st.booleans()),
        st.tuples(st.just("delete"), st.just(None)),
    ),
    max_size=5,
)


@settings(max_examples=200)
@given(steps=WOO_STEPS, data=st.data())
def test_every_permutation_with_repeats_of_an_order_s_lifecycle_ends_right(steps, data):
    """Status changes, partial refunds with and without restock, deletion and restoration:
    any order of arrival, with repeats, ends where the store's own history says."""
    store = WooStore(units=3)
    store.move("processing")
    for action, arg in steps:
        if action == "move" and not store.deleted:
            store.move(arg)
        elif action == "refund" and not store.deleted and store.refunded() < store.units:
            store.refund(1, arg)
        elif action == "delete":
            store.restore() if store.deleted else store.delete()
    reads = Refunds(*store.refunds, current=store.current())

    def applied(sent: list[tuple[str, object, datetime]]) -> dict[tuple[str, str], Levels]:
        stock = Stock()
        stock.receive("WOO-1", 10)
        for topic, payload, when in sent:
            stock.apply(translate(CHANNEL, delivery(topic, payload, when), reads))
        return stock.levels()

    assert applied(store.sent) == store.truth()
    repeats = data.draw(st.lists(st.sampled_from(store.sent), max_size=3))
    assert applied(data.draw(st.permutations([*store.sent, *repeats]))) == store.truth()


def test_a_replayed_order_under_the_deleted_topic_deletes_nothing():
    """WooCommerce signs the body, not the topic header."""
    sold = order("processing", "2026-03-01T15:00:02")
    replayed = deliver(sold, "order.deleted")
    assert replayed.parked is not None
    assert "nothing else" in replayed.parked
