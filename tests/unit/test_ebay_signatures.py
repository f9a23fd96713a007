"""eBay's Notification API signatures and endpoint validation, on the vendor's own vectors
(CHANNELS.md §6, vectors 3 and 4)."""

from __future__ import annotations

import base64
import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infrastructure.channels.base import Accepted, ChallengeRefused, SignatureInvalid
from infrastructure.channels.ebay import challenge
from infrastructure.channels.ebay.config import EbayConfig
from infrastructure.channels.ebay.public_keys import public_key
from infrastructure.channels.ebay.verifier import check_signature, signature_header, verdict

# eBay's SDK test vector: the compact JSON of `eBay/event-notification-java-sdk:
# src/test/java/com/ebay/commerce/notification/data/message.json` (keys in file order, "," and
# ":" separators), the key of its `public_key_response.json`, and the signature header its test
# sends (CHANNELS.md §6, vector 3).
SDK_BODY = (
    b'{"metadata":{"topic":"MARKETPLACE_ACCOUNT_DELETION","schemaVersion":"1.0",'
    b'"deprecated":false},"notification":{"notificationId":'
    b'"49feeaeb-4982-42d9-a377-9645b8479411_33f7e043-fed8-442b-9d44-791923bd9a6d",'
    b'"eventDate":"2021-03-19T20:43:59.462Z","publishDate":"2021-03-19T20:43:59.679Z",'
    b'"publishAttemptCount":1,"data":{"username":"test_user","userId":"ma8vp1jySJC",'
    b'"eiasToken":"nY+sHZ2PrBmdj6wVnY+sEZ2PrA2dj6wJnY+gAZGEpwmdj6x9nY+seQ=="}}}'
)
SDK_KEY = (
    "-----BEGIN PUBLIC KEY-----MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEZhhxXKtR+TOvtDbgTPCkSof02qgBB7Is"
    "YOyf76ilExJ/upAa/vKIKheOoCyOpcLmi4t0b4uepb7LLjmMr90FUg==-----END PUBLIC KEY-----"
)
SDK_HEADER = (
    "eyJhbGciOiJlY2RzYSIsImtpZCI6Ijk5MzYyNjFhLTdkN2ItNDYyMS1hMGYxLTk2Y2NiNDI4YWY0OSIsInNpZ25hdH"
    "VyZSI6Ik1FWUNJUUNmeGZJV3V4bVdjSUJRSjljNS9YN2lHREpxczJSQ0dzQkVhQWppbnlycmZBSWhBSVY2d0djVGlC"
    "dVY1S0pVaWYyaG9reXJMK1E5c3NIa2FkK214Mm5FRTI1dyIsImRpZ2VzdCI6IlNIQTEifQ=="
)
KID = "9936261a-7d7b-4621-a0f1-96ccb428af49"


def sdk_key(digest: str = "SHA1"):
    return public_key({"key": SDK_KEY, "algorithm": "ECDSA", "digest": digest}, KID)


def test_ebays_sdk_vector_verifies_with_sha1():
    header = signature_header(SDK_HEADER)
    assert header["kid"] == KID
    check_signature(sdk_key("SHA1"), header, SDK_BODY)


def test_ebays_sdk_vector_does_not_verify_with_sha256():
    with pytest.raises(SignatureInvalid, match="does not match"):
        check_signature(sdk_key("SHA256"), signature_header(SDK_HEADER), SDK_BODY)


def test_a_tampered_body_does_not_verify():
    tampered = SDK_BODY.replace(b"test_user", b"test_usex")
    with pytest.raises(SignatureInvalid, match="does not match"):
        check_signature(sdk_key(), signature_header(SDK_HEADER), tampered)


def test_the_same_body_pretty_printed_does_not_verify_as_the_signature_covers_the_raw_bytes():
    pretty = json.dumps(json.loads(SDK_BODY), indent=2).encode()
    with pytest.raises(SignatureInvalid):
        check_signature(sdk_key(), signature_header(SDK_HEADER), pretty)


def test_the_sdk_notification_is_keyed_by_its_notification_id_under_its_topic():
    assert verdict(SDK_BODY) == Accepted(
        "49feeaeb-4982-42d9-a377-9645b8479411_33f7e043-fed8-442b-9d44-791923bd9a6d",
        "MARKETPLACE_ACCOUNT_DELETION",
    )


def test_a_signed_body_that_is_not_json_is_keyed_by_its_digest():
    assert verdict(b"not json").delivery_key.startswith("sha256:")


@pytest.mark.parametrize(
    "header",
    [
        "",
        "not base64!",
        base64.b64encode(b"not json").decode(),
        base64.b64encode(b'{"kid": "k"}').decode(),
        base64.b64encode(b'{"kid": "../../x", "signature": "AAAA"}').decode(),
        base64.b64encode(b'{"kid": 5, "signature": "AAAA"}').decode(),
        base64.b64encode(b'{"kid": "k", "signature": "***"}').decode(),
        "A" * 5000,
    ],
)
def test_a_missing_or_malformed_signature_header_is_refused(header):
    with pytest.raises(SignatureInvalid):
        signature_header(header)


@given(st.text(max_size=300))
def test_any_signature_header_is_read_or_refused_as_invalid(header):
    with contextlib.suppress(SignatureInvalid):
        signature_header(header)


@pytest.mark.parametrize(
    "answer",
    [
        {"key": SDK_KEY, "algorithm": "RSA", "digest": "SHA1"},
        {"key": SDK_KEY, "algorithm": "ECDSA", "digest": "MD5"},
        {
            "key": "-----BEGIN PUBLIC KEY-----bm90IGEga2V5-----END PUBLIC KEY-----",
            "algorithm": "ECDSA",
            "digest": "SHA1",
        },
        {"algorithm": "ECDSA", "digest": "SHA1"},
    ],
)
def test_a_key_answer_we_cannot_use_is_refused(answer):
    with pytest.raises(SignatureInvalid):
        public_key(answer, KID)


# CHANNELS.md §6, vector 4.
CREDENTIALS = {"client_id": "app", "client_secret": "cert", "refresh_token": "consent"}
VECTOR_4 = EbayConfig(
    id="ebay-us",
    **CREDENTIALS,
    verification_token="verification_token_32_to_80_chars_long_abcdefgh",
    notification_endpoint="https://hub.example.com/ebay/notifications",
)


def test_the_challenge_answers_ebays_vector():
    code = "a8628072-3d33-45ee-9004-bee86830a22d"
    assert challenge.answer(VECTOR_4, {"challenge_code": code}) == {
        "challengeResponse": "ac428ac07bca23310c2e703049f519b31e608a066d7ad118987c569c5dc50d47"
    }


@pytest.mark.parametrize("query", [{}, {"challenge_code": ""}, {"challenge_code": "x" * 257}])
def test_a_missing_or_oversized_challenge_code_is_refused(query):
    with pytest.raises(ChallengeRefused, match="challenge_code"):
        challenge.answer(VECTOR_4, query)


def test_a_channel_without_its_verification_token_cannot_answer_the_challenge():
    with pytest.raises(ChallengeRefused, match="verification_token"):
        challenge.answer(EbayConfig(id="ebay-us", **CREDENTIALS), {"challenge_code": "c"})
