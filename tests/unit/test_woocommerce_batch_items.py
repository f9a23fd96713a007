"""An item's error in a WooCommerce batch answer: WooCommerce's own failure goes again, a
refusal of the write is answered as one."""

import pytest

from infrastructure.channels.woocommerce.batch_items import failed_on_its_side


def error(status: object) -> dict[str, object]:
    return {"code": "some_code", "message": "why", "data": {"status": status}}


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_server_error_inside_a_200_batch_is_woocommerces_own_failure(status):
    assert failed_on_its_side(error(status))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, "500", True, None])
def test_a_refusal_or_an_unreadable_status_is_not(status):
    assert not failed_on_its_side(error(status))


def test_an_error_without_data_is_not():
    assert not failed_on_its_side({"code": "woocommerce_rest_product_invalid_id"})
    assert not failed_on_its_side({"code": "x", "data": "500"})
