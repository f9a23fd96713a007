"""`POST /webhooks/{channel_id}`: verify on the raw bytes, store durably, answer at once; and
`GET /webhooks/{channel_id}?...`: a channel's endpoint validation (eBay's challenge).

The POST is an ASGI endpoint of its own, reading the body and answering with ASGI messages
rather than through Starlette's `Request` and `Response`: at load nearly every request is one,
and the app (`InvsyncApp`) hands it here past the middleware stack and router, which cost as
much as verifying and storing it. So it keeps the limits itself that the middleware keeps for
the API: its body must be whole `body_timeout_seconds` after the request reached the app.
"""

from __future__ import annotations

import asyncio
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
from starlette.types import Receive, Scope, Send

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
from interfaces.http.limits import too_slow
from interfaces.http.problems import problem

log = logging.getLogger(__name__)

BODY_SLOT_WAIT = 1.0  # seconds a webhook waits for a body slot before it is asked to retry
_JSON_HEADERS = (b"content-type", b"application/json")

# What a request's handling yields: a Starlette answer, the JSON body of a 200, or nothing when
# the client went away before its body was whole (nobody reads an answer).
Answer = Response | bytes | None
Checked = tuple[dict[str, str], bytes, Verdict]


class BodyTooLarge(Exception):
    """Raised when a request body passes the configured limit."""


class WebhookReceiver:
    """The endpoint. Its group-commit writer lives in the event loop, so the app's lifespan
    starts it and hands it over as the app's state (`scope["state"]["writer"]`)."""

    def __init__(self, router: ChannelRouter, limits: HttpLimits = DEFAULT_LIMITS) -> None:
        self.router = router
        self.limits = limits
        # Looked up on every webhook: the configuration's own lookup walks its list.
        self._channels = {channel.id: channel for channel in router.config.channels}
        # Bodies not yet known to be signed: at most `webhook_bodies` held at once, so anyone's
        # unfinished bodies cost at most that many times `max_webhook_bytes`; and at most a
        # quarter of them per client address, so one client cannot hold them all.
        self._bodies = BodySlots(limits.webhook_bodies)
        self._verifiers: CapacityLimiter | None = None  # made in the event loop, on first use

    async def receive(self, scope: Scope, receive: Receive, send: Send, channel_id: str) -> None:
        """Answer the POST of a webhook to `channel_id`."""
        answer = await self._answer(scope, receive, channel_id)
        if isinstance(answer, bytes):
            length = (b"content-length", str(len(answer)).encode())
            await send(
                {"type": "http.response.start", "status": 200, "headers": [_JSON_HEADERS, length]}
            )
            await send({"type": "http.response.body", "body": answer})
        elif answer is not None:
            await answer(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, channel_id: str) -> Answer:
        # The body's time runs from here, as the API's runs from the middleware.
        deadline = asyncio.get_running_loop().time() + self.limits.body_timeout_seconds
        channel = self._channels.get(channel_id)
        if channel is None:
            return problem(404, "Unknown channel", f"no channel {channel_id!r} is configured")
        peer = scope.get("client")
        client = _client_of(peer[0]) if peer else ""
        if not await self._bodies.take(client, BODY_SLOT_WAIT):
            counted(WEBHOOKS_REJECTED, channel_id, "busy")
            return _retry_later("Too many webhooks at once", "no body can be received now; retry")
        try:
            checked = await self._read_and_verify(scope, receive, channel, deadline)
        finally:
            self._bodies.release(client)
        if not isinstance(checked, tuple):
            return checked
        return await self._accept(scope["state"]["writer"], channel, checked)

    async def _accept(
        self, writer: GroupCommitWriter, channel: ChannelConfig, checked: Checked
    ) -> Answer:
        headers, body, verdict = checked
        if isinstance(verdict, Ping):
            counted(WEBHOOKS_RECEIVED, channel.id, "ping")
            return orjson.dumps({"status": "ok"})
        kind = self.router.kind(channel)
        delivery = storable(
            IncomingDelivery(
                channel.id,
                verdict.delivery_key,
                verdict.topic,
                kind.lane(verdict.topic).value,
                _kept_headers(headers),
                body,
            )
        )
        stored = await self._store(writer, delivery)
        if isinstance(stored, bytes) and kind.success_status != 200:
            return Response(status_code=kind.success_status)  # the kind answers with no body
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

    async def _store(self, writer: GroupCommitWriter, delivery: IncomingDelivery) -> Answer:
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
        return orjson.dumps({"status": outcome, "delivery_key": delivery.delivery_key})

    async def _read_and_verify(
        self, scope: Scope, receive: Receive, channel: ChannelConfig, deadline: float
    ) -> Checked | Answer:
        # ASGI servers give header names lower-cased.
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
        }
        limit = self.router.config.max_webhook_bytes
        try:
            body = await _read_body(receive, headers.get("content-length", ""), limit, deadline)
        except BodyTooLarge:
            counted(WEBHOOKS_REJECTED, channel.id, "too_large")
            refusal = problem(
                413, "Payload too large", f"webhook bodies are limited to {limit} bytes"
            )
            refusal.headers["Connection"] = "close"  # the rest of the body is never read
            return refusal
        except TimeoutError:
            return too_slow(self.limits.body_timeout_seconds)
        if body is None:
            return None
        signed = SignedRequest(headers, body, scope["method"], _target(scope))
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


def _target(scope: Scope) -> str:
    """The path and query as the sender wrote them: a signature over them (Walmart's) was made
    on these bytes, not on the decoded path."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    query: bytes = scope.get("query_string", b"")
    target = raw_path.decode("latin-1")
    return f"{target}?{query.decode('latin-1')}" if query else target


# A peer's address parsed once: ipaddress took as long as the HMAC. Few addresses deliver.
_client_of = functools.lru_cache(maxsize=4096)(client_of)


def _retry_later(title: str, detail: str) -> Response:
    response = problem(503, title, detail)
    response.headers["Retry-After"] = "5"
    return response


async def _read_body(receive: Receive, declared: str, limit: int, deadline: float) -> bytes | None:
    """The whole body, or None when the client went away first.

    Raises:
        BodyTooLarge: it is declared or turns out longer than `limit` bytes.
        TimeoutError: it is not whole at `deadline` (the loop's time).
    """
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async with asyncio.timeout_at(deadline):  # one timer for the whole body, not one a chunk
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
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
