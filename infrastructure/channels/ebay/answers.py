"""What eBay's bulk update answers for each SKU means for its push: pure, no I/O.

`bulk_update_price_quantity` answers 200 or 207 whatever each offer's or item's outcome; each
answer carries a `statusCode` of its own (`PriceQuantityResponse`) and eBay's `errors`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infrastructure.channels.gateway import Push, PushResult, PushStatus

OFFER_GONE = 25713  # eBay's "This Offer is not available."


def by_sku(responses: object) -> dict[str, list[dict[str, Any]]]:
    """The call's answers by SKU, one per offer (or one for an item without offers)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for answer in responses if isinstance(responses, list) else []:
        if isinstance(answer, dict):
            found.setdefault(str(answer.get("sku")), []).append(answer)
    return found


def sku_result(push: Push, answers: list[dict[str, Any]]) -> PushResult | None:
    """A SKU's result from eBay's answers for it (one per offer): applied when every one is;
    None (it goes again) when eBay failed one on its side. Each answer's `statusCode` is an
    HTTP status for that offer or item alone (`PriceQuantityResponse`), and the call answers
    200 or 207 whatever they are: a 5xx is eBay's own failure (errorId 25001, "A system error
    has occurred"), which the same update may get past later, not a refusal of it."""
    failed = [a for a in answers if a.get("statusCode") != 200]
    if answers and not failed:
        return PushResult(push.sku, PushStatus.APPLIED, push.quantity)
    if any(_server_error(a.get("statusCode")) for a in failed):
        return None
    if not answers:
        return PushResult(
            push.sku, PushStatus.REJECTED, detail="EBAY_NO_ANSWER: eBay did not answer for this SKU"
        )
    if any(a.get("statusCode") == 404 for a in failed):
        return PushResult(push.sku, PushStatus.UNKNOWN_SKU, detail=described(failed[0]))
    return PushResult(push.sku, PushStatus.REJECTED, detail=described(failed[0]))


def offer_gone(answers: list[dict[str, Any]]) -> bool:
    """Whether eBay answered that an offer we named is not available (errorId 25713): ended
    or deleted since we looked its SKU up, not a refusal of the quantity."""
    return any(
        isinstance(error, dict) and error.get("errorId") == OFFER_GONE
        for answer in answers
        if answer.get("statusCode") != 200
        for error in (answer.get("errors") or [])
    )


def _server_error(status: object) -> bool:
    return isinstance(status, int) and status >= 500


def described(answer: Mapping[str, Any]) -> str:
    """eBay's errors as `EBAY_<errorId>: message`, the form refusals are coded by."""
    errors = answer.get("errors")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    return f"EBAY_{first.get('errorId', 'ERROR')}: {first.get('message', '')}"[:500]
