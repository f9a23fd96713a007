"""eBay's signing keys are fetched from the sandbox account's Notification API once per key id
and kept an hour, as eBay asks, then fetched again: counted at the sandbox, the hour moved by an
injected clock (no sleeping)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from infrastructure.channels.base import Accepted, SignedRequest
from infrastructure.channels.ebay.config import EbayConfig
from infrastructure.channels.ebay.public_keys import KEY_SECONDS, PublicKeys
from infrastructure.channels.ebay.verifier import make_verifier
from sandboxes.ebay.notifications import ACCOUNT_DELETION, notification
from sandboxes.ebay.seller import EbaySandbox
from sandboxes.server import SandboxServer

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def account() -> Iterator[tuple[EbaySandbox, str]]:
    seller = EbaySandbox()
    with SandboxServer(seller.app) as server:
        yield seller, server.url
    seller.close()


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
    seller, url = account
    channel = EbayConfig(
        id="ebay-keys",
        api_base_url=url,
        client_id=seller.client_id,
        client_secret=seller.client_secret,
        refresh_token=seller.refresh_token,
        verification_token="verification_token_32_to_80_chars_long_abcdefgh",
        notification_endpoint="https://hub.example.com/webhooks/ebay-keys",
    )
    clock = Clock()
    keys = PublicKeys(timer=clock)
    verify = make_verifier(keys)
    assert seller.log.count("notification.public_key") == 0
    assert isinstance(verify(channel, signed_request(seller, "first"), NOW), Accepted)
    clock.now += KEY_SECONDS - 1
    assert isinstance(verify(channel, signed_request(seller, "second"), NOW), Accepted)
    assert seller.log.count("notification.public_key") == 1
    clock.now += 1  # the hour is up
    assert isinstance(verify(channel, signed_request(seller, "third"), NOW), Accepted)
    assert seller.log.count("notification.public_key") == 2
    keys.close()
