"""The sandboxes sign from the channels' documentation, independently of our verifiers: each
signer against the channel's published example, so a mistake on either side shows."""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sandboxes.amazon.sns import SnsSigner, string_to_sign
from sandboxes.shopify.webhooks import ShopifySigner
from sandboxes.webhooks import Message
from sandboxes.woocommerce.webhooks import WooCommerceSigner
from tests.sns import AWS_EXAMPLE_NOTIFICATION, AWS_EXAMPLE_STRING_TO_SIGN


def test_the_sns_string_to_sign_of_a_notification_is_the_documented_vector():
    assert string_to_sign(AWS_EXAMPLE_NOTIFICATION) == AWS_EXAMPLE_STRING_TO_SIGN


def test_a_notification_without_a_subject_leaves_it_out_of_the_string_to_sign():
    message = {key: value for key, value in AWS_EXAMPLE_NOTIFICATION.items() if key != "Subject"}
    assert b"Subject" not in string_to_sign(message)


def test_a_subscription_confirmation_signs_its_token_and_subscribe_url_in_byte_order():
    message = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "m",
        "Token": "t",
        "TopicArn": "arn",
        "Message": "You have chosen to subscribe.\nVisit the SubscribeURL.",
        "SubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription",
        "Timestamp": "2012-04-26T20:45:04.751Z",
    }
    assert string_to_sign(message) == (
        b"Message\nYou have chosen to subscribe.\nVisit the SubscribeURL.\n"
        b"MessageId\nm\n"
        b"SubscribeURL\nhttps://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription\n"
        b"Timestamp\n2012-04-26T20:45:04.751Z\n"
        b"Token\nt\n"
        b"TopicArn\narn\n"
        b"Type\nSubscriptionConfirmation\n"
    )


def test_the_sns_signer_signs_the_string_to_sign_with_sha1_or_sha256_by_version():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    unsigned = {k: v for k, v in AWS_EXAMPLE_NOTIFICATION.items() if k != "SignatureVersion"}
    for version, algorithm in (("1", hashes.SHA1()), ("2", hashes.SHA256())):
        message = Message("Notification", json.dumps(unsigned).encode())
        signed = json.loads(SnsSigner(key, version).sign(message).body)
        assert signed["SignatureVersion"] == version
        key.public_key().verify(
            base64.b64decode(signed["Signature"]),
            string_to_sign(AWS_EXAMPLE_NOTIFICATION),
            padding.PKCS1v15(),
            algorithm,
        )


def test_shopify_signs_the_documented_test_vector():
    body = b'{"id":820982911946154508,"line_items":[{"sku":"SKU-1","quantity":2}]}'
    signed = ShopifySigner("shpss_test_secret").sign(Message("orders/create", body))
    assert signed.headers["X-Shopify-Hmac-Sha256"] == "fbAl/Kinji+rg8XkyLkcv5RjqiURbQXFHGYLYidDs2I="


def test_woocommerce_signs_the_documented_test_vector():
    body = (
        b'{"id":727,"status":"processing","line_items":[{"id":315,"product_id":93,'
        b'"variation_id":0,"quantity":1,"sku":"WOO-1"}],"_links":{"self":[{"href":'
        b'"https:\\/\\/example.com\\/wp-json\\/wc\\/v3\\/orders\\/727"}]}}'
    )
    signed = WooCommerceSigner("wc_webhook_secret").sign(Message("order.created", body))
    assert (
        signed.headers["X-WC-Webhook-Signature"] == "nsCyW8dl+9zRA+loi/3ItSnkkxTj7uTtOIVRxsVzMXc="
    )
