"""The console in a real browser: Debian's chromium, headless, driven by Playwright (never its
own downloaded browsers), against `invsync run` serving on a free port over the tests' real
PostgreSQL and Redis.

Fixtures to reuse for a console page's test:
- `console_server`: an `invsync run` with tokens (`ADMIN`, `READER`, `WRITER` below), two HTTP
  worker processes (a session must hold in both); `open_server`: one with no tokens, one worker.
- `page`: a fresh browser context's page; `logged_in`: the same, logged in as admin.
- `record(server, change)`: a stock change through the JSON API, as a client makes it.
- `screenshot(page, name)`: keeps the page as a test artefact (`tests/browser/artefacts/`), and
  refreshes `docs/console/<name>.png` when INVSYNC_SCREENSHOTS=docs (`make screenshots`).

Without chromium the tests skip locally, and fail with CI set."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.intake_fixtures import free_port, wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN, READER, WRITER = "admin-token-0123456789", "read-token-0123456789", "write-token-012345"
TOKENS = {"admin": (ADMIN, "admin"), "reader": (READER, "read"), "writer": (WRITER, "write")}
ARTEFACTS = Path(__file__).parent / "artefacts"
DOCS = Path(__file__).parents[2] / "docs" / "console"


@dataclass(frozen=True)
class Server:
    """A running `invsync run`: where it serves, and its environment (to start a twin)."""

    url: str
    env: Mapping[str, str]


# A module's, not the session's: Playwright's sync API keeps an asyncio loop running in the main
# thread while it is open, and every later test calling asyncio.run (tests/unit, collected after
# tests/browser) would fail with "cannot be called from a running event loop".
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {CHROMIUM} is missing: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def server_env(
    database_url: str,
    redis_url: str,
    folder: Path,
    tokens: Mapping[str, tuple[str, str]],
    workers: int = 1,
) -> dict[str, str]:
    """The environment of an `invsync run` with `tokens` (name: (value, scope)) and the
    `CHANNELS`, on its own queue namespace."""
    config = folder / f"invsync-{uuid.uuid4().hex[:6]}.toml"
    config.write_text(_config(tokens))
    return {
        **os.environ,
        "INVSYNC_DATABASE_URL": database_url,
        "INVSYNC_REDIS_URL": redis_url,
        "INVSYNC_CONFIG": str(config),
        "INVSYNC_HTTP_PORT": str(free_port()),
        "INVSYNC_HTTP_WORKERS": str(workers),
        "INVSYNC_DEMO": "0",
        "INVSYNC_DB_POOL_MAX": "4",  # each pool: three servers share a PostgreSQL
        "INVSYNC_QUEUE_NAMESPACE": f"console-{uuid.uuid4().hex[:8]}",
    }


# "shop" takes webhooks only; "store" is pushed to, at an address nothing answers: the server
# runs no workers, so its pushes wait in the outbox for the overview to show.
CHANNELS = (
    '[[channels]]\nid = "shop"\nkind = "shopify"\nwebhook_secrets = ["s"]\n'
    '[[channels]]\nid = "store"\nkind = "shopify"\nwebhook_secrets = ["s"]\n'
    'api_base_url = "http://127.0.0.1:9"\naccess_token = "t"\nlocation_id = "1"\n'
)


def _config(tokens: Mapping[str, tuple[str, str]]) -> str:
    return CHANNELS + "".join(
        f'[[api_tokens]]\nname = "{name}"\n'
        f'sha256 = "{hashlib.sha256(value.encode()).hexdigest()}"\nscopes = ["{scope}"]\n'
        for name, (value, scope) in tokens.items()
    )


@pytest.fixture(scope="module")
def serve() -> Iterator[Callable[[Mapping[str, str]], Server]]:
    """Starts `invsync run --no-workers` with an environment; stops every one at the module's
    end: a server left running would fold the ledger's events, which every later test shares,
    into its own channels' projection before the tests' own runners could."""
    started: list[subprocess.Popen[bytes]] = []

    def start(env: Mapping[str, str]) -> Server:
        log = Path(env["INVSYNC_CONFIG"]).with_suffix(".log")
        with log.open("wb") as output:
            process = subprocess.Popen(
                [str(Path(sys.executable).with_name("invsync")), "run", "--no-workers"],
                env=dict(env),
                stdout=subprocess.DEVNULL,
                stderr=output,
            )
        started.append(process)
        url = f"http://127.0.0.1:{env['INVSYNC_HTTP_PORT']}"
        wait_until(lambda: _answers(url, process, log), timeout=90, every=0.3)
        return Server(url, env)

    yield start
    for process in started:
        process.terminate()
    for process in started:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(url: str, process: subprocess.Popen[bytes], log: Path) -> bool:
    if process.poll() is not None:
        said = log.read_text(errors="replace")[-2000:]
        raise AssertionError(f"invsync run exited with {process.returncode}:\n{said}")
    try:
        return httpx.get(url + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def console_server(database_url, redis_url, tmp_path_factory, serve) -> Server:
    # Two worker processes: a session opened in one must hold in the other. The other servers
    # run one, as their connections come from the PostgreSQL every test run shares.
    folder = tmp_path_factory.mktemp("console")
    return serve(server_env(database_url, redis_url, folder, TOKENS, workers=2))


@pytest.fixture(scope="module")
def open_server(database_url, redis_url, tmp_path_factory, serve) -> Server:
    return serve(server_env(database_url, redis_url, tmp_path_factory.mktemp("open"), {}))


@pytest.fixture
def page(browser) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def log_in(page: Any, server: Server, token: str) -> None:
    page.goto(server.url + "/console/login")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")


@pytest.fixture
def logged_in(page, console_server) -> Any:
    log_in(page, console_server, ADMIN)
    page.wait_for_url(console_server.url + "/console/")
    return page


def record(server: Server, change: Mapping[str, Any], token: str = ADMIN) -> dict[str, Any]:
    """A stock change through `POST /api/v1/stock-changes`, folded before it answers."""
    answer = httpx.post(
        server.url + "/api/v1/stock-changes?wait=true",
        json=dict(change),
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def screenshot(page: Any, name: str) -> None:
    ARTEFACTS.mkdir(exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("INVSYNC_SCREENSHOTS") == "docs":
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS / path.name)
