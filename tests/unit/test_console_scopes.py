"""Which configured token a console session names, and what its scopes let it do: the same
rule as the JSON API's (admin holds every scope)."""

from __future__ import annotations

import hashlib

import pytest

from infrastructure.config import ApiToken
from interfaces.http.console.auth import may, token_of


def _token(name: str, *scopes: str) -> ApiToken:
    digest = hashlib.sha256(name.encode()).hexdigest()
    return ApiToken(name=name, sha256=digest, scopes=scopes)  # type: ignore[arg-type]


READER, ADMIN = _token("reader", "read"), _token("admin", "admin")


def test_a_session_names_a_token_by_its_digest_and_a_removed_one_is_found_no_more():
    assert token_of([READER, ADMIN], ADMIN.sha256) == ADMIN
    assert token_of([READER], ADMIN.sha256) is None
    assert token_of([READER, ADMIN], None) is None


@pytest.mark.parametrize(
    ("token", "scope", "allowed"),
    [
        (READER, "read", True),
        (READER, "write", False),
        (READER, "admin", False),
        (ADMIN, "write", True),
        (_token("writer", "write"), "read", False),
        (None, "admin", True),  # the open console: no tokens configured
        (READER, None, True),  # any logged-in session (logging out)
    ],
)
def test_a_token_may_what_its_scopes_name_and_admin_may_everything(token, scope, allowed):
    assert may(token, scope) is allowed
