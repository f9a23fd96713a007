"""Read models kept by projection runners fed by LISTEN/NOTIFY, each updating its tables and its
tracking position in one transaction: every ledger event counts exactly once.

`availability`: stock levels per (SKU, location), folded from each event's own deltas, and the
available-to-sell per (SKU, channel) computed from them by the channels' allocation rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from functools import singledispatchmethod
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.persistence import InfrastructureFactory, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.projection import Projection, ProjectionRunner
from eventsourcing.utils import Environment, get_topic
from psycopg.sql import SQL, Identifier

from application.ledger import Ledger
from domain.allocation import ChannelRule, allocate
from domain.inventory import InventoryItem
from domain.stock import Levels

_LEVELS = ("on_hand", "committed", "reserved", "unavailable")


class AvailabilityView(PostgresTrackingRecorder):
    """Tables `availability_skus`, `availability_levels` and `availability` (SKU, channel)."""

    def __init__(
        self, datastore: PostgresDatastore, *, tracking_table_name: str = "availability_tracking"
    ) -> None:
        super().__init__(datastore, tracking_table_name=tracking_table_name)
        self.sql_create_statements.extend(
            SQL(s).format(schema=Identifier(datastore.schema))
            for s in (
                "CREATE TABLE IF NOT EXISTS {schema}.availability_skus ("
                "item_id uuid PRIMARY KEY, sku text NOT NULL UNIQUE)",
                "CREATE TABLE IF NOT EXISTS {schema}.availability_levels ("
                "sku text NOT NULL, location text NOT NULL, on_hand integer NOT NULL DEFAULT 0, "
                "committed integer NOT NULL DEFAULT 0, reserved integer NOT NULL DEFAULT 0, "
                "unavailable integer NOT NULL DEFAULT 0, version bigint NOT NULL, "
                "PRIMARY KEY (sku, location))",
                "CREATE TABLE IF NOT EXISTS {schema}.availability_sales ("
                "sku text NOT NULL, channel_id text NOT NULL, day date NOT NULL, "
                "units integer NOT NULL, PRIMARY KEY (sku, channel_id, day))",
                "CREATE TABLE IF NOT EXISTS {schema}.availability ("
                "sku text NOT NULL, channel_id text NOT NULL, available_to_sell integer NOT NULL, "
                "version bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), "
                "PRIMARY KEY (sku, channel_id))",
            )
        )

    def name_item(self, item_id: UUID, sku: str, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                "INSERT INTO availability_skus (item_id, sku) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING",
                [item_id, sku],
            )
            self._insert_tracking(curs, tracking)

    def apply(
        self, event: InventoryItem.StockEvent, rules: Sequence[ChannelRule], tracking: Tracking
    ) -> None:
        """Fold the event's deltas into the levels and recompute the SKU's availability."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                "SELECT sku FROM availability_skus WHERE item_id = %s", [event.originator_id]
            )
            row = curs.fetchone()
            assert row is not None, "an item's Created event comes before its changes"
            sku = row["sku"]
            for location, state, units in event.deltas():
                curs.execute(
                    SQL(
                        "INSERT INTO availability_levels (sku, location, {state}, version) "
                        "VALUES (%s, %s, %s, %s) ON CONFLICT (sku, location) DO UPDATE SET "
                        "{state} = availability_levels.{state} + EXCLUDED.{state}, "
                        "version = EXCLUDED.version"
                    ).format(state=Identifier(state)),
                    [sku, location, units, event.originator_version],
                )
            if sold := _units_sold(event):
                curs.execute(
                    "INSERT INTO availability_sales (sku, channel_id, day, units) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT (sku, channel_id, day) "
                    "DO UPDATE SET units = availability_sales.units + EXCLUDED.units",
                    [sku, event.source, event.occurred_at.date(), sold],
                )
            curs.execute(
                "SELECT location, on_hand, committed, reserved, unavailable "
                "FROM availability_levels WHERE sku = %s",
                [sku],
            )
            locations = {
                r["location"]: Levels(**{k: r[k] for k in _LEVELS}) for r in curs.fetchall()
            }
            velocities = self._velocities(curs, sku, event.occurred_at.date())
            for channel_id, allocation in allocate(locations, rules, velocities).items():
                curs.execute(
                    "INSERT INTO availability (sku, channel_id, available_to_sell, version) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT (sku, channel_id) DO UPDATE SET "
                    "available_to_sell = EXCLUDED.available_to_sell, version = EXCLUDED.version,"
                    " updated_at = now()",
                    [sku, channel_id, allocation.available_to_sell, event.originator_version],
                )
            self._insert_tracking(curs, tracking)

    @staticmethod
    def _velocities(curs: Any, sku: str, today: date) -> dict[str, float]:
        curs.execute(
            "SELECT channel_id, sum(units) AS units FROM availability_sales "
            "WHERE sku = %s AND day > %s GROUP BY channel_id",
            [sku, today - timedelta(days=VELOCITY_DAYS)],
        )
        return {r["channel_id"]: max(0, r["units"]) / VELOCITY_DAYS for r in curs.fetchall()}

    def velocities(self, sku: str, today: date | None = None) -> dict[str, float]:
        """Units sold per day per channel over the trailing `VELOCITY_DAYS` days."""
        with self.datastore.transaction(commit=False) as curs:
            return self._velocities(curs, sku, today or datetime.now(UTC).date())

    def available_to_sell(self, sku: str) -> dict[str, int]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                "SELECT channel_id, available_to_sell FROM availability WHERE sku = %s", [sku]
            )
            return {r["channel_id"]: r["available_to_sell"] for r in curs.fetchall()}


# Trailing window of the sales velocity that weighs velocity-weighted channels.
VELOCITY_DAYS = 7


def _units_sold(event: InventoryItem.StockEvent) -> int:
    if isinstance(event, InventoryItem.Sold):
        return event.quantity
    if isinstance(event, InventoryItem.SaleCancelled):
        return -event.released
    return 0


_STOCK_EVENTS = tuple(
    get_topic(cls)
    for cls in (
        InventoryItem.Created,
        InventoryItem.Received,
        InventoryItem.Sold,
        InventoryItem.SaleCancelled,
        InventoryItem.Shipped,
        InventoryItem.Returned,
        InventoryItem.Adjusted,
        InventoryItem.Counted,
        InventoryItem.Transferred,
        InventoryItem.Reserved,
        InventoryItem.ReservationReleased,
    )
)


class Availability(Projection[AvailabilityView]):
    name = "availability"
    topics = _STOCK_EVENTS
    rules: ClassVar[tuple[ChannelRule, ...]] = ()

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.insert_tracking(tracking)

    @process_event.register
    def _(self, domain_event: InventoryItem.Created, tracking: Tracking) -> None:
        self.view.name_item(domain_event.originator_id, domain_event.sku, tracking)

    @process_event.register
    def _(self, domain_event: InventoryItem.StockEvent, tracking: Tracking) -> None:
        self.view.apply(domain_event, self.rules, tracking)


def availability_projection(rules: Sequence[ChannelRule]) -> type[Availability]:
    """The projection class with the merchant's rules (the runner builds it from the class)."""
    return type("Availability", (Availability,), {"name": "availability", "rules": tuple(rules)})


def availability_runner(
    env: dict[str, str], rules: Sequence[ChannelRule]
) -> ProjectionRunner[Ledger, AvailabilityView]:
    return ProjectionRunner(
        application_class=Ledger,
        projection_class=availability_projection(rules),
        view_class=AvailabilityView,
        env=env,
    )


def create_projection_tables(env: dict[str, str]) -> None:
    """Create the projections' tables and tracking tables (the migration's job only)."""
    factory = InfrastructureFactory[AvailabilityView].construct(
        env=Environment(Availability.name, {**env, "CREATE_TABLE": "y"})
    )
    try:
        factory.tracking_recorder(AvailabilityView)
    finally:
        factory.close()
