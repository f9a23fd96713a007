"""The orders watermark: absent before a channel's first poll, moved on, never back."""

from datetime import UTC, datetime, timedelta

import psycopg

from infrastructure.reconcile import watermarks
from tests.helpers import random_sku


def test_a_watermark_moves_on_and_never_back(database_url):
    channel = random_sku("mark")
    noon = datetime(2026, 12, 1, 12, tzinfo=UTC)
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert watermarks.orders_listed_to(conn, channel) is None
        assert watermarks.advance(conn, channel, noon) == noon
        assert watermarks.advance(conn, channel, noon - timedelta(minutes=5)) == noon
        assert watermarks.advance(conn, channel, noon + timedelta(minutes=5)) > noon
        assert watermarks.orders_listed_to(conn, channel) == noon + timedelta(minutes=5)
