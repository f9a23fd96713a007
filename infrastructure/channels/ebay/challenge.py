"""eBay's endpoint validation (CHANNELS.md §4.1): before it sends notifications to an endpoint, and
now and then after, eBay calls `GET <endpoint>?challenge_code=<code>` and expects
`{"challengeResponse": hex(SHA-256(code + verification token + endpoint URL))}`, the URL exactly
as registered with the Notification API."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from infrastructure.channels.base import ChallengeRefused
from infrastructure.channels.ebay.config import EbayConfig

# eBay's codes are UUIDs; anything far longer is not eBay's and is not hashed.
MAX_CHALLENGE_CODE = 256


def challenge_response(code: str, verification_token: str, endpoint: str) -> str:
    """The hex SHA-256 eBay expects for `code` (`lib/validator.js` of eBay's Node SDK)."""
    return hashlib.sha256((code + verification_token + endpoint).encode()).hexdigest()


def answer(channel: EbayConfig, query: Mapping[str, str]) -> dict[str, str]:
    """The body of the answer to eBay's validation GET.

    Raises:
        ChallengeRefused: no `challenge_code`, one too long, or a channel without the
            `verification_token` and `notification_endpoint` the answer hashes.
    """
    code = query.get("challenge_code", "")
    if not code:
        raise ChallengeRefused("the query names no challenge_code")
    if len(code) > MAX_CHALLENGE_CODE:
        raise ChallengeRefused(f"challenge_code is over {MAX_CHALLENGE_CODE} characters")
    if not channel.verification_token or not channel.notification_endpoint:
        raise ChallengeRefused(
            f"channel {channel.id!r} needs verification_token and notification_endpoint "
            "to answer eBay's challenge"
        )
    response = challenge_response(code, channel.verification_token, channel.notification_endpoint)
    return {"challengeResponse": response}
