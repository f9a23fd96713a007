"""The Amazon sandbox's SNS topic: an HTTPS-subscription sender that signs as SNS signs
(CHANNELS.md §3.2), and the background timeline the sandbox runs its delayed work on.

The topic makes its own RSA key and self-signed certificate when it starts and the sandbox
serves the certificate, so a verifier fetches it from `SigningCertURL` as from SNS; our verifier
trusts that URL only when the channel names the sandbox's host (`sandbox_sns_certificate_host`).
"""

from __future__ import annotations

import base64
import heapq
import itertools
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from infrastructure.channels.amazon import sns

log = logging.getLogger(__name__)

CERTIFICATE_PATH = "/_sns/SimpleNotificationService-sandbox.pem"
ACTION_PATH = "/_sns/"  # where SNS's SubscribeURL and UnsubscribeURL point
USER_AGENT = "Amazon Simple Notification Service Agent"
_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


class Timeline:
    """Jobs run at their time, in the order they were due, on one background thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: list[tuple[float, int, Callable[[], object]]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def after(self, delay: float, job: Callable[[], object]) -> None:
        with self._changed:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name=self.name)
                self._thread.start()
            heapq.heappush(self._jobs, (time.monotonic() + delay, next(self._order), job))
            self._changed.notify()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._closed and (not self._jobs or self._jobs[0][0] > time.monotonic()):
                    wait = self._jobs[0][0] - time.monotonic() if self._jobs else None
                    self._changed.wait(wait)
                if self._closed:
                    return
                _, _, job = heapq.heappop(self._jobs)
            job()


@dataclass(frozen=True)
class SnsDelivery:
    """One delivery attempt: `status` None when the endpoint could not be reached."""

    message_id: str
    type: str
    attempt: int
    body: bytes
    headers: dict[str, str]
    status: int | None


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
        if signature_version not in _HASHES:
            raise ValueError("signature_version must be '1' or '2'")
        self.topic_arn, self.endpoint, self.confirmed = topic_arn, endpoint, confirmed
        self.signature_version, self.retry_delays = signature_version, retry_delays
        self.timeout = timeout
        self.public_url = ""  # the sandbox's own URL, which serves the certificate
        self.sent: list[SnsDelivery] = []
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.certificate_pem = _self_signed(self._key)
        self._token = secrets.token_hex(32)
        self._timeline = Timeline("amazon-sandbox-sns")
        self._lock = threading.Lock()

    @property
    def subscription_arn(self) -> str:
        return f"{self.topic_arn}:{uuid.uuid5(uuid.NAMESPACE_URL, self.endpoint or '')}"

    def publish(self, message: str, *, duplicates: int = 0) -> str | None:
        """Send `message` to the confirmed subscription (and `duplicates` more times, as SNS's
        at-least-once delivery may); its MessageId, None if nothing is subscribed."""
        if self.endpoint is None or not self.confirmed:
            return None
        fields = {"Type": "Notification", "MessageId": str(uuid.uuid4()), "Message": message}
        unsubscribe = {"Action": "Unsubscribe", "SubscriptionArn": self.subscription_arn}
        fields["UnsubscribeURL"] = self._action_url(unsubscribe)
        body = self._signed(fields)
        for _ in range(1 + duplicates):
            self._timeline.after(0, lambda: self._deliver(fields, body, attempt=1))
        return fields["MessageId"]

    def subscribe(self, endpoint: str) -> None:
        """Subscribe `endpoint`, unconfirmed, and send it the `SubscriptionConfirmation`."""
        self.endpoint, self.confirmed = endpoint, False
        self._token = secrets.token_hex(32)
        fields = {
            "Type": "SubscriptionConfirmation",
            "MessageId": str(uuid.uuid4()),
            "Token": self._token,
            "Message": f"You have chosen to subscribe to the topic {self.topic_arn}.\n"
            "To confirm the subscription, visit the SubscribeURL included in this message.",
        }
        action = {"Action": "ConfirmSubscription", "TopicArn": self.topic_arn, "Token": self._token}
        fields["SubscribeURL"] = self._action_url(action)
        body = self._signed(fields)
        self._timeline.after(0, lambda: self._deliver(fields, body, attempt=1))

    def confirm(self, token: str) -> bool:
        """`ConfirmSubscription`: True, and deliveries start, when `token` is the one sent."""
        if token and secrets.compare_digest(token, self._token):
            self.confirmed = True
        return self.confirmed

    def close(self) -> None:
        self._timeline.close()

    def _action_url(self, query: dict[str, str]) -> str:
        return f"{self.public_url}{ACTION_PATH}?{urlencode(query)}"

    def _signed(self, fields: dict[str, str]) -> bytes:
        message = {
            **fields,
            "TopicArn": self.topic_arn,
            "Timestamp": datetime.now(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "SignatureVersion": self.signature_version,
            "SigningCertURL": self.public_url + CERTIFICATE_PATH,
        }
        algorithm = _HASHES[self.signature_version]()
        signature = self._key.sign(sns.string_to_sign(message), padding.PKCS1v15(), algorithm)
        message["Signature"] = base64.b64encode(signature).decode()
        return json.dumps(message).encode()

    def _deliver(self, fields: dict[str, str], body: bytes, attempt: int) -> None:
        # SNS sends the same body (and MessageId) on every retry.
        headers = {
            "Content-Type": "text/plain; charset=UTF-8",
            "User-Agent": USER_AGENT,
            "x-amz-sns-message-type": fields["Type"],
            "x-amz-sns-message-id": fields["MessageId"],
            "x-amz-sns-topic-arn": self.topic_arn,
        }
        if fields["Type"] == "Notification":
            headers["x-amz-sns-subscription-arn"] = self.subscription_arn
        status: int | None
        try:
            status = httpx.post(
                str(self.endpoint), content=body, headers=headers, timeout=self.timeout
            ).status_code
        except httpx.HTTPError as error:
            log.info("SNS sandbox: %s not delivered: %s", fields["MessageId"], error)
            status = None
        with self._lock:
            self.sent.append(
                SnsDelivery(fields["MessageId"], fields["Type"], attempt, body, headers, status)
            )
        if (status is None or not 200 <= status < 300) and attempt <= len(self.retry_delays):
            self._timeline.after(
                self.retry_delays[attempt - 1],
                lambda: self._deliver(fields, body, attempt + 1),
            )


def _self_signed(key: rsa.RSAPrivateKey) -> bytes:
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
