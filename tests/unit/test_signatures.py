from datetime import UTC, datetime

import pytest

from infrastructure.channels.base import Accepted, SignatureInvalid, SignedRequest
from infrastructure.channels.config import ChannelConfig
from infrastructure.channels.internal.config import InternalConfig
from infrastructure.channels.internal.verifier import verify as verify_internal
from infrastructure.channels.shopify.config import ShopifyConfig
from infrastructure.channels.shopify.verifier import verify as verify_shopify
from tests.channels import internal_headers

# CHANNELS.md §6, vector 1: exact bytes, no trailing newline.
SHOPIFY_BODY = b'{"id":820982911946154508,"line_items":[{"sku":"SKU-1","quantity":2}]}'
SHOPIFY_SIGNATURE = "fbAl/Kinji+rg8XkyLkcv5RjqiURbQXFHGYLYidDs2I="
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def shopify(*secrets: str) -> ChannelConfig:
    return ShopifyConfig(id="shop", webhook_secrets=secrets)


def shopify_headers(signature: str) -> dict[str, str]:
    return {
        "x-shopify-hmac-sha256": signature,
        "x-shopify-topic": "orders/create",
        "x-shopify-webhook-id": "w-1",
    }


def test_the_documented_shopify_vector_verifies():
    verdict = verify_shopify(
        shopify("shpss_test_secret"),
        SignedRequest(shopify_headers(SHOPIFY_SIGNATURE), SHOPIFY_BODY),
        NOW,
    )
    assert verdict == Accepted(delivery_key="w-1", topic="orders/create")


def test_any_configured_secret_verifies_during_rotation():
    channel = shopify("new-secret", "shpss_test_secret")
    assert verify_shopify(
        channel, SignedRequest(shopify_headers(SHOPIFY_SIGNATURE), SHOPIFY_BODY), NOW
    )


@pytest.mark.parametrize(
    ("body", "signature", "secret"),
    [
        (SHOPIFY_BODY + b"\n", SHOPIFY_SIGNATURE, "shpss_test_secret"),  # tampered body
        (SHOPIFY_BODY, SHOPIFY_SIGNATURE, "another_secret"),  # wrong secret
        (SHOPIFY_BODY, "", "shpss_test_secret"),  # missing
        (SHOPIFY_BODY, "not base64!", "shpss_test_secret"),  # malformed
        # The hex digest is the wrong format (CHANNELS.md warns of it).
        (SHOPIFY_BODY, "7db025fc8a2f6b73ce2fad8f6b1ccf41", "shpss_test_secret"),
    ],
)
def test_shopify_refuses_what_the_secret_did_not_sign(body, signature, secret):
    with pytest.raises(SignatureInvalid, match="X-Shopify-Hmac-Sha256"):
        verify_shopify(shopify(secret), SignedRequest(shopify_headers(signature), body), NOW)


def test_a_shopify_delivery_without_id_is_keyed_by_its_bytes():
    headers = {"x-shopify-hmac-sha256": SHOPIFY_SIGNATURE, "x-shopify-topic": "orders/create"}
    verdict = verify_shopify(
        shopify("shpss_test_secret"), SignedRequest(headers, SHOPIFY_BODY), NOW
    )
    assert isinstance(verdict, Accepted)
    assert verdict.delivery_key.startswith("sha256:")


def internal(*secrets: str) -> ChannelConfig:
    return InternalConfig(id="erp", webhook_secrets=secrets)


def test_an_internal_delivery_signed_now_verifies():
    body = b'{"changes": []}'
    headers = {
        k.lower(): v for k, v in internal_headers("s", body, "d-1", int(NOW.timestamp())).items()
    }
    assert verify_internal(internal("s"), SignedRequest(headers, body), NOW) == Accepted(
        "d-1", "stock.changes"
    )


@pytest.mark.parametrize("skew", [-301, 301])
def test_an_internal_timestamp_beyond_five_minutes_is_refused(skew):
    body = b"{}"
    stamp = int(NOW.timestamp()) + skew
    headers = {k.lower(): v for k, v in internal_headers("s", body, "d", stamp).items()}
    with pytest.raises(SignatureInvalid, match="5 minutes"):
        verify_internal(internal("s"), SignedRequest(headers, body), NOW)


def test_an_internal_signature_covers_the_timestamp():
    body = b"{}"
    headers = {
        k.lower(): v for k, v in internal_headers("s", body, "d", int(NOW.timestamp())).items()
    }
    headers["x-invsync-timestamp"] = str(int(NOW.timestamp()) + 1)  # replayed with a new time
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify_internal(internal("s"), SignedRequest(headers, body), NOW)
    with pytest.raises(SignatureInvalid, match="unix seconds"):
        verify_internal(internal("s"), SignedRequest({"x-invsync-timestamp": "soon"}, body), NOW)
