"""Amazon notifications as SNS delivers them over HTTPS: RSA-signed JSON messages.

The SNS headers are not signed, so everything is read from the signed body. A delivery is keyed
by the SP-API `NotificationId`, which Amazon tells us to deduplicate on; SNS's own `MessageId`
stands in for messages that carry none (subscription hand-shakes, foreign payloads).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeGuard

from infrastructure.channels.amazon import sns
from infrastructure.channels.amazon.config import AmazonConfig
from infrastructure.channels.base import (
    Accepted,
    SignatureInvalid,
    SignedRequest,
    Verdict,
    parsed_object,
)

AmazonVerifier = Callable[[AmazonConfig, SignedRequest, datetime], Verdict]


def make_verifier(certificates: sns.CertificateCache) -> AmazonVerifier:
    """A verifier that checks signatures with the certificates `certificates` fetches and keeps."""

    def verify(channel: AmazonConfig, request: SignedRequest, now: datetime) -> Verdict:
        """Check an SNS delivery and name it.

        Parameters:
            channel: the channel account; its `sns_topic_arns` are the topics we accept,
                its `sns_origins` where their certificates may be.
            request: the request as received; only its body is read (SNS signs no header).
            now: unused: SNS's `Timestamp` is signed, and a replay is deduplicated by its key.

        Returns:
            `Accepted`, keyed by the notification's id, with the SP-API notification type (or
            the SNS message type for subscription hand-shakes) as its topic.

        Raises:
            SignatureInvalid: the body is not an SNS message, its topic is not configured, its
                certificate or subscribe URL is not trusted, or its signature does not match.
        """
        message = sns.parse_message(request.body)
        _check_topic(channel, message["TopicArn"])
        if message["Type"] == sns.SUBSCRIPTION_CONFIRMATION:
            # Refused now rather than stored: `acknowledge` would refuse it on every retry.
            sns.check_subscribe_url(message["SubscribeURL"], channel.sns_origins)
        certificates.verify(message, channel.sns_origins)
        return _verdict(message)

    return verify


verify = make_verifier(sns.CertificateCache())


def _check_topic(channel: AmazonConfig, topic_arn: str) -> None:
    # A valid signature only proves SNS sent it: any AWS account can publish to an endpoint.
    if topic_arn not in channel.sns_topic_arns:
        raise SignatureInvalid(
            f"SNS topic {topic_arn!r} is not in channel {channel.id!r}'s sns_topic_arns"
        )


def _verdict(message: Mapping[str, Any]) -> Accepted:
    fallback_key = "sns:" + message["MessageId"]
    if message["Type"] != sns.NOTIFICATION:
        return Accepted(delivery_key=fallback_key, topic=message["Type"])
    notification = parsed_object(message["Message"])
    if notification is None:
        # Signed by SNS, so stored all the same: translation parks what it cannot read.
        return Accepted(delivery_key=fallback_key, topic=sns.NOTIFICATION)
    metadata = notification.get("NotificationMetadata")
    notification_id = metadata.get("NotificationId") if isinstance(metadata, dict) else None
    topic = notification.get("NotificationType")
    return Accepted(
        delivery_key=notification_id if _is_text(notification_id) else fallback_key,
        topic=topic if _is_text(topic) else sns.NOTIFICATION,
    )


def _is_text(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value)
