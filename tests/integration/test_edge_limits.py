"""What one client may hold of the service, over real HTTP: bodies bounded in size and time,
unverified webhook bodies bounded in number, signature checks that fetch certificates on threads
of their own, quiet disconnects, and `/metrics` behind a token scope when configured."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from infrastructure.config import ApiToken, Config
from infrastructure.settings import HttpLimits
from interfaces.http.api import Api
from interfaces.http.app import create_app
from tests.channels import shopify_headers, shopify_order
from tests.helpers import assert_problem
from tests.integration.intake_fixtures import SHOPIFY_SECRET, channel_config, running_intake
from tests.unit.amazon_messages import TOPIC_ARN, order_change, sns_notification

# API bodies --------------------------------------------------------------------------------


def _receipt(padding: int) -> bytes:
    return json.dumps(
        {"kind": "receipt", "sku": "S", "location": "main", "quantity": 1, "reason": "x" * padding}
    ).encode()


def test_an_api_body_over_the_default_limit_is_refused_413_before_it_is_read(ledger):
    with TestClient(create_app(Api(ledger)), raise_server_exceptions=False) as client:
        answer = client.post("/api/v1/stock-changes", content=_receipt(4 * 1024 * 1024))
    body = assert_problem(answer, 413)
    assert "1048576 bytes" in body["detail"]
    assert answer.headers["connection"] == "close"


def test_an_api_body_streamed_without_a_length_is_cut_at_the_limit(ledger):
    app = create_app(Api(ledger, limits=HttpLimits(max_api_body_bytes=1024)))

    def chunks() -> Iterator[bytes]:
        yield _receipt(0)[:-1]
        for _ in range(10):
            yield b" " * 512

    with TestClient(app, raise_server_exceptions=False) as client:
        streamed = client.post("/api/v1/stock-changes", content=chunks())
        small = client.post("/api/v1/stock-changes", content=_receipt(10))
    assert_problem(streamed, 413)
    assert small.status_code != 413


# Slow and unfinished bodies, over real sockets ----------------------------------------------


def _open_body(
    url: str, path: str, declared: int, first: bytes = b"{", source: str | None = None
) -> socket.socket:
    """A request whose body is left unfinished, sent from `source` (a loopback address: Linux
    answers all of 127.0.0.0/8) when given."""
    host, port = url.removeprefix("http://").split(":")
    bind = (source, 0) if source else None
    conn = socket.create_connection((host, int(port)), timeout=15, source_address=bind)
    conn.sendall(
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"X-Shopify-Hmac-Sha256: x\r\nContent-Length: {declared}\r\n\r\n".encode()
        + first
    )
    return conn


def _answer(conn: socket.socket) -> bytes:
    received = b""
    while chunk := conn.recv(65536):
        received += chunk
    return received  # the server closed the connection


@pytest.mark.parametrize("path", ["/webhooks/shopify-us", "/api/v1/stock-changes"])
def test_a_body_sent_one_byte_at_a_time_is_cut_off_at_the_body_timeout_with_408(
    ledger, database_url, redis_url, path
):
    limits = HttpLimits(body_timeout_seconds=1.5)
    with running_intake(ledger, database_url, redis_url, workers=False, limits=limits) as running:
        conn = _open_body(running.url, path, 1000)
        started = time.monotonic()
        cut = None
        with conn:
            try:
                for _ in range(40):  # 1 byte every 0.25 s: it would take 250 s in all
                    conn.sendall(b" ")
                    time.sleep(0.25)
            except OSError:
                cut = time.monotonic() - started
            answer = _answer(conn)
        took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert (cut or took) < 4


def test_unfinished_webhook_bodies_hold_at_most_the_configured_slots(
    ledger, database_url, redis_url
):
    limits = HttpLimits(webhook_bodies=3, body_timeout_seconds=3)
    with running_intake(ledger, database_url, redis_url, workers=False, limits=limits) as running:
        # From three addresses: one address may hold only a quarter of the slots.
        held = [
            _open_body(running.url, "/webhooks/shopify-us", 60_000, source=f"127.0.0.{n}")
            for n in (2, 3, 4)
        ]
        time.sleep(0.3)
        body = shopify_order(int(uuid.uuid4().int % 10**12), [(1, "SKU-SLOTS", 1)])
        headers = shopify_headers(SHOPIFY_SECRET, body, "orders/create", str(uuid.uuid4()))
        started = time.monotonic()
        busy = httpx.post(f"{running.url}/webhooks/shopify-us", content=body, headers=headers)
        waited = time.monotonic() - started
        cut = [_answer(conn) for conn in held]  # each cut off at the body timeout
        later = httpx.post(f"{running.url}/webhooks/shopify-us", content=body, headers=headers)
        for conn in held:
            conn.close()
    assert_problem(busy, 503)
    assert busy.headers["retry-after"] == "5"
    assert waited < 2
    assert all(answer.startswith(b"HTTP/1.1 408") for answer in cut), cut
    assert later.status_code == 200


def test_one_address_holds_at_most_a_quarter_of_the_body_slots_and_others_are_served(
    ledger, database_url, redis_url
):
    limits = HttpLimits(webhook_bodies=8, body_timeout_seconds=3)
    with running_intake(ledger, database_url, redis_url, workers=False, limits=limits) as running:
        url = f"{running.url}/webhooks/shopify-us"
        # One slow client opens as many unfinished bodies as there are slots in all.
        slow = [_open_body(running.url, "/webhooks/shopify-us", 60_000) for _ in range(8)]
        time.sleep(0.3)
        served = []
        with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2")) as other:
            for _ in range(5):
                body = shopify_order(int(uuid.uuid4().int % 10**12), [(1, "SKU-SHARE", 1)])
                headers = shopify_headers(SHOPIFY_SECRET, body, "orders/create", str(uuid.uuid4()))
                started = time.monotonic()
                answer = other.post(url, content=body, headers=headers)
                served.append((answer.status_code, time.monotonic() - started))
        answers = [_answer(conn) for conn in slow]
        for conn in slow:
            conn.close()
    assert [code for code, _ in served] == [200] * 5
    assert all(took < 5 for _, took in served), served  # within Shopify's limit, no slot wait
    statuses = sorted(answer[9:12] for answer in answers)
    assert statuses == [b"408"] * 2 + [b"503"] * 6, answers  # its quarter read, then cut off


def test_a_client_that_disconnects_mid_body_is_not_logged_as_an_error(
    ledger, database_url, redis_url, caplog
):
    server_log = logging.getLogger("uvicorn.error")  # uvicorn's own: it does not propagate
    with running_intake(ledger, database_url, redis_url, workers=False) as running:
        server_log.addHandler(caplog.handler)
        try:
            for path in ("/webhooks/shopify-us", "/api/v1/stock-changes"):
                for _ in range(5):
                    _open_body(running.url, path, 5000, b'{"kind": "rec').close()
            time.sleep(1)
            assert httpx.get(f"{running.url}/healthz").status_code == 200
        finally:
            server_log.removeHandler(caplog.handler)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


# SNS certificate fetches ----------------------------------------------------------------------


class _SlowCertificates:
    """A certificate host that takes `delay` seconds to answer anything (then 404)."""

    def __init__(self, delay: float) -> None:
        delay_of = delay

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                time.sleep(delay_of)
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> _SlowCertificates:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_slow_sns_certificate_fetches_do_not_slow_the_api(ledger, database_url, redis_url):
    with _SlowCertificates(delay=3) as certificates:
        amazon = {
            "id": "amazon-slow",
            "kind": "amazon",
            "sns_topic_arns": [TOPIC_ARN],
            "sns_origins": [f"http://{certificates.host}"],
        }
        config = Config.model_validate(
            {"channels": [*(c.model_dump() for c in channel_config().channels), amazon]}
        )
        with running_intake(ledger, database_url, redis_url, config, workers=False) as running:

            def post(n: int) -> int:
                message = {
                    **sns_notification(order_change()),
                    "SignatureVersion": "2",
                    "Signature": "AAAA",
                    "SigningCertURL": f"http://{certificates.host}/cert-{n}.pem",
                }
                return httpx.post(
                    f"{running.url}/webhooks/amazon-slow",
                    content=json.dumps(message).encode(),
                    timeout=30,
                ).status_code

            with ThreadPoolExecutor(60) as pool:
                posted = [pool.submit(post, n) for n in range(60)]
                time.sleep(1)  # every fetch under way
                timings = []
                for _ in range(5):
                    started = time.monotonic()
                    assert httpx.get(f"{running.url}/api/v1/skus?limit=1").status_code == 200
                    timings.append(time.monotonic() - started)
                statuses = {future.result() for future in posted}
    print(f"\nGET /api/v1/skus during 60 slow certificate fetches: max {max(timings):.3f} s")
    assert statuses <= {401, 503}
    assert max(timings) < 1


# /metrics -------------------------------------------------------------------------------------


def _token(name: str, value: str, *scopes: str) -> ApiToken:
    return ApiToken(name=name, sha256=hashlib.sha256(value.encode()).hexdigest(), scopes=scopes)


TOKENS = [_token("reader", "r-token", "read"), _token("ops", "a-token", "admin")]


def test_metrics_need_the_configured_scope(ledger):
    app = create_app(Api(ledger, tokens=TOKENS, limits=HttpLimits(metrics_scope="admin")))
    with TestClient(app) as client:
        anonymous = client.get("/metrics")
        reader = client.get("/metrics", headers={"Authorization": "Bearer r-token"})
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        ops = client.get("/metrics", headers={"Authorization": "Bearer a-token"})
    assert_problem(anonymous, 401)
    assert_problem(wrong, 401)
    assert_problem(reader, 403)
    assert ops.status_code == 200
    assert "invsync_webhooks_received_total" in ops.text


def test_metrics_are_public_unless_a_scope_is_configured(ledger):
    with TestClient(create_app(Api(ledger, tokens=TOKENS))) as client:
        assert client.get("/metrics").status_code == 200


def test_150_unfinished_webhook_bodies_of_nearly_1_mib_hold_no_more_than_the_body_slots(
    ledger, database_url, redis_url
):
    import psutil

    config = Config.model_validate(
        {
            "channels": [c.model_dump() for c in channel_config().channels],
            "max_webhook_bytes": 1_048_576,
        }
    )
    limits = HttpLimits(body_timeout_seconds=8)
    process = psutil.Process()
    with running_intake(
        ledger, database_url, redis_url, config, workers=False, limits=limits
    ) as running:
        before = process.memory_info().rss
        held = []
        for n in range(150):  # from 150 addresses: each may hold only a quarter of the slots
            source = f"127.0.1.{n + 1}"
            conn = _open_body(running.url, "/webhooks/shopify-us", 1_048_576, source=source)
            conn.setblocking(False)
            with contextlib.suppress(BlockingIOError):  # what the server takes of 1 MiB
                conn.send(b" " * 1_000_000)
            held.append(conn)
        time.sleep(1)
        grown = (process.memory_info().rss - before) / 2**20
        for conn in held:
            conn.close()
    print(f"\n150 unfinished webhook bodies: the process grew {grown:.0f} MiB")
    assert grown < HttpLimits().webhook_bodies + 24


# Hostile webhooks over HTTP -------------------------------------------------------------------

# HTTP strips whitespace around a header value (h11 refuses to send it): what a server can get.
_HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"),
    max_size=300,
).map(lambda value: value.strip(" \t")) | st.text(alphabet="0123456789", min_size=1, max_size=6000)
_HOSTILE_HEADERS = st.dictionaries(
    st.sampled_from(
        [
            "X-Invsync-Timestamp",
            "X-Invsync-Signature",
            "X-Invsync-Delivery-Id",
            "X-Shopify-Hmac-Sha256",
            "X-Shopify-Topic",
            "X-Shopify-Webhook-Id",
            "X-WC-Webhook-Signature",
            "X-WC-Webhook-Topic",
            "Content-Type",
        ]
    ),
    _HEADER_TEXT,
)
_HOSTILE_BODIES = st.one_of(
    st.binary(max_size=300),
    st.integers(1, 100_000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(1, 50_000).map(lambda depth: b'{"Type": "Notification", "a": ' + b"[" * depth),
)


@pytest.fixture(scope="module")
def hostile_target(ledger, database_url, redis_url):
    with running_intake(ledger, database_url, redis_url, workers=False) as running:
        yield running.url


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    channel=st.sampled_from(["shopify-us", "erp", "woo-eu"]),
    headers=_HOSTILE_HEADERS,
    body=_HOSTILE_BODIES,
)
def test_no_hostile_webhook_is_answered_with_a_server_error(hostile_target, channel, headers, body):
    raw = {name: value.encode("latin-1") for name, value in headers.items()}
    answer = httpx.post(
        f"{hostile_target}/webhooks/{channel}", content=body, headers=raw, timeout=30
    )
    assert answer.status_code in (200, 401, 413, 422), answer.text[:300]


# Slow headers ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _server(http: object) -> Iterator[tuple[str, int]]:
    import uvicorn

    from tests.integration.intake_fixtures import free_port, wait_until

    async def app(scope, receive, send):  # the smallest ASGI app: 200, empty
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", http=http)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=10)
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _closed_within(conn: socket.socket, trickle: bytes, seconds: float) -> bool:
    """Whether the server closes `conn` within `seconds` while `trickle` is sent a byte at a
    time, 0.2 s apart."""
    conn.settimeout(0.2)
    deadline = time.monotonic() + seconds
    for byte in trickle:
        if time.monotonic() > deadline:
            return False
        try:
            conn.sendall(bytes([byte]))
            if conn.recv(1024) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:
            return True
    return False


@pytest.mark.parametrize("protocol", ["httptools", "h11"])
def test_request_headers_sent_a_byte_at_a_time_are_cut_off_and_a_normal_request_is_served(
    protocol,
):
    from uvicorn.protocols.http.h11_impl import H11Protocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from interfaces.http.server import with_header_timeout

    protocol = {"httptools": HttpToolsProtocol, "h11": H11Protocol}[protocol]

    with _server(with_header_timeout(1.0, protocol)) as (host, port):
        silent = socket.create_connection((host, port))
        trickled = socket.create_connection((host, port))
        slow_headers = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 100
        cut = _closed_within(trickled, slow_headers, 4)
        silent.settimeout(3)
        silent_closed = silent.recv(1) == b""
        with httpx.Client(base_url=f"http://{host}:{port}") as client:
            first, second = client.get("/"), client.get("/")  # one kept-alive connection
        silent.close()
        trickled.close()
    assert cut
    assert silent_closed
    assert (first.status_code, second.status_code) == (200, 200)


# Log lines a client causes ---------------------------------------------------------------------


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_a_flood_of_invalid_requests_logs_one_line_with_a_count_not_one_each():
    from interfaces.http.log_limits import SERVER_LOGGER, quiet_client_caused_lines

    logger = logging.getLogger(SERVER_LOGGER)
    seen = _Lines()
    lines = quiet_client_caused_lines(every=1.5)  # before uvicorn configures its logging
    # The interval runs on a clock of the test's own: a loaded machine taking longer than 1.5 s
    # for the 40 requests must not let a second line through early.
    now = [0.0]
    lines.clock = lambda: now[0]
    try:
        with _server("httptools") as (host, port):
            logger.addHandler(seen)  # after: uvicorn's configuration removes the logger's handlers
            for _ in range(40):
                with socket.create_connection((host, port), timeout=5) as conn:
                    conn.sendall(b"NOT HTTP AT ALL\r\n\r\n")
                    assert _answer(conn).startswith(b"HTTP/1.1 400")
            now[0] = 1.6  # the interval has passed
            with socket.create_connection((host, port), timeout=5) as conn:
                conn.sendall(b"NOT HTTP AT ALL\r\n\r\n")
                _answer(conn)
            # uvicorn may log the line just after it answers: wait for it, a few seconds at most.
            deadline = time.monotonic() + 5
            while len(_invalid(seen)) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            with httpx.Client(base_url=f"http://{host}:{port}") as client:
                assert client.get("/").status_code == 200
    finally:
        logger.removeHandler(seen)
        logger.removeFilter(lines)
    invalid = _invalid(seen)
    assert invalid[0] == "Invalid HTTP request received."
    assert len(invalid) == 2, seen.messages
    assert invalid[1].startswith("Invalid HTTP request received. (39 more like it held back")


def _invalid(seen: _Lines) -> list[str]:
    return [m for m in seen.messages if m.startswith("Invalid HTTP request received.")]
