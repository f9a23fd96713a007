"""eBay's offers looked up survive a restart: a gateway files each SKU's offers in the pushers'
store, and a new gateway over the same database pushes with them, asking eBay for none while the
lookup holds (an hour); an offer eBay no longer has is forgotten on file and looked up again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from infrastructure.channels.ebay.gateway import EbayGateway
from infrastructure.channels.gateway import UNGATED, Push, PushStatus
from infrastructure.channels.kinds import gateway_for
from infrastructure.channels.offer_file import Lookup
from infrastructure.config import Config
from infrastructure.push.store import PushStore
from infrastructure.queue import make_broker
from interfaces.composition import build_propagation
from sandboxes.ebay.seller import EbaySandbox, Offer
from tests.integration.ebay_fixtures import account as account  # noqa: PLC0414 (a fixture: the alias marks it used)

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(scratch_database) -> Iterator[PushStore]:
    store = PushStore(scratch_database)
    yield store
    store.close()


@pytest.fixture
def channel() -> str:
    return f"ebay-{uuid.uuid4().hex[:8]}"


def gateway_for_url(url: str, channel: str, store: PushStore, **options) -> EbayGateway:
    return EbayGateway(
        url, "sandbox-app", "sandbox-cert", "sandbox-refresh", channel_id=channel, offers=store,
        **options,
    )  # fmt: skip


def ebay_table(seller: EbaySandbox, url: str, channel: str, **extra: Any) -> dict[str, Any]:
    """The table of an eBay channel pushing to `seller`'s account at `url`, with `extra` keys."""
    return {
        "id": channel,
        "kind": "ebay",
        "api_base_url": url,
        "client_id": seller.client_id,
        "client_secret": seller.client_secret,
        "refresh_token": seller.refresh_token,
        **extra,
    }


def filed(store: PushStore, channel: str, *skus: str) -> dict[str, tuple[tuple[str, str], ...]]:
    return {sku: lookup.offers for sku, lookup in store.filed_offers(channel, skus).items()}


def offers_of(seller: EbaySandbox, sku: str) -> tuple[tuple[str, str], ...]:
    return tuple((o.offer_id, o.listing_id) for o in seller.items[sku].offers)


def test_a_gateway_started_afresh_pushes_with_the_offers_on_file_and_looks_none_up(
    account, store, channel
):
    seller, url = account
    seller.add_item("A", 5, offers=2)
    seller.add_item("B", 5)
    seller.add_item("C", 5, offers=0)  # an item with no listing yet
    first = gateway_for_url(url, channel, store, clock=lambda: NOW)
    first.push([Push("A", 4, 1, 5), Push("B", 4, 1, 5), Push("C", 4, 1, 5)])
    first.close()  # the worker stops: a deploy
    assert seller.log.count("inventory.offers") == 3
    assert filed(store, channel, "A", "B", "C") == {
        "A": offers_of(seller, "A"),
        "B": offers_of(seller, "B"),
        "C": (),
    }

    later = NOW + timedelta(minutes=59)
    second = gateway_for_url(url, channel, store, clock=lambda: later)
    results = second.push([Push("A", 3, 2, 4), Push("B", 3, 2, 4), Push("C", 3, 2, 4)])
    assert [(r.sku, r.status) for r in results] == [
        ("A", PushStatus.APPLIED),
        ("B", PushStatus.APPLIED),
        ("C", PushStatus.APPLIED),
    ]
    assert seller.log.count("inventory.offers") == 3  # none looked up again
    assert [o.available_quantity for o in seller.items["A"].offers] == [3, 3]
    assert (seller.shown("A"), seller.shown("B"), seller.shown("C")) == (3, 3, 3)
    second.close()


def test_an_offer_on_file_ebay_no_longer_has_is_looked_up_again_and_the_file_corrected(
    account, store, channel
):
    seller, url = account
    seller.add_item("A", 5)
    seller.add_item("B", 5)
    first = gateway_for_url(url, channel, store)
    first.push([Push("A", 4, 1, 5), Push("B", 4, 1, 5)])
    first.close()
    seller.items["A"].offers = [Offer("900", "A", "907", 4)]  # ended, listed again under a new id

    second = gateway_for_url(url, channel, store)
    results = second.push([Push("A", 3, 2, 4), Push("B", 3, 2, 4)])
    assert [(r.sku, r.status) for r in results] == [("B", PushStatus.APPLIED)]  # A: no result
    assert filed(store, channel, "A", "B") == {"B": offers_of(seller, "B")}  # A's forgotten
    assert seller.log.count("inventory.offers") == 2

    [again] = second.push([Push("A", 3, 2, 4)])
    assert (again.status, seller.shown("A")) == (PushStatus.APPLIED, 3)
    assert seller.log.count("inventory.offers") == 3  # A's offers looked up afresh, once
    assert filed(store, channel, "A") == {"A": (("900", "907"),)}
    second.close()

    third = gateway_for_url(url, channel, store)
    third.push([Push("A", 2, 3, 3)])
    assert seller.log.count("inventory.offers") == 3  # the corrected file serves the next start
    assert seller.items["A"].offers[0].available_quantity == 2
    third.close()


def test_a_lookup_on_file_an_hour_old_is_looked_up_again_and_filed_afresh(account, store, channel):
    seller, url = account
    seller.add_item("A", 5)
    first = gateway_for_url(url, channel, store, clock=lambda: NOW)
    first.push([Push("A", 4, 1, 5)])
    first.close()
    seller.items["A"].offers.append(Offer("950", "A", "957", 5))  # a listing published since

    later = NOW + timedelta(hours=1)
    second = gateway_for_url(url, channel, store, clock=lambda: later)
    [result] = second.push([Push("A", 3, 2, 4)])
    assert result.status is PushStatus.APPLIED
    assert seller.log.count("inventory.offers") == 2
    assert [o.available_quantity for o in seller.items["A"].offers] == [3, 3]
    [(_, lookup)] = store.filed_offers(channel, ["A"]).items()
    assert (lookup.offers, lookup.at) == (offers_of(seller, "A"), later)
    second.close()


def test_a_lookup_filed_later_by_another_worker_is_not_replaced_by_an_older_one(store, channel):
    newer, older = Lookup((("2", "9"),), NOW), Lookup((("1", "8"),), NOW - timedelta(minutes=1))
    store.file_offers(channel, {"A": newer})
    store.file_offers(channel, {"A": older})
    assert store.filed_offers(channel, ["A"]) == {"A": newer}
    store.forget_offers(channel, ["A"])
    assert store.filed_offers(channel, ["A"]) == {}


def test_an_ebay_channel_s_push_gateway_files_its_offers_under_the_channel_s_own_skus(
    account, store, channel
):
    seller, url = account
    seller.add_item("THEIRS-1", 5)
    table = ebay_table(seller, url, channel, sku_map={"THEIRS-1": "OURS-1"})
    config = Config.model_validate({"channels": [table]})
    for _ in range(2):  # a start, and another
        gateway = gateway_for(config.channels[0], UNGATED, offers=store)
        assert gateway is not None
        [result] = gateway.push([Push("OURS-1", 4, 1, 5)])
        assert (result.sku, result.status) == ("OURS-1", PushStatus.APPLIED)
        gateway.close()
    assert seller.log.count("inventory.offers") == 1
    assert filed(store, channel, "THEIRS-1") == {"THEIRS-1": offers_of(seller, "THEIRS-1")}


def test_the_composition_root_gives_ebay_gateways_the_pushers_store_as_their_offer_file(
    account, scratch_database, redis_url, channel
):
    seller, url = account
    seller.add_item("A", 5)
    config = Config.model_validate({"channels": [ebay_table(seller, url, channel)]})
    for quantity in (4, 3):  # a start, and one after a restart
        broker = make_broker(redis_url, scratch_database, f"test-{uuid.uuid4().hex[:8]}")
        intake = SimpleNamespace(queues=SimpleNamespace(broker=broker))  # only its broker is used
        propagation = build_propagation(scratch_database, redis_url, config, intake)
        try:
            [result] = propagation.pushers[channel].gateway.push([Push("A", quantity, 1, 5)])
            assert result.status is PushStatus.APPLIED
            assert filed(propagation.store, channel, "A") == {"A": offers_of(seller, "A")}
        finally:
            propagation.stop()
            broker.close()
    assert seller.log.count("inventory.offers") == 1
    assert seller.shown("A") == 3


def test_a_call_with_offers_known_looks_up_two_new_skus_and_leaves_the_rest_to_later_calls(
    account, store, channel
):
    seller, url = account
    for sku in "ABCDEFG":
        seller.add_item(sku, 5)
    gateway = gateway_for_url(url, channel, store)
    gateway.push([Push("A", 4, 1, 5), Push("B", 4, 1, 5)])  # A's and B's offers known from here
    assert seller.log.count("inventory.offers") == 2

    pushes = [Push(sku, 3, 2, 4 if sku in "AB" else 5) for sku in "CADEBFG"]
    results = gateway.push(pushes)
    # A and B go at once with the first two new SKUs in the call's order; E, F and G, no result.
    assert sorted((r.sku, r.status) for r in results) == [
        (sku, PushStatus.APPLIED) for sku in "ABCD"
    ]
    assert seller.log.count("inventory.offers") == 4
    assert [seller.shown(sku) for sku in "ABCDEFG"] == [3, 3, 3, 3, 5, 5, 5]
    operations = [operation for _, operation, _ in seller.log.entries()]
    assert operations[-3:] == ["inventory.offers", "inventory.offers", "inventory.bulk_update"]

    again = gateway.push([p for p in pushes if p.sku in "EFG"])  # the pusher's next call
    assert [(r.sku, r.status) for r in again] == [(sku, PushStatus.APPLIED) for sku in "EFG"]
    assert [seller.shown(sku) for sku in "EFG"] == [3, 3, 3]
    assert seller.log.count("inventory.offers") == 7  # nothing else ready: all three looked up
    gateway.close()
