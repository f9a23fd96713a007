"""What the eBay tests share: a sandbox seller account served over HTTP on a port of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandboxes.ebay.seller import EbaySandbox
from sandboxes.server import SandboxServer


@pytest.fixture
def account() -> Iterator[tuple[EbaySandbox, str]]:
    """A sandbox eBay seller and the base URL its API answers on, closed after the test."""
    seller = EbaySandbox()
    with SandboxServer(seller.app) as server:
        yield seller, server.url
    seller.close()
