"""A stand-in for an SNS host, and messages signed as SNS signs them, for the Amazon tests."""

from __future__ import annotations

import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sandboxes.amazon.sns import string_to_sign

CERTIFICATE_PATH = "/SimpleNotificationService-local.pem"

# AWS's example notification, whose string to sign CHANNELS.md §3.2 gives: both the sandbox's
# signer and our verifier are held to it.
AWS_EXAMPLE_NOTIFICATION = {
    "Type": "Notification",
    "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
    "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
    "Subject": "My First Message",
    "Message": "Hello world!",
    "Timestamp": "2012-05-02T00:54:06.655Z",
    "SignatureVersion": "1",
    "UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe",
}
AWS_EXAMPLE_STRING_TO_SIGN = (
    b"Message\nHello world!\n"
    b"MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n"
    b"Subject\nMy First Message\n"
    b"Timestamp\n2012-05-02T00:54:06.655Z\n"
    b"TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\n"
    b"Type\nNotification\n"
)


class SnsHost:
    """A real HTTP server on 127.0.0.1 that serves `files` and remembers each request's path."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.statuses: dict[str, int] = {}
        self.requests: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        # A short poll, so `stop` returns at once rather than after the default half second.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    def requested(self, path: str) -> int:
        return sum(urlsplit(request).path == path for request in self.requests)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _handler_for(host: SnsHost) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            host.requests.append(self.path)
            path = urlsplit(self.path).path
            body = host.files.get(path, b"")
            self.send_response(host.statuses.get(path, 200 if path in host.files else 404))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output clean

    return Handler


def signed(
    message: dict[str, Any],
    key: rsa.RSAPrivateKey,
    cert_url: str,
    version: str = "1",
    digest_version: str | None = None,
) -> dict[str, Any]:
    """`message` signed as SNS signs it: SHA1withRSA for version 1, SHA256withRSA for 2 (the
    string to sign is the sandbox's, written from AWS's documentation, not our verifier's)."""
    canonical = string_to_sign(message)
    algorithm = hashes.SHA1() if (digest_version or version) == "1" else hashes.SHA256()
    signature = key.sign(canonical, padding.PKCS1v15(), algorithm)
    return {
        **message,
        "SignatureVersion": version,
        "Signature": base64.b64encode(signature).decode(),
        "SigningCertURL": cert_url,
    }
