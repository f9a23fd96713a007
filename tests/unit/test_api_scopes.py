"""Which scope each request needs: a pure look-up of the method and path."""

from __future__ import annotations

import pytest

from interfaces.http.auth import required_scope


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("POST", "/api/v1/channels/shop/reconcile", "admin"),
        ("GET", "/api/v1/channels/shop/reconcile", "read"),
        ("PUT", "/api/v1/channels/shop/rules", "write"),
        ("GET", "/api/v1/dead-letters", "admin"),
        ("POST", "/webhooks/shop", None),
    ],
)
def test_starting_a_reconciliation_is_an_operators_and_following_one_a_readers(method, path, scope):
    assert required_scope(method, path) == scope
