"""`invsync reconcile CHANNEL`: a run followed to its summary, and adoption of a WooCommerce
sandbox's quantities as opening counts."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from application.ledger_queries import LedgerQueries
from domain.stock import ChangeKind
from infrastructure.periodic import every
from interfaces.cli import app
from sandboxes.server import SandboxServer
from sandboxes.woocommerce.store import WooCommerceSandbox
from tests.helpers import change, random_sku
from tests.integration.reconcile_fixtures import (
    CountingSteps,
    reconciled_channel,
    reconciliation,
    working,
)


@pytest.fixture
def shop():
    woo = WooCommerceSandbox("ck_cli", "cs_cli", auto_deliver=False)
    with SandboxServer(woo.app) as server:
        yield woo, server.url
    woo.close()


@pytest.fixture
def invsync(monkeypatch, database_url, tmp_path, shop):
    """Runs `invsync ARGS...` on the test database, configured with one WooCommerce channel
    (the sandbox) and one that is not reconciled; returns the channel's id too."""
    channel_id = random_sku("woo")
    config = tmp_path / "invsync.toml"
    config.write_text(
        f'[[channels]]\nid = "{channel_id}"\nkind = "woocommerce"\nwebhook_secrets = ["s"]\n'
        f'api_base_url = "{shop[1]}"\nconsumer_key = "ck_cli"\nconsumer_secret = "cs_cli"\n'
        '[[channels]]\nid = "erp"\nkind = "internal"\nwebhook_secrets = ["s"]\n'
    )
    monkeypatch.setenv("INVSYNC_CONFIG", str(config))
    monkeypatch.setenv("INVSYNC_DATABASE_URL", database_url)
    monkeypatch.delenv("INVSYNC_REDIS_URL", raising=False)
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(app, ["reconcile", *args])

    return invoke, channel_id


def test_a_run_is_followed_to_a_summary_of_its_counts(invsync, database_url, redis_url):
    invoke, channel_id = invsync
    steps = CountingSteps(orders=4)
    channel = reconciled_channel(channel_id)
    with reconciliation(database_url, redis_url, [channel]) as runs, working(runs, steps):
        scheduler = runs.scheduler(resend_after=0)
        with every(0.1, scheduler.resend, name="test-scheduler"):
            result = invoke(channel_id, "--sku", "a", "--sku", "b")

    assert result.exit_code == 0, result.output
    assert steps.calls == {(channel_id, "orders"): 1, (channel_id, "levels"): 1}
    lines = result.output.splitlines()
    assert any(f"{channel_id}: run" in line and "done" in line for line in lines)
    counts = next(line for line in lines if line.startswith("│"))
    assert [cell.strip() for cell in counts.split("│")[1:-1]] == ["4", "1", "2", "1", "0"]


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("--orders-only", "--levels-only"), "exclude each other"),
        (("--dry-run",), "--dry-run goes with --adopt"),
    ],
)
def test_options_that_contradict_are_a_one_line_error(invsync, args, complaint):
    invoke, channel_id = invsync
    result = invoke(channel_id, *args)

    assert result.exit_code == 1
    assert complaint in result.output


def test_a_channel_not_reconciled_is_a_one_line_error_saying_what_it_needs(invsync):
    invoke, _ = invsync
    for channel_id, needs in (("erp", "api_base_url"), ("nowhere", "no channel")):
        result = invoke(channel_id)
        assert result.exit_code == 1
        assert needs in result.output


def test_adoption_shows_then_records_what_the_store_shows_of_skus_new_to_the_ledger(
    invsync, shop, ledger
):
    invoke, channel_id = invsync
    woo, _ = shop
    new, known = random_sku("new"), random_sku("known")
    woo.add_product(new, stock=7)
    woo.add_product(known, stock=3)
    ledger.record(change(ChangeKind.RECEIPT, known, 10))
    queries = LedgerQueries(ledger)

    dry = invoke(channel_id, "--adopt", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert new in dry.output
    assert known not in dry.output
    assert queries.known_skus({new}) == set()

    for _ in range(2):  # adopting again counts nothing twice
        adopted = invoke(channel_id, "--adopt")
        assert adopted.exit_code == 0, adopted.output

    assert queries.get_item(new).locations["main"].on_hand == 7
    assert queries.get_item(known).locations["main"].on_hand == 10
