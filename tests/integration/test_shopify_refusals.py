"""A Shopify compare-and-set refusal is followed up (the flash-sale oversell): the pusher and the
real gateway against the Shopify sandbox over HTTP, with the ledger and its projection.

A shopper buys on Shopify between our read and our push, so our push carries a stale
`changeFromQuantity` and Shopify refuses it. The right quantity must follow: a decrease at once,
an increase only once the ledger holds the channel's own sale (or after a bounded wait), and never
above what the channel may sell less its sales the ledger has not recorded yet."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.testclient import TestClient

from application.ledger_queries import LedgerQueries
from domain.allocation import ChannelRule
from domain.stock import ChangeKind, StockChange
from infrastructure.channels.shopify.gateway import ShopifyGateway
from infrastructure.config import PushConfig
from infrastructure.postgres import eventsourcing_env
from infrastructure.projections import AvailabilityRunner
from infrastructure.push.gate import ChannelGate, GatePolicy
from infrastructure.push.pusher import Pusher, PushPolicy
from infrastructure.push.redis_limits import RedisLimits
from infrastructure.push.store import Pending, PushStore
from interfaces.composition import running_propagation
from interfaces.http.schemas import ChannelSync
from interfaces.http.sync import sync_routes
from sandboxes.server import SandboxServer
from sandboxes.shopify.store import ShopifySandbox
from tests.helpers import change, random_sku
from tests.integration.propagation_fixtures import eventually

K = ChangeKind
SHOPIFY, WOO = "shopify-us", "woo-eu"
RULES = (ChannelRule(SHOPIFY), ChannelRule(WOO))
TOKEN = "shpat_refusals"


@pytest.fixture
def shop() -> Iterator[tuple[ShopifySandbox, str]]:
    sandbox = ShopifySandbox(TOKEN)  # no webhook URL: the test says when the sale is recorded
    with SandboxServer(sandbox.app) as server:
        yield sandbox, server.url
    sandbox.close()


@pytest.fixture
def client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def store(scratch_database):
    store = PushStore(scratch_database)
    yield store
    store.close()


@pytest.fixture
def runner(scratch_database):
    with AvailabilityRunner(eventsourcing_env(scratch_database), RULES) as runner:
        yield runner


@pytest.fixture
def pusher(shop, store, client) -> Iterator[Pusher]:
    sandbox, url = shop
    gate = ChannelGate(
        RedisLimits(client), SHOPIFY, GatePolicy(rate=50), namespace=uuid.uuid4().hex
    )
    gateway = ShopifyGateway(
        url, TOKEN, sandbox.location_id, channel_id=SHOPIFY, timeout=2.0, gate=gate
    )
    policy = PushPolicy(batch_window=0.0, call_timeout=1.0, sku_interval=0.0)
    yield Pusher(gateway, store, gate, policy)
    gateway.close()


@dataclass
class Flash:
    """A Shopify store in a flash sale: the sandbox, our ledger and projection, the pusher."""

    sandbox: ShopifySandbox
    ledger: Any
    runner: AvailabilityRunner
    pusher: Pusher
    store: PushStore

    def record(self, *changes: StockChange) -> None:
        self.ledger.record_batch(list(changes))
        assert self.runner.wait(self.ledger.recorder.max_notification_id(), timeout=10)

    def listed(self, quantity: int) -> str:
        """A SKU received `quantity` and shown on Shopify: the push acknowledged `quantity`."""
        sku = random_sku()
        self.sandbox.set_stock(sku, 0)
        self.record(change(K.RECEIPT, sku, quantity))
        assert self.pusher.drain() >= 1
        assert self.sandbox.stock(sku) == quantity
        return sku

    def pending(self) -> list[Pending]:
        return self.store.pending(SHOPIFY, 10)


@pytest.fixture
def flash(shop, runner, scratch_ledger, pusher, store) -> Flash:
    return Flash(shop[0], scratch_ledger, runner, pusher, store)


def shopify_sale(sku, quantity):
    """The sale a Shopify shopper made, as its webhook records it."""
    return change(K.SALE, sku, quantity, source=SHOPIFY, business_key=f"{SHOPIFY}:{uuid.uuid4()}")


def test_phantom_units_a_refused_push_at_zero_is_followed_by_zero(flash):
    sku = flash.listed(10)
    flash.sandbox.buy(sku, 3)  # a Shopify shopper, between our read and our push
    flash.record(change(K.SALE, sku, 10, source=WOO))  # WooCommerce sells the rest
    flash.pusher.drain()  # 0 with changeFromQuantity 10: refused, Shopify shows 7
    flash.record(shopify_sale(sku, 3))  # its webhook arrives: ATS stays 0
    flash.pusher.drain()
    assert flash.sandbox.stock(sku) == 0  # no phantom units left to sell
    assert flash.pending() == []


def test_an_increase_after_a_refusal_goes_no_higher_than_the_channels_unrecorded_sales_allow(
    flash,
):
    sku = flash.listed(10)
    flash.sandbox.buy(sku, 4)  # Shopify shows 6; the ledger does not know yet
    flash.record(change(K.RECEIPT, sku, 5))  # ATS 15, truly 11
    mutations = flash.sandbox.fields["inventorySetQuantities"]
    flash.pusher.drain()
    # 15 from 10 refused; read: 6; 11 from 6 (15 less the 4 sold there, not recorded yet).
    assert flash.sandbox.fields["inventorySetQuantities"] == mutations + 2
    assert flash.sandbox.stock(sku) == 11
    [held] = flash.pending()  # the rest waits for the shopper's sale in the ledger
    assert (held.quantity, held.acknowledged_quantity) == (15, 11)
    flash.record(shopify_sale(sku, 4))  # ATS 11: already shown
    flash.pusher.drain()
    assert flash.sandbox.stock(sku) == 11
    assert flash.pending() == []


def test_an_increase_after_a_refusal_waits_while_the_channels_sale_is_not_recorded(flash):
    sku = flash.listed(10)
    flash.sandbox.buy(sku, 4)  # Shopify shows 6; the ledger does not know yet
    flash.record(change(K.SALE, sku, 4, source=WOO))  # ATS 6, truly 2
    flash.pusher.drain()
    flash.record(change(K.RECEIPT, sku, 2))  # ATS 8, truly 4: no raise over 6 may go
    flash.pusher.drain()
    assert flash.sandbox.stock(sku) == 6
    [held] = flash.pending()
    assert held.acknowledged_quantity == 6  # the freshly read quantity
    flash.record(shopify_sale(sku, 4))  # ATS 4
    flash.pusher.drain()
    assert flash.sandbox.stock(sku) == 4
    assert flash.pending() == []


def test_a_refused_push_is_not_counted_as_followed_and_is_logged_as_refused(flash, caplog):
    sku = flash.listed(10)
    windows = flash.store.windows(SHOPIFY)
    flash.sandbox.buy(sku, 2)
    flash.record(change(K.RECEIPT, sku, 1))
    with caplog.at_level("INFO"):
        flash.pusher.drain()
    said = [r.getMessage() for r in caplog.records]
    assert f"shopify-us refused {sku}=11: CHANGE_FROM_QUANTITY_STALE; it shows 8" in said
    assert f"shopify-us now shows {sku}=9" in said  # 11 less the 2 sold there, unrecorded
    assert not any(f"{sku}=11" in line for line in said if "now shows" in line)
    assert flash.store.windows(SHOPIFY) == windows  # neither closes the receipt's window
    assert flash.store.refusals(SHOPIFY)["CHANGE_FROM_QUANTITY_STALE"]["refusals"] == 1
    assert flash.store.held(SHOPIFY) == 1


def test_after_the_bounded_wait_an_increase_goes_from_the_read_quantity(flash):
    sku = flash.listed(10)
    flash.pusher.policy = replace(flash.pusher.policy, unrecorded_wait=0.3)
    flash.sandbox.set_stock(sku, 8)  # a merchant's edit in Shopify's admin: no sale will come
    flash.record(change(K.RECEIPT, sku, 2))
    flash.pusher.drain()
    assert flash.sandbox.stock(sku) == 10  # 12 less the 2 units it lost, maybe sold
    flash.pusher.policy = replace(flash.pusher.policy, linger=0.6)
    flash.pusher.drain()  # lingers past the wait
    assert flash.sandbox.stock(sku) == 12


def test_a_push_after_the_channels_recorded_sale_is_neither_refused_nor_read_first(flash):
    sku = flash.listed(10)
    for bought, shows in ((1, 9), (2, 7)):  # its first sale too: a SKU's first count guesses
        flash.sandbox.buy(sku, bought)
        flash.record(shopify_sale(sku, bought))  # the usual order: the webhook, then our push
        calls, lookups = (
            flash.sandbox.calls.count("graphql"),
            flash.sandbox.fields["inventoryItems"],
        )
        flash.pusher.drain()  # from what it showed less what it sold: one call
        assert flash.sandbox.stock(sku) == shows
        assert flash.sandbox.calls.count("graphql") == calls + 1
        assert flash.sandbox.fields["inventoryItems"] == lookups
    assert "CHANGE_FROM_QUANTITY_STALE" not in flash.store.refusals(SHOPIFY)
    assert flash.pending() == []
    flash.record(change(K.RECEIPT, sku, 5))
    flash.pusher.drain()
    assert flash.sandbox.stock(sku) == 12  # the whole raise: the sale it lost is recorded
    assert flash.store.held(SHOPIFY) == 0


def test_sales_recorded_for_shopify_that_never_moved_its_stock_cost_at_most_one_refusal(flash):
    sku = flash.listed(10)
    flash.sandbox.buy(sku, 1)
    flash.record(shopify_sale(sku, 1))
    flash.pusher.drain()  # 9 from 10 less the sale: taken
    flash.record(shopify_sale(sku, 1))  # recorded, yet Shopify's stock never moved for it
    flash.pusher.drain()  # 8 from 8 (9 less the sale) refused; read: 9; 8 from 9
    assert flash.sandbox.stock(sku) == 8
    assert flash.store.refusals(SHOPIFY)["CHANGE_FROM_QUANTITY_STALE"]["refusals"] == 1
    calls = flash.sandbox.calls.count("graphql")
    for _ in range(3):
        flash.record(shopify_sale(sku, 1))
        flash.pusher.drain()
    assert flash.sandbox.stock(sku) == 5
    assert flash.sandbox.calls.count("graphql") == calls + 3  # one call each, no more refusals
    assert flash.store.refusals(SHOPIFY)["CHANGE_FROM_QUANTITY_STALE"]["refusals"] == 1


def test_sync_status_counts_refusals_and_held_skus_and_its_route_serves_its_document(
    shop, scratch_ledger, scratch_database, redis_url
):
    sandbox, url = shop
    sku = random_sku()
    sandbox.set_stock(sku, 0)
    gateway = partial(
        ShopifyGateway, url, TOKEN, sandbox.location_id, channel_id=SHOPIFY, timeout=2.0
    )
    config = PushConfig(rate_per_second=10, batch_window_seconds=0)
    namespace = f"test-{random_sku()}"
    with running_propagation(
        scratch_database,
        redis_url,
        {SHOPIFY: (lambda gate: gateway(gate=gate), config)},
        RULES,
        namespace=namespace,
    ) as propagation:
        scratch_ledger.record(change(K.RECEIPT, sku, 10))
        eventually(lambda: sandbox.stock(sku) == 10, 10, "the receipt reaches Shopify")
        sandbox.buy(sku, 4)  # Shopify shows 6; its webhook is late
        scratch_ledger.record(change(K.SALE, sku, 4, source=WOO))  # ATS 6: 6 from 10 refused
        scratch_ledger.record(change(K.RECEIPT, sku, 3))  # ATS 9, truly 5: held
        eventually(lambda: propagation.status(SHOPIFY)["held"] == 1, 10, "the raise is held")
        status = propagation.status(SHOPIFY)
        assert status["refused"]["CHANGE_FROM_QUANTITY_STALE"]["refusals"] >= 1
        assert status["pending"] == 1
        assert sandbox.stock(sku) == 6
        routes = sync_routes(propagation.status)
        with TestClient(Starlette(routes=routes)) as client:
            served = client.get(f"/api/v1/channels/{SHOPIFY}/sync").json()
        ChannelSync.model_validate(served)  # what the published document lists, no more
        scratch_ledger.record(shopify_sale(sku, 4))  # the webhook: ATS 5
        eventually(lambda: sandbox.stock(sku) == 5, 10, "Shopify follows the ledger")
        eventually(lambda: propagation.status(SHOPIFY)["held"] == 0, 10, "nothing held")
        assert propagation.status(SHOPIFY)["pending"] == 0


STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("shopper"), st.integers(1, 3)),
        st.tuples(st.just("webhook"), st.integers(0, 5)),
        st.tuples(st.just("woo"), st.integers(1, 3)),
        st.tuples(st.just("receipt"), st.integers(1, 4)),
        st.tuples(st.just("push"), st.just(0)),
    ),
    max_size=14,
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS)
def test_over_any_interleaving_no_push_raises_shopify_over_what_it_may_sell(flash, steps):
    """Against the sandbox and the ledger: Shopify's shoppers, their webhooks (late, in any
    order), WooCommerce's sales, receipts and drains interleaved; every raise our pushes make
    stays within the ATS less Shopify's sales not recorded; once the webhooks are in, it ends
    at the ATS."""
    sku, webhooks = flash.listed(6), []

    def ats() -> int:
        item = LedgerQueries(flash.ledger).get_item(sku)
        return max(0, item.totals.available)

    def drain() -> None:
        since = len(flash.sandbox.changes)
        flash.pusher.drain()
        ceiling = ats() - sum(webhooks)
        raises = [
            c
            for c in flash.sandbox.changes[since:]
            if c.sku == sku and c.cause == "api" and c.after > c.before
        ]
        assert all(c.after <= ceiling for c in raises), (raises, ceiling, webhooks)

    for step, n in steps:
        if step == "shopper" and (flash.sandbox.stock(sku) or 0) >= n:
            flash.sandbox.buy(sku, n)
            webhooks.append(n)
        elif step == "webhook" and webhooks:
            flash.record(shopify_sale(sku, webhooks.pop(n % len(webhooks))))
        elif step == "woo":
            flash.record(change(K.SALE, sku, n, source=WOO))
        elif step == "receipt":
            flash.record(change(K.RECEIPT, sku, n))
        elif step == "push":
            drain()
    while webhooks:
        flash.record(shopify_sale(sku, webhooks.pop()))
    drain()
    assert flash.sandbox.stock(sku) == ats()
