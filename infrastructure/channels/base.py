"""What every channel folder provides to intake, and the helpers they share."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from application.intake import Delivery, DeliveryDeferred, Translation
from domain.errors import DomainError, InvsyncError
from domain.orders import Facts, OrderUpdate, Targets
from infrastructure.channels.config import ChannelConfig

H = TypeVar("H")


class SignatureInvalid(InvsyncError):
    """Raised when a webhook's signature is missing, malformed or made with no secret we hold."""


class VerificationUnavailable(InvsyncError):
    """Raised when a signature cannot be checked right now (its certificate could not be
    fetched): answered 503, so the sender retries instead of losing the message."""


class ChallengeRefused(InvsyncError):
    """Raised when a channel's endpoint validation (`GET /webhooks/{id}?...`) cannot be answered:
    answered 400 with why."""


class ChannelReadUnavailable(DeliveryDeferred):
    """Raised when a translator needs to read from the channel and cannot now: the delivery
    stays pending and is tried again."""


class Lane(StrEnum):
    """Intake queues: sales never wait behind receipts, returns or adjustments."""

    DECREMENTS = "intake.decrements"
    INCREMENTS = "intake.increments"


@dataclass(frozen=True)
class SignedRequest:
    """A webhook request as received, whatever of it a channel's signature covers.

    Attributes:
        headers: the request headers, names lower-cased.
        body: the raw request body, exactly as received.
        method: the request's method (`POST`).
        target: the path and query exactly as the sender wrote them (percent-encoding kept),
            as a scheme signing `PATH_AND_QUERY` (Walmart) signed them.
    """

    headers: Mapping[str, str]
    body: bytes
    method: str = "POST"
    target: str = "/"


@dataclass(frozen=True)
class Accepted:
    """A verified delivery to store: its idempotency key and topic."""

    delivery_key: str
    topic: str


@dataclass(frozen=True)
class LevelReading:
    """What a channel showed of one SKU (ours, through the channel's `sku_map`) when it was
    read: the `quantity` it offered for sale at `read_at` (the time of the answer, so sales the
    ledger recorded after it are not counted against the channel)."""

    sku: str
    quantity: int
    read_at: datetime


@dataclass(frozen=True)
class LevelPage:
    """One page of a channel's catalogue (`ChannelKind.read_page`): its readings, and the
    cursor of the page after it (None: the catalogue ends here). A cursor is the kind's own
    text, stored with the run between messages, so a run resumes at the page it was on."""

    readings: list[LevelReading]
    next: str | None


@dataclass(frozen=True)
class Ping:
    """A verified (or harmless, unsigned) hand-shake to answer 200 without storing anything."""


Verdict = Accepted | Ping


@dataclass(frozen=True)
class PolledOrder:
    """An order found by listing the channel's orders (reconciliation), in the shape the
    channel's webhook for `topic` carries it: the kind's translator reads it unchanged, so an
    order seen by webhook and by poll moves the ledger once.

    Attributes:
        order_id: the channel's id of the order.
        modified_at: when the channel last changed it (what the listing's watermark follows).
        topic: the webhook topic whose body this is (`orders/updated`, `order.updated`, ...).
        body: the webhook's body, as bytes.
        headers: the webhook's headers the translator reads, names lower-cased.
    """

    order_id: str
    modified_at: datetime
    topic: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


class ChannelReads(Protocol):
    """What a translator may read from the channel itself, for facts its webhooks leave out
    (WooCommerce's refunded quantities per line are only in its refunds API)."""

    def order_refunds(self, channel: ChannelConfig, order_id: str) -> Sequence[Any]:
        """The refunds of a channel order as the channel's gateway reads them."""
        ...

    def order_document(self, channel: ChannelConfig, order_id: str) -> dict[str, Any] | None:
        """A channel order as the channel's API shows it now; None once deleted for good."""
        ...


# What a payload of the wrong shape makes reading it raise: a field missing or of another type
# (a string where an object belongs), a number beyond range, nesting beyond the parser.
_UNREADABLE = (
    KeyError,
    TypeError,
    ValueError,
    AttributeError,
    IndexError,
    OverflowError,
    RecursionError,
    DomainError,
)


def translate_json(
    delivery: Delivery,
    handlers: Mapping[str, H],
    apply: Callable[[H, dict[str, Any]], Translation],
    describe: Callable[[Exception], str] = repr,
) -> Translation:
    """The common frame of a JSON channel's translator: parse, pick the topic's handler, and
    park (never raise) what cannot be read. Topics without a handler move no stock."""
    try:
        payload = json.loads(delivery.body)
    except ValueError:
        return Translation.park("the body is not JSON")
    except RecursionError:
        return Translation.park("the body's JSON is nested too deeply to read")
    handler = handlers.get(delivery.topic)
    if handler is None:
        return Translation()
    if not isinstance(payload, dict):
        return Translation.park("the body is not a JSON object")
    try:
        return apply(handler, payload)
    except _UNREADABLE as error:
        return Translation.park(f"cannot read {delivery.topic} payload: {describe(error)}")


def order_translation(
    channel: ChannelConfig,
    order_id: str,
    *,
    facts: Facts,
    lines: Mapping[str, Facts],
    targets: Targets,
    occurred_at: datetime,
    reason: str,
    document: str = "",
) -> Translation:
    """What a delivery teaches about one of the channel's orders (see `domain.orders`), its
    source named `<kind>://<channel>/orders/<order id><document>`, where `document` is the
    path of a fulfilment or refund within the order."""
    reference = f"{channel.kind}://{channel.id}/orders/{order_id}{document}"
    update = OrderUpdate(
        channel_id=channel.id,
        order_id=order_id,
        facts=facts,
        lines=lines,
        targets=targets,
        occurred_at=occurred_at,
        reference=reference,
        reason=reason,
    )
    return Translation(orders=[update])


def hmac_b64_matches(secrets: Sequence[str], message: bytes, signature: str | None) -> bool:
    """Whether `signature` (standard base64) is HMAC-SHA256 of `message` under any secret.
    Compared in constant time on the decoded bytes."""
    if not signature:
        return False
    try:
        given = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    return _matches_any(secrets, message, given)


def hmac_hex_matches(secrets: Sequence[str], message: bytes, signature: str | None) -> bool:
    """Whether `signature` (hex) is HMAC-SHA256 of `message` under any secret."""
    if not signature:
        return False
    try:
        given = bytes.fromhex(signature)
    except ValueError:
        return False
    return _matches_any(secrets, message, given)


def _matches_any(secrets: Sequence[str], message: bytes, given: bytes) -> bool:
    found = False
    for secret in secrets:  # every secret is tried, so timing does not reveal which one matched
        expected = hmac.digest(secret.encode(), message, "sha256")  # one-shot: the C path
        found |= hmac.compare_digest(expected, given)
    return found


def parsed_object(text: object) -> dict[str, Any] | None:
    """`text` (str or bytes) as a JSON object; None when it is not one (not JSON, another
    value, or nested too deeply for the parser)."""
    if not isinstance(text, str | bytes):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def body_digest(body: bytes) -> str:
    """A delivery key for channels that send none: the same bytes are the same delivery."""
    return "sha256:" + hashlib.sha256(body).hexdigest()
