"""SNS message verification against a real local HTTP server standing in for an SNS host: it
serves our self-signed certificate and answers subscription confirmations."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from application.intake import Delivery
from infrastructure.channels.amazon.config import AmazonConfig
from infrastructure.channels.amazon.sns import (
    CertificateCache,
    check_certificate_url,
    string_to_sign,
)
from infrastructure.channels.amazon.translator import acknowledge
from infrastructure.channels.amazon.verifier import make_verifier, verify
from infrastructure.channels.base import (
    Accepted,
    SignatureInvalid,
    SignedRequest,
    VerificationUnavailable,
)
from sandboxes.amazon.sns import self_signed_pem
from tests.sns import (
    AWS_EXAMPLE_NOTIFICATION,
    AWS_EXAMPLE_STRING_TO_SIGN,
    CERTIFICATE_PATH,
    SnsHost,
    signed,
)
from tests.unit.amazon_messages import TOPIC_ARN, order_change, sns_confirmation, sns_notification

NOW = datetime(2026, 3, 1, 0, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def sns_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def sns_host(sns_key: rsa.RSAPrivateKey) -> Iterator[SnsHost]:
    host = SnsHost()
    host.files[CERTIFICATE_PATH] = self_signed_pem(sns_key)
    host.files["/confirm"] = b"<ConfirmSubscriptionResponse/>"
    host.start()
    yield host
    host.stop()


def amazon(sns_host: str | None = None, topics: tuple[str, ...] = (TOPIC_ARN,)):
    """An Amazon channel whose SNS is at `http://<sns_host>` (SNS's own hosts when None)."""
    extra = {"sns_origins": (f"http://{sns_host}",)} if sns_host else {}
    return AmazonConfig(id="amz", sns_topic_arns=topics, **extra)


def body(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


def stored(verdict: Accepted, message: dict[str, Any]) -> Delivery:
    return Delivery(1, "amz", verdict.delivery_key, verdict.topic, {}, body(message), NOW)


# The string to sign -------------------------------------------------------------------------


def test_the_string_to_sign_is_the_documented_vector():
    assert string_to_sign(AWS_EXAMPLE_NOTIFICATION) == AWS_EXAMPLE_STRING_TO_SIGN


def test_a_notification_without_subject_leaves_it_out_of_the_string_to_sign():
    message = {"Type": "Notification", "MessageId": "m", "Message": "x", "Timestamp": "t"}
    assert string_to_sign(message) == (
        b"Message\nx\nMessageId\nm\nTimestamp\nt\nType\nNotification\n"
    )


def test_a_confirmation_signs_its_subscribe_url_and_token_under_their_sns_spelling():
    lambda_style = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "m",
        "Token": "tok",
        "TopicArn": "arn",
        "Message": "hi",
        "SubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
        "Timestamp": "t",
    }
    assert string_to_sign(lambda_style) == (
        b"Message\nhi\nMessageId\nm\n"
        b"SubscribeURL\nhttps://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription\n"
        b"Timestamp\nt\nToken\ntok\nTopicArn\narn\nType\nSubscriptionConfirmation\n"
    )


# Certificate URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-3250158c.pem",
    ],
)
def test_sns_certificate_urls_are_trusted_at_the_default_origins(url):
    check_certificate_url(url)
    check_certificate_url(url, AmazonConfig(id="amz").sns_origins)


def test_a_channel_whose_sns_is_elsewhere_trusts_that_origin_alone():
    origins = ("http://127.0.0.1:8080",)
    check_certificate_url("http://127.0.0.1:8080/SimpleNotificationService-abc.pem", origins)
    for url in (
        "https://127.0.0.1:8080/SimpleNotificationService-abc.pem",
        "http://127.0.0.1:8081/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    ):
        with pytest.raises(SignatureInvalid, match="SigningCertURL"):
            check_certificate_url(url, origins)


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.crt",
        "https://sns.us-east-1.amazonaws.com.evil.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com@evil.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-abc.pem",
        "https://evil.com/sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com/cert?name=SimpleNotificationService-abc.pem",
        "not a url",
    ],
)
def test_a_notification_naming_an_untrusted_certificate_url_is_refused_without_fetching(
    url, sns_key, sns_host
):
    message = signed(sns_notification(order_change()), sns_key, url)
    with pytest.raises(SignatureInvalid, match="SigningCertURL"):
        make_verifier(CertificateCache())(
            amazon(sns_host.host), SignedRequest({}, body(message)), NOW
        )
    assert sns_host.requests == []


def test_a_local_certificate_host_is_refused_unless_the_channel_names_it(sns_key, sns_host):
    message = signed(sns_notification(order_change()), sns_key, sns_host.url(CERTIFICATE_PATH))
    with pytest.raises(SignatureInvalid, match=re.escape("sns.<region>.amazonaws.com")):
        verify(amazon(), SignedRequest({}, body(message)), NOW)
    with pytest.raises(SignatureInvalid, match=re.escape("at none of http://127.0.0.1:1")):
        verify(amazon("127.0.0.1:1"), SignedRequest({}, body(message)), NOW)
    assert sns_host.requests == []


# Notifications ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_notification_signed_by_sns_is_accepted_under_its_notification_id(
    version, sns_key, sns_host
):
    inner = order_change(notification_id="d0e9e693-c3ad-4373-979f-ed4ec98dd746")
    message = signed(sns_notification(inner), sns_key, sns_host.url(CERTIFICATE_PATH), version)
    verdict = verify(amazon(sns_host.host), SignedRequest({}, body(message)), NOW)
    assert verdict == Accepted("d0e9e693-c3ad-4373-979f-ed4ec98dd746", "ORDER_CHANGE")


def test_a_notification_without_metadata_is_keyed_by_its_sns_message_id(sns_key, sns_host):
    inner = order_change()
    del inner["NotificationMetadata"]
    message = signed(sns_notification(inner), sns_key, sns_host.url(CERTIFICATE_PATH))
    verdict = make_verifier(CertificateCache())(
        amazon(sns_host.host), SignedRequest({}, body(message)), NOW
    )
    assert verdict == Accepted("sns:" + message["MessageId"], "ORDER_CHANGE")


def test_a_signed_message_that_is_not_json_inside_is_stored_for_translation_to_park(
    sns_key, sns_host
):
    message = signed(sns_notification("plain text"), sns_key, sns_host.url(CERTIFICATE_PATH))
    verdict = make_verifier(CertificateCache())(
        amazon(sns_host.host), SignedRequest({}, body(message)), NOW
    )
    assert verdict == Accepted("sns:" + message["MessageId"], "Notification")


def test_lambda_style_keys_verify_like_the_originals(sns_key, sns_host):
    message = signed(sns_notification(order_change()), sns_key, sns_host.url(CERTIFICATE_PATH))
    message["SigningCertUrl"] = message.pop("SigningCertURL")
    verdict = make_verifier(CertificateCache())(
        amazon(sns_host.host), SignedRequest({}, body(message)), NOW
    )
    assert verdict.topic == "ORDER_CHANGE"


def test_a_tampered_message_is_refused(sns_key, sns_host):
    message = signed(sns_notification(order_change()), sns_key, sns_host.url(CERTIFICATE_PATH))
    message["Message"] = message["Message"].replace('"Quantity": 2', '"Quantity": 20')
    with pytest.raises(SignatureInvalid, match="does not match"):
        make_verifier(CertificateCache())(
            amazon(sns_host.host), SignedRequest({}, body(message)), NOW
        )


def test_a_message_signed_with_another_key_is_refused(other_key, sns_host):
    message = signed(sns_notification(order_change()), other_key, sns_host.url(CERTIFICATE_PATH))
    with pytest.raises(SignatureInvalid, match="does not match"):
        make_verifier(CertificateCache())(
            amazon(sns_host.host), SignedRequest({}, body(message)), NOW
        )


def test_a_sha1_signature_does_not_pass_for_version_2(sns_key, sns_host):
    url = sns_host.url(CERTIFICATE_PATH)
    message = signed(sns_notification(order_change()), sns_key, url, "2", digest_version="1")
    with pytest.raises(SignatureInvalid, match="does not match"):
        make_verifier(CertificateCache())(
            amazon(sns_host.host), SignedRequest({}, body(message)), NOW
        )


@pytest.mark.parametrize("version", ["3", "", None])
def test_an_unknown_signature_version_is_refused_before_any_fetch(version, sns_key, sns_host):
    message = signed(sns_notification(order_change()), sns_key, sns_host.url(CERTIFICATE_PATH))
    message["SignatureVersion"] = version
    with pytest.raises(SignatureInvalid, match="SignatureVersion"):
        make_verifier(CertificateCache())(
            amazon(sns_host.host), SignedRequest({}, body(message)), NOW
        )
    assert sns_host.requests == []


def test_a_topic_the_channel_does_not_list_is_refused_before_any_fetch(sns_key, sns_host):
    other_topic = "arn:aws:sns:us-east-1:999999999999:someone-else"
    message = signed(
        sns_notification(order_change(), topic_arn=other_topic),
        sns_key,
        sns_host.url(CERTIFICATE_PATH),
    )
    with pytest.raises(SignatureInvalid, match="sns_topic_arns"):
        make_verifier(CertificateCache())(
            amazon(sns_host.host), SignedRequest({}, body(message)), NOW
        )
    assert sns_host.requests == []


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        (b"<xml/>", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"Type": "Gossip"}', "unknown SNS message Type"),
        (b'{"Type": "Notification", "MessageId": "m"}', "lacks TopicArn, Message"),
    ],
)
def test_a_body_that_is_not_a_whole_sns_message_is_refused(raw, complaint):
    with pytest.raises(SignatureInvalid, match=complaint):
        make_verifier(CertificateCache())(amazon(), SignedRequest({}, raw), NOW)


def test_a_signature_that_is_not_base64_is_refused(sns_key, sns_host):
    message = signed(sns_notification(order_change()), sns_key, sns_host.url(CERTIFICATE_PATH))
    message["Signature"] = "not base64!"
    with pytest.raises(SignatureInvalid, match="not base64"):
        make_verifier(CertificateCache())(
            amazon(sns_host.host), SignedRequest({}, body(message)), NOW
        )


# The certificate cache ----------------------------------------------------------------------


def test_the_certificate_is_fetched_once_and_kept(sns_key, sns_host):
    check = make_verifier(CertificateCache())
    for _ in range(3):
        message = signed(sns_notification(order_change()), sns_key, sns_host.url(CERTIFICATE_PATH))
        check(amazon(sns_host.host), SignedRequest({}, body(message)), NOW)
    assert sns_host.requested(CERTIFICATE_PATH) == 1


def test_the_cache_keeps_only_the_most_recently_used_certificates(sns_key, sns_host):
    sns_host.files["/second.pem"] = sns_host.files[CERTIFICATE_PATH]
    check = make_verifier(CertificateCache(max_entries=1))
    for path in (CERTIFICATE_PATH, "/second.pem", CERTIFICATE_PATH):
        message = signed(sns_notification(order_change()), sns_key, sns_host.url(path))
        check(amazon(sns_host.host), SignedRequest({}, body(message)), NOW)
    assert sns_host.requested(CERTIFICATE_PATH) == 2


def test_concurrent_verifications_share_one_cache(sns_key, sns_host):
    check = make_verifier(CertificateCache())
    url = sns_host.url(CERTIFICATE_PATH)
    bodies = [body(signed(sns_notification(order_change()), sns_key, url)) for _ in range(16)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        verdicts = list(
            pool.map(lambda raw: check(amazon(sns_host.host), SignedRequest({}, raw), NOW), bodies)
        )
    assert all(verdict.topic == "ORDER_CHANGE" for verdict in verdicts)


def test_a_certificate_that_cannot_be_fetched_now_asks_for_a_retry(sns_key, sns_host):
    check = make_verifier(CertificateCache())
    message = signed(sns_notification(order_change()), sns_key, sns_host.url(CERTIFICATE_PATH))
    sns_host.statuses[CERTIFICATE_PATH] = 503
    with pytest.raises(VerificationUnavailable, match="answered HTTP 503"):
        check(amazon(sns_host.host), SignedRequest({}, body(message)), NOW)
    del sns_host.statuses[CERTIFICATE_PATH]
    assert (
        check(amazon(sns_host.host), SignedRequest({}, body(message)), NOW).topic == "ORDER_CHANGE"
    )


def test_a_certificate_host_that_is_down_asks_for_a_retry(sns_key):
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as unused:
        gone = f"127.0.0.1:{unused.server_address[1]}"  # closed as the block ends
    message = signed(sns_notification(order_change()), sns_key, f"http://{gone}/cert.pem")
    with pytest.raises(VerificationUnavailable, match="cannot fetch"):
        make_verifier(CertificateCache())(amazon(gone), SignedRequest({}, body(message)), NOW)


def test_a_url_that_serves_no_certificate_is_refused(sns_key, sns_host):
    sns_host.files["/garbage.pem"] = b"-----BEGIN NONSENSE-----"
    message = signed(sns_notification(order_change()), sns_key, sns_host.url("/garbage.pem"))
    with pytest.raises(SignatureInvalid, match="does not serve a PEM certificate"):
        make_verifier(CertificateCache())(
            amazon(sns_host.host), SignedRequest({}, body(message)), NOW
        )


# Subscription hand-shakes -------------------------------------------------------------------


def test_a_subscription_confirmation_is_accepted_then_confirmed_by_getting_its_url(
    sns_key, sns_host
):
    confirmation = sns_confirmation(sns_host.url("/confirm?Action=ConfirmSubscription&Token=t"))
    message = signed(confirmation, sns_key, sns_host.url(CERTIFICATE_PATH), "2")
    channel = amazon(sns_host.host)
    verdict = verify(channel, SignedRequest({}, body(message)), NOW)
    assert verdict == Accepted("sns:" + message["MessageId"], "SubscriptionConfirmation")
    acknowledge(channel, stored(verdict, message))
    assert "/confirm?Action=ConfirmSubscription&Token=t" in sns_host.requests


def test_an_unsubscribe_confirmation_is_accepted_and_never_resubscribes(sns_key, sns_host):
    confirmation = sns_confirmation(sns_host.url("/confirm"), kind="UnsubscribeConfirmation")
    message = signed(confirmation, sns_key, sns_host.url(CERTIFICATE_PATH))
    channel = amazon(sns_host.host)
    verdict = verify(channel, SignedRequest({}, body(message)), NOW)
    assert verdict == Accepted("sns:" + message["MessageId"], "UnsubscribeConfirmation")
    acknowledge(channel, stored(verdict, message))
    assert sns_host.requested("/confirm") == 0


def test_a_confirmation_sns_refuses_raises_so_the_worker_retries(sns_key, sns_host):
    sns_host.statuses["/confirm"] = 500
    message = signed(sns_confirmation(sns_host.url("/confirm")), sns_key, "unused")
    delivery = stored(Accepted("sns:1", "SubscriptionConfirmation"), message)
    with pytest.raises(httpx.HTTPStatusError):
        acknowledge(amazon(sns_host.host), delivery)


def test_a_subscribe_url_outside_sns_is_refused_at_intake_and_never_requested(sns_key, sns_host):
    message = signed(
        sns_confirmation("https://sns.us-east-1.amazonaws.com.evil.com/?Action=Confirm"),
        sns_key,
        sns_host.url(CERTIFICATE_PATH),
    )
    with pytest.raises(SignatureInvalid, match="SubscribeURL"):
        verify(amazon(sns_host.host), SignedRequest({}, body(message)), NOW)
    assert sns_host.requests == []


def test_a_stored_confirmation_whose_sns_origin_is_no_longer_configured_is_not_requested(
    sns_key, sns_host
):
    message = signed(sns_confirmation(sns_host.url("/confirm")), sns_key, "unused")
    delivery = stored(Accepted("sns:1", "SubscriptionConfirmation"), message)
    with pytest.raises(SignatureInvalid, match="SubscribeURL"):
        acknowledge(amazon(), delivery)
    assert sns_host.requests == []


def test_notifications_need_no_acknowledgement(sns_key, sns_host):
    message = signed(sns_notification(order_change()), sns_key, sns_host.url(CERTIFICATE_PATH))
    acknowledge(amazon(sns_host.host), stored(Accepted("n", "ORDER_CHANGE"), message))
    assert sns_host.requests == []
