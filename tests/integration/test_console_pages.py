"""The console's core pages over real PostgreSQL and Redis (Starlette's test client on an open
console; the browser tests log in): the overview counts what waits for a person from the
owners' tables, SKU search pages, and a bad query or an unknown SKU answers a page saying so."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from starlette.testclient import TestClient

from domain.allocation import ChannelRule
from domain.stock import ChangeKind
from infrastructure.console_sessions import ConsoleSessions
from infrastructure.reconcile.review import Review
from interfaces.composition import build_intake
from interfaces.http.api import Api
from interfaces.http.app import create_app
from tests.helpers import change, random_sku
from tests.integration.intake_fixtures import channel_config
from tests.integration.test_console_operations import (
    SHOP,
    Console,
    dead_letter,
    open_discrepancy,
    parked,
)

COUNTS = ("discrepancies", "dead_letters", "parked", "oversells_today")


@pytest.fixture(scope="module")
def console(ledger, database_url, redis_url) -> Iterator[Console]:
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    intake = build_intake(database_url, redis_url, channel_config(), ledger, namespace=namespace)
    sessions = ConsoleSessions(redis_url, namespace)
    api = Api(
        ledger,
        intake=intake,
        sessions=sessions,
        rules=(ChannelRule(SHOP),),
        review=Review(lambda: psycopg.connect(database_url), ledger, {}),
    )
    try:
        with TestClient(create_app(api)) as client:
            yield Console(client, database_url)
    finally:
        sessions.close()
        intake.close()


def counts(console: Console) -> dict[str, int]:
    page = console.client.get("/console/")
    assert page.status_code == 200, page.text
    return {
        key: int(re.search(rf'id="count-{key}"[^>]*>\s*<span class="figure">(\d+)<', page.text)[1])
        for key in COUNTS
    }


def test_one_more_of_each_thing_waiting_for_a_person_counts_one_more(console, ledger):
    before = counts(console)
    sku = random_sku()
    open_discrepancy(console, sku, 3, 5)
    dead_letter(console, "payload")
    parked(console, b"not json")
    ledger.record(change(ChangeKind.RECEIPT, sku, 1))
    ledger.record(change(ChangeKind.SALE, sku, 3))  # two beyond what was available
    assert counts(console) == {key: before[key] + 1 for key in COUNTS}


def test_each_count_links_to_the_page_that_reviews_it(console):
    page = console.client.get("/console/").text
    links = dict(re.findall(r'id="count-(\w+)" href="([^"]+)"', page))
    assert links == {
        "discrepancies": "/console/discrepancies",
        "dead_letters": "/console/intake",
        "parked": "/console/intake",
        "oversells_today": "/console/oversells",
    }
    for path in set(links.values()):
        assert console.client.get(path).status_code == 200


def test_an_open_console_needs_no_login_and_its_pages_carry_the_security_headers(console):
    page = console.client.get("/", follow_redirects=False)
    assert (page.status_code, page.headers["location"]) == (307, "/console/")
    page = console.client.get("/console/")
    assert "Log out" not in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert console.client.get("/console/login", follow_redirects=False).status_code == 303


def test_sku_search_pages_through_the_skus_holding_the_text(console, ledger):
    prefix = random_sku("PAGED")
    for n in range(3):
        ledger.record(change(ChangeKind.RECEIPT, f"{prefix}-{n}", 1))
    first = console.client.get("/console/skus", params={"search": prefix, "limit": 2})
    assert [f"{prefix}-0", f"{prefix}-1"] == _listed(first.text, prefix)
    after = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert after is not None
    second = console.client.get(html.unescape(after[1]) + "&limit=2")
    assert _listed(second.text, prefix) == [f"{prefix}-2"]
    assert 'rel="next"' not in second.text


def _listed(page: str, prefix: str) -> list[str]:
    return re.findall(rf">({re.escape(prefix)}-\d)</a>", page)


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/console/skus?limit=0", 400, "limit must be between 1 and 1000"),
        ("/console/sku?sku=never-recorded-sku", 404, "The ledger has no SKU"),
        ("/console/sku?sku=x&before=yesterday", 400, "before"),
    ],
)
def test_a_bad_query_or_an_unknown_sku_answers_a_page_saying_so(console, path, status, words):
    page = console.client.get(path)
    assert page.status_code == status
    assert "text/html" in page.headers["content-type"]
    assert words in page.text


def test_the_session_cookie_is_secure_over_https_only(console):
    for base, secure in (("https://console.example", True), ("http://console.example", False)):
        with TestClient(console.client.app, base_url=base) as client:
            cookie = client.get("/console/").headers["set-cookie"]
        assert "httponly" in cookie.lower()
        assert "samesite=strict" in cookie.lower()
        assert ("secure" in cookie.lower().replace("samesite", "")) is secure
