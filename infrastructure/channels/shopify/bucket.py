"""Reads that may take a while of Shopify's cost bucket (a catalogue, a listing of orders): a
THROTTLED query is asked again once the bucket can pay for it (`Throttled.retry_after`), a few
times, so a read longer than the bucket goes on at the shop's restore rate."""

from __future__ import annotations

import time
from typing import Any

from infrastructure.channels.gateway import Throttled
from infrastructure.channels.shopify.gateway import ShopifyGateway

THROTTLED_TRIES = 5  # a query asked this many times in a row is left to the caller's retry
LONGEST_WAIT = 30.0  # seconds: a longer wait is the caller's (its retry backs off)


def paid(gateway: ShopifyGateway, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """`gateway.graphql(query, variables)`, waiting for the bucket to pay for it if need be.

    Raises what `ShopifyGateway.graphql` raises; `Throttled` once it was refused
    `THROTTLED_TRIES` times, or asks for a wait longer than `LONGEST_WAIT`."""
    for _ in range(THROTTLED_TRIES - 1):
        try:
            return gateway.graphql(query, variables)
        except Throttled as throttled:
            if throttled.retry_after > LONGEST_WAIT:
                raise
            time.sleep(throttled.retry_after)
    return gateway.graphql(query, variables)
