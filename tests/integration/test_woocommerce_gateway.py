"""The WooCommerce gateway against the WooCommerce sandbox, over real HTTP."""

import itertools
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC

import httpx
import pytest
import redis

from infrastructure.channels.gateway import (
    ChannelAuthFailed,
    ChannelUnavailable,
    Push,
    PushResult,
    PushStatus,
    Throttled,
)
from infrastructure.channels.woocommerce.gateway import WooCommerceGateway
from infrastructure.push.gate import ChannelGate, GatePolicy
from infrastructure.push.redis_limits import RedisLimits
from sandboxes.server import SandboxServer, free_port
from sandboxes.woocommerce.store import WooCommerceSandbox
from tests.integration.tls import tls_server

KEY, SECRET = "ck_test", "cs_test"
APPLIED, UNKNOWN = PushStatus.APPLIED, PushStatus.UNKNOWN_SKU


@dataclass
class Store:
    sandbox: WooCommerceSandbox
    url: str

    def gateway(self, key: str = KEY, secret: str = SECRET, **options) -> WooCommerceGateway:
        return WooCommerceGateway(self.url, key, secret, channel_id="woo-eu", **options)

    def calls(self, operation: str, status: int | None = None) -> int:
        return self.sandbox.log.count(operation, status)


@pytest.fixture
def store() -> Iterator[Store]:
    sandbox = WooCommerceSandbox(KEY, SECRET, auto_deliver=False)
    with SandboxServer(sandbox.app) as server:
        yield Store(sandbox, server.url)
    sandbox.close()


@pytest.fixture
def gateway(store: Store) -> Iterator[WooCommerceGateway]:
    gateway = store.gateway(timeout=2.0)
    yield gateway
    gateway.close()


def push(sku: str, quantity: int) -> Push:
    return Push(sku=sku, quantity=quantity, version=1)


def test_a_push_sets_a_products_stock_quantity(store, gateway):
    store.sandbox.add_product("WOO-1", 5)
    assert gateway.push([push("WOO-1", 7)]) == [PushResult("WOO-1", APPLIED, 7)]
    assert store.sandbox.stock("WOO-1") == 7
    assert store.calls("products.list") == 1
    assert store.calls("products.batch", 200) == 1


def test_a_product_whose_stock_was_not_managed_is_managed_from_the_first_push(store, gateway):
    store.sandbox.add_product("WOO-1", None)
    assert gateway.read(["WOO-1"]) == {"WOO-1": None}
    gateway.push([push("WOO-1", 4)])
    assert gateway.read(["WOO-1"]) == {"WOO-1": 4}


def test_variations_are_written_under_their_parent_in_one_batch_per_parent(store, gateway):
    tee = store.sandbox.add_product("TEE", None, name="T-shirt")
    store.sandbox.add_product("TEE-S", 1, parent=tee)
    store.sandbox.add_product("TEE-M", 2, parent=tee)
    store.sandbox.add_product("MUG", 3)
    results = gateway.push([push("TEE-S", 10), push("MUG", 30), push("TEE-M", 20)])
    assert [(r.sku, r.status, r.channel_quantity) for r in results] == [
        ("TEE-S", APPLIED, 10),
        ("MUG", APPLIED, 30),
        ("TEE-M", APPLIED, 20),
    ]
    assert [store.sandbox.stock(sku) for sku in ("TEE-S", "TEE-M", "MUG")] == [10, 20, 30]
    assert store.calls("products.list") == 1  # one lookup names every SKU, variations included
    assert store.calls("variations.batch", 200) == 1
    assert store.calls("products.batch", 200) == 1


def test_lookups_are_cached_so_a_second_push_makes_no_lookup_call(store, gateway):
    store.sandbox.add_product("WOO-1", 5)
    gateway.push([push("WOO-1", 6)])
    gateway.push([push("WOO-1", 8)])
    assert store.calls("products.list") == 1
    assert store.calls("products.batch") == 2
    assert store.sandbox.stock("WOO-1") == 8


def test_a_sku_woocommerce_does_not_list_is_unknown_and_the_others_are_applied(store, gateway):
    store.sandbox.add_product("WOO-1", 5)
    results = gateway.push([push("NOPE", 1), push("WOO-1", 2)])
    assert [(r.sku, r.status) for r in results] == [("NOPE", UNKNOWN), ("WOO-1", APPLIED)]
    assert store.sandbox.stock("WOO-1") == 2


def test_an_item_woocommerce_fails_in_a_200_batch_has_no_result_and_goes_again(store, gateway):
    store.sandbox.add_product("WOO-1", 5)
    store.sandbox.add_product("WOO-2", 5)
    store.sandbox.faults.fail_items("WOO-1")
    results = gateway.push([push("WOO-1", 0), push("WOO-2", 0)])
    assert store.calls("products.batch", 200) == 1  # the batch itself succeeded
    assert results == [PushResult("WOO-2", APPLIED, 0)]  # WOO-1: neither applied nor refused
    assert (store.sandbox.stock("WOO-1"), store.sandbox.stock("WOO-2")) == (5, 0)
    assert gateway.push([push("WOO-1", 0)]) == [PushResult("WOO-1", APPLIED, 0)]
    assert store.sandbox.stock("WOO-1") == 0


def test_a_product_deleted_and_created_again_is_looked_up_again(store, gateway):
    store.sandbox.add_product("WOO-1", 5)
    gateway.push([push("WOO-1", 6)])
    store.sandbox.delete_product("WOO-1")
    store.sandbox.add_product("WOO-1", 0)
    assert gateway.push([push("WOO-1", 9)]) == [PushResult("WOO-1", APPLIED, 9)]
    assert store.sandbox.stock("WOO-1") == 9
    assert store.calls("products.list") == 2


def test_in_one_push_a_gone_product_is_unknown_a_re_created_one_applied_a_failed_one_again(
    store, gateway
):
    for sku in ("GONE", "BACK", "BACK-FAILS", "FAILS", "PLAIN"):
        store.sandbox.add_product(sku, 5)
    gateway.push([push(sku, 4) for sku in ("GONE", "BACK", "BACK-FAILS", "FAILS", "PLAIN")])
    for sku in ("GONE", "BACK", "BACK-FAILS"):
        store.sandbox.delete_product(sku)
    store.sandbox.add_product("BACK", 0)
    store.sandbox.add_product("BACK-FAILS", 0)
    store.sandbox.faults.fail_items("FAILS")
    store.sandbox.faults.fail_items("BACK-FAILS")
    results = gateway.push(
        [push(sku, 3) for sku in ("GONE", "BACK", "BACK-FAILS", "FAILS", "PLAIN")]
    )
    assert [(r.sku, r.status) for r in results] == [
        ("GONE", UNKNOWN),
        ("BACK", APPLIED),
        ("PLAIN", APPLIED),
    ]  # FAILS and BACK-FAILS (failed in the second round): no result, they go again
    shown = {sku: store.sandbox.stock(sku) for sku in ("BACK", "BACK-FAILS", "FAILS", "PLAIN")}
    assert shown == {"BACK": 3, "BACK-FAILS": 0, "FAILS": 4, "PLAIN": 3}


def test_a_push_of_250_skus_goes_in_three_batch_calls_of_at_most_100(store, gateway):
    skus = [f"BULK-{n:03d}" for n in range(250)]
    for sku in skus:
        store.sandbox.add_product(sku, 0)
    results = gateway.push([push(sku, n) for n, sku in enumerate(skus)])
    assert {r.status for r in results} == {APPLIED}
    assert store.calls("products.batch") == store.calls("products.batch", 200) == 3
    assert store.calls("products.list") == 3  # 100 SKUs a lookup: WordPress's largest page
    assert [store.sandbox.stock(sku) for sku in skus] == list(range(250))


def test_read_answers_the_stock_woocommerce_shows_and_none_for_an_unknown_sku(store, gateway):
    store.sandbox.add_product("WOO-1", 5)
    store.sandbox.set_stock("WOO-1", 3)
    assert gateway.read(["WOO-1", "NOPE"]) == {"WOO-1": 3, "NOPE": None}


@pytest.mark.parametrize(
    ("key", "secret"), [(KEY, "cs_wrong"), ("ck_unknown", SECRET), ("ck_read", "cs_read")]
)
def test_a_refused_key_is_an_auth_failure(store, key, secret):
    store.sandbox.add_product("WOO-1", 5)
    store.sandbox.add_key("ck_read", "cs_read", write=False)
    with store.gateway(key, secret) as gateway, pytest.raises(ChannelAuthFailed, match="401"):
        gateway.push([push("WOO-1", 1)])
    assert store.sandbox.stock("WOO-1") == 5


def test_a_throttling_host_raises_throttled_with_its_retry_after(store, gateway):
    store.sandbox.add_product("WOO-1", 5)
    store.sandbox.throttle(retry_after=7, calls=1)
    with pytest.raises(Throttled) as throttled:
        gateway.push([push("WOO-1", 1)])
    assert throttled.value.retry_after == 7
    assert store.calls("products.list", 429) == 1
    assert gateway.push([push("WOO-1", 1)])[0].status == APPLIED  # the throttle was lifted


@pytest.mark.parametrize("fault", [{"error_rate": 1.0}, {"outage": True}])
def test_a_5xx_answer_is_an_unavailable_channel(store, gateway, fault):
    store.sandbox.add_product("WOO-1", 5)
    for name, value in fault.items():
        setattr(store.sandbox.faults, name, value)
    with pytest.raises(ChannelUnavailable, match="answered 50"):
        gateway.push([push("WOO-1", 1)])


def test_an_answer_slower_than_the_timeout_is_an_unavailable_channel(store):
    store.sandbox.add_product("WOO-1", 5)
    store.sandbox.faults.delay = 1.0
    with store.gateway(timeout=0.2) as gateway, pytest.raises(ChannelUnavailable, match="time"):
        gateway.read(["WOO-1"])


def test_a_store_that_cannot_be_reached_is_an_unavailable_channel():
    gateway = WooCommerceGateway(f"http://127.0.0.1:{free_port()}", KEY, SECRET)
    with pytest.raises(ChannelUnavailable, match="cannot be reached"):
        gateway.push([push("WOO-1", 1)])
    gateway.close()


def test_a_push_through_the_api_is_echoed_as_product_updated(store, gateway):
    """What echo suppression will recognise: WooCommerce reports our own write back."""
    store.sandbox.add_product("WOO-1", 5)
    store.sandbox.webhooks.add("product.updated", f"http://127.0.0.1:{free_port()}/", "s")
    gateway.push([push("WOO-1", 12)])
    (sent,) = store.sandbox.webhooks.deliver_pending()
    assert sent.topic == "product.updated"
    assert b'"sku":"WOO-1"' in sent.body
    assert b'"stock_quantity":12' in sent.body


def test_a_lookup_and_a_batch_per_parent_each_take_a_turn_of_the_channels_rate(store, redis_url):
    client = redis.Redis.from_url(redis_url)
    gate = ChannelGate(RedisLimits(client), "woo", GatePolicy(rate=5), namespace=uuid.uuid4().hex)
    gateway = store.gateway(timeout=2.0, gate=gate)  # spaced 250 ms: rate 5, for 4 a second
    tee = store.sandbox.add_product("TEE", None, name="T-shirt")
    store.sandbox.add_product("TEE-S", 1, parent=tee)
    store.sandbox.add_product("MUG", 3)
    assert gate.take_call(1.0)  # the pusher's turn: the lookup goes on it
    gateway.turn_taken()
    gateway.push([push("TEE-S", 10), push("MUG", 30)])  # a lookup, then two batches
    gateway.close()
    client.close()
    times = [t for t, _, _ in store.sandbox.log.calls]
    assert len(times) == 3
    assert all(b - a >= 0.2 for a, b in itertools.pairwise(times))
    assert [store.sandbox.stock(sku) for sku in ("TEE-S", "MUG")] == [10, 30]


# Compare-and-set ------------------------------------------------------------------------------


def acked(sku: str, quantity: int, acknowledged: int) -> Push:
    return Push(sku=sku, quantity=quantity, version=2, acknowledged=acknowledged)


def test_the_incident_a_push_never_puts_back_a_unit_the_store_sold_since_it_confirmed(
    store, gateway
):
    store.sandbox.add_product("WOO-1", 1)
    assert gateway.push([push("WOO-1", 1)]) == [PushResult("WOO-1", APPLIED, 1)]
    store.sandbox.buy("WOO-1")  # the store sells its last unit; the ledger has not heard yet
    (result,) = gateway.push([acked("WOO-1", 1, acknowledged=1)])
    assert (result.status, result.channel_quantity) == (PushStatus.STALE, 0)
    assert result.detail.startswith("STALE: WooCommerce shows 0, not the 1 it last confirmed")
    assert store.sandbox.stock("WOO-1") == 0
    assert store.calls("products.batch") == 0  # nothing written


def test_a_decrease_on_a_store_that_moved_is_stale_too(store, gateway):
    store.sandbox.add_product("WOO-1", 10)
    store.sandbox.buy("WOO-1", 3)
    (result,) = gateway.push([acked("WOO-1", 8, acknowledged=10)])
    assert (result.status, result.channel_quantity) == (PushStatus.STALE, 7)
    assert store.sandbox.stock("WOO-1") == 7


def test_a_store_that_shows_what_it_confirmed_is_written_after_one_read_for_the_batch(
    store, gateway
):
    for sku in ("A", "B", "C"):
        store.sandbox.add_product(sku, 5)
    results = gateway.push([acked("A", 9, 5), acked("B", 2, 5), acked("C", 5, 5)])
    assert [(r.status, r.channel_quantity) for r in results] == [
        (APPLIED, 9),
        (APPLIED, 2),
        (APPLIED, 5),  # shows the target already: not written
    ]
    assert [store.sandbox.stock(sku) for sku in ("A", "B", "C")] == [9, 2, 5]
    assert store.calls("products.list") == store.calls("products.batch") == 1
    gateway.push([acked("A", 8, 9)])  # ids are known: the read is the only lookup
    assert store.calls("products.list") == store.calls("products.batch") == 2


def test_a_store_with_stock_management_off_is_a_clear_rejection(store, gateway):
    store.sandbox.add_product("WOO-1", 5)
    store.sandbox.set_stock_management(False)
    (result,) = gateway.push([push("WOO-1", 7)])
    assert result.status is PushStatus.REJECTED
    assert result.detail.startswith("STOCK_NOT_MANAGED: WooCommerce answered success")
    assert "stock_quantity None (manage_stock False) where 7 was sent" in result.detail
    assert "Enable stock management" in result.detail
    assert store.sandbox.stock("WOO-1") == 5


# Credentials -----------------------------------------------------------------------------------


class Recording(httpx.BaseTransport):
    """An httpx transport that keeps the requests it sends."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner, self.sent = inner, []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_over_plain_http_the_gateway_signs_with_oauth_and_never_sends_its_secret(store):
    store.sandbox.add_product("WOO-1", 5)
    recording = Recording(httpx.HTTPTransport())
    with store.gateway(transport=recording) as gateway:
        assert gateway.push([push("WOO-1", 6)])[0].status is APPLIED
    for request in recording.sent:
        assert "authorization" not in request.headers
        assert "oauth_signature" in request.url.params
        assert SECRET not in str(request.url)


def test_over_https_the_gateway_sends_basic_credentials(tmp_path):
    sandbox = WooCommerceSandbox(KEY, SECRET, auto_deliver=False)
    sandbox.add_product("WOO-1", 5)
    with tls_server(sandbox.app, tmp_path) as server:
        recording = Recording(httpx.HTTPTransport(verify=server.trust))
        with WooCommerceGateway(server.url, KEY, SECRET, transport=recording) as gateway:
            assert gateway.push([push("WOO-1", 6)]) == [PushResult("WOO-1", APPLIED, 6)]
    assert sandbox.stock("WOO-1") == 6
    assert all(r.headers["authorization"].startswith("Basic ") for r in recording.sent)
    assert all("oauth_signature" not in r.url.params for r in recording.sent)
    sandbox.close()


def test_a_store_url_that_is_not_http_is_refused_at_start_up():
    with pytest.raises(ValueError, match="starts with https://"):
        WooCommerceGateway("shop.example", KEY, SECRET)


# Refunds ---------------------------------------------------------------------------------------


def test_refunds_read_each_refunds_lines_as_positive_units_and_whether_they_were_restocked(
    store, gateway
):
    store.sandbox.add_product("WOO-1", 10)
    store.sandbox.add_product("WOO-2", 10)
    store.sandbox.add_product("WOO-3", 10)
    order_id = store.sandbox.checkout({"WOO-1": 3, "WOO-2": 2, "WOO-3": 2})
    one, two, three = store.sandbox.line_ids(order_id)
    first = store.sandbox.refund(order_id, {one: 2, three: 1}, restock=True, reason="returned")
    second = store.sandbox.refund(order_id, {two: 1, three: 1}, restock=False)
    refunds = gateway.refunds(str(order_id))
    assert [r.id for r in refunds] == [first, second]  # oldest first
    assert refunds[0].created_at.tzinfo is UTC
    assert refunds[0].created_at <= refunds[1].created_at
    assert [
        (line.line_id, line.sku, line.quantity, line.restocked) for line in refunds[0].lines
    ] == [
        (one, "WOO-1", 2, True),
        (three, "WOO-3", 1, None),  # one of its two refunded units restocked: which is unknown
    ]
    assert [
        (line.line_id, line.sku, line.quantity, line.restocked) for line in refunds[1].lines
    ] == [
        (two, "WOO-2", 1, False),
        (three, "WOO-3", 1, None),
    ]
    assert store.calls("refunds.list") == store.calls("orders.get") == 1


def test_an_order_without_refunds_or_unknown_to_woocommerce_has_none(store, gateway):
    store.sandbox.add_product("WOO-1", 10)
    order_id = store.sandbox.buy("WOO-1", 2)
    assert gateway.refunds(str(order_id)) == []
    assert gateway.refunds("999") == []
    assert store.calls("orders.get") == 0  # no refund lines: the order is not read
    with pytest.raises(ValueError, match="numbers"):
        gateway.refunds("../products")


def test_refunds_of_a_refused_key_or_a_down_store_raise_as_pushes_do(store):
    store.sandbox.add_product("WOO-1", 10)
    order_id = str(store.sandbox.buy("WOO-1", 2))
    with store.gateway(secret="cs_wrong") as gateway, pytest.raises(ChannelAuthFailed):
        gateway.refunds(order_id)
    store.sandbox.faults.outage = True
    with store.gateway() as gateway, pytest.raises(ChannelUnavailable):
        gateway.refunds(order_id)
    store.sandbox.faults.outage = False
    store.sandbox.throttle(retry_after=4, calls=1)
    with store.gateway() as gateway, pytest.raises(Throttled):
        gateway.refunds(order_id)


def test_reading_refunds_takes_a_turn_of_the_channels_rate_per_call(store, redis_url):
    client = redis.Redis.from_url(redis_url)
    gate = ChannelGate(RedisLimits(client), "woo", GatePolicy(rate=5), namespace=uuid.uuid4().hex)
    gateway = store.gateway(timeout=2.0, gate=gate)
    store.sandbox.add_product("WOO-1", 10)
    order_id = store.sandbox.buy("WOO-1", 2)
    (line,) = store.sandbox.line_ids(order_id)
    store.sandbox.refund(order_id, {line: 1}, restock=True)
    start = len(store.sandbox.log.calls)
    began = time.monotonic()
    gateway.refunds(str(order_id))  # the refunds, then the order
    gateway.refunds(str(order_id))
    took = time.monotonic() - began
    gateway.close()
    client.close()
    assert len(store.sandbox.log.calls[start:]) == 4
    # Four turns at 5/s are granted 0.2 s apart, so the calls take 0.6 s at least (timed here,
    # where turns are granted: when each request reaches the store varies on a loaded machine).
    assert took >= 0.55
