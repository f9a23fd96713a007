"""How many threads a worker runs: its own, and one per channel whose drain may hold one."""

from infrastructure.config import Config
from interfaces.bootstrap import worker_threads


def test_each_pushing_channel_adds_a_thread_so_webhooks_never_wait_behind_drains():
    config = Config.model_validate(
        {
            "channels": [
                {
                    "id": "shop",
                    "kind": "shopify",
                    "api_base_url": "https://shop.example",
                    "webhook_secrets": ["s"],
                    "access_token": "t",
                    "location_id": "1",
                },
                {"id": "woo", "kind": "woocommerce", "webhook_secrets": ["s"]},  # no API
            ]
        }
    )
    assert worker_threads(config, 4) == 5
    assert worker_threads(Config.model_validate({"channels": []}), 4) == 4
