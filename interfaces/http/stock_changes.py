"""`POST /api/v1/stock-changes`: receipts, adjustments, counts and transfers from people and
tools, one object or a list, validated by typed models."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from application.ledger import Ledger
from application.outcomes import Outcome, OutcomeStatus
from domain.errors import DomainError
from domain.stock import ChangeKind, QuantityState, StockChange
from infrastructure.idempotency import (
    MAX_KEY_LENGTH,
    Claim,
    ClaimState,
    IdempotencyStore,
    request_hash,
)
from interfaces.http.inputs import (
    BusinessKey,
    Location,
    PastTime,
    Reason,
    Reference,
    Sku,
    Units,
)
from interfaces.http.params import flag
from interfaces.http.problems import problem

MAX_BATCH = 1000


class StockChangeIn(BaseModel):
    """One change, as the API takes it."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["receipt", "adjustment", "count", "transfer"]
    sku: Sku
    location: Location = "main"
    to_location: Location | None = None
    quantity: Units = Field(description="signed for an adjustment; the counted units for a count")
    reason: Reason = ""
    reference: Reference = ""
    business_key: BusinessKey
    occurred_at: PastTime | None = None
    expected: Units | None = Field(default=None, description="counts: the on_hand expected")
    state: Literal["on_hand", "unavailable"] = "on_hand"

    def to_domain(self, source: str) -> StockChange:
        occurred = self.occurred_at or datetime.now(UTC)
        return StockChange(
            kind=ChangeKind(self.kind),
            sku=self.sku,
            location=self.location,
            quantity=self.quantity,
            business_key=f"api:{self.business_key}",
            source=source,
            occurred_at=occurred if occurred.tzinfo else occurred.replace(tzinfo=UTC),
            reference=self.reference,
            reason=self.reason,
            to_location=self.to_location,
            expected=self.expected,
            state=QuantityState(self.state),
        )


# One adapter per shape, chosen by the body's first character: validated against the union,
# every mistake in a single change was also reported as "Input should be a valid array".
_ONE = TypeAdapter(StockChangeIn)
_MANY = TypeAdapter(list[StockChangeIn])


# How long `?wait=true` waits for the projections to fold what was just recorded.
WAIT_SECONDS = 5.0


def stock_changes_endpoint(
    ledger: Ledger,
    idempotency: IdempotencyStore | None,
    caught_up: Callable[[float], bool] | None = None,
) -> Callable[[Request], Awaitable[Response]]:
    """`caught_up(timeout)` waits until the projections have folded all that is recorded; with
    `?wait=true` the answer comes after it (read your writes), saying in `Projections-Caught-Up`
    whether it came in time."""
    return _StockChanges(ledger, idempotency, caught_up).post


class _StockChanges:
    def __init__(
        self,
        ledger: Ledger,
        idempotency: IdempotencyStore | None,
        caught_up: Callable[[float], bool] | None,
    ) -> None:
        self.ledger, self.idempotency, self.caught_up = ledger, idempotency, caught_up

    async def post(self, request: Request) -> Response:
        wait = flag(request.query_params.get("wait"), "wait")
        body = await request.body()
        # Who made it: the token's name; with no tokens configured (loopback only), "api".
        source = getattr(request.state, "token", None) or "api"
        key = request.headers.get("idempotency-key")
        if key is None or self.idempotency is None:
            status, document = await run_in_threadpool(_record, self.ledger, body, source)
            return await self._answer(status, document, wait)
        if refusal := key_refusal(key):
            return problem(400, "Invalid Idempotency-Key", refusal)
        return await self._once(
            self.idempotency, request, key=key, body=body, source=source, wait=wait
        )

    async def _once(
        self,
        keys: IdempotencyStore,
        request: Request,
        *,
        key: str,
        body: bytes,
        source: str,
        wait: bool,
    ) -> Response:
        """Record the body once per key: a repeat replays the first answer."""
        # Keys are the token's own: two clients may well pick the same one.
        owner = getattr(request.state, "token_id", None) or ""
        fingerprint = request_hash("POST", request.url.path, body)
        claim = await run_in_threadpool(keys.claim, owner, key, fingerprint)
        if claim.state is not ClaimState.CLAIMED:
            return _claimed_before(claim)
        assert claim.token is not None
        try:
            status, document = await run_in_threadpool(_record, self.ledger, body, source)
        except BaseException:
            # The outcome is unknown to the client: its retry must run (business keys keep
            # the ledger exact), not replay a failure or wait out the claim's lease.
            await run_in_threadpool(keys.abandon, owner, key, claim.token)
            raise
        await run_in_threadpool(keys.complete, owner, key, claim.token, status, document)
        return await self._answer(status, document, wait)

    async def _answer(self, status: int, document: dict[str, Any], wait: bool) -> Response:
        response = JSONResponse(document, status_code=status, media_type=_media(status))
        if wait and self.caught_up is not None and status < 400:
            in_time = await run_in_threadpool(self.caught_up, WAIT_SECONDS)
            response.headers["Projections-Caught-Up"] = "true" if in_time else "false"
        return response


def _claimed_before(claim: Claim) -> Response:
    """The answer to a key used before: another body, still running, or the first answer."""
    if claim.state is ClaimState.MISMATCH:
        return problem(
            422,
            "Idempotency key reused",
            "this Idempotency-Key was used with another request body",
        )
    if claim.state is ClaimState.IN_FLIGHT:
        response = problem(
            409,
            "Request in progress",
            "the first request with this Idempotency-Key is still running: retry shortly",
        )
        response.headers["Retry-After"] = "1"
        return response
    return JSONResponse(
        claim.body,
        status_code=claim.status or 200,
        headers={"Idempotent-Replayed": "true"},
        media_type=_media(claim.status or 200),
    )


def key_refusal(key: str) -> str | None:
    """Why `key` cannot be an Idempotency-Key, or None."""
    if not key:
        return "an Idempotency-Key must not be empty"
    if len(key) > MAX_KEY_LENGTH:
        return (
            f"the Idempotency-Key is {len(key)} characters long; "
            f"at most {MAX_KEY_LENGTH} are allowed"
        )
    if not key.isprintable() or not key.isascii():
        return "an Idempotency-Key holds only printable ASCII characters"
    return None


def _media(status: int) -> str:
    return "application/problem+json" if status >= 400 else "application/json"


def _record(ledger: Ledger, body: bytes, source: str) -> tuple[int, dict[str, Any]]:
    try:
        adapter: TypeAdapter[Any] = _MANY if body.lstrip()[:1] == b"[" else _ONE
        parsed = adapter.validate_json(body)
    except ValidationError as error:
        return 422, _invalid(
            [{"at": "/".join(str(p) for p in e["loc"]), "error": e["msg"]} for e in error.errors()]
        )
    batch = parsed if isinstance(parsed, list) else [parsed]
    if not batch or len(batch) > MAX_BATCH:
        return 422, _invalid([{"at": "", "error": f"send 1 to {MAX_BATCH} changes"}])
    changes, errors = [], []
    for n, item in enumerate(batch):
        try:
            changes.append(item.to_domain(source=source))
        except DomainError as error:
            errors.append({"at": str(n) if isinstance(parsed, list) else "", "error": str(error)})
    if errors:
        return 422, _invalid(errors)
    outcomes = ledger.record_batch(changes)
    if not isinstance(parsed, list):
        return _single(outcomes[0])
    return 200, {"results": [_outcome(o) for o in outcomes]}


def _single(outcome: Outcome) -> tuple[int, dict[str, Any]]:
    if outcome.status is OutcomeStatus.REJECTED:
        return 422, {
            "type": "about:blank",
            "title": "Change refused",
            "status": 422,
            "detail": str(outcome.error),
        }
    return (201 if outcome.status is OutcomeStatus.APPLIED else 200), _outcome(outcome)


def _outcome(outcome: Outcome) -> dict[str, Any]:
    result: dict[str, Any] = {
        "status": outcome.status.value,
        "sku": outcome.change.sku,
        "business_key": outcome.change.business_key.removeprefix("api:"),
    }
    if outcome.receipt is not None:
        result["version"] = outcome.receipt.last_version
    if outcome.error is not None:
        result["error"] = str(outcome.error)
    return result


def _invalid(errors: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "type": "about:blank",
        "title": "Invalid stock change",
        "status": 422,
        "detail": "; ".join(f"{e['at'] or 'body'}: {e['error']}" for e in errors),
        "errors": errors,
    }
