"""eBay's Notification API endpoint end to end over HTTP: the endpoint validation GET (CHANNELS.md
§6, vector 4) and its refusals; notifications signed by the sandbox account, verified with the
key fetched from it (once an hour per key id), stored once and answered 204, refused when
tampered with, and retried by eBay while the key cannot be fetched."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import psycopg
import pytest

from infrastructure.channels.base import Accepted, SignedRequest
from infrastructure.channels.ebay.config import EbayConfig
from infrastructure.channels.ebay.public_keys import KEY_SECONDS, PublicKeys
from infrastructure.channels.ebay.verifier import make_verifier
from infrastructure.config import Config
from sandboxes.ebay.notifications import ACCOUNT_DELETION, notification
from sandboxes.ebay.seller import EbaySandbox
from sandboxes.server import SandboxServer
from tests.integration.intake_fixtures import channel_config, running_intake, wait_until

TOKEN = "verification_token_32_to_80_chars_long_abcdefgh"
ENDPOINT = "https://hub.example.com/ebay/notifications"


def ebay_channel(**extra) -> dict:
    return {
        "id": "ebay-us",
        "kind": "ebay",
        "client_id": "app",
        "client_secret": "cert",
        "refresh_token": "consent",
        "verification_token": TOKEN,
        "notification_endpoint": ENDPOINT,
        **extra,
    }


@pytest.fixture(scope="module")
def service(ledger, database_url, redis_url):
    base = channel_config()
    channels = [*(c.model_dump() for c in base.channels), ebay_channel()]
    config = Config.model_validate({"channels": channels})
    with running_intake(ledger, database_url, redis_url, config, workers=False) as running:
        yield running


def test_ebays_challenge_is_answered_with_the_hash_of_code_token_and_endpoint(service):
    code = "a8628072-3d33-45ee-9004-bee86830a22d"
    answer = httpx.get(f"{service.url}/webhooks/ebay-us", params={"challenge_code": code})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {
        "challengeResponse": "ac428ac07bca23310c2e703049f519b31e608a066d7ad118987c569c5dc50d47"
    }


@pytest.mark.parametrize("params", [{}, {"challenge_code": "x" * 300}])
def test_a_challenge_without_a_usable_code_is_a_400_problem(service, params):
    answer = httpx.get(f"{service.url}/webhooks/ebay-us", params=params)
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert "challenge_code" in answer.json()["detail"]


def test_a_challenge_for_an_unknown_channel_is_a_404(service):
    answer = httpx.get(f"{service.url}/webhooks/nope", params={"challenge_code": "c"})
    assert answer.status_code == 404


def test_a_channel_kind_without_endpoint_validation_answers_405_naming_post(service):
    answer = httpx.get(f"{service.url}/webhooks/shopify-us", params={"challenge_code": "c"})
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"


# Notifications signed by the sandbox account, its key served at its public_key endpoint -------


@pytest.fixture(scope="module")
def account():
    seller = EbaySandbox(retry_delays=(0.05, 0.1))
    with SandboxServer(seller.app) as server:
        yield seller, server.url
    seller.close()


@pytest.fixture(scope="module")
def fresh_account():
    """An account whose key no test has fetched yet."""
    seller = EbaySandbox(retry_delays=(0.5, 0.5, 1.0))
    with SandboxServer(seller.app) as server:
        yield seller, server.url
    seller.close()


@pytest.fixture(scope="module")
def signed_service(ledger, database_url, redis_url, account, fresh_account):
    _, url = account
    _, fresh_url = fresh_account
    base = channel_config()
    channels = [
        *(c.model_dump() for c in base.channels),
        ebay_channel(
            id="ebay-live", api_base_url=url, client_id="sandbox-app", client_secret="sandbox-cert"
        ),
        ebay_channel(id="ebay-gone", api_base_url="http://127.0.0.1:9"),  # nothing listens
        ebay_channel(
            id="ebay-fresh",
            api_base_url=fresh_url,
            client_id="sandbox-app",
            client_secret="sandbox-cert",
        ),
    ]
    config = Config.model_validate({"channels": channels})
    with running_intake(ledger, database_url, redis_url, config) as running:
        yield running


def stored(database_url: str, channel: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT delivery_key, topic, state FROM inbox_deliveries WHERE channel_id = %s",
            [channel],
        ).fetchall()


def test_ebay_validates_the_endpoint_then_an_account_deletion_is_stored_and_answered_204(
    account, signed_service, database_url
):
    seller, _ = account
    hook = f"{signed_service.url}/webhooks/ebay-live"
    assert seller.subscribe(hook, TOKEN, ENDPOINT)
    sent = seller.delete_account("gone_buyer", "u123")
    assert sent is not None
    assert seller.notifications.wait_idle()
    [attempt] = [a for a in seller.notifications.attempts if a.message.id == sent.id]
    assert (attempt.status, attempt.delivered) == (204, True)
    wait_until(
        lambda: (sent.id, ACCOUNT_DELETION, "processed") in stored(database_url, "ebay-live")
    )


def test_an_endpoint_answering_a_wrong_challenge_is_not_validated(account, signed_service):
    seller, _ = account
    assert not seller.subscribe(f"{signed_service.url}/webhooks/ebay-live", TOKEN, ENDPOINT + "/x")
    assert seller.notifications.url is None


def test_a_replayed_notification_is_a_duplicate_and_a_tampered_one_is_refused(
    account, signed_service, database_url
):
    seller, _ = account
    hook = f"{signed_service.url}/webhooks/ebay-live"
    message = seller.signer.sign(notification(ACCOUNT_DELETION, {"username": "b", "userId": "u"}))
    first = httpx.post(hook, content=message.body, headers=dict(message.headers))
    replay = httpx.post(hook, content=message.body, headers=dict(message.headers))
    assert (first.status_code, replay.status_code) == (204, 204)
    assert [k for k, _, _ in stored(database_url, "ebay-live")].count(message.id) == 1
    tampered = message.body.replace(b'"u"', b'"v"')
    refused = httpx.post(hook, content=tampered, headers=dict(message.headers))
    assert refused.status_code == 401
    assert refused.json()["title"] == "Signature invalid"
    unsigned = httpx.post(hook, content=message.body)
    assert unsigned.status_code == 401


def test_a_key_service_that_cannot_be_reached_answers_503_so_ebay_retries(account, signed_service):
    seller, _ = account
    message = seller.signer.sign(notification(ACCOUNT_DELETION, {"username": "b", "userId": "u"}))
    hook = f"{signed_service.url}/webhooks/ebay-gone"
    answer = httpx.post(hook, content=message.body, headers=dict(message.headers))
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"


def test_a_notification_refused_at_first_is_delivered_by_ebays_retry(
    fresh_account, signed_service, database_url
):
    seller, _ = fresh_account
    assert seller.subscribe(f"{signed_service.url}/webhooks/ebay-fresh", TOKEN, ENDPOINT)
    seller.faults.outage = True  # the key service is down: our endpoint answers 503
    sent = seller.delete_account("late_buyer", "u456")
    wait_until(lambda: any(a.message.id == sent.id for a in seller.notifications.attempts))
    seller.faults.outage = False
    assert seller.notifications.wait_idle(timeout=10)
    statuses = [a.status for a in seller.notifications.attempts if a.message.id == sent.id]
    assert statuses[0] == 503
    assert statuses[-1] == 204
    wait_until(lambda: sent.id in [k for k, _, _ in stored(database_url, "ebay-fresh")])


class Clock:
    """Seconds that move only when a test moves them."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def signed_request(seller: EbaySandbox, user: str) -> SignedRequest:
    message = seller.signer.sign(notification(ACCOUNT_DELETION, {"username": user, "userId": user}))
    return SignedRequest({k.lower(): v for k, v in message.headers.items()}, message.body)


def test_a_key_is_fetched_once_within_its_hour_and_once_more_after_it(account):
    """Counted at the sandbox; the hour moved by an injected clock, not slept through."""
    seller, url = account
    channel = EbayConfig.model_validate(
        ebay_channel(api_base_url=url, client_id="sandbox-app", client_secret="sandbox-cert")
    )
    clock, now = Clock(), datetime.now(UTC)
    keys = PublicKeys(timer=clock)
    verify = make_verifier(keys)
    fetched = seller.log.count("notification.public_key")
    try:
        assert isinstance(verify(channel, signed_request(seller, "first"), now), Accepted)
        clock.now += KEY_SECONDS - 1
        assert isinstance(verify(channel, signed_request(seller, "second"), now), Accepted)
        assert seller.log.count("notification.public_key") == fetched + 1
        clock.now += 1  # the hour is up
        assert isinstance(verify(channel, signed_request(seller, "third"), now), Accepted)
        assert seller.log.count("notification.public_key") == fetched + 2
    finally:
        keys.close()
