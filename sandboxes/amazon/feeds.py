"""The Amazon sandbox's Feeds API: JSON_LISTINGS_FEED documents, feeds and processing reports
(CHANNELS.md §3.3), and the SP-API answers the sandbox shares.

Feed documents live behind URLs the sandbox serves itself, standing in for S3's presigned URLs:
an upload must come within 5 minutes with the content type the document was created with. A
feed is processed `feed_delay` seconds after it is created; its processing report (schema v2:
`header`, `issues` by `messageId`, `summary`) is a GZIP document.
"""

from __future__ import annotations

import gzip
import itertools
import json
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

if TYPE_CHECKING:
    from sandboxes.amazon.seller import AmazonSandbox
    from sandboxes.timeline import Timeline

UNKNOWN_SKU = "13013"  # legacy feeds' "SKU does not exist"; the JSON feed's code is unconfirmed
INVALID_MESSAGE = "4000001"
URL_LIFETIME = 300.0  # seconds a feed document URL is valid
MESSAGE_LIMIT = 25_000
_S3_DENIED = (
    '<?xml version="1.0" encoding="UTF-8"?><Error><Code>{}</Code><Message>{}</Message></Error>'
)


@dataclass
class Document:
    id: str
    content_type: str
    signature: str
    expires: float
    content: bytes | None = None
    compression: str | None = None


@dataclass
class Feed:
    id: str
    marketplace_ids: list[str]
    input_id: str
    created: str
    status: str = "IN_QUEUE"
    started: str | None = None
    ended: str | None = None
    result_id: str | None = None

    def answer(self) -> dict[str, Any]:
        answer = {
            "feedId": self.id,
            "feedType": "JSON_LISTINGS_FEED",
            "marketplaceIds": self.marketplace_ids,
            "createdTime": self.created,
            "processingStatus": self.status,
            "processingStartTime": self.started,
            "processingEndTime": self.ended,
            "resultFeedDocumentId": self.result_id,
        }
        return {key: value for key, value in answer.items() if value is not None}


class FeedDesk:
    """The Feeds routes of one `AmazonSandbox` and the feeds it processes."""

    def __init__(self, seller: AmazonSandbox, feed_delay: float, timeline: Timeline) -> None:
        self.seller, self.feed_delay, self._timeline = seller, feed_delay, timeline
        self.public_url = ""
        self.documents: dict[str, Document] = {}
        self.feeds: dict[str, Feed] = {}
        self._ids = itertools.count(50_001_000_000)
        self._lock = threading.Lock()

    # SP-API routes ------------------------------------------------------------------------

    async def create_document(self, request: Request) -> Response:
        try:
            content_type = (await request.json())["contentType"]
        except (ValueError, KeyError, TypeError):
            return sp_error(400, "InvalidInput", "contentType is required")
        document = self._new_document(str(content_type))
        return JSONResponse(
            {"feedDocumentId": document.id, "url": self._url(document)}, status_code=201
        )

    async def get_document(self, request: Request) -> Response:
        document = self.documents.get(request.path_params["id"])
        if document is None:
            return sp_error(404, "NotFound", "The requested feed document was not found.")
        document.expires = time.monotonic() + URL_LIFETIME
        answer = {"feedDocumentId": document.id, "url": self._url(document)}
        if document.compression:
            answer["compressionAlgorithm"] = document.compression
        return JSONResponse(answer)

    async def create_feed(self, request: Request) -> Response:
        try:
            body = await request.json()
            feed_type, marketplaces = body["feedType"], body["marketplaceIds"]
            input_id = body["inputFeedDocumentId"]
        except (ValueError, KeyError, TypeError):
            return sp_error(400, "InvalidInput", "feedType, marketplaceIds, inputFeedDocumentId")
        if feed_type != "JSON_LISTINGS_FEED":
            return sp_error(400, "InvalidInput", f"The sandbox takes no {feed_type!r} feeds.")
        if marketplaces != [self.seller.marketplace_id]:
            return sp_error(
                400, "InvalidInput", f"marketplaceIds must be [{self.seller.marketplace_id}]"
            )
        if input_id not in self.documents:
            return sp_error(400, "InvalidInput", "inputFeedDocumentId names no feed document.")
        feed = Feed(str(next(self._ids)), marketplaces, input_id, _now())
        with self._lock:
            self.feeds[feed.id] = feed
        self._timeline.after(self.feed_delay / 2, lambda: self._start(feed))
        self._timeline.after(self.feed_delay, lambda: self._process(feed))
        return JSONResponse({"feedId": feed.id}, status_code=202)

    async def get_feed(self, request: Request) -> Response:
        feed = self.feeds.get(request.path_params["id"])
        if feed is None:
            return sp_error(404, "NotFound", "The requested feed was not found.")
        return JSONResponse(feed.answer())

    # The presigned document URLs ----------------------------------------------------------

    async def upload(self, request: Request) -> Response:
        document, refused = self._presigned(request)
        if document is None:
            return refused
        if request.headers.get("content-type") != document.content_type:
            return _s3_error("SignatureDoesNotMatch", "The Content-Type is not the one signed.")
        document.content = await request.body()
        return Response(status_code=200)

    async def download(self, request: Request) -> Response:
        document, refused = self._presigned(request)
        if document is None:
            return refused
        if document.content is None:
            return _s3_error("NoSuchKey", "The specified key does not exist.", 404)
        return Response(document.content, media_type=document.content_type)

    def _presigned(self, request: Request) -> tuple[Document | None, Response]:
        document = self.documents.get(request.path_params["id"])
        signature = request.query_params.get("X-Amz-Signature", "")
        if document is None or not secrets.compare_digest(signature, document.signature):
            return None, _s3_error("SignatureDoesNotMatch", "The request signature is wrong.")
        if time.monotonic() > document.expires:
            return None, _s3_error("AccessDenied", "Request has expired")
        return document, Response()

    def _new_document(self, content_type: str, content: bytes | None = None) -> Document:
        document = Document(
            id=f"amzn1.tortuga.4.na.{secrets.token_hex(16)}",
            content_type=content_type,
            signature=secrets.token_hex(32),
            expires=time.monotonic() + URL_LIFETIME,
            content=content,
        )
        with self._lock:
            self.documents[document.id] = document
        return document

    def _url(self, document: Document) -> str:
        query = f"X-Amz-Expires={int(URL_LIFETIME)}&X-Amz-Signature={document.signature}"
        return f"{self.public_url}/_s3/{document.id}?{query}"

    # Processing ---------------------------------------------------------------------------

    def _start(self, feed: Feed) -> None:
        feed.status, feed.started = "IN_PROGRESS", _now()

    def _process(self, feed: Feed) -> None:
        content = self.documents[feed.input_id].content
        reason, refused = self._read(content)
        if reason is None:
            issues, accepted = self._apply(json.loads(content or b"{}")["messages"], refused)
        else:
            issues, accepted = (
                [{"code": INVALID_MESSAGE, "message": reason, "severity": "ERROR"}],
                0,
            )
        invalid = len({i["messageId"] for i in issues if "messageId" in i})
        report = {
            "header": {"sellerId": self.seller.seller_id, "version": "2.0", "feedId": feed.id},
            "issues": issues,
            "summary": {
                "errors": sum(issue["severity"] == "ERROR" for issue in issues),
                "warnings": sum(issue["severity"] == "WARNING" for issue in issues),
                "messagesProcessed": accepted + invalid,
                "messagesAccepted": accepted,
                "messagesInvalid": invalid,
            },
        }
        self.seller.check_report(report)
        result = self._new_document("application/json", gzip.compress(json.dumps(report).encode()))
        result.compression = "GZIP"
        feed.result_id, feed.ended = result.id, _now()
        feed.status = "FATAL" if reason is not None else "DONE"

    def _read(self, content: bytes | None) -> tuple[str | None, dict[int, str]]:
        """Why the whole document is refused (FATAL; None if it is not), and why each message
        the listings feed schema refuses is (by its index)."""
        reason = _fatal(content, self.seller.seller_id)
        models = self.seller.models
        if reason is not None or models is None:
            return reason, {}
        refused: dict[int, str] = {}
        for index, problem in models.feed_problems(json.loads(content or b"{}")):
            if index is None:
                return f"The feed document is not valid: {problem}", {}
            refused.setdefault(index, problem)
        return None, refused

    def _apply(
        self, messages: list[dict[str, Any]], refused: dict[int, str]
    ) -> tuple[list[dict[str, Any]], int]:
        issues: list[dict[str, Any]] = []
        accepted = 0
        for index, message in enumerate(messages):
            number, sku = message.get("messageId"), message.get("sku")
            try:
                if index in refused:
                    raise ValueError(refused[index])
                if message.get("operationType") != "PATCH" or not message.get("productType"):
                    raise ValueError("the sandbox takes PATCH messages with a productType")
                patches = check_patches(message.get("patches"))
            except (ValueError, TypeError, AttributeError) as error:
                issues.append(_issue(number, sku, INVALID_MESSAGE, str(error)))
                continue
            if not self.seller.apply_patches(str(sku), patches):
                issues.append(_issue(number, sku, UNKNOWN_SKU, unknown_sku_message(str(sku))))
                continue
            accepted += 1
        return issues, accepted


FULFILLMENT = "/attributes/fulfillment_availability"
_OPS = ("add", "replace", "merge", "delete")


def check_patches(patches: object) -> list[dict[str, Any]]:
    """The patches, once each is a JSON Patch operation whose fulfillment availability entries
    carry a whole quantity, if any.

    Raises:
        ValueError: a patch is malformed, or an entry's quantity is not a whole number of units.
    """
    if not isinstance(patches, list) or not patches:
        raise ValueError("patches must be a non-empty list")
    for patch in patches:
        if not isinstance(patch, dict) or patch.get("op") not in _OPS:
            raise ValueError(f"not a JSON Patch operation: {patch!r}")
        if patch.get("path") != FULFILLMENT:
            continue
        for entry in patch.get("value") or []:
            value = entry.get("quantity", 0) if isinstance(entry, dict) else None
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"quantity {value!r} is not a whole number of units")
    return patches


def patched(entries: list[dict[str, Any]], patches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`fulfillment_availability` after the patches (others are ignored). As on Amazon: `replace`
    and `add` set the whole attribute, so a field not given (the seller's
    `lead_time_to_ship_max_days`, `restock_date`) is gone; `merge` sets the fields given in the
    entry of the same `fulfillment_channel_code` and keeps the others; `delete` removes the
    entries of the codes given (all of them without a value)."""
    entries = [dict(entry) for entry in entries]
    for patch in patches:
        if patch["path"] != FULFILLMENT:
            continue
        given = [dict(entry) for entry in patch.get("value") or []]
        if patch["op"] in ("add", "replace"):
            entries = given
        elif patch["op"] == "delete":
            codes = {entry.get("fulfillment_channel_code") for entry in given}
            entries = [
                e for e in entries if given and e.get("fulfillment_channel_code") not in codes
            ]
        else:
            for entry in given:
                code = entry.get("fulfillment_channel_code")
                same = [e for e in entries if e.get("fulfillment_channel_code") == code]
                if same:
                    same[0].update(entry)
                else:
                    entries.append(entry)
    return entries


def _fatal(content: bytes | None, seller_id: str) -> str | None:
    """Why the whole document is refused, None when its messages can be read."""
    if content is None:
        return "The feed document was never uploaded."
    try:
        document = json.loads(content)
        header, messages = document["header"], document["messages"]
    except (ValueError, KeyError, TypeError):
        return "The feed document is not a JSON listings feed (header and messages)."
    header = header if isinstance(header, dict) else {}
    messages = messages if isinstance(messages, list) else []
    if header.get("sellerId") != seller_id:
        return f"header.sellerId must be {seller_id}."
    if header.get("version") != "2.0":
        return "header.version must be 2.0."
    if not 1 <= len(messages) <= MESSAGE_LIMIT or not all(isinstance(m, dict) for m in messages):
        return f"messages must be 1 to {MESSAGE_LIMIT} JSON objects."
    return None


def _issue(message_id: object, sku: object, code: str, message: str) -> dict[str, Any]:
    """A report issue; `messageId` and `sku` only when the message carried usable ones."""
    issue: dict[str, Any] = {"code": code, "message": message, "severity": "ERROR"}
    if isinstance(message_id, int) and not isinstance(message_id, bool) and message_id >= 1:
        issue["messageId"] = message_id
    if isinstance(sku, str) and sku:
        issue["sku"] = sku
    return issue


def unknown_sku_message(sku: str) -> str:
    return f"The SKU '{sku}' does not exist for this seller in this marketplace."


def sp_error(status: int, code: str, message: str, details: str = "") -> JSONResponse:
    """SP-API's error answer."""
    return JSONResponse(
        {"errors": [{"code": code, "message": message, "details": details}]}, status_code=status
    )


def _s3_error(code: str, message: str, status: int = 403) -> Response:
    return Response(
        _S3_DENIED.format(code, message), status_code=status, media_type="application/xml"
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
