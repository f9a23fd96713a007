"""The Amazon sandbox's SNS topic: one HTTP/S subscription whose messages are signed as SNS
signs them (CHANNELS.md §3.2) and delivered through the shared sender (`sandboxes.webhooks`) with
SNS's default retry policy.

The topic makes its own RSA key and self-signed certificate when it starts and the sandbox
serves the certificate, so a verifier fetches it from `SigningCertURL` as from SNS; our verifier
trusts that URL only when the channel names the sandbox among its `sns_origins`.
The string to sign is written here from AWS's documentation, not taken from our verifier: a
mistake in one cannot cancel out in the tests.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from sandboxes.webhooks import Attempt, Message, WebhookSender

CERTIFICATE_PATH = "/_sns/SimpleNotificationService-sandbox.pem"
ACTION_PATH = "/_sns/"  # where SNS's SubscribeURL and UnsubscribeURL point
USER_AGENT = "Amazon Simple Notification Service Agent"
_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
# The fields SNS signs, in byte order, by message type ("Verifying the signatures of Amazon SNS
# messages", docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html).
_NOTIFICATION_SIGNS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_SIGNS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
SIGNED_FIELDS = {
    "Notification": _NOTIFICATION_SIGNS,
    "SubscriptionConfirmation": _CONFIRMATION_SIGNS,
    "UnsubscribeConfirmation": _CONFIRMATION_SIGNS,
}


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    """Each signed field present in the message, as its name and its value on lines of their own,
    in SNS's order (a Notification without `Subject` leaves it out)."""
    names = SIGNED_FIELDS[message["Type"]]
    return "".join(f"{name}\n{message[name]}\n" for name in names if name in message).encode()


class SnsSigner:
    """Signs as SNS does: RSA PKCS#1 v1.5 over the string to sign, SHA1 for `SignatureVersion`
    1 (SNS's default), SHA256 for 2."""

    def __init__(self, key: rsa.RSAPrivateKey, version: str) -> None:
        if version not in _HASHES:
            raise ValueError("signature_version must be '1' or '2'")
        self.key, self.version = key, version

    def sign(self, message: Message) -> Message:
        document = {**json.loads(message.body), "SignatureVersion": self.version}
        signature = self.key.sign(
            string_to_sign(document), padding.PKCS1v15(), _HASHES[self.version]()
        )
        document["Signature"] = base64.b64encode(signature).decode()
        return Message(message.topic, json.dumps(document).encode(), message.headers, message.id)


class SnsTopic:
    """One SNS topic with one HTTP/S subscription.

    Parameters:
        topic_arn: the topic's ARN, which messages carry and verifiers check.
        endpoint: the subscribed URL (invsync's `/webhooks/<channel>`); None: no subscription.
        confirmed: whether the subscription is confirmed already; an unconfirmed one is sent
            nothing but its `SubscriptionConfirmation` (see `subscribe`).
        signature_version: "1" (SHA1withRSA, SNS's default) or "2" (SHA256withRSA).
        retry_delays: seconds before each retry of a failed delivery (SNS's default policy:
            three retries, 20 s apart); a test compresses them.
        timeout: seconds a delivery may take.
    """

    def __init__(
        self,
        topic_arn: str,
        endpoint: str | None = None,
        *,
        confirmed: bool = True,
        signature_version: str = "1",
        retry_delays: tuple[float, ...] = (20.0, 20.0, 20.0),
        timeout: float = 15.0,
    ) -> None:
        self.topic_arn, self.confirmed = topic_arn, confirmed
        self.public_url = ""  # the sandbox's own URL, which serves the certificate
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.certificate_pem = self_signed_pem(key)
        self._token = secrets.token_hex(32)
        self.deliveries = WebhookSender(
            endpoint,
            SnsSigner(key, signature_version),
            retry_delays=retry_delays,
            timeout=timeout,
            name="amazon-sandbox-sns",
        )

    @property
    def endpoint(self) -> str | None:
        """The subscribed URL; None: no subscription."""
        return self.deliveries.url

    @endpoint.setter
    def endpoint(self, url: str | None) -> None:
        self.deliveries.url = url

    @property
    def sent(self) -> list[Attempt]:
        """Every delivery attempt, oldest first."""
        return self.deliveries.attempts

    @property
    def subscription_arn(self) -> str:
        return f"{self.topic_arn}:{uuid.uuid5(uuid.NAMESPACE_URL, self.endpoint or '')}"

    def publish(self, message: str, *, duplicates: int = 0) -> str | None:
        """Send `message` to the confirmed subscription (and `duplicates` more times, as SNS's
        at-least-once delivery may); its MessageId, None if nothing is subscribed."""
        if self.endpoint is None or not self.confirmed:
            return None
        unsubscribe = {"Action": "Unsubscribe", "SubscriptionArn": self.subscription_arn}
        fields = {"Message": message, "UnsubscribeURL": self._action_url(unsubscribe)}
        sent = self.deliveries.send(self._message("Notification", fields), duplicates=duplicates)
        return None if sent is None else sent.id

    def subscribe(self, endpoint: str) -> None:
        """Subscribe `endpoint`, unconfirmed, and send it the `SubscriptionConfirmation`."""
        self.endpoint, self.confirmed = endpoint, False
        self._token = secrets.token_hex(32)
        action = {"Action": "ConfirmSubscription", "TopicArn": self.topic_arn, "Token": self._token}
        fields = {
            "Token": self._token,
            "Message": f"You have chosen to subscribe to the topic {self.topic_arn}.\n"
            "To confirm the subscription, visit the SubscribeURL included in this message.",
            "SubscribeURL": self._action_url(action),
        }
        self.deliveries.send(self._message("SubscriptionConfirmation", fields), duplicates=0)

    def confirm(self, token: str) -> bool:
        """`ConfirmSubscription`: True, and deliveries start, when `token` is the one sent."""
        if token and secrets.compare_digest(token, self._token):
            self.confirmed = True
        return self.confirmed

    def close(self) -> None:
        self.deliveries.close()

    def _action_url(self, query: dict[str, str]) -> str:
        return f"{self.public_url}{ACTION_PATH}?{urlencode(query)}"

    def _message(self, kind: str, fields: dict[str, str]) -> Message:
        """An SNS message of `kind`, unsigned; SNS sends the same body and MessageId on every
        retry."""
        message_id = str(uuid.uuid4())
        document = {
            "Type": kind,
            "MessageId": message_id,
            **fields,
            "TopicArn": self.topic_arn,
            "Timestamp": datetime.now(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "SigningCertURL": self.public_url + CERTIFICATE_PATH,
        }
        headers = {
            "Content-Type": "text/plain; charset=UTF-8",
            "User-Agent": USER_AGENT,
            "x-amz-sns-message-type": kind,
            "x-amz-sns-message-id": message_id,
            "x-amz-sns-topic-arn": self.topic_arn,
        }
        if kind == "Notification":
            headers["x-amz-sns-subscription-arn"] = self.subscription_arn
        return Message(kind, json.dumps(document).encode(), headers, message_id)


def _timestamp() -> str:
    """Now as SNS writes it: UTC, milliseconds, `Z`."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def self_signed_pem(key: rsa.RSAPrivateKey) -> bytes:
    """A certificate of `key`'s public key, signed by itself, as SNS serves its signing one."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.sandbox.amazonaws.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)
