"""A reconciliation run whose eBay day is spent (the sandbox's `calls_per_day`: 429 with no
Retry-After) waits for eBay's next day as the pushes do, worked by the Dramatiq actor on real
PostgreSQL and Redis: one call, then nothing until Pacific midnight, and the run goes on then
with none of its attempts spent, instead of failing after `MAX_ATTEMPTS` calls a few seconds
apart. The gateway's clock stands 3 s before eBay's midnight, so the wait is 3 s, not 5."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from infrastructure.channels.ebay.config import EbayConfig
from infrastructure.channels.ebay.gateway import EbayGateway
from infrastructure.reconcile.actors import Reconcilers
from infrastructure.reconcile.orders import poll_orders
from infrastructure.reconcile.runs import Counts, LevelStep, Stepped
from sandboxes.ebay.seller import EbaySandbox
from sandboxes.server import SandboxServer
from tests.helpers import random_sku
from tests.integration.reconcile_fixtures import reconciliation, working
from tests.integration.test_reconcile_actors import finished

BEFORE_MIDNIGHT = datetime(2026, 12, 3, 7, 59, 57, tzinfo=UTC)  # 23:59:57 in Los Angeles


@dataclass
class OrdersPoll:
    """The real orders poll of `channel` through `gateway` (its clock the test's), as a run's
    steps; the sold orders are stored in the inbox, which no intake works here."""

    channel: EbayConfig
    gateway: EbayGateway
    database_url: str

    def reconcilers(self) -> Reconcilers:
        return Reconcilers(self.poll, self.levels)

    def poll(self, channel: EbayConfig) -> Counts:
        polled = poll_orders(
            channel,
            database_url=self.database_url,
            gateway=self.gateway,
            nudge=lambda stored: None,
            overlap=timedelta(minutes=2),
        )
        return Counts(orders_found=polled.found, orders_applied=polled.stored)

    def levels(self, channel: EbayConfig, step: LevelStep) -> Stepped:
        raise AssertionError("an orders run reads no levels")


def test_an_orders_poll_past_ebays_daily_call_limit_waits_for_ebays_next_day_then_goes_on(
    database_url, redis_url
):
    seller = EbaySandbox(calls_per_day=0)  # the day's calls are spent
    seller.add_item(sku := random_sku("ebay-day"), 10)
    seller.buy(sku, 1)
    clock = [BEFORE_MIDNIGHT]
    with SandboxServer(seller.app) as server:
        channel = EbayConfig(
            id=f"ebay-{random_sku()}".lower(),
            api_base_url=server.url,
            client_id=seller.client_id,
            client_secret=seller.client_secret,
            refresh_token=seller.refresh_token,
        )
        gateway = EbayGateway(
            server.url,
            seller.client_id,
            seller.client_secret,
            seller.refresh_token,
            channel_id=channel.id,
            clock=lambda: clock[0],
        )
        steps = OrdersPoll(channel, gateway, database_url)
        with reconciliation(database_url, redis_url, [channel]) as runs, working(runs, steps):
            run_id = runs.request_check(channel.id, None, what="orders")
            time.sleep(2.0)  # within the wait: the poll was refused once, and waits
            waiting = runs.run(run_id)
            assert waiting is not None
            assert (waiting.state, waiting.attempts) == ("running", 0)
            assert "waiting 3 s as the channel asked" in (waiting.error or "")
            assert seller.log.count("fulfillment.orders", 429) == 1

            seller.calls_today.clear()  # eBay's next day: its limits start again
            seller.calls_per_day = None
            clock[0] += timedelta(seconds=3)
            run = finished(runs, run_id)

        gateway.close()
    seller.close()
    assert (run.state, run.error, run.attempts) == ("done", None, 0)
    assert (run.counts.orders_found, run.counts.orders_applied) == (1, 1)
    assert seller.log.count("fulfillment.orders", 429) == 1  # nothing called during the wait
