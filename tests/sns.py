"""A stand-in for an SNS host, and messages signed as SNS signs them, for the Amazon tests."""

from __future__ import annotations

import base64
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

CERTIFICATE_PATH = "/SimpleNotificationService-local.pem"

# What a publisher signs (CHANNELS.md §3.2), written out here rather than taken from the code
# under test, so the two are checked against each other.
PUBLISHER_KEYS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "Confirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}


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


def self_signed_pem(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.local.amazonaws.com")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(UTC) - timedelta(days=400))
        .not_valid_after(datetime.now(UTC) + timedelta(days=400))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def signed(
    message: dict[str, Any],
    key: rsa.RSAPrivateKey,
    cert_url: str,
    version: str = "1",
    digest_version: str | None = None,
) -> dict[str, Any]:
    """`message` signed as SNS signs it: SHA1withRSA for version 1, SHA256withRSA for 2."""
    keys = PUBLISHER_KEYS["Notification" if message["Type"] == "Notification" else "Confirmation"]
    canonical = "".join(f"{k}\n{message[k]}\n" for k in keys if k in message).encode()
    algorithm = hashes.SHA1() if (digest_version or version) == "1" else hashes.SHA256()
    signature = key.sign(canonical, padding.PKCS1v15(), algorithm)
    return {
        **message,
        "SignatureVersion": version,
        "Signature": base64.b64encode(signature).decode(),
        "SigningCertURL": cert_url,
    }
