"""`POST /webhooks/{channel_id}`: verify on the raw bytes, store durably, answer at once; and
`GET /webhooks/{channel_id}?...`: a channel's endpoint validation (eBay's challenge)."""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from dataclasses import replace

import anyio.to_thread
import orjson
from anyio import CapacityLimiter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from infrastructure.channels.base import (
    ChallengeRefused,
    Ping,
    SignatureInvalid,
    SignedRequest,
    Verdict,
    VerificationUnavailable,
)
from infrastructure.channels.routing import ChannelRouter
from infrastructure.config import ChannelConfig
from infrastructure.inbox import IncomingDelivery
from infrastructure.intake_writer import GroupCommitWriter, InboxUnavailable, RowRefused
from infrastructure.metrics import WEBHOOKS_RECEIVED, WEBHOOKS_REJECTED, counted
from infrastructure.settings import DEFAULT_LIMITS, HttpLimits
from interfaces.http.body_slots import BodySlots, client_of
from interfaces.http.problems import problem

log = logging.getLogger(__name__)

BODY_SLOT_WAIT = 1.0  # seconds a webhook waits for a body slot before it is asked to retry


class BodyTooLarge(Exception):
    """Raised when a request body passes the configured limit."""


class WebhookReceiver:
    """The endpoint. Its group-commit writer lives in the event loop, so the app's lifespan
    starts it and hands it over as the app's state (`request.state.writer`)."""

    def __init__(self, router: ChannelRouter, limits: HttpLimits = DEFAULT_LIMITS) -> None:
        self.router = router
        self.limits = limits
        # Bodies not yet known to be signed: at most `webhook_bodies` held at once, so anyone's
        # unfinished bodies cost at most that many times `max_webhook_bytes`; and at most a
        # quarter of them per client address, so one client cannot hold them all.
        self._bodies = BodySlots(limits.webhook_bodies)
        self._verifiers: CapacityLimiter | None = None  # made in the event loop, on first use

    async def handle(self, request: Request) -> Response:
        channel_id = request.path_params["channel_id"]
        channel = self.router.channel(channel_id)
        if channel is None:
            return problem(404, "Unknown channel", f"no channel {channel_id!r} is configured")
        client = _client_of(request.client.host) if request.client else ""
        if not await self._bodies.take(client, BODY_SLOT_WAIT):
            counted(WEBHOOKS_REJECTED, channel_id, "busy")
            return _retry_later("Too many webhooks at once", "no body can be received now; retry")
        try:
            checked = await self._read_and_verify(request, channel)
        finally:
            self._bodies.release(client)
        if isinstance(checked, Response):
            return checked
        headers, body, verdict = checked
        if isinstance(verdict, Ping):
            counted(WEBHOOKS_RECEIVED, channel_id, "ping")
            return JSONResponse({"status": "ok"})
        lane = self.router.kind(channel).lane(verdict.topic)
        delivery = storable(
            IncomingDelivery(
                channel_id,
                verdict.delivery_key,
                verdict.topic,
                lane.value,
                _kept_headers(headers),
                body,
            )
        )
        stored = await self._store(request.state.writer, delivery)
        success = self.router.kind(channel).success_status
        if stored.status_code == 200 and success != 200:
            return Response(status_code=success)  # the kind answers with no body
        return stored

    async def challenge(self, request: Request) -> Response:
        """A channel's endpoint validation: 200 with what its kind answers the query, 400 when
        it cannot, 405 for a kind that validates no endpoint, 404 for an unknown channel."""
        channel_id = request.path_params["channel_id"]
        channel = self.router.channel(channel_id)
        if channel is None:
            return problem(404, "Unknown channel", f"no channel {channel_id!r} is configured")
        answer = self.router.kind(channel).challenge
        if answer is None:
            refusal = problem(
                405, "Method Not Allowed", f"{channel.kind} channels take webhooks by POST only"
            )
            refusal.headers["Allow"] = "POST"
            return refusal
        try:
            return JSONResponse(dict(answer(channel, request.query_params)))
        except ChallengeRefused as error:
            return problem(400, "Challenge refused", str(error))

    async def _store(self, writer: GroupCommitWriter, delivery: IncomingDelivery) -> Response:
        channel_id = delivery.channel_id
        try:
            stored = await writer.store(delivery)
        except InboxUnavailable as error:
            # Not stored, so not acknowledged: the channel will retry.
            log.warning("inbox unavailable: %s", error)
            counted(WEBHOOKS_REJECTED, channel_id, "unavailable")
            return _retry_later("Inbox unavailable", "the delivery was not stored; retry")
        except RowRefused as error:
            # What the database refuses now it refuses on every retry: say so, once.
            log.warning(
                "delivery %s of %s refused by the inbox: %s",
                delivery.delivery_key[:80],
                channel_id,
                error,
            )
            counted(WEBHOOKS_REJECTED, channel_id, "unstorable")
            return problem(422, "Delivery cannot be stored", str(error)[:500])
        outcome = "duplicate" if stored.id is None else "stored"
        counted(WEBHOOKS_RECEIVED, channel_id, outcome)
        # orjson: the standard encoder took a tenth of the request's time.
        answer = orjson.dumps({"status": outcome, "delivery_key": delivery.delivery_key})
        return Response(answer, media_type="application/json")

    async def _read_and_verify(
        self, request: Request, channel: ChannelConfig
    ) -> tuple[dict[str, str], bytes, Verdict] | Response:
        limit = self.router.config.max_webhook_bytes
        try:
            body = await _read_body(request, limit)
        except BodyTooLarge:
            counted(WEBHOOKS_REJECTED, channel.id, "too_large")
            refusal = problem(
                413, "Payload too large", f"webhook bodies are limited to {limit} bytes"
            )
            refusal.headers["Connection"] = "close"  # the rest of the body is never read
            return refusal
        headers = {name.lower(): value for name, value in request.headers.items()}
        signed = SignedRequest(headers, body, request.method, _target(request))
        verdict = await self._verify(channel, signed)
        if isinstance(verdict, Response):
            return verdict
        return headers, body, verdict

    async def _verify(self, channel: ChannelConfig, request: SignedRequest) -> Verdict | Response:
        """The verdict, or the answer refusing the request."""
        try:
            if self.router.kind(channel).blocking:
                # Threads of their own: slow certificate hosts must not take the threads that
                # serve the API's synchronous routes.
                if self._verifiers is None:
                    self._verifiers = CapacityLimiter(self.limits.verification_threads)
                return await anyio.to_thread.run_sync(
                    self.router.verify, channel, request, limiter=self._verifiers
                )
            return self.router.verify(channel, request)
        except SignatureInvalid as error:
            counted(WEBHOOKS_REJECTED, channel.id, "signature")
            return problem(401, "Signature invalid", str(error))
        except VerificationUnavailable as error:
            counted(WEBHOOKS_REJECTED, channel.id, "unverifiable")
            return _retry_later("Signature not checkable now", str(error))


def _target(request: Request) -> str:
    """The path and query as the sender wrote them: a signature over them (Walmart's) was made
    on these bytes, not on Starlette's decoded path."""
    raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
    query: bytes = request.scope.get("query_string", b"")
    target = raw_path.decode("latin-1")
    return f"{target}?{query.decode('latin-1')}" if query else target


# A peer's address parsed once: ipaddress took as long as the HMAC. Few addresses deliver.
_client_of = functools.lru_cache(maxsize=4096)(client_of)


def _retry_later(title: str, detail: str) -> Response:
    response = problem(503, title, detail)
    response.headers["Retry-After"] = "5"
    return response


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


# What is worth keeping of a request's headers: the channel's own, and the content type.
def _kept_headers(headers: dict[str, str]) -> dict[str, str]:
    return {
        name: value
        for name, value in headers.items()
        if name.startswith(("x-", "content-type", "user-agent"))
    }


# Header-derived fields are bounded and made storable rather than refused: a channel that keeps
# getting errors for a delivery it signed stops sending us any (Shopify removes the webhook), and
# the body the signature covers is kept whole either way.
MAX_KEY = 255
MAX_TOPIC = 255
MAX_HEADER_VALUE = 1024
_UNSTORABLE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def storable(delivery: IncomingDelivery) -> IncomingDelivery:
    """`delivery` with fields the database can always store and index: a key over `MAX_KEY`
    characters or holding control characters becomes `sha256:<hex>` of itself (the same key
    always gives the same digest, so replays stay duplicates); a topic loses control characters
    and is cut at `MAX_TOPIC` (no real topic is that long, so it moves no stock); kept header
    values likewise, at `MAX_HEADER_VALUE`."""
    if _clean(delivery):
        return delivery  # as nearly every delivery is: nothing to copy
    return replace(
        delivery,
        delivery_key=_bounded_key(delivery.delivery_key),
        topic=_UNSTORABLE.sub("", delivery.topic)[:MAX_TOPIC],
        headers={
            _UNSTORABLE.sub("", name)[:MAX_TOPIC]: _UNSTORABLE.sub("", value)[:MAX_HEADER_VALUE]
            for name, value in delivery.headers.items()
        },
    )


def _clean(delivery: IncomingDelivery) -> bool:
    """Whether `storable` would change nothing in `delivery`."""
    headers = delivery.headers
    return (
        len(delivery.delivery_key) <= MAX_KEY
        and len(delivery.topic) <= MAX_TOPIC
        and all(len(name) <= MAX_TOPIC for name in headers)
        and all(len(value) <= MAX_HEADER_VALUE for value in headers.values())
        and not _UNSTORABLE.search("".join((delivery.delivery_key, delivery.topic, *headers)))
        and not _UNSTORABLE.search("".join(headers.values()))
    )


def _bounded_key(key: str) -> str:
    if len(key) <= MAX_KEY and not _UNSTORABLE.search(key):
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
