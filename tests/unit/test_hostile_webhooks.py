"""Verifiers under hostile input: whatever the headers and body, a verifier answers a verdict or
refuses with `SignatureInvalid`, never another exception (which the web app would answer 500)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infrastructure.channels.amazon import sns
from infrastructure.channels.amazon.config import AmazonConfig
from infrastructure.channels.amazon.verifier import make_verifier
from infrastructure.channels.base import Accepted, Ping, SignatureInvalid, SignedRequest
from infrastructure.channels.internal.config import InternalConfig
from infrastructure.channels.internal.verifier import verify as verify_internal
from infrastructure.channels.shopify.config import ShopifyConfig
from infrastructure.channels.shopify.verifier import verify as verify_shopify
from infrastructure.channels.walmart.config import WalmartConfig
from infrastructure.channels.walmart.verifier import verify as verify_walmart
from infrastructure.channels.woocommerce.config import WooCommerceConfig
from infrastructure.channels.woocommerce.verifier import verify as verify_woocommerce
from sandboxes.amazon.sns import self_signed_pem
from tests.channels import internal_headers
from tests.sns import CERTIFICATE_PATH, SnsHost, signed
from tests.unit.amazon_messages import TOPIC_ARN, sns_notification

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SECRET = "s3cret"
NESTED = b"[" * 100_000 + b"]" * 100_000

INTERNAL = InternalConfig(id="erp", webhook_secrets=(SECRET,))
SHOPIFY = ShopifyConfig(id="shop", webhook_secrets=(SECRET,))
WOO = WooCommerceConfig(id="woo", webhook_secrets=(SECRET,))
AMAZON = AmazonConfig(id="amz", sns_topic_arns=(TOPIC_ARN,))
WALMART = WalmartConfig(
    id="wm", webhook_secrets=(SECRET,), push={"enabled": False}, reconcile={"enabled": False}
)


def _b64_hmac(body: bytes) -> str:
    return base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()


@pytest.mark.parametrize("digits", [20, 4_301, 50_000])
def test_an_internal_timestamp_too_long_for_an_integer_is_refused_as_a_bad_signature(digits):
    headers = internal_headers(SECRET, b"{}", "d-1", timestamp=int(NOW.timestamp()))
    headers = {name.lower(): value for name, value in headers.items()}
    headers["x-invsync-timestamp"] = "9" * digits
    with pytest.raises(SignatureInvalid, match="X-Invsync-Timestamp"):
        verify_internal(INTERNAL, SignedRequest(headers, b"{}"), NOW)


def test_a_deeply_nested_amazon_body_is_refused_as_not_an_sns_message():
    with pytest.raises(SignatureInvalid, match="nested"):
        sns.parse_message(NESTED)


def test_a_signed_sns_message_whose_message_nests_too_deeply_is_stored_under_its_sns_id():
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    host = SnsHost()
    host.files[CERTIFICATE_PATH] = self_signed_pem(key)
    host.start()
    try:
        channel = AmazonConfig(
            id="amz",
            sns_topic_arns=(TOPIC_ARN,),
            sns_origins=(f"http://{host.host}",),
        )
        message = signed(
            sns_notification(NESTED.decode()), key, host.url(CERTIFICATE_PATH), version="2"
        )
        verdict = make_verifier(sns.CertificateCache())(
            channel, SignedRequest({}, json.dumps(message).encode()), NOW
        )
    finally:
        host.stop()
    assert verdict == Accepted("sns:" + message["MessageId"], "Notification")


def test_a_signed_woocommerce_body_nested_too_deeply_is_keyed_by_its_digest():
    verdict = verify_woocommerce(
        WOO,
        SignedRequest(
            {"x-wc-webhook-signature": _b64_hmac(NESTED), "x-wc-webhook-topic": "order.created"},
            NESTED,
        ),
        NOW,
    )
    assert isinstance(verdict, Accepted)
    assert verdict.delivery_key == "sha256:" + hashlib.sha256(NESTED).hexdigest()


_HEADER_NAMES = st.sampled_from(
    [
        "x-invsync-timestamp",
        "x-invsync-signature",
        "x-invsync-delivery-id",
        "x-invsync-topic",
        "x-shopify-hmac-sha256",
        "x-shopify-topic",
        "x-shopify-webhook-id",
        "x-wc-webhook-signature",
        "x-wc-webhook-topic",
        "wm_sec.timestamp",
        "wm_sec.signature",
        "content-type",
    ]
)
_TEXT = st.one_of(
    st.text(max_size=300),
    st.text(alphabet="0123456789", min_size=1, max_size=6000),
    st.just("sha256=" + "0" * 64),
    st.just(""),
)
_BODIES = st.one_of(
    st.binary(max_size=500),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
        max_leaves=30,
    ).map(lambda value: json.dumps(value).encode()),
    st.integers(1, 200_000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.just(b'{"Type": "Notification", "Message": ' + b"[" * 50_000 + b"}"),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(headers=st.dictionaries(_HEADER_NAMES, _TEXT), body=_BODIES)
def test_no_hostile_header_or_body_makes_a_verifier_raise_anything_but_a_refusal(headers, body):
    verify_amazon = make_verifier(sns.CertificateCache())
    for channel, verifier in (
        (INTERNAL, verify_internal),
        (SHOPIFY, verify_shopify),
        (WOO, verify_woocommerce),
        (AMAZON, verify_amazon),
        (WALMART, verify_walmart),
    ):
        try:
            verdict = verifier(channel, SignedRequest(headers, body), NOW)
        except SignatureInvalid:
            continue
        assert isinstance(verdict, Accepted | Ping)


@settings(max_examples=200, deadline=None)
@given(key=st.text(max_size=8000), body=_BODIES)
def test_a_signed_woocommerce_delivery_is_accepted_whatever_its_topic_and_body(key, body):
    headers = {"x-wc-webhook-signature": _b64_hmac(body), "x-wc-webhook-topic": key}
    verdict = verify_woocommerce(WOO, SignedRequest(headers, body), NOW)
    assert isinstance(verdict, Accepted)


@settings(max_examples=300, deadline=None)
@given(key=st.text(max_size=3000), other=st.text(max_size=3000), topic=st.text(max_size=3000))
def test_storable_fields_are_bounded_clean_and_the_same_key_always_stores_the_same(
    key, other, topic
):
    from infrastructure.inbox import IncomingDelivery
    from interfaces.http.webhooks import MAX_KEY, MAX_TOPIC, storable

    delivery = IncomingDelivery("c", key, topic, "lane", {"x-id": topic[:2000]}, b"")
    made = storable(delivery)
    again = storable(delivery)
    for text in (made.delivery_key, made.topic, *made.headers.values()):
        assert not any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in text)
    assert len(made.delivery_key) <= MAX_KEY
    assert len(made.topic) <= MAX_TOPIC
    assert made == again  # a replay is a duplicate of its first copy
    if made.delivery_key != key:
        assert made.delivery_key.startswith("sha256:")
    if key != other:
        assert storable(IncomingDelivery("c", other, "", "lane", {}, b"")).delivery_key != (
            made.delivery_key
        )
