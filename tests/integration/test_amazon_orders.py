"""Amazon's orders listed for reconciliation (`order_listing.py`) against the sandbox: each comes as
the ORDER_CHANGE notification its last change publishes, so our translator reads it unchanged and
the ledger's own aggregates apply it once, whether its notification was lost or not; a
cancellation found by poll is applied; pages follow NextToken; the Orders API's rules in words are
kept by the sandbox; and, where Amazon's Orders model is kept beside the others, every request and
answer is one it allows."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from application.intake import Delivery, Translation
from infrastructure.channels.amazon import translator
from infrastructure.channels.amazon.config import AmazonConfig
from infrastructure.channels.amazon.order_listing import list_orders
from infrastructure.channels.base import PolledOrder
from infrastructure.channels.gateway import Throttled
from sandboxes.amazon.orders import order_change
from tests.integration.amazon_models import SPECS, required_models
from tests.integration.test_amazon_specs import MARKETPLACE, Seller, serve
from tests.orders import Stock


@pytest.fixture
def seller() -> Iterator[Seller]:
    yield from serve()


def channel(seller: Seller) -> AmazonConfig:
    return AmazonConfig.model_validate(
        {"id": "amazon-us", **seller.sandbox.channel_settings(seller.url)}
    )


def polled(seller: Seller, since: datetime | None = None) -> list[PolledOrder]:
    now = datetime.now(UTC)
    with seller.gateway() as gateway:
        return list(list_orders(channel(seller), gateway, since or now - timedelta(hours=1), now))


def translated(seller: Seller, topic: str, body: bytes) -> Translation:
    delivery = Delivery(1, "amazon-us", "key", topic, {}, body, datetime.now(UTC))
    return translator.translate(channel(seller), delivery, None)


def notified(seller: Seller, order_id: str) -> Translation:
    """What the notification of the order as it is now teaches (the one the sandbox publishes)."""
    message = json.dumps(order_change(seller.sandbox.orders._orders[order_id], seller.sandbox))
    body = json.dumps({"Type": "Notification", "Message": message}).encode()
    return translated(seller, translator.ORDER_CHANGE, body)


def applied(seller: Seller, orders: list[PolledOrder], stock: Stock) -> Stock:
    for order in orders:
        stock.apply(translated(seller, order.topic, order.body))
    return stock


def opening(sku: str, units: int) -> Stock:
    stock = Stock()
    stock.receive(sku, units)
    return stock


def test_a_sale_whose_notification_is_lost_is_found_by_the_poll_and_applied_once(seller):
    seller.sandbox.add_listing("AMZ-1", 10)
    order_id = seller.sandbox.buy("AMZ-1", 3, notify=False)
    first, again = polled(seller), polled(seller)  # overlapping polls find it twice
    assert [o.order_id for o in first] == [order_id]
    assert first[0].topic == "ORDER_CHANGE"
    stock = applied(seller, first + again, opening("AMZ-1", 10))
    levels = stock.levels()[("AMZ-1", "main")]
    assert (levels.on_hand, levels.committed) == (10, 3)


def test_an_order_seen_by_notification_and_by_poll_counts_once(seller):
    seller.sandbox.add_listing("AMZ-1", 10)
    order_id = seller.sandbox.buy("AMZ-1", 2)
    stock = opening("AMZ-1", 10)
    stock.apply(notified(seller, order_id))
    applied(seller, polled(seller), stock)
    assert stock.levels()[("AMZ-1", "main")].committed == 2
    assert len(stock.changes) == 2  # the opening count and one sale


def test_a_cancellation_found_by_poll_is_applied(seller):
    seller.sandbox.add_listing("AMZ-1", 10)
    order_id = seller.sandbox.buy("AMZ-1", 4)
    stock = opening("AMZ-1", 10)
    stock.apply(notified(seller, order_id))
    seller.sandbox.cancel(order_id, notify=False)
    applied(seller, polled(seller), stock)
    levels = stock.levels()[("AMZ-1", "main")]
    assert (levels.on_hand, levels.committed) == (10, 0)


def test_a_shipment_found_by_poll_ships_the_units_committed(seller):
    seller.sandbox.add_listing("AMZ-1", 10)
    order_id = seller.sandbox.buy("AMZ-1", 4, notify=False)
    seller.sandbox.ship(order_id, notify=False)
    levels = applied(seller, polled(seller), opening("AMZ-1", 10)).levels()[("AMZ-1", "main")]
    assert (levels.on_hand, levels.committed) == (6, 0)


def test_only_orders_changed_in_the_window_are_listed_across_pages(seller):
    seller.sandbox.set_rate("getOrders", 100.0, 100)
    seller.sandbox.set_rate("getOrderItems", 1000.0, 1000)
    seller.sandbox.add_listing("AMZ-1", 1000)
    before = seller.sandbox.buy("AMZ-1", 1, notify=False)
    since = datetime.now(UTC) + timedelta(milliseconds=5)
    while datetime.now(UTC) <= since:
        pass
    bought = [seller.sandbox.buy("AMZ-1", 1, notify=False) for _ in range(130)]
    found = polled(seller, since)
    assert [o.order_id for o in found] == bought
    assert before not in {o.order_id for o in found}
    calls = [operation for _, operation, _ in seller.sandbox.log.calls]
    assert calls.count("getOrders") == 2  # pages of 100
    assert calls.count("getOrderItems") == 130


def test_a_throttled_listing_raises_throttled(seller):
    seller.sandbox.add_listing("AMZ-1", 10)
    seller.sandbox.buy("AMZ-1", 1, notify=False)
    seller.sandbox.set_rate("getOrders", 0.01, 0)
    with pytest.raises(Throttled):
        polled(seller)


def test_the_sandbox_refuses_what_the_orders_model_says_in_words(seller):
    url = f"{seller.url}/orders/v0/orders"
    headers = seller.headers()
    now = datetime.now(UTC)
    no_date = httpx.get(url, params={"MarketplaceIds": MARKETPLACE}, headers=headers)
    assert no_date.status_code == 400
    assert no_date.json()["errors"][0]["code"] == "InvalidInput"
    too_recent = {
        "MarketplaceIds": MARKETPLACE,
        "LastUpdatedAfter": (now - timedelta(hours=1)).isoformat(),
        "LastUpdatedBefore": (now - timedelta(seconds=30)).isoformat(),
    }
    assert httpx.get(url, params=too_recent, headers=headers).status_code == 400
    wrong_token = {"MarketplaceIds": MARKETPLACE, "NextToken": "nope"}
    assert httpx.get(url, params=wrong_token, headers=headers).status_code == 400
    missing = httpx.get(f"{url}/903-0000000-0000000/orderItems", headers=headers)
    assert missing.status_code == 404


def test_a_lost_order_is_made_and_cancelled_through_the_control_routes(seller):
    seller.sandbox.add_listing("AMZ-1", 10)
    bought = httpx.post(
        f"{seller.url}/_sandbox/buy", json={"sku": "AMZ-1", "quantity": 2, "notify": False}
    )
    order_id = bought.json()["AmazonOrderId"]
    cancelled = httpx.post(f"{seller.url}/_sandbox/orders/{order_id}/cancel", json={})
    assert cancelled.status_code == 200
    assert seller.sandbox.stock("AMZ-1") == 10
    [found] = polled(seller)
    notification = json.loads(json.loads(found.body)["Message"])
    summary = notification["Payload"]["OrderChangeNotification"]["Summary"]
    assert (found.order_id, summary["OrderStatus"]) == (order_id, "Canceled")


def test_every_order_listing_request_and_answer_is_what_the_orders_model_allows(seller):
    models = required_models()
    if not models.covers("getOrders"):
        pytest.skip(f"Amazon's Orders model (ordersV0.json) is not kept in {SPECS}")
    seller.sandbox.add_listing("AMZ-1", 10)
    seller.sandbox.cancel(seller.sandbox.buy("AMZ-1", 2, notify=False), notify=False)
    assert len(polled(seller)) == 1
    for request, response in seller.recording.exchanges:
        operation = models.match(request.method, request.url.raw_path.decode().split("?")[0])
        if operation is None or not operation.id.startswith("getOrder"):
            continue
        query = request.url.params.multi_items()
        assert models.request_problems(operation.id, query, request.content) == []
        problems = models.response_problems(
            operation.id, response.status_code, response.json(), dict(response.headers)
        )
        assert problems == []
