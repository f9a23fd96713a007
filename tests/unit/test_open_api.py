"""`invsync run` refuses to serve an API nobody has to authenticate to beyond loopback."""

from __future__ import annotations

import pytest

from infrastructure.config import ApiToken
from interfaces.cli.serve import open_api_refusal

TOKEN = ApiToken(name="ops", sha256="0" * 64)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_an_api_without_tokens_may_listen_on_loopback(host):
    assert open_api_refusal([], host) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5"])
def test_an_api_without_tokens_beyond_loopback_is_refused_naming_the_host_and_the_fix(host):
    refusal = open_api_refusal([], host)
    assert refusal is not None
    assert f"open on {host}" in refusal
    assert "add tokens or listen on 127.0.0.1" in refusal


def test_an_api_with_a_token_may_listen_anywhere():
    assert open_api_refusal([TOKEN], "0.0.0.0") is None
