"""The eBay gateway against the sandbox account over HTTP: bulk updates of at most 25 SKUs
setting items and offers, tokens refreshed when they expire, eBay's refusals and limits, reads
in bulk and by page, and each listing's daily revisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from infrastructure.channels.base import LevelReading
from infrastructure.channels.ebay.config import EbayConfig
from infrastructure.channels.ebay.gateway import EbayGateway
from infrastructure.channels.ebay.kind import EBAY
from infrastructure.channels.ebay.level_reading import read_levels
from infrastructure.channels.ebay.revisions import RevisionBudget
from infrastructure.channels.gateway import (
    ChannelAuthFailed,
    ChannelUnavailable,
    Push,
    PushStatus,
    Throttled,
    Ungated,
)
from sandboxes.ebay.seller import EbaySandbox, Offer
from sandboxes.server import SandboxServer
from tests.integration.ebay_fixtures import account as account  # noqa: PLC0414 (a fixture: the alias marks it used)


def gateway_for(url: str, **options) -> EbayGateway:
    return EbayGateway(url, "sandbox-app", "sandbox-cert", "sandbox-refresh", **options)


def reading_channel(url: str, **options) -> EbayConfig:
    return EbayConfig(
        id="ebay-read",
        api_base_url=url,
        client_id="sandbox-app",
        client_secret="sandbox-cert",
        refresh_token="sandbox-refresh",
        **options,
    )


def test_a_push_sets_the_item_and_every_offer_so_the_listing_shows_it(account):
    seller, url = account
    seller.add_item("A", 5, offers=2)
    seller.add_item("B", 3)
    gateway = gateway_for(url)
    results = gateway.push([Push("A", 9, 1, 5), Push("B", 0, 1, 3)])
    assert [(r.sku, r.status, r.channel_quantity) for r in results] == [
        ("A", PushStatus.APPLIED, 9),
        ("B", PushStatus.APPLIED, 0),
    ]
    assert (seller.shown("A"), seller.shown("B")) == (9, 0)
    assert [o.available_quantity for o in seller.items["A"].offers] == [9, 9]
    assert seller.log.count("inventory.bulk_update") == 1
    assert seller.log.count("inventory.offers") == 2  # learned once per SKU ...
    gateway.push([Push("A", 8, 2, 9)])
    assert seller.log.count("inventory.offers") == 2  # ... and kept
    gateway.close()


def test_an_offer_ended_since_it_was_looked_up_goes_again_and_is_looked_up_afresh(account):
    seller, url = account
    seller.add_item("A", 5)
    seller.add_item("B", 5)
    gateway = gateway_for(url)
    gateway.push([Push("A", 4, 1, 5), Push("B", 4, 1, 5)])
    [ended] = seller.items["A"].offers
    seller.items["A"].offers = [Offer("900", "A", "907", 4)]  # ended, listed again under a new id
    results = gateway.push([Push("A", 3, 2, 4), Push("B", 3, 2, 4)])
    assert [(r.sku, r.status) for r in results] == [("B", PushStatus.APPLIED)]  # A: no result
    assert seller.log.count("inventory.offers") == 2
    [again] = gateway.push([Push("A", 3, 2, 4)])
    assert (again.status, seller.shown("A")) == (PushStatus.APPLIED, 3)
    assert seller.log.count("inventory.offers") == 3  # A's offers looked up afresh, once
    assert ended.offer_id != "900"
    gateway.close()


def test_a_push_of_what_the_listing_shows_costs_no_call_and_no_revision(account):
    seller, url = account
    seller.add_item("A", 5)
    gateway = gateway_for(url)
    [result] = gateway.push([Push("A", 5, 1, 5)])
    assert (result.status, seller.log.count()) == (PushStatus.APPLIED, 0)
    gateway.close()


def test_an_unknown_sku_and_a_refused_item_are_told_apart(account):
    seller, url = account
    seller.add_item("A", 5)
    gateway = gateway_for(url, budget=RevisionBudget(per_day=1000, burst=1000))
    seller.revisions[(seller.items["A"].offers[0].listing_id, seller.today())] = 250
    unknown, refused = gateway.push([Push("NOPE", 1, 1, None), Push("A", 4, 1, 5)])
    assert unknown.status is PushStatus.UNKNOWN_SKU
    assert refused.status is PushStatus.REJECTED
    assert refused.detail.startswith("EBAY_25020: REVISION_LIMIT")
    assert seller.shown("A") == 5
    gateway.close()


def test_an_item_ebay_fails_on_its_side_gets_no_result_goes_again_and_spends_no_revision(
    account,
):
    seller, url = account
    seller.add_item("A", 1, offers=2)
    seller.add_item("B", 1)
    gateway = gateway_for(url)
    seller.faults.fail_items("A")
    results = gateway.push([Push("A", 0, 1, 1), Push("B", 0, 1, 1)])
    assert [(r.sku, r.status) for r in results] == [("B", PushStatus.APPLIED)]
    assert (seller.shown("A"), seller.shown("B")) == (1, 0)
    listing = seller.items["A"].offers[0].listing_id
    assert gateway.revisions.counts([f"{seller.today()}:{listing}"]) == [0]
    [again] = gateway.push([Push("A", 0, 2, 1)])
    assert (again.status, seller.shown("A")) == (PushStatus.APPLIED, 0)
    gateway.close()


def test_more_than_25_skus_are_refused_by_ebay_and_never_sent_by_the_gateway(account):
    seller, url = account
    for n in range(26):
        seller.add_item(f"S{n}", 1)
    gateway = gateway_for(url)
    with pytest.raises(ValueError, match="25"):
        gateway.push([Push(f"S{n}", 2, 1, 1) for n in range(26)])
    assert gateway.max_batch == 25
    token = seller.issue("user")["access_token"]
    body = {
        "requests": [
            {"sku": f"S{n}", "shipToLocationAvailability": {"quantity": 2}} for n in range(26)
        ]
    }
    answer = httpx.post(
        f"{url}/sell/inventory/v1/bulk_update_price_quantity",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 400
    assert all(seller.shown(f"S{n}") == 1 for n in range(26))
    gateway.close()


def test_an_expired_token_is_replaced_once_and_the_push_goes_through(account):
    seller, url = account
    seller.add_item("A", 5)
    gateway = gateway_for(url)
    gateway.push([Push("A", 4, 1, 5)])
    seller.expire_tokens()
    [result] = gateway.push([Push("A", 3, 2, 4)])
    assert (result.status, seller.shown("A")) == (PushStatus.APPLIED, 3)
    assert seller.log.count("oauth.token") == 2
    assert seller.log.count("inventory.bulk_update", 401) == 1
    gateway.close()


def test_a_token_that_expires_by_its_lifetime_is_renewed_before_use():
    seller = EbaySandbox(token_lifetime=60)  # the gateway stops using a token 60 s early
    seller.add_item("A", 5)
    with SandboxServer(seller.app) as server:
        gateway = gateway_for(server.url)
        gateway.push([Push("A", 4, 1, 5)])
        gateway.push([Push("A", 3, 2, 4)])
        # A token for each of the three calls (the offers, two updates), none refused.
        assert seller.log.count("oauth.token") == 3
        assert seller.log.count("inventory.bulk_update", 200) == 2
        gateway.close()
    seller.close()


def test_a_refresh_token_ebay_refuses_is_an_auth_failure(account):
    seller, url = account
    seller.add_item("A", 5)
    gateway = EbayGateway(url, "sandbox-app", "sandbox-cert", "revoked")
    with pytest.raises(ChannelAuthFailed, match="refresh_token"):
        gateway.push([Push("A", 4, 1, 5)])
    gateway.close()


def test_a_429_is_throttled_and_an_outage_is_unavailable(account):
    seller, url = account
    seller.add_item("A", 5)
    gateway = gateway_for(url, default_retry_after=2.0)
    gateway.push([Push("A", 4, 1, 5)])
    seller.throttle(calls=1)
    with pytest.raises(Throttled) as throttled:
        gateway.push([Push("A", 3, 2, 4)])
    assert throttled.value.retry_after == 2.0
    seller.faults.outage = True
    with pytest.raises(ChannelUnavailable):
        gateway.push([Push("A", 3, 2, 4)])
    seller.faults.outage = False
    [result] = gateway.push([Push("A", 3, 2, 4)])
    assert (result.status, seller.shown("A")) == (PushStatus.APPLIED, 3)
    gateway.close()


def test_a_listing_past_its_pace_is_held_until_a_move_to_zero(account):
    """With a budget of 12 (2 for zero, 4 more for moves down, a burst of 3 at the start of the
    day), a listing taking raises and cuts spends the burst, is held, and still goes to zero."""
    seller, url = account
    [listing] = seller.add_item("A", 50)
    midnight = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)  # eBay's day has just begun
    budget = RevisionBudget(per_day=12, zero_reserve=2, down_reserve=4, burst=3)
    gateway = gateway_for(url, budget=budget, clock=lambda: midnight)
    shows, applied, held = 50, [], []
    for quantity in (49, 48, 47, 46, 45, 0):
        [result] = gateway.push([Push("A", quantity, 1, shows)])
        if result.status is PushStatus.APPLIED:
            shows = quantity
            applied.append(quantity)
        else:
            held.append((quantity, result.status, result.ticket))
    assert applied == [49, 48, 47, 0]
    assert [(q, status) for q, status, _ in held] == [
        (46, PushStatus.SUBMITTED),
        (45, PushStatus.SUBMITTED),
    ]
    assert seller.shown("A") == 0
    assert seller.revisions_today(listing) == 4
    assert seller.log.count("inventory.bulk_update") == 4  # a hold costs no call
    gateway.close()


def test_a_hold_settles_with_no_result_and_no_call_once_its_time_is_up(account):
    seller, url = account
    seller.add_item("A", 50)
    now = [datetime(2026, 12, 2, 8, 0, tzinfo=UTC)]
    budget = RevisionBudget(per_day=12, zero_reserve=2, down_reserve=4, burst=0)
    gateway = gateway_for(url, budget=budget, clock=lambda: now[0])
    [held] = gateway.push([Push("A", 51, 1, 50)])
    assert held.status is PushStatus.SUBMITTED
    assert gateway.settle(held.ticket, ["A"]) is None
    now[0] += timedelta(seconds=30)
    calls = seller.log.count()
    assert gateway.settle(held.ticket, ["A"]) == []
    assert seller.log.count() == calls
    with pytest.raises(ValueError, match="not a hold"):
        gateway.settle("feed-1", ["A"])
    gateway.close()


def test_revisions_are_counted_where_every_worker_sees_them(account):
    seller, url = account
    seller.add_item("A", 50)
    midnight = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    budget = RevisionBudget(per_day=12, zero_reserve=2, down_reserve=4, burst=3)

    class SharedGate(Ungated):
        def __init__(self):
            self.shared = super().tally("revisions")

        def tally(self, name):
            return self.shared

    gate = SharedGate()
    first, second = (
        gateway_for(url, budget=budget, clock=lambda: midnight, gate=gate) for _ in range(2)
    )
    assert first.push([Push("A", 49, 1, 50)])
    assert second.push([Push("A", 48, 2, 49)])
    assert first.push([Push("A", 47, 3, 48)])
    [held] = second.push([Push("A", 46, 4, 47)])
    assert held.status is PushStatus.SUBMITTED  # the burst is spent, by both
    first.close()
    second.close()


def test_levels_are_read_25_at_a_time_by_name_and_200_a_page_for_the_catalogue(account):
    seller, url = account
    for n in range(230):
        seller.add_item(f"S{n:03d}", n)
    channel = reading_channel(url, sku_map={"S007": "OURS-7"})
    gateway = gateway_for(url)
    named = list(
        read_levels(channel, gateway, ["OURS-7", *(f"S{n:03d}" for n in range(40)), "GONE"])
    )
    assert seller.log.count("inventory.bulk_get") == 2
    assert {r.sku: r.quantity for r in named}["OURS-7"] == 7
    assert len(named) == 40  # S007 read as OURS-7; GONE listed nowhere
    catalogue = list(read_levels(channel, gateway, None))
    assert seller.log.count("inventory.items") == 2
    assert len(catalogue) == 230
    assert LevelReading in {type(r) for r in catalogue}
    gateway.close()


def test_the_catalogue_is_read_a_page_a_call_and_a_new_gateway_resumes_at_the_stored_cursor(
    account,
):
    seller, url = account
    for n in range(450):  # three pages: 200, 200, 50
        seller.add_item(f"P{n:03d}", n)
    channel = reading_channel(url)
    assert EBAY.read_page is not None
    first = gateway_for(url)
    one = EBAY.read_page(channel, first, None)
    two = EBAY.read_page(channel, first, one.next)
    first.close()  # the worker dies; the run kept the cursor of the third page
    second = gateway_for(url)
    three = EBAY.read_page(channel, second, two.next)
    second.close()
    pages = [one, two, three]
    assert [len(page.readings) for page in pages] == [200, 200, 50]
    assert three.next is None
    read = {r.sku: r.quantity for page in pages for r in page.readings}
    assert read == {f"P{n:03d}": n for n in range(450)}
    assert seller.log.count("inventory.items") == len(pages)  # no page read twice


def test_a_catalogue_page_refuses_a_cursor_it_did_not_make(account):
    _, url = account
    assert EBAY.read_page is not None
    gateway = gateway_for(url)
    for cursor in ("not-an-offset", "-200", ""):
        with pytest.raises(ValueError, match="not an eBay inventory offset"):
            EBAY.read_page(reading_channel(url), gateway, cursor)
    gateway.close()


def test_past_the_daily_call_limit_the_gateway_waits_longer_each_time_until_ebays_next_day():
    """Not a call every 5 s until midnight: the waits double, the last ends at eBay's next day
    (an hour away on the gateway's clock, moved by each wait instead of sleeping)."""
    seller = EbaySandbox(calls_per_day=2)
    seller.add_item("A", 5)
    now = [datetime(2026, 12, 3, 7, 0, tzinfo=UTC)]  # 23:00 in Los Angeles
    with SandboxServer(seller.app) as server:
        gateway = gateway_for(server.url, default_retry_after=5.0, clock=lambda: now[0])
        gateway.push([Push("A", 4, 1, 5)])  # the offers, then the update: the day's two calls
        waits = []
        while now[0] < datetime(2026, 12, 3, 8, 0, tzinfo=UTC):
            with pytest.raises(Throttled) as throttled:
                gateway.push([Push("A", 3, 2, 4)])
            waits.append(throttled.value.retry_after)
            now[0] += timedelta(seconds=throttled.value.retry_after)
        assert waits[:4] == [5.0, 10.0, 20.0, 40.0]
        assert sum(waits) == 3600  # the last wait ends at Pacific midnight
        assert len(waits) == seller.log.count("inventory.bulk_update", 429) == 10
        seller.calls_today.clear()  # eBay's new day
        [result] = gateway.push([Push("A", 3, 2, 4)])
        assert (result.status, seller.shown("A")) == (PushStatus.APPLIED, 3)
        seller.calls_per_day = 0
        with pytest.raises(Throttled) as throttled:  # served since: the waits start over
            gateway.push([Push("A", 2, 3, 3)])
        assert throttled.value.retry_after == 5.0
        gateway.close()
    seller.close()


def test_past_the_daily_call_limit_ebay_answers_429_and_the_gateway_is_throttled():
    seller = EbaySandbox(calls_per_day=2)
    seller.add_item("A", 5)
    with SandboxServer(seller.app) as server:
        gateway = gateway_for(server.url)
        gateway.push([Push("A", 4, 1, 5)])  # the offers, then the update
        with pytest.raises(Throttled):
            gateway.push([Push("A", 3, 2, 4)])
        assert seller.log.count("inventory.bulk_update", 429) == 1
        assert seller.shown("A") == 4
        gateway.close()
    seller.close()


def test_an_offer_lowered_by_hand_is_not_seen_by_a_level_read_until_the_next_push_sets_it(
    account,
):
    """The documented limit (README, reconciliation's limits): eBay reads offers one SKU a call
    (`GET /offer?sku=`, no bulk read), so a level read takes the item's quantity, not the least
    of it and its offers' that the listing shows; the next push of a new quantity sets both."""
    seller, url = account
    seller.add_item("A", 9, offers=2)
    channel = reading_channel(url)
    gateway = gateway_for(url)
    with seller.lock:  # the seller revises one listing's quantity in Seller Hub
        seller.items["A"].offers[1].available_quantity = 2
    assert seller.shown("A") == 2
    assert [(r.sku, r.quantity) for r in read_levels(channel, gateway, ["A"])] == [("A", 9)]
    assert [(r.sku, r.quantity) for r in read_levels(channel, gateway, None)] == [("A", 9)]
    assert seller.log.count("inventory.offers") == 0  # within the page budget: no offer reads
    gateway.push([Push("A", 8, 1, 9)])
    assert [o.available_quantity for o in seller.items["A"].offers] == [8, 8]
    assert seller.shown("A") == 8
    gateway.close()
