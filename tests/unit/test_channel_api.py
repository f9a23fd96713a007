"""How invsync calls a channel's API: which channels have a gateway, and the one mapping of what
an API answers as a whole to the errors the pushers act on."""

import httpx
import pytest

from infrastructure.channels.gateway import (
    UNGATED,
    ChannelAuthFailed,
    ChannelUnavailable,
    Throttled,
)
from infrastructure.channels.http import exchange
from infrastructure.channels.kinds import KINDS, api_for, gateway_for
from infrastructure.config import Config, ConfigError


def client(status: int = 200, *, fails: Exception | None = None) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        if fails is not None:
            raise fails
        return httpx.Response(status, json={}, headers={"Retry-After": "7"})

    return httpx.Client(base_url="https://api.test", transport=httpx.MockTransport(answer))


def call(status: int = 200, *, fails: Exception | None = None, refused: bool = True):
    with client(status, fails=fails) as http:
        return exchange(
            http,
            "Shop",
            "GET",
            "/items",
            retry_after=lambda response: float(response.headers["Retry-After"]),
            credentials_refused=(lambda r: f"key refused ({r.status_code})") if refused else None,
        )


@pytest.mark.parametrize("status", [200, 201, 400, 404, 409, 422])
def test_answers_that_speak_of_the_request_are_the_callers_to_read(status):
    assert call(status).status_code == status


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_says_the_channel_is_unavailable(status):
    with pytest.raises(ChannelUnavailable, match=f"Shop answered {status} to GET /items"):
        call(status)


def test_a_429_says_how_long_to_wait_as_the_channel_names_it():
    with pytest.raises(Throttled) as throttled:
        call(429)
    assert throttled.value.retry_after == 7.0


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_need_a_person_unless_the_caller_reads_them_itself(status):
    with pytest.raises(ChannelAuthFailed, match=f"key refused \\({status}\\)"):
        call(status)
    assert call(status, refused=False).status_code == status  # an expired token to replace


def test_a_timeout_or_a_network_failure_says_the_channel_is_unavailable():
    with pytest.raises(ChannelUnavailable, match="did not answer GET /items in time"):
        call(fails=httpx.ReadTimeout("slow"))
    with pytest.raises(ChannelUnavailable, match="cannot be reached"):
        call(fails=httpx.ConnectError("refused"))


def channel(table: dict):
    return Config.model_validate({"channels": [{"id": "c", "webhook_secrets": ["s"], **table}]})


def test_only_a_channel_with_an_api_and_pushing_on_has_a_push_gateway():
    internal = channel({"kind": "internal", "api_base_url": "https://erp.test"}).channels[0]
    assert KINDS["internal"].gateway is None
    assert (api_for(internal, UNGATED), gateway_for(internal, UNGATED)) == (None, None)
    silent = {
        "kind": "woocommerce",
        "api_base_url": "https://shop.test",
        "push": {"enabled": False},
    }
    quiet = channel({**silent, "consumer_key": "ck", "consumer_secret": "cs"}).channels[0]
    assert gateway_for(quiet, UNGATED) is None
    reader = api_for(quiet, UNGATED)
    assert reader is not None
    reader.close()


def test_reading_a_channel_without_its_credentials_names_the_key():
    table = {"kind": "woocommerce", "api_base_url": "https://shop.test", "push": {"enabled": False}}
    needs = r"channels\.c: reading a woocommerce channel needs consumer_key"
    with pytest.raises(ConfigError, match=needs):
        api_for(channel(table).channels[0], UNGATED)
