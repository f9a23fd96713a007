"""The `invsync` command line, run through typer's CliRunner against the test database."""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from typer.testing import CliRunner

from domain.stock import ChangeKind
from interfaces.cli import app
from tests.helpers import change, random_sku

Invoke = Callable[..., Any]


def _stderr(result: Any) -> str:
    """What the command wrote to stderr. Click 8.2+ captures it apart from stdout (and mixes both
    into `output`); older versions mix it into `output` and refuse `stderr`."""
    try:
        return result.stderr
    except ValueError:
        return result.output


@pytest.fixture
def invsync(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Invoke:
    """Runs `invsync ARGS...` on the test database (already migrated), without Redis."""
    monkeypatch.setenv("INVSYNC_DATABASE_URL", database_url)
    monkeypatch.delenv("INVSYNC_REDIS_URL", raising=False)
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(app, list(args))

    return invoke


def _ok(result: Any) -> Any:
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.output}"
    return result


def _show(invsync: Invoke, sku: str, *extra: str) -> dict[str, Any]:
    return json.loads(_ok(invsync("stock", "show", sku, "--json", *extra)).stdout)


def _history(invsync: Invoke, sku: str, *extra: str) -> list[dict[str, Any]]:
    return json.loads(_ok(invsync("stock", "history", sku, "--json", *extra)).stdout)


def _assert_one_line_error(result: Any, *fragments: str) -> str:
    """Exit code 1 and one line `error: ...` on stderr, no traceback."""
    assert result.exit_code == 1, f"exit {result.exit_code}: {result.output}"
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = _stderr(result).strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {lines}"
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


# Recording stock ----------------------------------------------------------------------------


def test_received_stock_shows_on_hand_at_its_location_in_json(invsync):
    sku = random_sku()

    received = _ok(invsync("stock", "receive", sku, "10", "-l", "east"))
    shown = _show(invsync, sku)

    assert received.stdout.startswith("receipt cli:")
    assert shown["sku"] == sku
    assert shown["locations"] == {
        "east": {"on_hand": 10, "committed": 0, "reserved": 0, "unavailable": 0, "available": 10}
    }
    assert shown["totals"]["on_hand"] == 10


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["-3", "--reason", "damaged"], id="delta-first-no-double-dash"),
        pytest.param(["--reason", "damaged", "-3"], id="delta-after-options"),
        pytest.param(["--reason", "damaged", "--", "-3"], id="double-dash-after-options"),
    ],
)
def test_a_negative_adjustment_is_typed_as_a_plain_negative_number(invsync, args):
    sku = random_sku()
    _ok(invsync("stock", "receive", sku, "10"))

    adjusted = _ok(invsync("stock", "adjust", sku, *args))

    assert adjusted.stdout.startswith("adjustment cli:")
    assert _show(invsync, sku)["locations"]["main"]["on_hand"] == 7
    latest = _history(invsync, sku)[0]
    assert latest["kind"] == "adjustment"
    assert latest["reason"] == "damaged"
    assert latest["details"] == {"delta": -3, "state": "on_hand"}


def test_an_adjustment_of_unavailable_units_leaves_on_hand_alone(invsync):
    sku = random_sku()
    _ok(invsync("stock", "receive", sku, "10"))

    _ok(invsync("stock", "adjust", sku, "2", "--reason", "quality_control", "--unavailable"))

    main = _show(invsync, sku)["locations"]["main"]
    assert (main["on_hand"], main["unavailable"], main["available"]) == (10, 2, 8)


def test_a_count_sets_on_hand_to_the_units_counted(invsync):
    sku = random_sku()
    _ok(invsync("stock", "receive", sku, "10", "-l", "east"))

    _ok(invsync("stock", "count", sku, "7", "-l", "east"))

    assert _show(invsync, sku)["locations"]["east"]["on_hand"] == 7
    latest = _history(invsync, sku)[0]
    assert latest["kind"] == "count"
    assert latest["details"] == {"counted": 7, "expected": 10, "delta": -3}


def test_a_transfer_moves_on_hand_from_one_location_to_another(invsync):
    sku = random_sku()
    _ok(invsync("stock", "receive", sku, "10", "-l", "east"))

    _ok(invsync("stock", "transfer", sku, "4", "--from", "east", "--to", "west"))

    shown = _show(invsync, sku)
    assert {name: levels["on_hand"] for name, levels in shown["locations"].items()} == {
        "east": 6,
        "west": 4,
    }
    assert shown["totals"]["on_hand"] == 10


def test_history_in_json_lists_events_newest_first_with_their_kinds(invsync):
    sku = random_sku()
    _ok(invsync("stock", "receive", sku, "10", "-l", "east"))
    _ok(invsync("stock", "adjust", sku, "-1", "--reason", "damaged", "-l", "east"))
    _ok(invsync("stock", "transfer", sku, "4", "--from", "east", "--to", "west"))
    _ok(invsync("stock", "count", sku, "5", "-l", "east"))

    events = _history(invsync, sku)
    oldest_first = _history(invsync, sku, "--oldest-first")
    sales_only = _history(invsync, sku, "--kind", "sale")

    assert [(e["version"], e["kind"]) for e in events] == [
        (5, "count"),
        (4, "transfer"),
        (3, "adjustment"),
        (2, "receipt"),
    ]
    assert all(e["source"] == "cli" for e in events)
    assert [e["version"] for e in oldest_first] == [2, 3, 4, 5]
    assert sales_only == []


def test_the_same_key_twice_is_applied_once_and_says_already_recorded(invsync):
    sku = random_sku()
    key = f"po:{uuid.uuid4()}"

    first = _ok(invsync("stock", "receive", sku, "5", "--key", key))
    again = _ok(invsync("stock", "receive", sku, "5", "--key", key))

    assert "already recorded" not in first.stdout
    assert f"receipt {key}" in first.stdout
    assert "already recorded" in again.stdout
    assert _show(invsync, sku)["totals"]["on_hand"] == 5
    assert len(_history(invsync, sku)) == 1


def test_show_at_a_past_time_gives_the_stock_as_it_was_then(invsync):
    sku = random_sku()
    _ok(invsync("stock", "receive", sku, "10"))
    then = datetime.now(UTC).isoformat()
    _ok(invsync("stock", "receive", sku, "5"))

    assert _show(invsync, sku, "--at", then)["totals"]["on_hand"] == 10
    assert _show(invsync, sku)["totals"]["on_hand"] == 15


@pytest.fixture
def channel(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> str:
    """A configured channel allowed half the stock, with no rule changes recorded."""
    channel_id = f"shop-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "invsync.toml"
    config.write_text(
        f'[[channels]]\nid = "{channel_id}"\nkind = "internal"\nwebhook_secrets = ["s"]\n'
        "[channels.rules]\nshare_percent = 50\n"
    )
    monkeypatch.setenv("INVSYNC_CONFIG", str(config))
    return channel_id


def test_show_at_a_time_gives_each_channels_ats_then(invsync, channel):
    sku = random_sku()
    _ok(invsync("stock", "receive", sku, "10"))
    then = datetime.now(UTC).isoformat()
    _ok(invsync("stock", "receive", sku, "6"))

    shown = _show(invsync, sku, "--at", then)

    assert shown["channels"] == {channel: {"available_to_sell": 5}}
    assert shown["as_of"] == then
    table = _ok(invsync("stock", "show", sku, "--at", then)).stdout
    assert channel in table
    assert then[:19] in table


def test_oversells_list_each_with_the_events_around_it_and_the_channels_ats(
    invsync, channel, ledger
):
    sku = random_sku()
    ledger.record(change(ChangeKind.RECEIPT, sku, 4))
    ledger.record(change(ChangeKind.ADJUSTMENT, sku, -1, reason="damaged"))
    ledger.record(change(ChangeKind.SALE, sku, 5, business_key=f"order:{sku}"))  # 2 short
    ledger.record(change(ChangeKind.RECEIPT, sku, 1))

    listed = json.loads(_ok(invsync("oversells", "--json", "--limit", "1000")).stdout)

    [found] = [o for o in listed if o["sku"] == sku]
    assert found["shortfall"] == 2
    assert [e["kind"] for e in found["events_before"]] == ["receipt", "adjustment"]
    assert [e["kind"] for e in found["events_after"]] == ["receipt"]
    assert found["channels"] == {
        "before": {channel: {"available_to_sell": 1}},
        "after": {channel: {"available_to_sell": 0}},
    }
    shown = _ok(invsync("oversells", "--limit", "1000")).stdout
    assert f"order:{sku}" in shown
    assert f"{channel} 1 → 0" in shown


# Errors -------------------------------------------------------------------------------------


def test_show_of_an_unknown_sku_is_a_one_line_error(invsync):
    sku = random_sku()
    _assert_one_line_error(invsync("stock", "show", sku), sku, "no stock has been recorded")


def test_history_of_an_unknown_sku_is_a_one_line_error(invsync):
    sku = random_sku()
    _assert_one_line_error(invsync("stock", "history", sku), sku)


def test_a_transfer_of_more_than_is_on_hand_is_refused_and_changes_nothing(invsync):
    sku = random_sku()
    _ok(invsync("stock", "receive", sku, "3", "-l", "east"))

    result = invsync("stock", "transfer", sku, "4", "--from", "east", "--to", "west")

    _assert_one_line_error(result, "cannot move 4 of 3 on hand")
    assert list(_show(invsync, sku)["locations"]) == ["east"]


def test_a_transfer_from_a_location_without_stock_is_a_one_line_error(invsync):
    sku = random_sku()
    _ok(invsync("stock", "receive", sku, "3", "-l", "east"))

    result = invsync("stock", "transfer", sku, "1", "--from", "north", "--to", "east")

    _assert_one_line_error(result, "no stock record at 'north'")


def test_a_negative_count_is_a_one_line_error(invsync):
    sku = random_sku()
    _ok(invsync("stock", "receive", sku, "3"))

    # `count` takes no negative numbers, so click reads a bare -1 as an option: after `--` it
    # reaches invsync, which refuses it.
    result = invsync("stock", "count", sku, "--", "-1")

    _assert_one_line_error(result, "cannot be negative")
    assert _show(invsync, sku)["totals"]["on_hand"] == 3


def test_an_adjustment_reason_not_in_the_list_is_a_usage_error(invsync):
    sku = random_sku()
    _ok(invsync("stock", "receive", sku, "3"))

    result = invsync("stock", "adjust", sku, "-1", "--reason", "bored")

    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "'bored' is not one of" in _stderr(result)
    assert _show(invsync, sku)["totals"]["on_hand"] == 3


@pytest.mark.parametrize(
    ("at", "complaint"),
    [
        pytest.param("yesterday", "is not an ISO 8601 time", id="not-iso"),
        pytest.param("2026-01-01T12:00:00", "needs a time zone", id="no-zone"),
    ],
)
def test_show_at_an_unreadable_time_is_a_one_line_error(invsync, at, complaint):
    sku = random_sku()
    _ok(invsync("stock", "receive", sku, "3"))
    _assert_one_line_error(invsync("stock", "show", sku, "--at", at), complaint)


def test_oversells_before_an_unreadable_time_is_a_one_line_error(invsync):
    _assert_one_line_error(invsync("oversells", "--before", "yesterday"), "is not an ISO 8601")


def test_show_at_a_time_before_the_sku_existed_is_a_one_line_error(invsync):
    sku = random_sku()
    before = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    _ok(invsync("stock", "receive", sku, "3"))
    _assert_one_line_error(invsync("stock", "show", sku, "--at", before), sku)


@pytest.fixture
def empty_database_url(server_url: str) -> Iterator[str]:
    """A database on the test server with none of invsync's tables."""
    name = f"invsync_empty_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo(server_url, dbname=name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_database_that_is_not_migrated_says_to_run_invsync_migrate(
    invsync, monkeypatch, empty_database_url
):
    monkeypatch.setenv("INVSYNC_DATABASE_URL", empty_database_url)
    result = invsync("stock", "receive", random_sku(), "1")
    _assert_one_line_error(result, "run `invsync migrate`")


def test_an_unreachable_database_is_a_one_line_error_saying_so(invsync, monkeypatch):
    monkeypatch.setenv("INVSYNC_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/x")
    result = invsync("stock", "show", random_sku())
    _assert_one_line_error(result, "unreachable")


def test_rebuild_replays_the_ledger_and_reports_what_it_changed(
    invsync: Invoke,
    scratch_ledger: Any,
    scratch_database: str,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A ledger of its own: a rebuild replays every event, and the shared one holds whatever
    # earlier tests (other channels, their servers' projections) left in it.
    database_url = scratch_database
    monkeypatch.setenv("INVSYNC_DATABASE_URL", database_url)
    config = tmp_path / "invsync.toml"
    config.write_text('[[channels]]\nid = "erp"\nkind = "internal"\nwebhook_secrets = ["s"]\n')
    monkeypatch.setenv("INVSYNC_CONFIG", str(config))
    sku = random_sku()
    scratch_ledger.record(change(ChangeKind.RECEIPT, sku, 7))
    result = _ok(invsync("rebuild", "availability"))
    assert "rebuilt availability" in result.stdout
    assert "availability_levels" in result.stdout
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT available_to_sell FROM availability WHERE sku = %s AND channel_id = 'erp'",
            [sku],
        ).fetchone()
    assert row == (7,)


def test_rebuild_of_an_unknown_projection_is_a_one_line_error(invsync: Invoke) -> None:
    _assert_one_line_error(invsync("rebuild", "nonsense"), "no projection 'nonsense'")


@pytest.mark.parametrize("kind", ["etsy"])
@pytest.mark.parametrize("command", [["run"], ["worker"], ["rebuild", "availability"]])
def test_a_channel_kind_invsync_does_not_speak_stops_start_up_with_one_line(
    invsync: Invoke, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, kind: str, command: list[str]
) -> None:
    config = tmp_path / "invsync.toml"
    config.write_text(f'[[channels]]\nid = "{kind}-us"\nkind = "{kind}"\nwebhook_secrets = ["s"]\n')
    monkeypatch.setenv("INVSYNC_CONFIG", str(config))
    handlers = [signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)]
    _assert_one_line_error(
        invsync(*command), "channels.0.kind", f"'{kind}-us'", "is none of", "walmart"
    )
    assert [signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)] == handlers
