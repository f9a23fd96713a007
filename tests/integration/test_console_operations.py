"""The console's operations pages over real PostgreSQL and Redis (Starlette's test client; the
browser tests drive the same pages in chromium): every action is a CSRF-checked POST needing
the scope of its JSON route, and every refusal answers a page with its status and changes
nothing stored. Discrepancies, deliveries and dead letters are made through their owner
modules; what channels sent is shown as text, never as markup."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb
from starlette.testclient import TestClient

from domain.allocation import ChannelRule
from domain.discrepancy import Discrepancy
from domain.stock import ChangeKind
from infrastructure import inbox
from infrastructure.config import ApiToken
from infrastructure.console_sessions import ConsoleSessions
from infrastructure.inbox import IncomingDelivery
from infrastructure.reconcile import discrepancies
from infrastructure.reconcile.review import Review
from interfaces.composition import build_intake
from interfaces.http.api import Api
from interfaces.http.app import create_app
from tests.helpers import change, random_sku
from tests.integration.intake_fixtures import channel_config
from tests.integration.reconcile_fixtures import reconciled_channel, reconciliation

K = ChangeKind
SECRETS = {"admin": "ops-admin-secret", "writer": "ops-write-secret", "reader": "ops-read-secret"}
SCOPES = {"admin": "admin", "writer": "write", "reader": "read"}
TOKENS = [
    ApiToken(name=name, sha256=hashlib.sha256(value.encode()).hexdigest(), scopes=(SCOPES[name],))
    for name, value in SECRETS.items()
]
WOO = reconciled_channel()
SHOP = "shopify-us"  # intake_fixtures' channel, with "main" its default location
# The rules' tests change a channel's rules in the database every test of the run shares, so
# they change those of a channel of their own: "shopify-us" changed here is in force for others.
RULED = f"ruled-{uuid.uuid4().hex[:8]}"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Console:
    client: TestClient
    database_url: str
    csrf: str = ""

    def as_(self, who: str) -> Console:
        """Log in with `who`'s token; the session's CSRF secret is kept for the forms."""
        form = self.client.get("/console/login")
        answer = self.client.post(
            "/console/login",
            data={"csrf": CSRF.search(form.text)[1], "token": SECRETS[who]},
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
        self.csrf = CSRF.search(self.client.get("/console/").text)[1]
        return self

    def post(self, path: str, csrf: bool = True, **form: str) -> Any:
        data = {**form, **({"csrf": self.csrf} if csrf else {})}
        return self.client.post(path, data=data, follow_redirects=False)

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.database_url, autocommit=True)


@pytest.fixture(scope="module")
def console(ledger, database_url, redis_url) -> Iterator[Console]:
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    intake = build_intake(database_url, redis_url, channel_config(), ledger, namespace=namespace)
    sessions = ConsoleSessions(redis_url, namespace)
    try:
        with reconciliation(database_url, redis_url, [WOO]) as runs:
            api = Api(
                ledger,
                intake=intake,
                tokens=TOKENS,
                sessions=sessions,
                rules=(ChannelRule(SHOP), ChannelRule(WOO.id), ChannelRule(RULED)),
                reconciliation=runs,
                review=Review(lambda: psycopg.connect(database_url), ledger, {}),
            )
            with TestClient(create_app(api)) as client:
                yield Console(client, database_url)
    finally:
        sessions.close()
        intake.close()


def refused(answer: Any, status: int, words: str) -> None:
    assert answer.status_code == status, answer.text
    assert "text/html" in answer.headers["content-type"]
    assert words in answer.text


# Discrepancies


def open_discrepancy(console: Console, sku: str, observed: int, expected: int) -> str:
    found = Discrepancy(
        WOO.id,
        sku,
        observed=observed,
        expected=expected,
        read_at=datetime.now(UTC),
        evidence={"reading": {"quantity": observed}, "push": {"acknowledged": expected}},
    )
    with console.connect() as conn:
        discrepancies.save(conn, found)
    return str(found.id)


def state_of(console: Console, discrepancy_id: str) -> str:
    with console.connect() as conn:
        row = discrepancies.row(conn, uuid.UUID(discrepancy_id))
    assert row is not None
    return row.state


def test_a_discrepancy_is_listed_with_its_figures_and_evidence_its_name_escaped(console):
    sku = f"<b>{random_sku()}</b>"
    discrepancy_id = open_discrepancy(console, sku, 32, 20)
    page = console.as_("reader").client.get("/console/discrepancies", params={"sku": sku})

    assert page.status_code == 200
    assert f"discrepancy-{discrepancy_id}" in page.text
    assert "&lt;b&gt;" in page.text
    assert sku not in page.text
    assert 'data-field="difference">+12<' in page.text
    assert "acknowledged" in page.text  # the evidence
    refused(console.client.get("/console/discrepancies?state=gone"), 400, "state must be")


def test_a_resolution_without_its_scope_csrf_action_or_reason_is_refused_and_changes_nothing(
    console,
):
    sku = random_sku()
    discrepancy_id = open_discrepancy(console, sku, 32, 20)
    path = f"/console/discrepancies/{discrepancy_id}/resolve"
    good = {"action": "push_ledger", "reason": "the shop is wrong"}

    refused(console.as_("reader").post(path, **good), 403, "lacks the &#39;write&#39; scope")
    console.as_("writer")
    refused(console.post(path, csrf=False, **good), 403, "did not come from this console")
    refused(console.post(path, action="delete_it", reason="x"), 422, "Invalid resolution")
    refused(console.post(path, action="push_ledger", reason=" "), 422, "reason must say")
    refused(console.post(path, action="push_ledger"), 422, "reason must say")
    refused(console.post("/console/discrepancies/nope/resolve", **good), 404, "UUIDs")
    refused(console.post(f"/console/discrepancies/{uuid.uuid4()}/resolve", **good), 404, "no discr")
    assert state_of(console, discrepancy_id) == "open"


def test_a_resolved_discrepancy_says_who_and_why_and_a_second_resolution_is_a_409(console):
    sku = random_sku()
    discrepancy_id = open_discrepancy(console, sku, 32, 20)
    path = f"/console/discrepancies/{discrepancy_id}/resolve"
    console.as_("writer")

    answer = console.post(path, action="push_ledger", reason="the shop is wrong")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/console/discrepancies?state=resolved&sku={sku}"
    # A write token reads nothing (as in the API): a reader sees who resolved it.
    page = console.as_("reader").client.get(answer.headers["location"])
    assert "Resolved by <strong>writer</strong> (push_ledger)" in page.text
    console.as_("writer")
    assert "the shop is wrong" in page.text
    again = console.post(path, action="accept_channel", reason="changed my mind")
    refused(again, 409, "already resolved")
    assert state_of(console, discrepancy_id) == "resolved"


# Dead letters and deliveries


def dead_letter(console: Console, payload: str) -> int:
    """A dead letter as `DeadLetterRecorder` keeps one (its owner module's insert, without a
    broker to exhaust retries on: the browser test makes one through Dramatiq)."""
    message = {"queue_name": "intake.increments", "actor_name": "apply", "args": [payload]}
    with console.connect() as conn:
        row = conn.execute(
            "INSERT INTO dead_letters (message_id, queue_name, actor_name, message, error) "
            "VALUES (%s, 'intake.increments', 'apply', %s, %s) RETURNING id",
            [str(uuid.uuid4()), Jsonb({**message, "kwargs": {}, "options": {}}), f"<i>{payload}"],
        ).fetchone()
    assert row is not None
    return int(row[0])


def letter_state(console: Console, letter_id: int) -> str:
    with console.connect() as conn:
        row = conn.execute("SELECT state FROM dead_letters WHERE id = %s", [letter_id]).fetchone()
    assert row is not None
    return str(row[0])


def parked(console: Console, body: bytes) -> int:
    delivery = IncomingDelivery(
        SHOP, str(uuid.uuid4()), "orders/create", "intake.decrements", {"x-a": "<i>"}, body
    )
    with console.connect() as conn:
        [stored] = inbox.store(conn, [delivery])
        assert stored.id is not None
        inbox.park(conn, [stored.id], "the body is not JSON")
    return stored.id


def delivery_state(console: Console, delivery_id: int) -> str:
    with console.connect() as conn:
        row = conn.execute(
            "SELECT state FROM inbox_deliveries WHERE id = %s", [delivery_id]
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_a_dead_letters_payload_and_error_are_text_never_markup(console):
    letter_id = dead_letter(console, "<script>alert(1)</script>")
    page = console.as_("admin").client.get("/console/intake")

    assert page.status_code == 200
    assert f"dead-letter-{letter_id}" in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>" not in page.text
    assert "<i>" not in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_dead_letter_actions_need_admin_and_csrf_and_a_letter_still_dead(console):
    letter_id = dead_letter(console, "retry me")
    retry = f"/console/intake/dead-letters/{letter_id}/retry"

    refused(console.as_("writer").post(retry), 403, "lacks the &#39;admin&#39; scope")
    refused(console.as_("writer").client.get("/console/intake"), 403, "admin")
    console.as_("admin")
    refused(console.post(retry, csrf=False), 403, "did not come from this console")
    for missing in ("abc", "999999999"):
        refused(console.post(f"/console/intake/dead-letters/{missing}/retry"), 404, "No such")
    assert letter_state(console, letter_id) == "dead"
    discard = console.post(f"/console/intake/dead-letters/{letter_id}/discard")
    assert (discard.status_code, discard.headers["location"]) == (303, "/console/intake")
    assert letter_state(console, letter_id) == "discarded"
    refused(console.post(retry), 404, "No such dead letter")
    assert letter_state(console, letter_id) == "discarded"
    refused(console.client.get("/console/intake?letters=lost"), 400, "letters must be one of")


def test_a_parked_deliverys_payload_is_shown_escaped_then_it_is_discarded_once(console):
    delivery_id = parked(console, b'{"note": "<script>alert(1)</script>"}')
    console.as_("admin")
    listed = console.client.get("/console/intake")
    assert f"delivery-{delivery_id}" in listed.text
    page = console.client.get(f"/console/intake/deliveries/{delivery_id}")

    assert page.status_code == 200
    assert "&#34;note&#34;: &#34;&lt;script&gt;alert(1)&lt;/script&gt;&#34;" in page.text
    assert "<script>" not in page.text
    assert "<i>" not in page.text
    discard = f"/console/intake/deliveries/{delivery_id}/discard"
    assert console.post(discard).status_code == 303
    assert delivery_state(console, delivery_id) == "discarded"
    refused(console.post(discard), 404, "No such parked or waiting delivery")
    refused(console.post(f"/console/intake/deliveries/{delivery_id}/retry"), 404, "No such")
    assert delivery_state(console, delivery_id) == "discarded"
    refused(console.client.get("/console/intake/deliveries/x"), 404, "No such delivery")


def test_a_parked_delivery_retried_is_pending_again_and_not_without_admin(console):
    delivery_id = parked(console, b"not json")
    retry = f"/console/intake/deliveries/{delivery_id}/retry"

    refused(console.as_("writer").post(retry), 403, "admin")
    assert delivery_state(console, delivery_id) == "parked"
    assert console.as_("admin").post(retry).status_code == 303
    assert delivery_state(console, delivery_id) in ("pending", "parked", "processed")
    with console.connect() as conn:
        reason = conn.execute(
            "SELECT reason IS DISTINCT FROM 'the body is not JSON' FROM inbox_deliveries "
            "WHERE id = %s",
            [delivery_id],
        ).fetchone()
    assert reason == (True,)  # released: its old reason went with it


# Oversells


def test_an_oversell_is_shown_with_the_events_before_it_and_each_channels_ats(console, ledger):
    sku = random_sku()
    ledger.record(change(K.RECEIPT, sku, 1, reason="first delivery"))
    ledger.record(change(K.SALE, sku, 3, source=SHOP, reference="shop://orders/1"))
    page = console.as_("reader").client.get("/console/oversells")

    assert page.status_code == 200
    article = page.text[page.text.index(f'data-sku="{sku}"') :]
    article = article[: article.index("</article>")]
    assert 'data-field="shortfall">2<' in article
    assert "first delivery" in article  # the event before it
    assert f'data-channel="{SHOP}"' in article
    assert 'data-field="before">1<' in article
    assert 'data-field="after">0<' in article
    refused(console.client.get("/console/oversells?before=yesterday"), 400, "ISO 8601")


# Reconciliation runs


def run_count(console: Console) -> int:
    with console.connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM reconcile_runs WHERE channel_id = %s", [WOO.id]
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_run_is_started_by_an_admin_and_listed_and_bad_asks_start_none(console):
    before = run_count(console)
    refused(console.as_("writer").post("/console/runs", channel=WOO.id), 403, "admin")
    console.as_("admin")
    refused(console.post("/console/runs", channel=WOO.id, what="all"), 422, "what")
    refused(console.post("/console/runs", channel=SHOP, what="levels"), 404, "not reconciled")
    assert run_count(console) == before

    started = console.post("/console/runs", channel=WOO.id, what="levels")
    assert (started.status_code, started.headers["location"]) == (303, "/console/runs")
    assert run_count(console) == before + 1
    page = console.client.get("/console/runs")
    assert f'id="runs-{WOO.id}"' in page.text
    assert "by admin" in page.text
    assert f'id="runs-{SHOP}"' not in page.text  # it does not reconcile


# Channel rules


def test_a_rule_changed_with_a_reason_is_in_force_and_in_the_history(console, queries):
    console.as_("writer")
    answer = console.post(
        f"/console/rules/{RULED}", key="safety_buffer", value="3", reason="<b>weekend</b>"
    )
    assert answer.status_code == 303
    rule, _ = queries.channel_rules(ChannelRule(RULED))
    assert rule.safety_buffer == 3
    [latest, *_] = queries.rule_changes(RULED)
    assert (latest.changed_by, latest.reason, latest.sku) == ("writer", "<b>weekend</b>", None)
    page = console.as_("reader").client.get("/console/rules")
    assert "&lt;b&gt;weekend&lt;/b&gt;" in page.text


def test_a_skus_override_is_set_and_removed_key_by_key(console, queries):
    sku = random_sku()
    console.as_("writer")
    path = f"/console/rules/{RULED}"
    assert console.post(path, key="max_quantity", value="5", sku=sku, reason="fragile").is_redirect
    assert queries.rule_for(sku, ChannelRule(RULED)).max_quantity == 5
    assert console.post(path, key="max_quantity", value="", sku=sku, reason="fine").is_redirect
    assert queries.rule_for(sku, ChannelRule(RULED)).max_quantity is None
    assert [c.rules for c in queries.rule_changes(RULED)[:2]] == [{}, {"max_quantity": 5}]


@pytest.mark.parametrize(
    ("form", "status", "words"),
    [
        ({"key": "buffer", "value": "1"}, 422, "key must be one of"),
        ({"key": "safety_buffer", "value": "-1"}, 422, "safety_buffer"),
        ({"key": "share_percent", "value": "lots"}, 422, "share_percent"),
        ({"key": "safety_buffer", "value": "1", "reason": ""}, 422, "say why"),
        ({"key": "velocity_weighted", "value": "maybe"}, 422, "velocity_weighted"),
        ({"key": "safety_buffer", "value": "1", "sku": "a\x01b"}, 422, "sku"),
    ],
)
def test_a_rule_change_it_cannot_take_is_a_422_page_and_records_nothing(
    console, queries, form, status, words
):
    console.as_("writer")
    before = queries.rule_changes(WOO.id)
    answer = console.post(f"/console/rules/{WOO.id}", **{"reason": "because", **form})
    refused(answer, status, words)
    assert queries.rule_changes(WOO.id) == before


def test_a_rule_change_needs_write_csrf_and_a_known_channel(console, queries):
    before = queries.rule_changes(RULED)
    form = {"key": "stop_at", "value": "2", "reason": "r"}
    refused(console.as_("reader").post(f"/console/rules/{RULED}", **form), 403, "write")
    refused(console.as_("writer").post(f"/console/rules/{RULED}", csrf=False, **form), 403, "form")
    refused(console.post("/console/rules/nobody", **form), 404, "No channel")
    assert queries.rule_changes(RULED) == before
