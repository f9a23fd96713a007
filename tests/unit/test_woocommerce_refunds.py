"""WooCommerce's refunds answer read into refunds per order line (`refunds.parse_refunds`)."""

from datetime import UTC, datetime

import pytest

from infrastructure.channels.woocommerce.refunds import (
    RefundUnreadable,
    WooRefund,
    WooRefundLine,
    parse_refunds,
)


def refund(refund_id: int, created: str, *lines: dict) -> dict:
    return {"id": refund_id, "date_created_gmt": created, "line_items": list(lines)}


def line(refunded: object, quantity: object, sku: str = "WOO-1") -> dict:
    meta = [{"id": 1, "key": "_refunded_item_id", "value": refunded}]
    return {"id": 9, "sku": sku, "quantity": quantity, "meta_data": meta}


def order(**restocked: int) -> dict:
    return {
        "line_items": [
            {"id": int(line_id[1:]), "meta_data": [{"key": "_restock_refunded_items", "value": n}]}
            for line_id, n in restocked.items()
        ]
    }


def test_refunds_come_oldest_first_with_positive_units_and_restocking_when_told():
    answer = [
        refund(902, "2026-03-02T10:00:00", line("315", -1)),
        refund(901, "2026-03-01T10:00:00", line(315, -2), line("316", -1, "WOO-2")),
    ]
    assert parse_refunds(answer, order(l315="3", l316="0")) == [
        WooRefund(
            901,
            datetime(2026, 3, 1, 10, tzinfo=UTC),
            (WooRefundLine(315, "WOO-1", 2, True), WooRefundLine(316, "WOO-2", 1, False)),
        ),
        WooRefund(
            902, datetime(2026, 3, 2, 10, tzinfo=UTC), (WooRefundLine(315, "WOO-1", 1, True),)
        ),
    ]


def test_restocking_is_unknown_when_only_some_units_or_no_order_tells():
    answer = [refund(901, "2026-03-01T10:00:00", line("315", -2))]
    assert parse_refunds(answer, order(l315=1))[0].lines[0].restocked is None
    assert parse_refunds(answer, None)[0].lines[0].restocked is None
    assert parse_refunds(answer, {"line_items": []})[0].lines[0].restocked is None


def test_a_line_refunding_an_amount_and_no_units_is_left_out():
    answer = [refund(901, "2026-03-01T10:00:00", line("315", 0))]
    assert parse_refunds(answer, None)[0].lines == ()


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ({"code": "x"}, "no list"),
        (["nope"], "without an id"),
        ([{"id": "901"}], "without an id"),
        ([refund(901, "yesterday")], "date_created_gmt 'yesterday'"),
        ([refund(901, "2026-03-01T10:00:00", "line")], "not an object"),
        ([refund(901, "2026-03-01T10:00:00", line(None, -1))], "without _refunded_item_id"),
    ],
)
def test_an_answer_without_what_a_refund_must_have_is_unreadable(answer, why):
    with pytest.raises(RefundUnreadable, match=why):
        parse_refunds(answer, None)
