"""Typed shapes of what the API answers, for its OpenAPI document. The routes build plain dicts
(see interfaces.presenters); these models say what those dicts hold, and
tests/integration/test_api_schema.py checks every answer against them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from application.intake import DeliveryState
from application.outcomes import OutcomeStatus
from domain.stock import ChangeKind, QuantityState
from infrastructure.config import RulesConfig

# Query parameters: what params.py accepts, as types the document can describe.
Limit = Annotated[int, Field(ge=1, le=1000, description="page size (default 50)")]
Time = Annotated[AwareDatetime, Field(description="an ISO 8601 time with a zone")]
Flag = Annotated[bool, Field(description="true or false (default false)")]


class Closed(BaseModel):
    """A document with exactly the fields listed."""

    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """An RFC 9457 problem document; some answers add members of their own (`checks`,
    `errors`)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="always about:blank: the title says what went wrong")
    title: str
    status: int
    detail: str


class FieldError(Closed):
    at: str = Field(description="where in the body: a list index and field, or empty")
    error: str


class InvalidStockChange(Problem):
    errors: list[FieldError] = Field(default_factory=list)


class Levels(Closed):
    on_hand: int
    committed: int
    reserved: int
    unavailable: int
    available: int = Field(description="on_hand - committed - reserved - unavailable")


class Stock(Closed):
    sku: str
    version: int
    locations: dict[str, Levels]
    totals: Levels


class Step(Closed):
    step: str
    quantity: float
    rule: str


class ChannelStock(Closed):
    available_to_sell: int
    steps: list[Step] = Field(
        default_factory=list, description="only with explain=true: how the quantity came about"
    )


class SentChannelStock(ChannelStock):
    """What the availability projection holds for a channel: what it was sent, or is about to
    be. The push fields are absent where the number was computed on the spot."""

    version: int | None = Field(default=None, description="the SKU's ledger version it reflects")
    pending: bool | None = Field(default=None, description="not pushed to the channel yet")
    pushed_version: int | None = Field(
        default=None, description="the SKU's ledger version the last push carried"
    )
    acknowledged_quantity: int | None = Field(
        default=None, description="what the channel said it shows after the last push"
    )
    acknowledged_at: AwareDatetime | None = None


class SkuStock(Stock):
    channels: dict[str, SentChannelStock] = Field(description="keyed by channel id")


class StockAsOf(Stock):
    channels: dict[str, ChannelStock] = Field(description="what each channel could sell then")
    as_of: AwareDatetime


class SkuList(Closed):
    skus: list[str]
    next_after: str | None = Field(description="pass as `after` for the next page")


class Delta(Closed):
    location: str
    state: QuantityState
    units: int


class LedgerEvent(Closed):
    version: int
    kind: ChangeKind
    event: str = Field(description="the event class, e.g. Received, Sold")
    recorded_at: AwareDatetime
    occurred_at: AwareDatetime
    location: str
    business_key: str
    source: str
    reference: str
    reason: str
    details: dict[str, Any]
    deltas: list[Delta]


class SkuHistory(Closed):
    sku: str
    events: list[LedgerEvent]
    next_cursor: int | None


class RecordedChange(Closed):
    business_key: str
    sku: str
    kind: ChangeKind
    versions: tuple[int, int] = Field(description="the first and last event version it recorded")
    recorded_at: AwareDatetime
    occurred_at: AwareDatetime
    source: str
    shortfall: int
    location: str
    reference: str
    reason: str


class ChannelsAround(Closed):
    before: dict[str, ChannelStock]
    after: dict[str, ChannelStock]


class Oversell(RecordedChange):
    events_before: list[LedgerEvent]
    events_after: list[LedgerEvent]
    channels: ChannelsAround = Field(description="what each channel could sell either side")


class Oversells(Closed):
    oversells: list[Oversell]


class ChangesPage(Closed):
    changes: list[RecordedChange]
    next_cursor: str | None


class RulesChange(Closed):
    at: AwareDatetime
    version: int


class ChannelRulesDocument(Closed):
    channel_id: str
    rules: RulesConfig
    last_change: RulesChange | None = Field(description="null while the configured rules apply")


class SkuRulesDocument(Closed):
    channel_id: str
    sku: str
    override: dict[str, Any] = Field(description="the keys set for this SKU alone")
    rules: RulesConfig = Field(description="the channel's rules with the override applied")


class Reservation(Closed):
    id: str
    sku: str
    location: str
    quantity: int
    expires_at: AwareDatetime | None
    created_at: AwareDatetime | None
    released_at: AwareDatetime | None
    release_reason: str | None


class Reservations(Closed):
    reservations: list[Reservation]


class Released(Closed):
    id: str
    status: Literal["released"]


class ChangeOutcome(Closed):
    status: OutcomeStatus
    sku: str
    business_key: str
    version: int | None = Field(default=None, description="the item's version after it")
    error: str | None = Field(default=None, description="why a rejected change was refused")


class ChangeOutcomes(Closed):
    results: list[ChangeOutcome]


class Delivery(Closed):
    id: int
    channel_id: str
    delivery_key: str
    topic: str
    received_at: AwareDatetime
    state: DeliveryState
    reason: str | None
    processed_at: AwareDatetime | None
    waiting_for: list[str]  # the SKUs a waiting delivery needs in the ledger first


class DeliveryPayload(Delivery):
    headers: dict[str, str]  # as verified, names lower-cased
    body: str  # as received, bytes that are not UTF-8 replaced


class Deliveries(Closed):
    deliveries: list[Delivery]


class DeadLetter(Closed):
    id: int
    message_id: str
    queue_name: str
    actor_name: str
    message: dict[str, Any]
    error: str
    failed_at: AwareDatetime
    state: Literal["dead", "retried", "discarded"]
    resolved_at: AwareDatetime | None


class DeadLetters(Closed):
    dead_letters: list[DeadLetter]


class Accepted(Closed):
    status: str
    id: int


class ProjectionPosition(Closed):
    position: int = Field(description="the last ledger position the projection has folded")
    ledger_position: int
    lag: int = Field(description="ledger positions not folded yet")


class ProjectionPositions(Closed):
    projections: dict[str, ProjectionPosition]


class RebuildProgress(Closed):
    position: int
    of: int


class TableRows(Closed):
    live: int
    rebuilt: int


class RebuildDifference(Closed):
    sku: str
    channel_id: str
    live: int | None
    rebuilt: int | None


class RebuildReport(Closed):
    events: int
    position: int
    seconds: float
    rows: dict[str, TableRows]
    differences: list[RebuildDifference] = Field(
        description="each available-to-sell the rebuild changed (and sent to the outbox)"
    )


class RebuildJobDocument(Closed):
    projection: str
    state: Literal["running", "done", "failed"]
    started_at: AwareDatetime
    finished_at: AwareDatetime | None
    progress: RebuildProgress
    error: str | None
    report: RebuildReport | None


class Window(Closed):
    pushes: int
    p50: float
    p99: float


class Refusals(Closed):
    refusals: int
    last_at: AwareDatetime


class ChannelSync(Closed):
    channel_id: str
    pending: int = Field(description="(SKU) quantities not acknowledged by the channel yet")
    lag_seconds: float = Field(description="age of the oldest change not acknowledged yet")
    breaker: Literal["open", "closed"]
    closed_for_seconds: float = Field(description="until the channel may be called again")
    failures_in_a_row: int
    consistency_window_seconds: dict[str, Window] = Field(
        description="per kind of change (sale, return, adjustment, ...), over the last hour; "
        "a window closes only when the channel shows the quantity (refusals do not count)"
    )
    refused: dict[str, Refusals] = Field(
        description="pushes the channel refused over the last hour, by the code it gave"
    )
    held: int = Field(
        description="SKUs whose raise waits for the channel's own sales to be recorded"
    )


class ReconcileProgress(Closed):
    step: int = Field(description="steps done: the orders poll, then one per batch of SKUs")
    steps: int


class ReconcileCounts(Closed):
    orders_found: int = Field(description="orders the polls listed")
    orders_applied: int = Field(description="of them, new to the inbox (their webhook was lost)")
    skus_read: int
    corrected: int = Field(description="SKUs whose small drift was pushed back at once")
    escalated: int = Field(description="SKUs whose drift waits in a discrepancy for review")


class DiscrepancyResolution(Closed):
    action: Literal["accept_channel", "push_ledger", "superseded"] = Field(
        description="superseded: closed by invsync, a push having set the channel over what it "
        "showed less of before anyone reviewed it"
    )
    reason: str
    by: str = Field(description="the API token's name; invsync for its own corrections")
    at: AwareDatetime


class Discrepancy(Closed):
    id: str = Field(description="a UUID")
    channel: str
    sku: str
    observed: int = Field(description="what the channel showed")
    expected: int = Field(description="what it should have shown")
    difference: int = Field(description="observed less expected")
    state: Literal["open", "resolved"]
    read_at: AwareDatetime = Field(description="when the channel was read")
    detected_at: AwareDatetime
    evidence: dict[str, Any] = Field(
        description="the reading, the push it was judged against, the channel's sales since"
    )
    resolution: DiscrepancyResolution | None


class Discrepancies(Closed):
    discrepancies: list[Discrepancy] = Field(description="newest first")


class ReconcileRun(Closed):
    id: int
    channel_id: str
    what: Literal["orders", "levels", "both"]
    scope: Literal["requested", "orders", "active", "catalog"] = Field(
        description="asked for (API, CLI, a trigger), or the schedule that made it"
    )
    skus: list[str] | None = Field(description="the SKUs read; null: every SKU it lists")
    state: Literal["queued", "running", "done", "failed"]
    progress: ReconcileProgress
    counts: ReconcileCounts
    requested_at: AwareDatetime
    requested_by: str
    started_at: AwareDatetime | None
    finished_at: AwareDatetime | None
    error: str | None = Field(description="why the last attempt of a step failed")


class ReconcileRuns(Closed):
    channel_id: str
    runs: list[ReconcileRun] = Field(description="the latest runs, newest first")
