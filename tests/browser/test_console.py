"""The console's core in a real browser: logging in and out, the overview, finding a SKU and
reading the numbers the ledger holds, CSRF refusals, and nothing a channel sends running as
markup."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import (
    ADMIN,
    log_in,
    screenshot,
)


def test_a_wrong_token_is_refused_and_a_right_one_lands_on_the_overview(page, console_server):
    page.goto(console_server.url + "/")
    assert page.url == console_server.url + "/console/login"
    screenshot(page, "login")
    log_in(page, console_server, "not-a-token")
    expect(page.get_by_role("alert")).to_have_text("That token is not valid.")
    log_in(page, console_server, ADMIN)
    page.wait_for_url(console_server.url + "/console/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("#channel-shop")).to_contain_text("shop")
    screenshot(page, "overview")
