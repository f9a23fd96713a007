"""The propagation benchmark's five sandbox stores, hosted in a process of their own.

In the measuring process the stores' servers, their webhook senders and the watchers shared one
GIL with the load generator, so the benchmark's own work showed up as invsync's latency. Here
they run in a spawned process (pinned to cores of their own if asked), and the benchmark drives
them through a window of its own: a small HTTP app beside the stores, never one of their APIs,
so nothing it does appears in a store's call log.

The window's routes: `POST /probes` (a shopper buys a probe SKU on a store, and the watchers
time until every other store shows the sale), `GET /probes` (the probes done, those missed, how
many are open) and `GET /calls/{store}` (the store's call log, to count calls and check rates
from the channel's side).
"""

from __future__ import annotations

import bisect
import multiprocessing
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandboxes.amazon.seller import AmazonSandbox
from sandboxes.ebay.seller import EbaySandbox
from sandboxes.server import CallLog, SandboxServer
from sandboxes.shopify.store import ShopifySandbox
from sandboxes.walmart.seller import WalmartSandbox
from sandboxes.webhooks import Attempt
from sandboxes.woocommerce.store import WooCommerceSandbox

BACKGROUND = [f"PROP-{n:04d}" for n in range(200)]
HOT = [f"HOTP-{n:02d}" for n in range(10)]
COLD = [f"COLD-{n:03d}" for n in range(80)]
RISK = [f"RISK-{n:03d}" for n in range(120)]
SKUS = [*BACKGROUND, *HOT, *COLD, *RISK, "HOT-1"]
PLENTY, BUFFER = 100_000, 1
TIMEOUT = 30.0  # a probe not seen by then counts as this long
SECRET = "bench_webhook_secret"


def opening(sku: str) -> int:
    """A SKU's opening stock: at-risk SKUs 2 or 3 units, every other plenty."""
    return 2 + int(sku[-1]) % 2 if sku in RISK else PLENTY


@dataclass(frozen=True)
class StoreInfo:
    """What the measuring process knows of a store: its table in invsync's configuration, the
    call-log operations that set stock, whether shoppers buy there (it sends webhooks), and
    whether its figures are shown apart (Amazon: its documented limits cannot meet the
    targets)."""

    id: str
    settings: dict[str, Any]
    writes: tuple[str | None, ...]
    sells: bool = False
    apart: bool = False


@dataclass
class Store:
    """A store in the hosting process."""

    info: StoreInfo
    stock: Callable[[str], int | None]
    log: CallLog
    buy: Callable[[str], object] | None = None
    attempts: Callable[[], list[Attempt]] | None = None  # its webhooks' deliveries, if it sells


@dataclass
class Probe:
    cls: str
    sku: str
    seller: str
    shows: int  # what every other store shows once the sale has reached it
    started: float
    waiting: dict[str, Callable[[str], int | None]]
    seen: dict[str, float] = field(default_factory=dict)
    bought_at: float = field(default_factory=time.time)  # the purchase, by the wall clock


@contextmanager
def stores(port: int) -> Iterator[list[Store]]:
    """The five stores, serving; their webhooks go to invsync on `port`."""
    hooks = f"http://127.0.0.1:{port}/webhooks"
    with ExitStack() as stack:
        shopify = ShopifySandbox("shpat_bench", SECRET, webhook_url=f"{hooks}/shopify")
        woo = WooCommerceSandbox("ck_bench", "cs_bench", site_url="http://woo.bench/")
        woo.webhooks.add("order.created", f"{hooks}/woo", SECRET)
        ebay, walmart, amazon = EbaySandbox(), WalmartSandbox(), AmazonSandbox()
        for sandbox in (shopify, woo, ebay, walmart, amazon):
            stack.callback(sandbox.close)
        for sku in SKUS:
            ats = opening(sku) - BUFFER
            shopify.set_stock(sku, ats)
            woo.add_product(sku, ats)
            ebay.add_item(sku, ats)
            walmart.add_item(sku, ats)
            amazon.add_listing(sku, ats)
        urls = [stack.enter_context(SandboxServer(s.app)).url for s in (shopify, woo, ebay)]
        walmart_url = stack.enter_context(walmart.server()).url
        amazon_url = stack.enter_context(amazon.server()).url
        shopify_settings = {
            "kind": "shopify",
            "api_base_url": urls[0],
            "access_token": "shpat_bench",
            "location_id": shopify.location_id,
            "locations": {str(shopify.location_id): "main"},
        }
        woo_settings = {
            "kind": "woocommerce",
            "api_base_url": urls[1],
            "consumer_key": "ck_bench",
            "consumer_secret": "cs_bench",
        }
        ebay_settings = {
            "kind": "ebay",
            "api_base_url": urls[2],
            "client_id": ebay.client_id,
            "client_secret": ebay.client_secret,
            "refresh_token": ebay.refresh_token,
        }
        yield [
            Store(
                StoreInfo("shopify", shopify_settings, (None,), sells=True),
                shopify.stock,
                shopify.calls,
                shopify.buy,
                lambda: list(shopify.webhooks.attempts),
            ),
            Store(
                StoreInfo("woo", woo_settings, ("products.batch", "products.update"), sells=True),
                woo.stock,
                woo.log,
                woo.buy,
                woo.webhooks.attempts,
            ),
            Store(
                StoreInfo("ebay", ebay_settings, ("inventory.bulk_update",)), ebay.stock, ebay.log
            ),
            Store(
                StoreInfo(
                    "walmart",
                    {**walmart.channel_settings(walmart_url), "feed_poll_seconds": 1},
                    ("inventory.put", "feeds.post"),
                ),
                walmart.stock,
                walmart.log,
            ),
            Store(
                StoreInfo(
                    "amazon",
                    {**amazon.channel_settings(amazon_url), "feed_poll_seconds": 1},
                    ("patchListingsItem", "createFeed"),
                    apart=True,
                ),
                amazon.stock,
                amazon.log,
            ),
        ]


class Watcher:
    """Reads every open probe's SKU from the stores it waits for, every couple of ms: a thread
    per store, so a store whose reads wait (its lock held while it sends a webhook) delays only
    its own figures, not every other store's behind it."""

    def __init__(self, stores: list[str]) -> None:
        self.open: list[Probe] = []
        self.done: list[Probe] = []
        # (class, SKU, store, what it showed at the timeout, what it should show)
        self.missed: list[tuple[str, str, str, int | None, int]] = []
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(store,), daemon=True) for store in stores
        ]
        for thread in self._threads:
            thread.start()

    def add(self, probe: Probe) -> None:
        with self._lock:
            self.open.append(probe)

    def _run(self, store: str) -> None:
        while not self._stop.is_set():
            with self._lock:
                probes = [(p, p.waiting[store]) for p in self.open if store in p.waiting]
            for probe, stock in probes:
                self._saw(probe, store, stock(probe.sku))
            time.sleep(0.002)

    def _saw(self, probe: Probe, store: str, shows: int | None) -> None:
        """`store` showed `shows` of the probe's SKU just now."""
        elapsed = time.monotonic() - probe.started
        with self._lock:
            if shows is not None and shows <= probe.shows:
                probe.seen[store] = elapsed
            elif elapsed > TIMEOUT:
                probe.seen[store] = TIMEOUT
                self.missed.append((probe.cls, probe.sku, store, shows, probe.shows))
            else:
                return
            del probe.waiting[store]
            if not probe.waiting:
                self.open.remove(probe)
                self.done.append(probe)

    def report(self, posts: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
        """The probes done, each with `posted`: seconds from its purchase to the first post of
        its webhook (`posts`: by seller, by SKU), None if none was posted."""
        with self._lock:
            done = [
                {
                    "cls": p.cls,
                    "sku": p.sku,
                    "seen": p.seen,
                    "bought_at": p.bought_at,
                    "posted": posted_after(posts[p.seller].get(p.sku, []), p.started),
                }
                for p in self.done
            ]
            return {"open": len(self.open), "done": done, "missed": list(self.missed)}

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)


SKU_FIELD = re.compile(rb'"sku":\s*"([^"]+)"')


def posts_by_sku(attempts: list[Attempt]) -> dict[str, list[float]]:
    """When each SKU's webhooks (an order's line items naming it) were posted, in order."""
    posts: dict[str, list[float]] = {}
    for attempt in attempts:
        for sku in {m.decode() for m in SKU_FIELD.findall(attempt.body)}:
            posts.setdefault(sku, []).append(attempt.posted)
    return {sku: sorted(times) for sku, times in posts.items()}


def posted_after(times: list[float], bought: float) -> float | None:
    """Seconds from `bought` to the first of `times` at or after it; None if there is none."""
    n = bisect.bisect_left(times, bought)
    return times[n] - bought if n < len(times) else None


def window(channels: list[Store], watcher: Watcher) -> Starlette:
    """The benchmark's window into the stores (see the module's docstring)."""
    by_id = {c.info.id: c for c in channels}

    def buy(request: Request, body: dict[str, Any]) -> Response:
        seller = by_id[body["store"]]
        others = {c.info.id: c.stock for c in channels if c is not seller}
        probe = Probe(
            body["cls"], body["sku"], body["store"], int(body["shows"]), time.monotonic(), others
        )
        assert seller.buy is not None
        seller.buy(probe.sku)
        watcher.add(probe)
        return Response(status_code=204)

    async def probes(request: Request) -> Response:
        if request.method == "POST":
            # A purchase takes the store's lock and sends its webhook: off the event loop.
            body = await request.json()
            return await run_in_threadpool(buy, request, body)
        posts = {c.info.id: posts_by_sku(c.attempts()) for c in channels if c.attempts}
        return JSONResponse(watcher.report(posts))

    async def calls(request: Request) -> Response:
        return JSONResponse(by_id[request.path_params["store"]].log.entries())

    return Starlette(
        routes=[
            Route("/probes", probes, methods=["GET", "POST"]),
            Route("/calls/{store}", calls, methods=["GET"]),
        ]
    )


def host(conn: Connection, port: int, cpus: list[int] | None) -> None:
    """The hosting process: serve the stores and the window until told to stop."""
    if cpus:
        os.sched_setaffinity(0, cpus)
    with stores(port) as channels:
        watcher = Watcher([c.info.id for c in channels])
        with SandboxServer(window(channels, watcher)) as server:
            infos = [asdict(c.info) for c in channels]
            conn.send({"url": server.url, "stores": infos, "pid": os.getpid()})
            conn.recv()  # told to stop, or the benchmark ended (EOFError)
        watcher.stop()


class Hosted:
    """The stores as the measuring process drives them, through the window."""

    def __init__(self, url: str, infos: list[dict[str, Any]], pid: int) -> None:
        self.pid = pid  # the hosting process
        self.stores = [
            StoreInfo(i["id"], i["settings"], tuple(i["writes"]), i["sells"], i["apart"])
            for i in infos
        ]
        self._client = httpx.Client(base_url=url, timeout=30)
        self._lock = threading.Lock()  # one connection, kept alive, for the shoppers and drain

    def buy(self, store: str, cls: str, sku: str, shows: int) -> None:
        """A shopper buys `sku` on `store`; the probe closes once every other store shows
        `shows` or fewer."""
        body = {"store": store, "cls": cls, "sku": sku, "shows": shows}
        with self._lock:
            self._client.post("/probes", json=body).raise_for_status()

    def probes(self) -> dict[str, Any]:
        with self._lock:
            answer = self._client.get("/probes")
        answer.raise_for_status()
        return dict(answer.json())

    def drain(self, timeout: float) -> None:
        """Wait until no probe is open (at most `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while self.probes()["open"] and time.monotonic() < deadline:
            time.sleep(0.05)

    def log(self, store: str) -> CallLog:
        """The store's call log as it is now."""
        with self._lock:
            answer = self._client.get(f"/calls/{store}")
        answer.raise_for_status()
        return CallLog([(float(t), str(op), int(status)) for t, op, status in answer.json()])

    def close(self) -> None:
        self._client.close()


@contextmanager
def hosted(port: int, cpus: list[int] | None = None) -> Iterator[Hosted]:
    """The stores in a spawned process (on `cpus`, if given), their webhooks to invsync on
    `port`; stopped at the end."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=host, args=(theirs, port, cpus), name="sandboxes")
    process.start()
    try:
        if not ours.poll(120):
            raise RuntimeError("the sandboxes' process did not start within 120 s")
        started = ours.recv()
        window = Hosted(started["url"], started["stores"], started["pid"])
        try:
            yield window
        finally:
            window.close()
    finally:
        with suppress(OSError):  # it ended already
            ours.send("stop")
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
            process.join()
