"""The console's operations pages in a real browser, over `invsync run`: an operator resolves a
discrepancy by accepting what the channel showed (and a stale second resolution is told 409),
retries a real dead letter whose payload holds script (shown as text, never run), reads a
parked delivery's payload and discards it, sees an oversell with its causal chain, starts a
reconciliation run, and changes a rule with a reason that the history shows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import dramatiq
import psycopg
from playwright.sync_api import expect

from domain.discrepancy import Discrepancy
from domain.stock import ChangeKind
from infrastructure import inbox
from infrastructure.inbox import IncomingDelivery
from infrastructure.queue import make_broker
from infrastructure.reconcile import discrepancies
from tests.browser.conftest import record, screenshot
from tests.helpers import change, random_sku
from tests.integration.intake_fixtures import wait_until

STORE = "store"  # the browser servers' channel with an API: it reconciles


def _receipt(server, sku: str, quantity: int) -> None:
    record(
        server,
        {
            "kind": "receipt",
            "sku": sku,
            "quantity": quantity,
            "location": "main",
            "business_key": f"{sku}:receipt",
        },
    )


def _detected(database_url: str, sku: str, observed: int, expected: int) -> Discrepancy:
    """A discrepancy as a level check records one (its owner module's save), with the
    evidence it keeps."""
    read_at = datetime.now(UTC)
    found = Discrepancy(
        STORE,
        sku,
        observed=observed,
        expected=expected,
        read_at=read_at,
        evidence={
            "reading": {"quantity": observed, "read_at": read_at.isoformat()},
            "push": {"ledger_quantity": expected, "acknowledged": expected},
            "sales_since": [],
            "auto_correct_below": 2,
        },
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        discrepancies.save(conn, found)
    return found


def test_an_operator_accepts_what_the_channel_showed_and_a_stale_form_is_told_409(
    logged_in, console_server, database_url
):
    page, sku = logged_in, random_sku("DRIFT")
    _receipt(console_server, sku, 20)
    found = _detected(database_url, sku, 32, 20)  # a hand edit of +12 in the store's admin
    page.click("nav >> text=Discrepancies")
    article = page.locator(f"[id='discrepancy-{found.id}']")
    expect(article.locator("[data-field=observed]")).to_have_text("32")
    expect(article.locator("[data-field=expected]")).to_have_text("20")
    expect(article.locator("[data-field=difference]")).to_have_text("+12")
    expect(article.locator("dl.evidence")).to_contain_text("auto correct below")
    screenshot(page, "discrepancies")
    csrf = article.locator("input[name=csrf]").input_value()
    article.locator("input[value=accept_channel]").check()
    article.locator("input[name=reason]").fill("counted: the store was right")
    article.locator("button:has-text('Resolve')").click()

    resolved = page.locator(f"[id='discrepancy-{found.id}']")
    expect(resolved.locator(".resolution")).to_contain_text("admin")
    expect(resolved.locator(".resolution")).to_contain_text("counted: the store was right")
    page.goto(console_server.url + f"/console/sku?sku={sku}")
    expect(page.locator("tr[data-location=main] [data-field=on_hand]")).to_have_text("32")
    stale = page.request.post(
        console_server.url + f"/console/discrepancies/{found.id}/resolve",
        form={"csrf": csrf, "action": "push_ledger", "reason": "from a stale tab"},
    )
    assert stale.status == 409
    assert "Discrepancy already resolved" in stale.text()


def test_a_dead_letter_holding_script_is_shown_as_text_and_retried_for_real(
    logged_in, console_server, database_url, redis_url
):
    page, marker = logged_in, f"<script>alert('{uuid.uuid4().hex[:8]}')</script>"
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    # The server's own queues: the letter it retries comes back to this worker.
    broker = make_broker(redis_url, database_url, console_server.env["INVSYNC_QUEUE_NAMESPACE"])
    calls: list[str] = []

    @dramatiq.actor(broker=broker, queue_name="intake.increments", max_retries=0)
    def always_fails(payload: str) -> None:
        calls.append(payload)
        raise RuntimeError("the channel said <b>no</b>")

    worker = dramatiq.Worker(broker, worker_threads=1)
    worker.start()
    try:
        always_fails.send(marker)
        wait_until(lambda: _letters(database_url, marker), timeout=30)
        [(letter_id, _)] = _letters(database_url, marker)
        page.click("nav >> text=Intake")
        letter = page.locator(f"#dead-letter-{letter_id}")
        expect(letter.locator("pre.payload")).to_contain_text(marker)
        expect(letter.locator("pre.error-text")).to_contain_text("the channel said <b>no</b>")
        assert page.locator("main script, main b").count() == 0
        screenshot(page, "intake")
        letter.locator("button:has-text('Retry')").click()
        expect(page.locator(f"#dead-letter-{letter_id}")).to_have_count(0)
        wait_until(lambda: len(calls) == 2, timeout=30)  # sent again, with fresh retries
        wait_until(lambda: len(_letters(database_url, marker)) == 2, timeout=30)
        assert dict(_letters(database_url, marker))[letter_id] == "retried"
    finally:
        worker.stop()
        broker.close()
    assert dialogs == []


def _letters(database_url: str, payload: str) -> list[tuple[int, str]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT id, state FROM dead_letters WHERE message -> 'args' ->> 0 = %s ORDER BY id",
            [payload],
        ).fetchall()
    return [(int(row[0]), str(row[1])) for row in rows]


def test_a_parked_deliverys_payload_is_read_pretty_printed_then_discarded(
    logged_in, console_server, database_url
):
    page = logged_in
    body = b'{"id": 450789469, "line_items": [{"sku": "<img src=x onerror=alert(1)>"}]}'
    delivery = IncomingDelivery(
        "shop", str(uuid.uuid4()), "orders/create", "intake.decrements", {"x-shop": "s"}, body
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        [stored] = inbox.store(conn, [delivery])
        assert stored.id is not None
        inbox.park(conn, [stored.id], "no line names a SKU this channel maps")
    page.goto(console_server.url + "/console/intake")
    page.click(f"#delivery-{stored.id} >> text=payload")
    expect(page.locator("pre.payload")).to_contain_text('"sku": "<img src=x onerror=alert(1)>"')
    assert page.locator("main img").count() == 0
    screenshot(page, "delivery")
    page.click("button:has-text('Discard for good')")
    expect(page.locator(f"#delivery-{stored.id}")).to_have_count(0)
    with psycopg.connect(database_url) as conn:
        state = conn.execute(
            "SELECT state, reason FROM inbox_deliveries WHERE id = %s", [stored.id]
        ).fetchone()
    assert state == ("discarded", "discarded by admin")


def test_an_oversell_shows_the_events_before_it_and_what_each_channel_could_sell(
    logged_in, console_server, ledger
):
    page, sku = logged_in, random_sku("LAST")
    ledger.record(change(ChangeKind.RECEIPT, sku, 1, reason="the last one", source="erp"))
    ledger.record(
        change(ChangeKind.SALE, sku, 2, source="shop", reference="shopify://shop/orders/1001")
    )
    page.goto(console_server.url + "/console/")
    today = page.locator("#count-oversells_today")
    assert int(today.locator(".figure").inner_text()) >= 1
    today.click()  # the overview's count opens the page
    oversell = page.locator(f"article.oversell[data-sku='{sku}']")
    expect(oversell.locator("[data-field=shortfall]")).to_have_text("1")
    expect(oversell).to_contain_text("shopify://shop/orders/1001")
    expect(oversell.locator("table.events").first).to_contain_text("the last one")
    shop = oversell.locator("tr[data-channel=shop]")
    expect(shop.locator("[data-field=before]")).to_have_text("1")
    expect(shop.locator("[data-field=after]")).to_have_text("0")
    oversell.scroll_into_view_if_needed()
    screenshot(page, "oversells")


def test_an_admin_starts_a_reconciliation_run_and_sees_it_queued(logged_in):
    page = logged_in
    page.click("nav >> text=Reconciliation")
    runs = page.locator(f"#runs-{STORE}")
    runs.locator("select[name=what]").select_option("levels")
    runs.locator("button:has-text('Start a run now')").click()
    newest = page.locator(f"#runs-{STORE} tbody tr").first
    expect(newest).to_contain_text("levels")
    expect(newest).to_contain_text("by admin")
    screenshot(page, "runs")


def test_a_rule_changed_with_a_reason_is_in_force_and_in_the_history(logged_in):
    page, sku = logged_in, random_sku("CAPPED")
    page.click("nav >> text=Rules")
    rules = page.locator(f"#rules-{STORE}")
    rules.locator("select[name=key]").select_option("max_quantity")
    rules.locator("input[name=value]").fill("3")
    rules.locator("input[name=sku]").fill(sku)
    rules.locator("input[name=reason]").fill("<b>fragile</b>: three at a time")
    rules.locator("button:has-text('Change')").click()

    rules = page.locator(f"#rules-{STORE}")
    expect(rules.locator(f"table.overrides tr[data-sku='{sku}']")).to_contain_text(
        "max_quantity = 3"
    )
    latest = rules.locator("table.history tbody tr").first
    expect(latest).to_contain_text(sku)
    expect(latest.locator(".reason")).to_have_text("<b>fragile</b>: three at a time")
    assert rules.locator("table.history b").count() == 0
    screenshot(page, "rules")
