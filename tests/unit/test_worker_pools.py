"""How a worker's threads are pooled: the intake lanes, the pushes and the rest each have
threads of their own, so no kind of work waits for a thread another holds."""

from infrastructure.channels.base import Lane
from infrastructure.config import Config
from infrastructure.push.dispatch import PUSH_QUEUES
from infrastructure.queue import INTAKE_QUEUES, Pool, pooled
from interfaces.bootstrap import worker_pools

SHOPIFY = {
    "id": "shop",
    "kind": "shopify",
    "api_base_url": "https://shop.example",
    "webhook_secrets": ["s"],
    "access_token": "t",
    "location_id": "1",
}


def test_intake_pushes_and_the_rest_each_get_a_pool_and_each_pushing_channel_a_thread():
    woo_without_api = {"id": "woo", "kind": "woocommerce", "webhook_secrets": ["s"]}
    config = Config.model_validate({"channels": [SHOPIFY, woo_without_api]})
    assert worker_pools(config, 4) == [
        Pool(INTAKE_QUEUES, 4),
        Pool(PUSH_QUEUES, 2),  # the one channel that pushes, and one to spare
        Pool("", 4),
    ]
    assert worker_pools(Config.model_validate({"channels": []}), 3)[1] == Pool(PUSH_QUEUES, 1)


def test_every_intake_lane_is_in_the_intake_pool():
    assert all(lane.value.startswith(INTAKE_QUEUES) for lane in Lane)


def test_each_queue_goes_to_the_first_pool_it_matches_and_pools_without_queues_are_left_out():
    intake, push, rest = Pool("intake.", 4), Pool("push.", 3), Pool("", 2)
    queues = ["intake.decrements", "push.shop", "reconcile", "intake.increments"]
    assert pooled(queues, [intake, push, rest]) == [
        (intake, {"intake.decrements", "intake.increments"}),
        (push, {"push.shop"}),
        (rest, {"reconcile"}),
    ]
    # No pool is started with no queues: Dramatiq's worker would then consume every queue.
    assert pooled(["intake.decrements"], [intake, push, rest]) == [(intake, {"intake.decrements"})]
    assert pooled(["reconcile"], [intake]) == []
