"""The incident end to end: a WooCommerce store sells a unit the ledger has not heard of yet, a
receipt makes invsync push, and the push must not put that unit back on sale (pusher, gateway
and sandbox over real HTTP; the store's sale reaches the ledger only later)."""

import time
from functools import partial

from domain.allocation import ChannelRule
from domain.stock import ChangeKind
from infrastructure.channels.woocommerce.gateway import WooCommerceGateway
from infrastructure.config import PushConfig
from interfaces.composition import running_propagation
from sandboxes.server import SandboxServer
from sandboxes.woocommerce.store import WooCommerceSandbox
from tests.helpers import change, random_sku
from tests.integration.propagation_fixtures import eventually

K = ChangeKind
CHANNEL, KEY, SECRET = "woo", "ck_cas", "cs_cas"


def test_a_push_after_a_sale_the_ledger_has_not_recorded_never_lists_that_unit_again(
    scratch_ledger, scratch_database, redis_url
):
    sku = random_sku()
    sandbox = WooCommerceSandbox(KEY, SECRET, auto_deliver=False)
    sandbox.add_product(sku, 0)
    scratch_ledger.record(change(K.RECEIPT, sku, 5))
    with SandboxServer(sandbox.app) as server:
        gateway = partial(
            WooCommerceGateway, server.url, KEY, SECRET, channel_id=CHANNEL, timeout=1.0
        )
        push = PushConfig(rate_per_second=10, batch_window_seconds=0)
        gateways = {CHANNEL: (lambda gate: gateway(gate=gate), push)}
        namespace = f"test-{random_sku()}"
        rules = (ChannelRule(CHANNEL),)
        with running_propagation(scratch_database, redis_url, gateways, rules, namespace=namespace):
            eventually(lambda: sandbox.stock(sku) == 5, 10, "the receipt reaches the store")
            sandbox.buy(sku)  # the store sells a unit; its webhook has not arrived
            scratch_ledger.record(change(K.RECEIPT, sku, 3))  # the ledger says 8
            shown = []
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                shown.append(sandbox.stock(sku))
                time.sleep(0.02)
            assert max(shown) <= 7, f"the store listed the unit it sold: {sorted(set(shown))}"
            # The store's sale reaches the ledger: the store ends exact.
            scratch_ledger.record(change(K.SALE, sku, 1, source=CHANNEL))
            eventually(lambda: sandbox.stock(sku) == 7, 20, "the store shows the ledger's 7")
    sandbox.close()
