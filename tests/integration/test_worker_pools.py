"""The worker's pools: webhooks reach the ledger while every thread of the pushes' and the
other queues' pools is held (a drain staying on a busy channel, a reconciliation step waiting
for its readings to settle). Real HTTP, PostgreSQL, Redis and Dramatiq workers."""

import threading
import uuid

import dramatiq
import httpx

from application.errors import UnknownSku
from application.ledger_queries import LedgerQueries
from infrastructure.push.dispatch import PUSH_QUEUES
from infrastructure.queue import INTAKE_QUEUES, Pool
from tests.channels import internal_headers, receipt_document
from tests.helpers import random_sku
from tests.integration.intake_fixtures import ERP_SECRET, running_intake, wait_until

POOLS = (Pool(INTAKE_QUEUES, 2), Pool(PUSH_QUEUES, 2), Pool("", 2))


def on_hand(ledger, sku: str) -> int:
    try:
        return LedgerQueries(ledger).get_item(sku).totals.on_hand
    except UnknownSku:
        return -1


def test_a_webhook_reaches_the_ledger_while_the_other_pools_hold_every_thread(
    ledger, database_url, redis_url
):
    release, lock, holding = threading.Event(), threading.Lock(), [0]

    def hold() -> None:
        with lock:
            holding[0] += 1
        release.wait(30)

    with running_intake(ledger, database_url, redis_url, workers=False, pools=POOLS) as running:
        broker = running.intake.queues.broker
        pushes = dramatiq.actor(broker=broker, actor_name="hold_a_push", queue_name="push.busy")
        others = dramatiq.actor(broker=broker, actor_name="hold_a_step", queue_name="reconcile")
        holders = [pushes(hold), others(hold)]
        running.intake.workers.start()
        try:
            for holder in holders * 3:  # more than their pools' threads: some wait for one
                holder.send()
            wait_until(lambda: holding[0] == 4)  # every thread of both pools held
            sku = random_sku()
            body = receipt_document(sku, 5, f"po-{uuid.uuid4()}")
            headers = internal_headers(ERP_SECRET, body, str(uuid.uuid4()))
            answer = httpx.post(f"{running.url}/webhooks/erp", content=body, headers=headers)
            assert answer.status_code == 200, answer.text
            wait_until(lambda: on_hand(ledger, sku) == 5, timeout=10)
            assert holding[0] == 4  # still held: the intake's own threads applied it
        finally:
            release.set()
            running.intake.workers.stop()
