"""eBay's Notification API endpoint end to end over HTTP: the endpoint validation GET (CHANNELS.md
§6, vector 4) and its refusals."""

from __future__ import annotations

import httpx
import pytest

from infrastructure.config import Config
from tests.integration.intake_fixtures import channel_config, running_intake

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
