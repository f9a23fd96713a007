"""The Amazon SP-API gateway against the Amazon sandbox, over real HTTP."""

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

from infrastructure.channels.amazon.gateway import AmazonGateway
from infrastructure.channels.amazon.lwa import LwaCredentials
from infrastructure.channels.amazon.sandbox import AmazonSandbox
from infrastructure.channels.gateway import (
    ChannelAuthFailed,
    ChannelUnavailable,
    Push,
    PushStatus,
    Throttled,
)
from infrastructure.push.gate import ChannelGate, GatePolicy
from tests.integration.intake_fixtures import wait_until

SELLER, MARKETPLACE = "A3TH9S8BH6GOGM", "ATVPDKIKX0DER"
CREDENTIALS = LwaCredentials("amzn1.application-oa2-client.test", "lwa-secret", "Atzr|refresh")
APPLIED, UNKNOWN = PushStatus.APPLIED, PushStatus.UNKNOWN_SKU
SUBMITTED = PushStatus.SUBMITTED


def settled(gateway, ticket, skus, within=5.0):
    """Settle the feed as the pusher does, on later looks, until Amazon has answered."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            results = gateway.settle(ticket, skus)
        except Throttled as throttled:
            time.sleep(throttled.retry_after)
            continue
        if results is not None:
            return results
        time.sleep(0.02)
    raise AssertionError(f"feed {ticket} not settled within {within} s")


@dataclass
class Seller:
    sandbox: AmazonSandbox
    url: str

    def gateway(self, credentials: LwaCredentials = CREDENTIALS, **options) -> AmazonGateway:
        options = {"timeout": 2.0, "feed_poll_interval": 0.05, **options}
        return AmazonGateway(
            self.url,
            SELLER,
            MARKETPLACE,
            credentials,
            token_url=self.url + "/auth/o2/token",
            channel_id="amazon-us",
            **options,
        )

    def calls(self, operation: str, status: int | None = None) -> int:
        return self.sandbox.log.count(operation, status)


def seller_with(**options) -> Iterator[Seller]:
    sandbox = AmazonSandbox(
        seller_id=SELLER,
        marketplace_id=MARKETPLACE,
        client_id=CREDENTIALS.client_id,
        client_secret=CREDENTIALS.client_secret,
        refresh_token=CREDENTIALS.refresh_token,
        **{"apply_delay": 0.3, "feed_delay": 0.2, **options},
    )
    with sandbox.server() as server:
        yield Seller(sandbox, server.url)
    sandbox.close()


@pytest.fixture
def seller() -> Iterator[Seller]:
    yield from seller_with()


@pytest.fixture
def gateway(seller: Seller) -> Iterator[AmazonGateway]:
    gateway = seller.gateway()
    yield gateway
    gateway.close()


def push(sku: str, quantity: int) -> Push:
    return Push(sku=sku, quantity=quantity, version=1)


def test_one_push_is_a_patch_amazon_accepts_now_and_applies_a_little_later(seller, gateway):
    seller.sandbox.add_listing("AMZ-1", 5)
    [result] = gateway.push([push("AMZ-1", 7)])
    assert (result.sku, result.status) == ("AMZ-1", APPLIED)
    assert seller.sandbox.stock("AMZ-1") == 5  # ACCEPTED is not applied yet
    wait_until(lambda: seller.sandbox.stock("AMZ-1") == 7, timeout=5)
    assert seller.calls("patchListingsItem", 200) == 1
    assert seller.calls("createFeed") == 0


def test_a_patch_for_a_sku_the_seller_does_not_list_is_unknown(seller, gateway):
    [result] = gateway.push([push("NOPE", 1)])
    assert result.status is UNKNOWN
    assert "13013" in result.detail


def test_a_batch_of_50_goes_as_one_feed_settled_later_and_its_unknown_sku_refused_by_the_report(
    seller, gateway
):
    skus = [f"AMZ-{n:02d}" for n in range(49)]
    for sku in skus:
        seller.sandbox.add_listing(sku, 0)
    pushes = [push(sku, n + 1) for n, sku in enumerate(skus)]
    pushes.insert(20, push("GHOST", 3))
    submitted = gateway.push(pushes)
    assert [r.sku for r in submitted] == [p.sku for p in pushes]
    assert {r.status for r in submitted} == {SUBMITTED}
    [ticket] = {r.ticket for r in submitted}
    assert seller.calls("getFeed") == 0  # the push does not wait for the feed
    results = settled(gateway, ticket, [p.sku for p in pushes])
    by_sku = {r.sku: r for r in results}
    assert by_sku.pop("GHOST").status is UNKNOWN
    assert {r.status for r in by_sku.values()} == {APPLIED}
    assert [seller.sandbox.stock(sku) for sku in skus] == list(range(1, 50))
    assert seller.sandbox.stock("GHOST") is None
    for operation in ("createFeedDocument", "document.upload", "createFeed", "getFeedDocument"):
        assert seller.calls(operation) == 1, operation
    assert seller.calls("getFeed") >= 1
    assert seller.calls("patchListingsItem") == 0


def test_a_feed_still_processing_is_not_settled_and_is_looked_at_no_more_often_than_asked(seller):
    seller.sandbox.feeds.feed_delay = 5.0
    with seller.gateway(feed_poll_interval=0.3) as gateway:
        submitted = gateway.push([push("AMZ-1", 1), push("AMZ-2", 2)])
        ticket = submitted[0].ticket
        for _ in range(10):
            assert gateway.settle(ticket, ["AMZ-1", "AMZ-2"]) is None
            time.sleep(0.05)
        assert seller.calls("getFeed") == 1  # 0.5 s, one look every 0.3 s from the submission


@pytest.fixture
def turns(redis_url):
    client = redis.Redis.from_url(redis_url)
    gate = ChannelGate(client, "amazon-us", GatePolicy(), namespace=uuid.uuid4().hex)
    yield gate.turns
    client.close()


def test_without_a_create_feed_turn_the_first_push_goes_as_a_patch_and_the_rest_wait(
    seller, gateway, turns
):
    for sku in ("AMZ-1", "AMZ-2", "AMZ-3"):
        seller.sandbox.add_listing(sku, 0)
    gateway.turns = turns(gateway.rates)  # createFeed: one per 150 s
    first = gateway.push([push("AMZ-1", 1), push("AMZ-2", 2)])
    assert {r.status for r in first} == {SUBMITTED}
    second = gateway.push([push("AMZ-3", 3), push("AMZ-1", 4)])
    assert [(r.sku, r.status) for r in second] == [("AMZ-3", APPLIED)]  # AMZ-1 waits
    assert seller.calls("createFeed") == 1
    assert seller.calls("patchListingsItem") == 1
    wait_until(lambda: seller.sandbox.stock("AMZ-3") == 3, timeout=3)


def test_patches_wait_for_their_documented_turn_across_gateways(seller, turns):
    seller.sandbox.add_listing("AMZ-1", 0)
    shared = turns({"patchListingsItem": 5.0})  # one patch per 250 ms for every worker
    with seller.gateway() as one, seller.gateway() as other:
        one.turns = other.turns = shared
        started = time.monotonic()
        for n in range(4):
            (one if n % 2 else other).push([push("AMZ-1", n)])
        assert time.monotonic() - started >= 0.5  # four patches span three turns at least
    assert seller.calls("patchListingsItem", 429) == 0


def test_read_shows_the_merchant_fulfilled_quantity_and_none_for_an_unlisted_sku(seller, gateway):
    seller.sandbox.add_listing("AMZ-1", 4)
    assert gateway.read(["AMZ-1", "NOPE", "AMZ-1"]) == {"AMZ-1": 4, "NOPE": None}
    assert seller.calls("getListingsItem") == 2


def test_one_access_token_serves_many_calls(seller, gateway):
    seller.sandbox.add_listing("AMZ-1", 0)
    for quantity in range(5):
        gateway.push([push("AMZ-1", quantity)])
    gateway.read(["AMZ-1"])
    assert seller.calls("lwa.token") == seller.sandbox.tokens_issued == 1


@pytest.fixture
def short_tokens() -> Iterator[Seller]:
    yield from seller_with(token_lifetime=1.0)


def test_a_token_is_replaced_shortly_before_it_expires(short_tokens):
    short_tokens.sandbox.add_listing("AMZ-1", 0)
    with short_tokens.gateway(refresh_margin=0.5) as gateway:
        gateway.push([push("AMZ-1", 1)])
        gateway.push([push("AMZ-1", 2)])
        time.sleep(0.6)
        gateway.push([push("AMZ-1", 3)])
    assert short_tokens.sandbox.tokens_issued == 2
    assert short_tokens.calls("patchListingsItem", 403) == 0


def test_a_token_amazon_ended_early_is_replaced_once_and_the_call_made_again(seller, gateway):
    seller.sandbox.add_listing("AMZ-1", 0)
    gateway.push([push("AMZ-1", 1)])
    seller.sandbox.expire_tokens()
    [result] = gateway.push([push("AMZ-1", 2)])
    assert result.status is APPLIED
    assert seller.calls("patchListingsItem", 403) == 1
    assert seller.sandbox.tokens_issued == 2


def test_a_refresh_token_lwa_refuses_is_an_auth_failure(seller):
    bad = LwaCredentials(CREDENTIALS.client_id, CREDENTIALS.client_secret, "Atzr|revoked")
    with seller.gateway(bad) as gateway, pytest.raises(ChannelAuthFailed, match="invalid_grant"):
        gateway.push([push("AMZ-1", 1)])
    assert seller.calls("lwa.token", 400) == 1


def test_a_wrong_client_secret_is_an_auth_failure(seller):
    bad = LwaCredentials(CREDENTIALS.client_id, "wrong", CREDENTIALS.refresh_token)
    with seller.gateway(bad) as gateway, pytest.raises(ChannelAuthFailed, match="invalid_client"):
        gateway.read(["AMZ-1"])


@pytest.fixture
def dead_tokens() -> Iterator[Seller]:
    yield from seller_with(token_lifetime=0.0)


def test_fresh_tokens_refused_twice_are_an_auth_failure(dead_tokens):
    with dead_tokens.gateway() as gateway, pytest.raises(ChannelAuthFailed, match="Unauthorized"):
        gateway.push([push("AMZ-1", 1)])
    assert dead_tokens.calls("patchListingsItem", 403) == 2


def test_an_empty_patch_bucket_is_throttled_until_its_next_token(seller, gateway):
    seller.sandbox.add_listing("AMZ-1", 0)
    seller.sandbox.set_rate("patchListingsItem", 2.0, 1)
    gateway.push([push("AMZ-1", 1)])
    with pytest.raises(Throttled) as throttled:
        gateway.push([push("AMZ-1", 2)])
    assert throttled.value.retry_after == pytest.approx(0.5)
    assert seller.calls("patchListingsItem", 429) == 1


def test_an_empty_create_feed_bucket_waits_for_createfeeds_documented_rate(seller, gateway):
    seller.sandbox.set_rate("createFeed", 0.0083, 0)
    with pytest.raises(Throttled) as throttled:
        gateway.push([push("AMZ-1", 1), push("AMZ-2", 2)])
    assert throttled.value.retry_after == pytest.approx(1 / 0.0083)


def test_a_throttled_feed_look_raises_and_the_results_still_come_on_a_later_one(seller):
    for sku in ("AMZ-1", "AMZ-2"):
        seller.sandbox.add_listing(sku, 0)
    seller.sandbox.set_rate("getFeed", 20.0, 1)
    with seller.gateway(feed_poll_interval=0.0) as eager:
        ticket = eager.push([push("AMZ-1", 1), push("AMZ-2", 2)])[0].ticket
        results = settled(eager, ticket, ["AMZ-1", "AMZ-2"])
    assert [r.status for r in results] == [APPLIED, APPLIED]
    assert seller.calls("getFeed", 429) >= 1


def test_server_errors_leave_the_channel_unavailable(seller, gateway):
    gateway.read(["AMZ-1"])  # a token first, so the 500 comes from SP-API itself
    seller.sandbox.faults.error_rate = 1.0
    with pytest.raises(ChannelUnavailable, match="500"):
        gateway.push([push("AMZ-1", 1)])


def test_an_outage_leaves_the_channel_unavailable(seller, gateway):
    seller.sandbox.faults.outage = True
    with pytest.raises(ChannelUnavailable, match="503"):
        gateway.push([push("AMZ-1", 1)])


def test_an_answer_slower_than_the_timeout_leaves_the_channel_unavailable(seller):
    seller.sandbox.add_listing("AMZ-1", 0)
    with seller.gateway(timeout=0.3) as gateway:
        gateway.read(["AMZ-1"])
        seller.sandbox.faults.delay = 1.0
        with pytest.raises(ChannelUnavailable, match="in time"):
            gateway.push([push("AMZ-1", 1)])
