"""Retention: processed and discarded webhooks, channel observations and resolved dead letters
go once past their days, eBay's offer lookups on file once past their hour; what still needs
somebody stays, and so does everything recent."""

from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb
from typer.testing import CliRunner

from infrastructure.config import RetentionConfig
from infrastructure.dead_letters import DeadLetters
from infrastructure.inbox import PostgresInbox
from infrastructure.push.store import PushStore
from infrastructure.retention import Retention
from interfaces.cli import app


def _delivery(conn: psycopg.Connection, key: str, state: str, days_ago: float) -> None:
    conn.execute(
        "INSERT INTO inbox_deliveries (channel_id, delivery_key, topic, headers, body, lane, "
        "state, processed_at) VALUES ('shop', %s, 't', '{}', 'x', 'intake.increments', %s, "
        "now() - make_interval(secs => %s))",
        [key, state, days_ago * 86400],
    )


def _dead_letter(conn: psycopg.Connection, message_id: str, state: str, days_ago: float) -> None:
    conn.execute(
        "INSERT INTO dead_letters (message_id, queue_name, actor_name, message, error, state, "
        "resolved_at) VALUES (%s, 'q', 'a', %s, 'e', %s, now() - make_interval(secs => %s))",
        [message_id, Jsonb({}), state, days_ago * 86400],
    )


def _observation(conn: psycopg.Connection, sku: str, days_ago: float) -> None:
    conn.execute(
        "INSERT INTO channel_observations (channel_id, sku, location, quantity, observed_at, "
        "reference) VALUES ('shop', %s, 'main', 1, now() - make_interval(secs => %s), '')",
        [sku, days_ago * 86400],
    )


def _lookup(conn: psycopg.Connection, channel: str, sku: str, minutes_ago: float) -> None:
    conn.execute(
        "INSERT INTO channel_offers (channel_id, sku, offer_ids, listing_ids, looked_up_at) "
        "VALUES (%s, %s, '{O1}', '{L1}', now() - make_interval(secs => %s))",
        [channel, sku, minutes_ago * 60],
    )


def _lookups(conn: psycopg.Connection) -> set[tuple[str, str]]:
    return {(r[0], r[1]) for r in conn.execute("SELECT channel_id, sku FROM channel_offers")}


def _left(conn: psycopg.Connection) -> tuple[set[str], set[str], set[str]]:
    deliveries = {r[0] for r in conn.execute("SELECT delivery_key FROM inbox_deliveries")}
    letters = {r[0] for r in conn.execute("SELECT message_id FROM dead_letters")}
    observed = {r[0] for r in conn.execute("SELECT sku FROM channel_observations")}
    return deliveries, letters, observed


def _fill(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        _delivery(conn, "old-processed", "processed", 31)
        _delivery(conn, "new-processed", "processed", 29)
        _delivery(conn, "old-parked", "parked", 90)
        _delivery(conn, "old-waiting", "waiting", 90)
        _delivery(conn, "old-discarded", "discarded", 31)
        _delivery(conn, "new-discarded", "discarded", 1)
        _dead_letter(conn, "old-retried", "retried", 31)
        _dead_letter(conn, "old-discarded", "discarded", 40)
        _dead_letter(conn, "new-discarded", "discarded", 1)
        _dead_letter(conn, "old-dead", "dead", 90)
        _observation(conn, "OLD", 31)
        _observation(conn, "NEW", 2)


KEPT = (
    {"new-processed", "new-discarded", "old-parked", "old-waiting"},
    {"new-discarded", "old-dead"},
    {"NEW"},
)


def test_what_is_past_its_days_goes_and_what_needs_somebody_stays(scratch_database):
    _fill(scratch_database)
    inbox = PostgresInbox(scratch_database)
    try:
        retention = Retention(inbox, DeadLetters(scratch_database), RetentionConfig())
        assert retention.apply() == {"deliveries": 2, "observations": 1, "dead_letters": 2}
        assert retention.apply() == {"deliveries": 0, "observations": 0, "dead_letters": 0}
    finally:
        inbox.close()
    with psycopg.connect(scratch_database) as conn:
        assert _left(conn) == KEPT


def test_invsync_prune_applies_the_configured_days(scratch_database, tmp_path, monkeypatch):
    _fill(scratch_database)
    config = tmp_path / "invsync.toml"
    config.write_text("[retention]\ndeliveries_days = 10\n")
    with psycopg.connect(scratch_database, autocommit=True) as conn:
        _lookup(conn, "ebay", "OLD", 61)
        _lookup(conn, "ebay", "NEW", 59)
    monkeypatch.setenv("INVSYNC_DATABASE_URL", scratch_database)
    monkeypatch.setenv("INVSYNC_CONFIG", str(config))
    result = CliRunner().invoke(app, ["prune"])
    assert result.exit_code == 0, result.output
    deleted = "3 deliveries, 1 observations, 2 dead_letters, 0 idempotency_keys, 1 offer_lookups"
    assert f"{deleted} deleted" in result.output
    with psycopg.connect(scratch_database) as conn:
        assert _left(conn)[0] == {"new-discarded", "old-parked", "old-waiting"}
        assert _lookups(conn) == {("ebay", "NEW")}


def test_offer_lookups_past_their_hour_go_and_those_within_it_stay_whatever_the_channel(
    scratch_database,
):
    with psycopg.connect(scratch_database, autocommit=True) as conn:
        _lookup(conn, "ebay-a", "OLD", 61)
        _lookup(conn, "ebay-a", "A-DAY-OLD", 24 * 60)
        _lookup(conn, "ebay-a", "NEW", 59)
        _lookup(conn, "ebay-b", "OLD", 59)  # the same SKU within the hour on another channel
        _lookup(conn, "ebay-b", "NEW", 0)
    inbox, store = PostgresInbox(scratch_database), PushStore(scratch_database)
    try:
        retention = Retention(inbox, DeadLetters(scratch_database), RetentionConfig(), offers=store)
        assert retention.apply()["offer_lookups"] == 2
        assert retention.apply()["offer_lookups"] == 0
        assert set(store.filed_offers("ebay-b", ["OLD", "NEW"])) == {"OLD", "NEW"}
    finally:
        inbox.close()
        store.close()
    with psycopg.connect(scratch_database) as conn:
        assert _lookups(conn) == {("ebay-a", "NEW"), ("ebay-b", "OLD"), ("ebay-b", "NEW")}


def test_a_retention_of_no_days_is_refused_with_the_key(tmp_path, monkeypatch):
    config = tmp_path / "invsync.toml"
    config.write_text("[retention]\ndeliveries_days = 0\n")
    monkeypatch.setenv("INVSYNC_CONFIG", str(config))
    result = CliRunner().invoke(app, ["prune"])
    assert result.exit_code != 0
    assert "retention.deliveries_days" in result.output
