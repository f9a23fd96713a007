"""The console's core in a real browser: logging in and out, the overview, finding a SKU and
reading the numbers the ledger holds, CSRF refusals, and nothing a channel sends running as
markup."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from tests.browser.conftest import (
    ADMIN,
    READER,
    WRITER,
    log_in,
    record,
    screenshot,
    server_env,
)
from tests.helpers import random_sku


def test_a_wrong_token_is_refused_and_a_right_one_lands_on_the_overview(page, console_server):
    record(console_server, _change("receipt", random_sku("OVERVIEW"), 5, "main"))
    page.goto(console_server.url + "/")
    assert page.url == console_server.url + "/console/login"
    screenshot(page, "login")
    log_in(page, console_server, "not-a-token")
    expect(page.get_by_role("alert")).to_have_text("That token is not valid.")
    log_in(page, console_server, ADMIN)
    page.wait_for_url(console_server.url + "/console/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("#channel-shop")).to_contain_text("invsync does not push to this channel")
    store = page.locator("#channel-store")
    assert int(store.locator("[data-field=pending]").inner_text()) >= 1  # no worker pushes
    expect(store.locator("[data-field=breaker]")).to_have_text("closed")
    screenshot(page, "overview")


def test_an_operator_finds_a_sku_and_reads_the_numbers_the_ledger_holds(logged_in, console_server):
    page, sku = logged_in, random_sku("TEE/RED")
    _reserve(console_server, sku, "main", 2)
    record(console_server, _change("adjustment", sku, -1, "main", reason="damaged"))
    record(console_server, _change("receipt", sku, 4, "east", reference="erp://po/43"))
    page.click("text=SKUs")
    page.fill("input[name=search]", sku[-12:])
    page.click("button:has-text('Search')")
    screenshot(page, "skus")
    page.click(f"a:has-text('{sku}')")
    expect(page.locator(".sku-name")).to_have_text(sku)
    assert _levels(page, "main") == {
        "on_hand": 9,
        "committed": 0,
        "reserved": 2,
        "unavailable": 0,
        "available": 7,
    }
    assert _levels(page, "east")["available"] == 4
    assert _levels(page, "")["available"] == 11
    shop = page.locator("tr[data-channel=shop]")
    expect(shop.locator("[data-field=available_to_sell]")).to_have_text("11")
    expect(shop.locator("ol.steps li").first).to_be_visible()
    events = page.locator("table.events tbody tr")
    expect(events).to_have_count(4)
    expect(events.first).to_contain_text("erp://po/43")
    expect(events.nth(1)).to_contain_text("damaged")
    expect(page.locator("svg.chart polyline.on-hand")).to_have_count(1)
    screenshot(page, "sku")


def _change(kind: str, sku: str, quantity: int, location: str, **fields: str) -> dict[str, object]:
    return {
        "kind": kind,
        "sku": sku,
        "quantity": quantity,
        "location": location,
        "business_key": f"{sku}:{kind}:{location}",
        **fields,
    }


def _reserve(server, sku: str, location: str, quantity: int) -> None:
    record(server, _change("receipt", sku, 10, location, reference="erp://po/42"))
    answer = httpx.post(
        server.url + "/api/v1/reservations",
        json={"sku": sku, "location": location, "quantity": quantity, "ttl_seconds": 3600},
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text


def _levels(page, location: str) -> dict[str, int]:
    row = page.locator(f"table.levels tr[data-location='{location}']")
    fields = ("on_hand", "committed", "reserved", "unavailable", "available")
    return {f: int(row.locator(f"[data-field={f}]").inner_text()) for f in fields}


def test_a_forged_post_is_refused_with_a_clear_403_and_the_session_stays(logged_in, console_server):
    page = logged_in
    for form in ({"csrf": "forged"}, {}):
        answer = page.request.post(console_server.url + "/console/logout", form=form)
        assert answer.status == 403
        assert "did not come from this console session" in answer.text()
    page.goto(console_server.url + "/console/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def test_a_login_posted_without_the_forms_csrf_field_is_refused(page, console_server):
    page.goto(console_server.url + "/console/login")
    answer = page.request.post(console_server.url + "/console/login", form={"token": ADMIN})
    assert answer.status == 403
    page.goto(console_server.url + "/console/")
    assert page.url == console_server.url + "/console/login"


def test_logging_out_ends_the_session_in_every_process(logged_in, console_server):
    page = logged_in
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "invsync_console"]
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    page.click("text=Log out")
    page.wait_for_url(console_server.url + "/console/login")
    with httpx.Client(
        base_url=console_server.url, cookies={cookie["name"]: cookie["value"]}
    ) as old:
        for _ in range(4):  # whichever of the two worker processes answers
            answer = old.get("/console/")
            assert (answer.status_code, answer.headers["location"]) == (303, "/console/login")


def test_a_token_without_the_read_scope_is_refused_the_pages(page, console_server):
    log_in(page, console_server, WRITER)
    page.wait_for_url(console_server.url + "/console/")
    expect(page.get_by_role("alert")).to_have_text("The token 'writer' lacks the 'read' scope.")
    assert page.request.get(console_server.url + "/console/skus").status == 403
    log_in(page, console_server, READER)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def test_a_token_removed_from_the_configuration_stops_at_once(
    logged_in, console_server, serve, tmp_path
):
    twin_env = server_env(
        console_server.env["INVSYNC_DATABASE_URL"],
        console_server.env["INVSYNC_REDIS_URL"],
        tmp_path,
        {"reader": (READER, "read")},
    )
    namespace = console_server.env["INVSYNC_QUEUE_NAMESPACE"]
    twin = serve({**twin_env, "INVSYNC_QUEUE_NAMESPACE": namespace})
    logged_in.goto(twin.url + "/console/")  # the same session, where "admin" is configured no more
    assert logged_in.url == twin.url + "/console/login"
    logged_in.goto(console_server.url + "/console/")
    expect(logged_in.get_by_role("heading", name="Overview")).to_be_visible()


def test_pages_forbid_inline_script_and_framing(logged_in, console_server):
    answer = logged_in.request.get(console_server.url + "/console/")
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy


def test_markup_a_channel_or_client_sends_renders_inert(logged_in, console_server):
    page = logged_in
    sku = random_sku("<script>document.title='owned'</script><b>")
    reason = "<img src=x onerror=\"document.title='owned'\">"
    record(console_server, _change("receipt", sku, 3, "main", reason=reason))
    page.goto(console_server.url + "/console/skus?search=" + sku[-12:])
    page.click("ul.skus a")
    expect(page.locator(".sku-name")).to_have_text(sku)
    expect(page.locator("table.events")).to_contain_text(reason)
    assert page.locator("main script, main img, main b").count() == 0
    assert page.title() != "owned"
    screenshot(page, "markup-inert")


def test_without_tokens_the_console_is_open_and_its_forms_still_need_their_csrf(page, open_server):
    page.goto(open_server.url + "/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    answer = page.request.post(open_server.url + "/console/logout", form={"csrf": "forged"})
    assert answer.status == 403
    page.goto(open_server.url + "/console/login")
    assert page.url == open_server.url + "/console/"
