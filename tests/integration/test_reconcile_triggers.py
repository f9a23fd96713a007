"""Level checks started between the schedules (issue 13): an observation that is not the echo
of our push, filed by intake (a webhook reporting stock) or by a pusher (a compare-and-set
refused as stale), asks for a check of its SKU at the next tick."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from application.intake import Observation
from infrastructure import observations, outbox
from infrastructure.observations import Reported
from infrastructure.reconcile.triggers import Triggers
from tests.helpers import random_sku


class Requests:
    """A hand-written `request_check`: what was asked for."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, list[str]]] = []

    def __call__(self, channel_id, skus) -> int:
        self.asked.append((channel_id, list(skus)))
        return len(self.asked)


@pytest.fixture
def conn(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


def webhook_reports(conn, channel_id: str, sku: str, quantity: int) -> None:
    seen = Observation(channel_id, sku, "main", quantity, datetime.now(UTC), "test://webhook")
    with conn.cursor() as curs:
        observations.file(curs, [Reported(seen, delivery_id=1)])


def test_a_stale_compare_and_set_and_a_hand_edit_each_ask_for_a_check_of_their_sku(conn):
    channel, stale, edited = random_sku("chan"), random_sku(), random_sku()
    requests = Requests()
    triggers = Triggers(requests, [channel])
    triggers.tick(conn)  # where it starts
    observations.shown_on_refusal(conn, channel, [(stale, 7)], "CHANGE_FROM_QUANTITY_STALE")
    webhook_reports(conn, channel, edited, 31)
    webhook_reports(conn, channel, edited, 30)
    assert triggers.tick(conn) == {channel: [stale, edited]}
    assert requests.asked == [(channel, [stale, edited])]
    assert triggers.tick(conn) == {}  # each observation asks once


def test_what_was_observed_before_the_first_tick_or_on_other_channels_asks_for_nothing(conn):
    channel, other = random_sku("chan"), random_sku("chan")
    webhook_reports(conn, channel, random_sku(), 5)
    requests = Requests()
    triggers = Triggers(requests, [channel])
    assert triggers.tick(conn) == {}
    webhook_reports(conn, other, random_sku(), 5)  # a channel that does not reconcile
    triggers.tick(conn)
    assert requests.asked == []


def our_push_acknowledged(conn, channel_id: str, sku: str, quantity: int) -> None:
    """The pushers' path: the projection announces `quantity`, the channel takes it."""
    now = datetime.now(UTC)
    with conn.cursor() as curs:
        outbox.announce(curs, [outbox.Announcement(channel_id, sku, quantity, 1, 1, now, "sale")])
    [pending] = outbox.pending(conn, channel_id, 10)
    with conn.cursor() as curs:
        outbox.acknowledge(curs, channel_id, [outbox.Acknowledged(pending, quantity)], now)


def test_the_echo_of_our_own_push_asks_for_no_check_and_a_different_quantity_does(conn):
    channel, sku = random_sku("chan"), random_sku()
    requests = Requests()
    triggers = Triggers(requests, [channel])
    triggers.tick(conn)
    our_push_acknowledged(conn, channel, sku, 12)
    webhook_reports(conn, channel, sku, 12)  # our push coming back: the channel shows 12
    assert triggers.tick(conn) == {}
    assert requests.asked == []
    webhook_reports(conn, channel, sku, 11)  # a hand edit after it
    assert triggers.tick(conn) == {channel: [sku]}
