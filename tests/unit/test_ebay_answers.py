"""What eBay's bulk update answers for a SKU mean for its push: applied, refused, unknown, eBay's
own failure (it goes again), or an offer eBay no longer has (looked up again)."""

from __future__ import annotations

from infrastructure.channels.ebay.answers import OFFER_GONE, offer_gone, sku_result
from infrastructure.channels.gateway import Push, PushStatus

PUSH = Push("A", 3, 1, 4)


def answer(status: int, error_id: int | None = None) -> dict[str, object]:
    found: dict[str, object] = {"sku": "A", "offerId": "1", "statusCode": status}
    if error_id is not None:
        found["errors"] = [{"errorId": error_id, "message": "no"}]
    return found


def test_an_offer_ebay_no_longer_has_is_told_from_a_refusal_and_from_ebay_s_own_failure():
    assert offer_gone([answer(200), answer(400, OFFER_GONE)])
    assert not offer_gone([answer(400, 25020)])  # the listing's revisions are spent: refused
    assert not offer_gone([answer(500, 25001)])
    assert not offer_gone([answer(200)])


def test_a_sku_is_applied_refused_unknown_or_goes_again_by_its_answers():
    assert sku_result(PUSH, [answer(200), answer(200)]).status is PushStatus.APPLIED
    assert sku_result(PUSH, [answer(200), answer(500, 25001)]) is None
    assert sku_result(PUSH, [answer(404, 25702)]).status is PushStatus.UNKNOWN_SKU
    refused = sku_result(PUSH, [answer(400, 25020)])
    assert (refused.status, refused.detail) == (PushStatus.REJECTED, "EBAY_25020: no")
    assert sku_result(PUSH, []).status is PushStatus.REJECTED
