"""Levels judged against the ledger's history (issue 13), against each channel's sandbox over
HTTP, with the projection and the pushers running on a database of their own: hand edits of a
unit either way are corrected, a dozen more is escalated and set back, a dozen fewer escalated
and left, each resolution does what it says, and a burst of sales is never taken for drift."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import psycopg
import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from starlette.testclient import TestClient

from application.ledger import Ledger
from application.ledger_queries import LedgerQueries
from application.time_travel import TimeTravel
from domain.allocation import ChannelRule
from domain.discrepancy import DiscrepancyResolved
from domain.stock import ChangeKind
from infrastructure import outbox
from infrastructure.channels.amazon.config import AmazonConfig
from infrastructure.channels.amazon.kind import AMAZON
from infrastructure.channels.config import ChannelConfig
from infrastructure.channels.ebay.config import EbayConfig
from infrastructure.channels.ebay.gateway import EbayGateway
from infrastructure.channels.ebay.revisions import RevisionBudget
from infrastructure.channels.gateway import UNGATED, ChannelGateway, Gate
from infrastructure.channels.kinds import api_for
from infrastructure.channels.shopify.config import ShopifyConfig
from infrastructure.channels.shopify.gateway import ShopifyGateway
from infrastructure.channels.walmart.config import WalmartConfig
from infrastructure.channels.walmart.kind import WALMART
from infrastructure.channels.woocommerce.config import WooCommerceConfig
from infrastructure.channels.woocommerce.gateway import WooCommerceGateway
from infrastructure.config import PushConfig
from infrastructure.eventstore import LedgerRecorder
from infrastructure.reconcile import runs
from infrastructure.reconcile.level_steps import LevelChecks
from infrastructure.reconcile.levels import LevelsChecked, check_levels
from infrastructure.reconcile.review import Review, supersede_overridden
from infrastructure.reconcile.runs import Counts, LevelStep, Stepped
from infrastructure.state_metrics import StateMetrics
from interfaces.composition import running_propagation
from interfaces.http.api import Api
from interfaces.http.app import create_app
from sandboxes.amazon.seller import AmazonSandbox
from sandboxes.ebay.seller import EbaySandbox
from sandboxes.server import SandboxServer
from sandboxes.shopify.store import ShopifySandbox
from sandboxes.walmart.seller import WalmartSandbox
from sandboxes.woocommerce.store import WooCommerceSandbox
from tests.helpers import change, random_sku
from tests.integration.propagation_fixtures import eventually

K = ChangeKind
CHANNEL = "shop"
TOKEN = "shpat_levels"
KEY, SECRET = "ck_levels", "cs_levels"


@dataclass
class Shop:
    """One sandbox store as these scenarios use it: a merchant's and a shopper's hands on it,
    and how invsync's channel and gateways are made for it."""

    list: Callable[[str], object]  # list a SKU at 0
    edit: Callable[[str, int], object]  # a hand edit in the channel's admin
    stock: Callable[[str], int | None]
    buy: Callable[[str, int], object]
    channel: ChannelConfig
    gateway: Callable[[Gate], ChannelGateway]


@contextmanager
def shopify() -> Iterator[Shop]:
    shop = ShopifySandbox(TOKEN)
    with SandboxServer(shop.app) as server:
        yield Shop(
            lambda sku: shop.set_stock(sku, 0),
            shop.set_stock,
            shop.stock,
            shop.buy,
            ShopifyConfig(
                id=CHANNEL,
                api_base_url=server.url,
                access_token=TOKEN,
                location_id=str(shop.location_id),
            ),
            lambda gate: ShopifyGateway(
                server.url, TOKEN, shop.location_id, channel_id=CHANNEL, gate=gate
            ),
        )
    shop.close()


@contextmanager
def woocommerce() -> Iterator[Shop]:
    store = WooCommerceSandbox(KEY, SECRET, auto_deliver=False)
    with SandboxServer(store.app) as server:
        yield Shop(
            lambda sku: store.add_product(sku, 0),
            store.set_stock,
            store.stock,
            store.buy,
            WooCommerceConfig(
                id=CHANNEL, api_base_url=server.url, consumer_key=KEY, consumer_secret=SECRET
            ),
            lambda gate: WooCommerceGateway(server.url, KEY, SECRET, channel_id=CHANNEL, gate=gate),
        )
    store.close()


@contextmanager
def amazon() -> Iterator[Shop]:
    seller = AmazonSandbox(apply_delay=0.02, feed_delay=0.05)
    client_id, client_secret, refresh_token = seller.credentials
    with seller.server() as server:
        channel = AmazonConfig(
            id=CHANNEL,
            api_base_url=server.url,
            seller_id=seller.seller_id,
            marketplace_id=seller.marketplace_id,
            lwa_client_id=client_id,
            lwa_client_secret=client_secret,
            lwa_refresh_token=refresh_token,
            lwa_token_url=f"{server.url}/auth/o2/token",
            feed_poll_seconds=0.05,
        )
        yield Shop(
            lambda sku: seller.add_listing(sku, 0),
            seller.set_stock,
            seller.stock,
            lambda sku, quantity: seller.buy(sku, quantity, notify=False),
            channel,
            lambda gate: AMAZON.gateway(channel, gate),
        )
    seller.close()


@contextmanager
def walmart() -> Iterator[Shop]:
    seller = WalmartSandbox(feed_delay=0.05)
    client_id, client_secret = seller.credentials
    with seller.server() as server:
        channel = WalmartConfig(
            id=CHANNEL,
            api_base_url=server.url,
            client_id=client_id,
            client_secret=client_secret,
            feed_poll_seconds=0.05,
        )
        yield Shop(
            lambda sku: seller.add_item(sku, 0),
            seller.set_stock,
            seller.stock,
            lambda sku, quantity: seller.buy(sku, quantity, notify=False),
            channel,
            lambda gate: WALMART.gateway(channel, gate),
        )
    seller.close()


@contextmanager
def ebay() -> Iterator[Shop]:
    seller = EbaySandbox()
    with SandboxServer(seller.app) as server:
        channel = EbayConfig(
            id=CHANNEL,
            api_base_url=server.url,
            client_id=seller.client_id,
            client_secret=seller.client_secret,
            refresh_token=seller.refresh_token,
        )
        # The burst's pushes may spend a listing's revisions faster than eBay's pace allows.
        budget = RevisionBudget(burst=240)
        yield Shop(
            lambda sku: seller.add_item(sku, 0),
            seller.set_quantity,
            seller.stock,
            seller.buy,
            channel,
            lambda gate: EbayGateway(
                server.url,
                seller.client_id,
                seller.client_secret,
                seller.refresh_token,
                channel_id=CHANNEL,
                gate=gate,
                budget=budget,
            ),
        )
    seller.close()


SHOPS = {
    "shopify": shopify,
    "woocommerce": woocommerce,
    "amazon": amazon,
    "walmart": walmart,
    "ebay": ebay,
}


@dataclass
class Reconciled:
    """A shop whose stock invsync pushes, and reconciliation over it."""

    shop: Shop
    gateway: ChannelGateway
    database_url: str
    ledger: Ledger
    review: Review

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.database_url)

    def check(self, *skus: str, settle: float = 0.0) -> LevelsChecked:
        return check_levels(
            self.shop.channel,
            gateway=self.gateway,
            connect=self.connect,
            sales=TimeTravel(self.ledger).channel_sales,
            skus=list(skus),
            settle=settle,
        )

    def settled(self, sku: str, quantity: int) -> None:
        """Wait until the channel acknowledged `quantity` of `sku` and nothing is in flight."""

        def done() -> bool:
            with self.connect() as conn:
                state = outbox.pushed(conn, CHANNEL, [sku]).get(sku)
            return state is not None and (state.in_flight, state.acknowledged_quantity) == (
                False,
                quantity,
            )

        eventually(done, 15, f"{sku} settles at {quantity}")

    def stocked(self, quantity: int) -> str:
        """A SKU the ledger holds `quantity` of, pushed and settled."""
        sku = random_sku()
        self.shop.list(sku)
        self.ledger.record(change(K.RECEIPT, sku, quantity))
        self.settled(sku, quantity)
        # Amazon applies a patch it accepted a moment later: a hand edit before would be lost.
        eventually(lambda: self.shop.stock(sku) == quantity, 5, f"the shop shows {quantity}")
        return sku


@pytest.fixture(params=sorted(SHOPS))
def reconciled(request, scratch_database, scratch_ledger, redis_url) -> Iterator[Reconciled]:
    with SHOPS[request.param]() as shop:
        push = PushConfig(batch_window_seconds=0, rate_per_second=20)
        gateways = {CHANNEL: (shop.gateway, push)}
        rules = (ChannelRule(CHANNEL),)
        namespace = f"test-{random_sku()}"
        reader = shop.gateway(UNGATED)
        with running_propagation(scratch_database, redis_url, gateways, rules, namespace=namespace):
            review = Review(
                lambda: psycopg.connect(scratch_database), scratch_ledger, {CHANNEL: shop.channel}
            )
            yield Reconciled(shop, reader, scratch_database, scratch_ledger, review)
        reader.close()


def open_discrepancies(reconciled: Reconciled) -> float | None:
    """The channel's open discrepancies as a scrape reads them (from the table)."""
    registry = CollectorRegistry()
    recorder = reconciled.ledger.recorder
    assert isinstance(recorder, LedgerRecorder)
    state = StateMetrics(reconciled.database_url, recorder, [CHANNEL], dict, {})
    registry.register(state)
    try:
        return registry.get_sample_value("invsync_discrepancies_open", {"channel": CHANNEL})
    finally:
        state.close()


@pytest.mark.parametrize("edit", [+1, -1])
def test_a_hand_edit_of_one_unit_is_corrected(reconciled, edit):
    sku = reconciled.stocked(20)
    reconciled.shop.edit(sku, 20 + edit)
    assert reconciled.check(sku) == LevelsChecked(read=1, corrected=1)
    eventually(lambda: reconciled.shop.stock(sku) == 20, 10, "the shop is set back to 20")
    [correction] = reconciled.review.listed(sku=sku)
    assert (correction.state, correction.action, correction.resolved_by) == (
        "resolved",
        "push_ledger",
        "invsync",
    )
    assert correction.difference == edit


def run_counts(reconciled: Reconciled, run_id: int) -> Counts:
    with reconciled.connect() as conn:
        run = runs.get(conn, run_id)
    assert run is not None
    return run.counts


def test_a_runs_level_step_reads_through_the_gateway_the_channels_table_makes(reconciled):
    sku = reconciled.stocked(20)
    reconciled.shop.edit(sku, 19)
    sales = TimeTravel(reconciled.ledger).channel_sales
    with reconciled.connect() as conn:
        run_id = runs.request_check(conn, CHANNEL, [sku])
    checks = LevelChecks(lambda c: api_for(c, UNGATED), reconciled.connect, sales, settle=0)
    try:
        step = LevelStep(run_id, (sku,), None, last=True)
        assert checks(reconciled.shop.channel, step) == Stepped()
    finally:
        checks.close()
    assert run_counts(reconciled, run_id) == Counts(skus_read=1, corrected=1)
    eventually(lambda: reconciled.shop.stock(sku) == 20, 10, "the shop is set back to 20")


def test_a_runs_last_level_step_answers_how_long_its_readings_settle_then_judges_them_sent_again(
    reconciled,
):
    sku = reconciled.stocked(20)
    reconciled.shop.edit(sku, 19)
    time.sleep(1.0)  # the push's acknowledgement settled: drift within it is left unjudged
    sales = TimeTravel(reconciled.ledger).channel_sales
    with reconciled.connect() as conn:
        run_id = runs.request_check(conn, CHANNEL, [sku])
    checks = LevelChecks(lambda c: api_for(c, UNGATED), reconciled.connect, sales, settle=1.0)
    try:
        started = time.monotonic()
        read = checks(reconciled.shop.channel, LevelStep(run_id, (sku,), None, last=True))
        assert time.monotonic() - started < 1.0  # nothing waited in the step
        assert read.settling == pytest.approx(1.0, abs=0.5)
        assert reconciled.shop.stock(sku) == 19  # not judged yet
        time.sleep(read.settling)
        judging = LevelStep(run_id, (sku,), None, last=True, judging=True)
        assert checks(reconciled.shop.channel, judging) == Stepped()
    finally:
        checks.close()
    assert run_counts(reconciled, run_id) == Counts(skus_read=1, corrected=1)
    eventually(lambda: reconciled.shop.stock(sku) == 20, 10, "the shop is set back to 20")


def test_a_level_step_worked_again_after_its_readings_were_judged_counts_each_sku_once(reconciled):
    # A worker killed after its step's readings were judged by the next look: the step resumed by
    # another worker reads its page again, and the run's last step judges only what is new.
    first, second = reconciled.stocked(20), reconciled.stocked(20)
    reconciled.shop.edit(first, 19)
    sales = TimeTravel(reconciled.ledger).channel_sales
    with reconciled.connect() as conn:
        run_id = runs.request_check(conn, CHANNEL, [first, second])
    checks = LevelChecks(lambda c: api_for(c, UNGATED), reconciled.connect, sales, settle=0)
    try:
        page = LevelStep(run_id, (first,), None, last=False)
        checks(reconciled.shop.channel, page)
        checks(reconciled.shop.channel, page)  # judges the first reading, then reads it again
        checks(reconciled.shop.channel, LevelStep(run_id, (second,), None, last=True))
    finally:
        checks.close()
    assert run_counts(reconciled, run_id) == Counts(skus_read=2, corrected=1)


def measured(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"channel": CHANNEL, **labels}) or 0.0


def test_a_runs_level_step_measures_the_skus_it_read_and_its_drift_by_size(reconciled):
    small, large, level = (reconciled.stocked(20) for _ in range(3))
    reconciled.shop.edit(small, 19)
    reconciled.shop.edit(large, 32)
    before = (
        measured("invsync_reconcile_skus_read_total"),
        measured("invsync_reconcile_drift_total", size="small"),
        measured("invsync_reconcile_drift_total", size="large"),
    )
    sales = TimeTravel(reconciled.ledger).channel_sales
    with reconciled.connect() as conn:
        run_id = runs.request_check(conn, CHANNEL, [small, large, level])
    checks = LevelChecks(lambda c: api_for(c, UNGATED), reconciled.connect, sales, settle=0)
    try:
        checks(reconciled.shop.channel, LevelStep(run_id, (small, large, level), None, last=True))
    finally:
        checks.close()
    after = (
        measured("invsync_reconcile_skus_read_total"),
        measured("invsync_reconcile_drift_total", size="small"),
        measured("invsync_reconcile_drift_total", size="large"),
    )
    assert [b - a for a, b in zip(before, after, strict=True)] == [3, 1, 1]
    # The gauge is read from the table at the scrape: it counts the channel's open
    # discrepancies, the large drift's among them.
    still_open = reconciled.review.listed(state="open")
    assert large in {d.sku for d in still_open}
    assert open_discrepancies(reconciled) == len(still_open)


def test_a_dozen_more_is_escalated_and_set_back_at_once(reconciled):
    sku = reconciled.stocked(20)
    reconciled.shop.edit(sku, 32)
    assert reconciled.check(sku) == LevelsChecked(read=1, escalated=1)
    eventually(lambda: reconciled.shop.stock(sku) == 20, 10, "the shop is set back to 20")
    [discrepancy] = reconciled.review.listed(state="open", sku=sku)
    assert (discrepancy.observed, discrepancy.expected, discrepancy.difference) == (32, 20, 12)
    assert discrepancy.evidence["reading"]["quantity"] == 32
    assert discrepancy.evidence["push"]["acknowledged"] == 20


def test_a_dozen_fewer_is_escalated_and_left_for_the_review(reconciled):
    sku = reconciled.stocked(20)
    reconciled.shop.edit(sku, 8)
    assert reconciled.check(sku) == LevelsChecked(read=1, escalated=1)
    time.sleep(1.0)  # pushes would have gone by now
    assert reconciled.shop.stock(sku) == 8
    # Checked again while it is open: the same drift opens no second discrepancy.
    assert reconciled.check(sku) == LevelsChecked(read=1)
    assert len(reconciled.review.listed(state="open", sku=sku)) == 1


def overridden_by_a_sale(reconciled: Reconciled) -> tuple[str, UUID]:
    """A SKU its channel showed a dozen fewer of, left for review, then sold once: the push of
    the sale sets the channel over the hand edit. Its SKU and discrepancy's id."""
    sku = reconciled.stocked(20)
    reconciled.shop.edit(sku, 8)
    assert reconciled.check(sku) == LevelsChecked(read=1, escalated=1)
    [found] = reconciled.review.listed(state="open", sku=sku)
    reconciled.ledger.record(change(K.SALE, sku, 1))
    eventually(lambda: reconciled.shop.stock(sku) == 19, 15, "the sale's push shows 19")
    reconciled.settled(sku, 19)
    return sku, found.id


def test_a_channel_showing_less_overridden_by_a_later_push_is_closed_as_superseded(reconciled):
    sku, _ = overridden_by_a_sale(reconciled)
    with reconciled.connect() as conn:
        assert supersede_overridden(conn) >= 1

    [closed] = reconciled.review.listed(sku=sku)
    assert (closed.state, closed.action, closed.resolved_by) == (
        "resolved",
        "superseded",
        "invsync",
    )
    assert "acknowledged 19" in (closed.reason or "")
    assert open_discrepancies(reconciled) == 0


def test_resolving_a_discrepancy_a_push_overrode_closes_it_as_superseded_and_says_so(reconciled):
    sku, found = overridden_by_a_sale(reconciled)
    with pytest.raises(DiscrepancyResolved, match="superseded"):
        reconciled.review.resolve(found, "accept_channel", "counted 8", "ops")

    [closed] = reconciled.review.listed(sku=sku)
    assert (closed.state, closed.action) == ("resolved", "superseded")
    # No count from the stale reading: on hand is still what was received (the sale commits 1).
    assert LedgerQueries(reconciled.ledger).get_item(sku).levels_at("main").on_hand == 20


def test_pushing_the_ledger_sets_the_channel_back(reconciled):
    sku = reconciled.stocked(20)
    reconciled.shop.edit(sku, 8)
    reconciled.check(sku)
    [discrepancy] = reconciled.review.listed(state="open", sku=sku)
    assert open_discrepancies(reconciled) == 1
    resolved = reconciled.review.resolve(discrepancy.id, "push_ledger", "a typo", by="alice")
    assert open_discrepancies(reconciled) == 0
    assert (resolved.state, resolved.action, resolved.resolved_by) == (
        "resolved",
        "push_ledger",
        "alice",
    )
    eventually(lambda: reconciled.shop.stock(sku) == 20, 10, "the shop is set back to 20")
    with pytest.raises(DiscrepancyResolved):
        reconciled.review.resolve(discrepancy.id, "accept_channel", "no", by="bob")


def test_accepting_the_channel_moves_the_ledger_to_what_it_showed(reconciled):
    sku = reconciled.stocked(20)
    reconciled.shop.edit(sku, 8)
    reconciled.check(sku)
    [discrepancy] = reconciled.review.listed(state="open", sku=sku)
    reconciled.review.resolve(discrepancy.id, "accept_channel", "shelf count: 8", by="alice")
    item = LedgerQueries(reconciled.ledger).get_item(sku)
    assert item.levels_at("main").on_hand == 8
    reconciled.settled(sku, 8)
    assert reconciled.shop.stock(sku) == 8
    assert reconciled.check(sku) == LevelsChecked(read=1)


def test_a_burst_of_sales_and_the_pushes_it_causes_are_never_taken_for_drift(reconciled):
    """Shoppers buy on the shop (the ledger records each sale as its webhook would, the channel
    lowers its count) and on other channels (the ledger pushes the new quantities), while
    reconciliation keeps reading: it finds no drift."""
    skus = [reconciled.stocked(400) for _ in range(3)]
    rng = random.Random(13)
    stop = threading.Event()

    def shoppers() -> None:
        while not stop.is_set():
            sku = rng.choice(skus)
            if rng.random() < 0.5:  # the channel counts it, then its webhook reaches us
                reconciled.shop.buy(sku, 1)
                reconciled.ledger.record(
                    change(K.SALE, sku, 1, source=CHANNEL, occurred_at=datetime.now(UTC))
                )
            else:
                reconciled.ledger.record(change(K.SALE, sku, rng.randint(1, 3), source="elsewhere"))
            time.sleep(0.01)

    burst = threading.Thread(target=shoppers)
    burst.start()
    found = LevelsChecked()
    try:
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            # A webhook here takes a few milliseconds: half a second covers it.
            found += reconciled.check(*skus, settle=0.5)
    finally:
        stop.set()
        burst.join()
    assert found.read > 20
    assert (found.corrected, found.escalated) == (0, 0)


def test_the_review_api_lists_discrepancies_and_resolves_them(reconciled):
    sku = reconciled.stocked(20)
    reconciled.shop.edit(sku, 8)
    reconciled.check(sku)
    with TestClient(create_app(Api(reconciled.ledger, review=reconciled.review))) as client:
        wanted = {"state": "open", "channel": CHANNEL, "sku": sku}
        [found] = client.get("/api/v1/discrepancies", params=wanted).json()["discrepancies"]
        assert (found["observed"], found["expected"], found["difference"]) == (8, 20, -12)
        assert (found["state"], found["resolution"]) == ("open", None)
        path = f"/api/v1/discrepancies/{found['id']}/resolve"
        body = {"action": "push_ledger", "reason": "a typo in the admin"}
        answer = client.post(path, json=body)
        assert answer.status_code == 200
        assert answer.json()["resolution"]["action"] == "push_ledger"
        assert client.post(path, json=body).status_code == 409
        assert client.post(path, json={"action": "ignore", "reason": "x"}).status_code == 422
        assert client.get("/api/v1/discrepancies", params={"state": "closed"}).status_code == 400
        unknown = "/api/v1/discrepancies/00000000-0000-0000-0000-000000000000/resolve"
        assert client.post(unknown, json=body).status_code == 404
    eventually(lambda: reconciled.shop.stock(sku) == 20, 10, "the shop is set back to 20")
