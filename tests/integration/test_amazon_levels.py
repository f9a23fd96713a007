"""Amazon's levels read for reconciliation (`level_reading.py`) against the sandbox held to the
Listings Items model: the quantities read are the ones the listings show (hand edits too), in our
SKUs, 20 a search, every listing once past the thousand a search can page through, at the
documented rate."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from infrastructure.channels.amazon.config import AmazonConfig
from infrastructure.channels.amazon.level_reading import read_levels
from infrastructure.channels.gateway import Throttled
from infrastructure.push.gate import ChannelGate, GatePolicy
from infrastructure.push.memory_limits import MemoryLimits
from tests.integration.test_amazon_specs import MARKETPLACE, SELLER, Seller, problems_of, serve


@pytest.fixture
def seller() -> Iterator[Seller]:
    yield from serve()


def channel(seller: Seller, **fields) -> AmazonConfig:
    return AmazonConfig.model_validate(
        {"id": "amazon-us", **seller.sandbox.channel_settings(seller.url), **fields}
    )


def levels(readings) -> dict[str, int]:
    found = {}
    for reading in readings:
        assert reading.sku not in found, f"{reading.sku} read twice"
        found[reading.sku] = reading.quantity
    return found


def searches(seller: Seller) -> int:
    calls = seller.sandbox.log.calls
    return sum(1 for _, operation, _ in calls if operation == "searchListingsItems")


def test_levels_read_by_sku_are_what_the_listings_show_in_our_skus(seller):
    for number in range(45):
        seller.sandbox.add_listing(f"AMZ-{number}", number)
    seller.sandbox.add_listing("AMZ,COMMA", 7)
    seller.sandbox.set_stock("AMZ-3", 30)  # a hand edit in Seller Central
    mapped = channel(seller, sku_map={"AMZ-4": "OURS-4"})
    wanted = [f"AMZ-{n}" for n in range(45) if n != 4] + ["OURS-4", "AMZ,COMMA", "NOT-LISTED"]
    before = time.time()
    with seller.gateway() as gateway:
        readings = list(read_levels(mapped, gateway, wanted))
    expected = {f"AMZ-{n}": n for n in range(45) if n != 4}
    assert levels(readings) == {**expected, "AMZ-3": 30, "OURS-4": 4, "AMZ,COMMA": 7}
    assert all(before <= r.read_at.timestamp() <= time.time() for r in readings)
    assert searches(seller) == 3  # 47 SKUs without a comma, 20 a search
    called, problems = problems_of(seller.recording.exchanges)
    assert problems == []
    assert called == {"searchListingsItems", "getListingsItem"}


def test_every_listing_is_read_once_past_the_thousand_a_search_pages_through(seller):
    # Ten listings a second, so the next thousand re-reads at most ten: created as fast as the
    # test can, hundreds share a millisecond and the count of searches would follow the clock.
    seller.sandbox.set_rate("searchListingsItems", 1000.0, 1000)
    opened = datetime(2026, 1, 1, tzinfo=UTC)
    for number in range(1130):
        created = opened + timedelta(seconds=number // 10)
        seller.sandbox.add_listing(f"CAT-{number:05d}", number % 17, created=created)
    with seller.gateway() as gateway:
        found = levels(read_levels(channel(seller), gateway, None))
    assert found == {f"CAT-{n:05d}": n % 17 for n in range(1130)}
    assert searches(seller) <= 1.2 * 1130 / 20 + 2
    _, problems = problems_of(seller.recording.exchanges)
    assert problems == []


def test_levels_are_read_at_the_documented_rate_without_a_429(seller):
    for number in range(140):
        seller.sandbox.add_listing(f"AMZ-{number}", 1)
    gate = ChannelGate(MemoryLimits(), "amazon-us", GatePolicy())
    with seller.gateway(gate=gate) as gateway:
        found = levels(read_levels(channel(seller), gateway, [f"AMZ-{n}" for n in range(140)]))
    assert len(found) == 140
    assert all(status != 429 for _, _, status in seller.sandbox.log.calls)


def test_a_throttled_search_raises_throttled(seller):
    seller.sandbox.add_listing("AMZ-1", 1)
    seller.sandbox.set_rate("searchListingsItems", 0.01, 0)
    with seller.gateway() as gateway, pytest.raises(Throttled):
        list(read_levels(channel(seller), gateway, ["AMZ-1", "AMZ-2"]))


def test_the_sandbox_pages_a_search_and_a_hand_edit_through_its_control_route(seller):
    for number in range(25):
        seller.sandbox.add_listing(f"AMZ-{number:02d}", number)
    edited = httpx.post(f"{seller.url}/_sandbox/hand-edit/AMZ-07", json={"quantity": 70})
    assert edited.json() == {"sku": "AMZ-07", "quantity": 70}
    missing = httpx.post(f"{seller.url}/_sandbox/hand-edit/NOPE", json={"quantity": 1})
    assert missing.status_code == 404
    query = {
        "marketplaceIds": MARKETPLACE,
        "pageSize": "20",
        "sortBy": "sku",
        "sortOrder": "ASC",
        "includedData": "fulfillmentAvailability",
    }
    path = f"{seller.url}/listings/2021-08-01/items/{SELLER}"
    first = httpx.get(path, params=query, headers=seller.headers()).json()
    assert first["numberOfResults"] == 25
    assert [item["sku"] for item in first["items"]] == [f"AMZ-{n:02d}" for n in range(20)]
    token = first["pagination"]["nextToken"]
    second = httpx.get(path, params={**query, "pageToken": token}, headers=seller.headers())
    assert [item["sku"] for item in second.json()["items"]] == [
        f"AMZ-{n:02d}" for n in range(20, 25)
    ]
    assert "pagination" not in second.json()
    assert second.json()["items"][0]["fulfillmentAvailability"][0]["quantity"] == 20
