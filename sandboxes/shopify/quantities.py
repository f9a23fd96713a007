"""`inventorySetQuantities` as Shopify decides it (CHANNELS.md §1.2): which reasons it accepts,
which quantity it refuses and why, and what a key used before answers under `@idempotent`."""

from __future__ import annotations

from typing import Any

from sandboxes.shopify.stock import Item, gid_number

MAX_QUANTITY = 1_000_000_000
# `inventorySetQuantities` reasons Shopify accepts.
REASONS = frozenset(
    {
        "correction",
        "cycle_count_available",
        "damaged",
        "movement_created",
        "movement_updated",
        "movement_received",
        "movement_canceled",
        "other",
        "promotion",
        "quality_control",
        "received",
        "reservation_created",
        "reservation_deleted",
        "reservation_updated",
        "restock",
        "safety_stock",
        "shrinkage",
    }
)

Json = dict[str, Any]


def user_error(code: str, path: list[str] | None, message: str) -> Json:
    return {"code": code, "field": path, "message": message}


def refused(code: str, path: list[str] | None, message: str) -> Json:
    return {"inventoryAdjustmentGroup": None, "userErrors": [user_error(code, path, message)]}


def again(record: list[Any], fingerprint: str) -> Json:
    """What a key seen before answers: its first result (`record` is [the parameters'
    fingerprint, "running" | "failed" | "done", the first result]), or why there is none."""
    first, state, result = record
    if first != fingerprint:
        return refused(
            "IDEMPOTENCY_KEY_PARAMETER_MISMATCH",
            None,
            "The same idempotency key cannot be used with different operation parameters.",
        )
    if state == "running":
        return refused(
            "IDEMPOTENCY_CONCURRENT_REQUEST",
            None,
            "This request is currently in progress, please try again.",
        )
    if state == "failed":
        return refused(
            "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED",
            None,
            "A previous request with this idempotency key failed. "
            "Retry with a new idempotency key.",
        )
    return dict(result)


def refusal(
    quantity: Json, item: Item | None, earlier: list[Item | None], location_id: int
) -> tuple[str, str, str] | None:
    """The first of Shopify's refusals that applies to one quantity: (code, field, message)."""
    if item is None:
        return (
            "INVALID_INVENTORY_ITEM",
            "inventoryItemId",
            "The specified inventory item could not be found.",
        )
    expected, wanted = quantity["changeFromQuantity"], quantity["quantity"]
    checks = (
        (
            gid_number(quantity["locationId"], "Location") != location_id,
            ("INVALID_LOCATION", "locationId", "The specified location could not be found."),
        ),
        (
            item in earlier,
            (
                "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR",
                "inventoryItemId",
                "The combination of inventoryItemId and locationId must be unique.",
            ),
        ),
        (
            wanted < 0,
            ("INVALID_QUANTITY_NEGATIVE", "quantity", "The quantity can't be negative."),
        ),
        (
            wanted > MAX_QUANTITY,
            (
                "INVALID_QUANTITY_TOO_HIGH",
                "quantity",
                "The quantity can't exceed 1,000,000,000.",
            ),
        ),
        (
            expected is not None and expected != item.available,
            (
                "CHANGE_FROM_QUANTITY_STALE",
                "changeFromQuantity",
                "The changeFromQuantity value does not match persisted value.",
            ),
        ),
    )
    return next((refusal for failed, refusal in checks if failed), None)
