"""The Shopify gateway against the Shopify sandbox, over real HTTP."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Iterator

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
from infrastructure.channels.shopify.gateway import SET_QUANTITIES, ShopifyGateway
from infrastructure.push.gate import ChannelGate, GatePolicy
from infrastructure.push.redis_limits import RedisLimits
from sandboxes.server import SandboxServer
from sandboxes.shopify.store import ShopifySandbox
from tests.helpers import random_sku

TOKEN = "shpat_gateway_test"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[ShopifySandbox, str]]:
    shop = ShopifySandbox(TOKEN)
    with SandboxServer(shop.app) as server:
        yield shop, server.url


@pytest.fixture
def shop(served: tuple[ShopifySandbox, str]) -> Iterator[ShopifySandbox]:
    sandbox = served[0]
    yield sandbox
    sandbox.faults.outage, sandbox.faults.error_rate, sandbox.faults.delay = False, 0.0, 0.0
    sandbox.bucket.restore_rate = 100.0
    sandbox.bucket.drain(sandbox.bucket.maximum)
    sandbox.throttle_status = 200


def connect(
    served: tuple[ShopifySandbox, str], token: str = TOKEN, timeout: float = 2.0, **options
):
    shop, url = served
    return ShopifyGateway(
        url, token, shop.location_id, channel_id="shopify-us", timeout=timeout, **options
    )


@pytest.fixture
def gateway(served: tuple[ShopifySandbox, str], shop: ShopifySandbox) -> Iterator[ShopifyGateway]:
    gateway = connect(served)
    yield gateway
    gateway.close()


def test_a_push_sets_what_shopify_shows(shop, gateway):
    sku = random_sku()
    shop.set_stock(sku, 5)
    results = gateway.push([Push(sku, 8, version=1, acknowledged=5)])
    assert results == [PushResult(sku, PushStatus.APPLIED, 8)]
    assert shop.stock(sku) == 8


def test_a_first_push_sets_the_quantity_without_comparing(shop, gateway):
    sku = random_sku()
    shop.set_stock(sku, 3)
    assert gateway.push([Push(sku, 10, version=1)])[0].status is PushStatus.APPLIED
    assert shop.stock(sku) == 10


def test_a_batch_is_one_lookup_and_one_mutation(shop, gateway):
    skus = [random_sku() for _ in range(40)]
    for sku in skus:
        shop.set_stock(sku, 1)
    lookups, mutations = shop.fields["inventoryItems"], shop.fields["inventorySetQuantities"]
    results = gateway.push([Push(sku, i, version=1, acknowledged=1) for i, sku in enumerate(skus)])
    assert [r.status for r in results] == [PushStatus.APPLIED] * 40
    assert [shop.stock(sku) for sku in skus] == list(range(40))
    assert shop.fields["inventoryItems"] == lookups + 1
    assert shop.fields["inventorySetQuantities"] == mutations + 1


def test_inventory_item_ids_are_looked_up_once(shop, gateway):
    sku = random_sku()
    shop.set_stock(sku, 0)
    lookups, calls = shop.fields["inventoryItems"], shop.calls.count("graphql")
    gateway.push([Push(sku, 4, version=1, acknowledged=0)])
    gateway.push([Push(sku, 6, version=2, acknowledged=4)])
    assert shop.fields["inventoryItems"] == lookups + 1
    assert shop.calls.count("graphql") == calls + 3
    assert shop.stock(sku) == 6
    ref = f"shopify-inventory-item:{shop.inventory_item_id(sku)}"
    assert gateway.listings([sku, random_sku()]) == [(ref, sku)]  # cached: no call; unlisted: none
    assert shop.fields["inventoryItems"] == lookups + 2  # the unlisted one was looked for


def test_listings_look_a_sku_up_once_and_the_push_after_them_needs_no_lookup(shop, gateway):
    sku = random_sku()
    shop.set_stock(sku, 1)
    lookups = shop.fields["inventoryItems"]
    ref = f"shopify-inventory-item:{shop.inventory_item_id(sku)}"
    assert gateway.listings([sku]) == [(ref, sku)]
    gateway.push([Push(sku, 3, version=1, acknowledged=1)])
    assert shop.fields["inventoryItems"] == lookups + 1
    assert shop.stock(sku) == 3


def test_a_sku_shopify_does_not_list_is_unknown_and_the_rest_applied(shop, gateway):
    known, unknown = random_sku(), random_sku()
    shop.set_stock(known, 2)
    results = gateway.push([Push(unknown, 5, version=1), Push(known, 5, version=1)])
    assert [r.status for r in results] == [PushStatus.UNKNOWN_SKU, PushStatus.APPLIED]
    assert shop.stock(known) == 5


def test_read_shows_the_channel_quantities(shop, gateway):
    sku, missing = random_sku(), random_sku()
    shop.set_stock(sku, 12)
    shop.buy(sku, 2)
    assert gateway.read([sku, missing]) == {sku: 10, missing: None}


def test_a_deleted_product_is_refused_then_looked_up_again(shop, gateway):
    sku = random_sku()
    shop.set_stock(sku, 1)
    gateway.push([Push(sku, 2, version=1, acknowledged=1)])
    shop.delete_product(sku)
    refused = gateway.push([Push(sku, 3, version=2, acknowledged=2)])[0]
    assert refused.status is PushStatus.REJECTED
    assert "INVALID_INVENTORY_ITEM" in refused.detail
    again = gateway.push([Push(sku, 3, version=3, acknowledged=2)])[0]
    assert again.status is PushStatus.UNKNOWN_SKU


def test_a_refused_token_is_an_auth_failure(served, shop):
    gateway = connect(served, token="shpat_wrong")
    with pytest.raises(ChannelAuthFailed):
        gateway.push([Push(random_sku(), 1, version=1)])
    assert shop.calls.calls[-1][1:] == ("graphql", 401)
    gateway.close()


def test_throttled_waits_as_long_as_the_bucket_needs_to_refill(shop, gateway):
    sku = random_sku()
    shop.set_stock(sku, 1)
    shop.bucket.restore_rate = 1.0  # slow, so the wait is measured in whole seconds
    shop.bucket.drain()
    with pytest.raises(Throttled) as throttled:
        gateway.push([Push(sku, 2, version=1)])
    # The lookup of one SKU asks 8 points (2 + 2 items x 3), restored one a second.
    assert 7.5 < throttled.value.retry_after <= 8.0
    assert shop.stock(sku) == 1


def test_a_429_names_its_wait_in_retry_after(shop, gateway):
    sku = random_sku()
    shop.set_stock(sku, 1)
    gateway.read([sku])
    shop.throttle_status = 429
    shop.bucket.drain()
    with pytest.raises(Throttled) as throttled:
        gateway.push([Push(sku, 2, version=1)])
    assert throttled.value.retry_after == 1.0  # the mutation's 13 points: ceil(0.13 s)
    assert shop.calls.calls[-1][1:] == ("graphql", 429)


def test_server_errors_are_unavailability(shop, gateway):
    shop.faults.error_rate = 1.0
    with pytest.raises(ChannelUnavailable):
        gateway.read([random_sku()])


def test_an_outage_is_unavailability(shop, gateway):
    shop.faults.outage = True
    with pytest.raises(ChannelUnavailable):
        gateway.push([Push(random_sku(), 1, version=1)])
    assert shop.calls.calls[-1][1:] == ("graphql", 503)


def test_an_answer_slower_than_the_timeout_is_unavailability(served, shop):
    gateway = connect(served, timeout=0.2)
    shop.faults.delay = 0.6
    with pytest.raises(ChannelUnavailable):
        gateway.read([random_sku()])
    gateway.close()


def test_a_sale_on_shopify_makes_the_push_stale_and_is_not_overwritten(shop, gateway):
    sku = random_sku()
    shop.set_stock(sku, 10)
    gateway.push([Push(sku, 7, version=1, acknowledged=10)])
    shop.buy(sku, 2)  # a shopper, before invsync hears of it
    result = gateway.push([Push(sku, 6, version=2, acknowledged=7)])[0]
    assert (result.status, result.channel_quantity) == (PushStatus.STALE, 5)
    assert shop.stock(sku) == 5


def test_a_stale_quantity_does_not_hold_back_the_rest_of_its_batch(shop, gateway):
    moved, steady = random_sku(), random_sku()
    shop.set_stock(moved, 4)
    shop.set_stock(steady, 4)
    shop.buy(moved, 1)
    results = gateway.push([Push(moved, 9, version=1, acknowledged=4), Push(steady, 9, 1, 4)])
    assert [(r.status, r.channel_quantity) for r in results] == [
        (PushStatus.STALE, 3),
        (PushStatus.APPLIED, 9),
    ]
    assert (shop.stock(moved), shop.stock(steady)) == (3, 9)


def test_a_stale_answer_that_already_shows_our_quantity_is_stale_all_the_same(shop, gateway):
    sku = random_sku()
    shop.set_stock(sku, 5)
    shop.buy(sku, 1)  # it moved on its own: the pusher must know by how much
    result = gateway.push([Push(sku, 4, version=1, acknowledged=5)])[0]
    assert (result.status, result.channel_quantity) == (PushStatus.STALE, 4)


def test_a_retry_after_a_lost_answer_gets_shopifys_first_result_and_changes_nothing_twice(
    shop, gateway
):
    sku = random_sku()
    shop.set_stock(sku, 1)
    push = Push(sku, 8, version=3, acknowledged=1)
    shop.mutation_faults = ["lost"]  # applied, but the answer is a 503
    with pytest.raises(ChannelUnavailable):
        gateway.push([push])
    shop.buy(sku, 1)
    # The same key and parameters: Shopify's first answer again, nothing applied.
    assert gateway.push([push]) == [PushResult(sku, PushStatus.APPLIED, 8)]
    assert shop.stock(sku) == 7


def test_another_quantity_at_the_same_ledger_version_goes_under_another_key(shop, gateway):
    sku = random_sku()
    shop.set_stock(sku, 1)
    gateway.push([Push(sku, 8, version=3, acknowledged=1)])
    # A rules change recomputes the quantity without moving the ledger version.
    result = gateway.push([Push(sku, 9, version=3, acknowledged=8)])[0]
    assert result == PushResult(sku, PushStatus.APPLIED, 9)
    assert shop.stock(sku) == 9


def test_the_same_push_again_after_its_answer_goes_under_a_fresh_key(shop, gateway):
    sku = random_sku()
    shop.set_stock(sku, 1)
    gateway.push([Push(sku, 8, version=3, acknowledged=1)])
    gateway.push([Push(sku, 1, version=3, acknowledged=8)])  # rules back and forth
    assert gateway.push([Push(sku, 8, version=3, acknowledged=1)])[0].status is PushStatus.APPLIED
    assert shop.stock(sku) == 8  # applied, not Shopify's first answer replayed


def test_a_request_still_running_is_retried_under_the_same_key(shop, gateway):
    sku = random_sku()
    shop.set_stock(sku, 2)
    push = Push(sku, 6, version=1, acknowledged=2)
    shop.slow_seconds, shop.mutation_faults = 0.4, ["slow"]
    with pytest.raises(ChannelUnavailable):
        gateway.push([push])  # Shopify keeps working on it
    assert gateway.push([push]) == []  # IDEMPOTENCY_CONCURRENT_REQUEST: unanswered, goes again
    assert shop.stock(sku) == 2
    threading.Event().wait(0.5)
    assert gateway.push([push]) == [PushResult(sku, PushStatus.APPLIED, 6)]
    assert shop.stock(sku) == 6


def test_a_key_whose_first_attempt_failed_is_replaced_by_a_new_one(shop, gateway):
    sku = random_sku()
    shop.set_stock(sku, 2)
    push = Push(sku, 5, version=1, acknowledged=2)
    shop.mutation_faults = ["fail"]
    with pytest.raises(ChannelUnavailable):
        gateway.push([push])
    assert gateway.push([push]) == []  # IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED: unanswered
    assert gateway.push([push]) == [PushResult(sku, PushStatus.APPLIED, 5)]  # a new key
    assert shop.stock(sku) == 5


def test_a_key_shopify_finds_used_with_other_parameters_is_not_final(shop, served):
    sku = random_sku()
    shop.set_stock(sku, 2)
    push = Push(sku, 5, version=1, acknowledged=2)
    first = connect(served)
    first.read([sku])
    variables, _ = first._set_variables([push])
    # Another process once sent other parameters under this key (refused: nothing applied).
    [quantity] = variables["input"]["quantities"]
    other = {**variables["input"], "quantities": [{**quantity, "changeFromQuantity": 99}]}
    shop.run(SET_QUANTITIES, {**variables, "input": other})
    assert first.push([push]) == []  # IDEMPOTENCY_KEY_PARAMETER_MISMATCH: unanswered
    assert first.push([push]) == [PushResult(sku, PushStatus.APPLIED, 5)]
    first.close()


def test_the_calls_a_push_makes_beyond_its_first_take_turns_of_the_channels_rate(
    served, shop, redis_url
):
    client = redis.Redis.from_url(redis_url)
    gate = ChannelGate(
        RedisLimits(client), "shopify", GatePolicy(rate=5), namespace=uuid.uuid4().hex
    )
    gateway = connect(served, gate=gate)  # spaced 250 ms: rate 5, for 4 a second
    sku = random_sku()
    shop.set_stock(sku, 0)
    since = time.monotonic()
    assert gate.take_call(1.0)  # the pusher's turn: the lookup goes on it
    gateway.turn_taken()
    gateway.push([Push(sku, 2, version=1, acknowledged=0)])  # a lookup, then the mutation
    assert gate.take_call(1.0)
    gateway.turn_taken()
    gateway.push([Push(sku, 3, version=2, acknowledged=2)])
    gateway.close()
    client.close()
    times = [t for t, operation, _ in shop.calls.calls if operation == "graphql" and t >= since]
    assert len(times) == 3
    assert all(b - a >= 0.2 for a, b in itertools.pairwise(times))
    assert shop.stock(sku) == 3
