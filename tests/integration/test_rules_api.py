"""Allocation rules changed at run time, recorded as events with who and why."""

import hashlib
import uuid

import pytest
from starlette.testclient import TestClient

from domain.allocation import ChannelRule
from domain.rules import ChannelRules, channel_rules_id
from domain.stock import ChangeKind
from infrastructure.config import ApiToken
from interfaces.http.api import Api
from interfaces.http.app import create_app
from tests.helpers import change, random_sku


@pytest.fixture
def channel_id():
    return f"shop-{uuid.uuid4().hex[:8]}"


def app(ledger, channel_id, tokens=()):
    defaults = [ChannelRule(channel_id, share_percent=50)]
    return TestClient(create_app(Api(ledger, rules=defaults, tokens=tokens)))


def test_rules_start_from_the_configuration_and_change_at_run_time(ledger, channel_id):
    sku = random_sku()
    ledger.record(change(ChangeKind.RECEIPT, sku, 100))
    with app(ledger, channel_id) as client:
        before = client.get(f"/api/v1/channels/{channel_id}/rules").json()
        assert before["rules"]["share_percent"] == 50
        assert before["last_change"] is None
        assert client.get(f"/api/v1/skus/{sku}").json()["channels"][channel_id] == {
            "available_to_sell": 50
        }

        changed = client.put(
            f"/api/v1/channels/{channel_id}/rules?reason=peak season",
            json={"share_percent": 80, "safety_buffer": 5},
        )
        assert changed.status_code == 200
        assert changed.json()["rules"]["share_percent"] == 80
        assert changed.json()["last_change"] is not None
        assert client.get(f"/api/v1/skus/{sku}").json()["channels"][channel_id] == {
            "available_to_sell": 75
        }

    [_, recorded] = list(ledger.events.get(channel_rules_id(channel_id)))
    assert isinstance(recorded, ChannelRules.Changed)
    assert recorded.reason == "peak season"
    assert recorded.rules["safety_buffer"] == 5


def test_a_change_names_the_token_that_made_it(ledger, channel_id):
    token = ApiToken(
        name="merchandiser", sha256=hashlib.sha256(b"t").hexdigest(), scopes=("read", "write")
    )
    with app(ledger, channel_id, [token]) as client:
        answer = client.put(
            f"/api/v1/channels/{channel_id}/rules",
            json={"stop_at": 2},
            headers={"Authorization": "Bearer t"},
        )
        assert answer.status_code == 200
    [_, recorded] = list(ledger.events.get(channel_rules_id(channel_id)))
    assert recorded.changed_by == "merchandiser"


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"share_percent": 140}, "share_percent"),
        ({"shares": 10}, "shares"),
        ({"safety_buffer": "lots"}, "safety_buffer"),
    ],
)
def test_invalid_rules_are_422_and_change_nothing(ledger, channel_id, body, complaint):
    with app(ledger, channel_id) as client:
        answer = client.put(f"/api/v1/channels/{channel_id}/rules", json=body)
        assert answer.status_code == 422
        assert complaint in answer.json()["detail"]
        assert client.get(f"/api/v1/channels/{channel_id}/rules").json()["last_change"] is None


def test_an_unknown_channel_is_404(ledger, channel_id):
    with app(ledger, channel_id) as client:
        assert client.get("/api/v1/channels/nobody/rules").status_code == 404
        assert client.put("/api/v1/channels/nobody/rules", json={}).status_code == 404


def test_a_sku_override_changes_only_that_sku_and_is_removed_by_delete(ledger, channel_id):
    scarce, plenty = random_sku(), random_sku()
    ledger.record_batch(
        [change(ChangeKind.RECEIPT, scarce, 100), change(ChangeKind.RECEIPT, plenty, 100)]
    )
    path = f"/api/v1/channels/{channel_id}/rules/skus/{scarce}"
    with app(ledger, channel_id) as client:
        assert client.get(path).json()["override"] == {}
        answer = client.put(f"{path}?reason=bulky", json={"safety_buffer": 20, "max_quantity": 25})
        assert answer.status_code == 200
        assert answer.json()["override"] == {"safety_buffer": 20, "max_quantity": 25}
        assert answer.json()["rules"]["share_percent"] == 50  # the channel's own, kept
        ats = client.get(f"/api/v1/skus/{scarce}").json()["channels"][channel_id]
        assert ats == {"available_to_sell": 25}  # 50 - 20 = 30, capped at 25
        other = client.get(f"/api/v1/skus/{plenty}").json()["channels"][channel_id]
        assert other == {"available_to_sell": 50}
        assert client.delete(path).json()["override"] == {}
        ats = client.get(f"/api/v1/skus/{scarce}").json()["channels"][channel_id]
        assert ats == {"available_to_sell": 50}
    recorded = list(ledger.events.get(channel_rules_id(channel_id)))[1:]
    assert [(type(e).__name__, e.sku, e.reason) for e in recorded] == [
        ("SkuOverridden", scarce, "bulky"),
        ("SkuOverridden", scarce, ""),
    ]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"share_percent": 140}, "share_percent"),
        ({"colour": "red"}, "colour"),
        ({}, "at least one key"),
        ({"safety_buffer": -1}, "safety_buffer"),
    ],
)
def test_a_bad_sku_override_is_a_422_and_records_nothing(ledger, channel_id, body, why):
    sku = random_sku()
    with app(ledger, channel_id) as client:
        answer = client.put(f"/api/v1/channels/{channel_id}/rules/skus/{sku}", json=body)
        assert answer.status_code == 422
        assert why in answer.json()["detail"]
        unknown = client.put(f"/api/v1/channels/nope/rules/skus/{sku}", json={"stop_at": 1})
        assert unknown.status_code == 404
    assert list(ledger.events.get(channel_rules_id(channel_id))) == []


@pytest.mark.parametrize(
    "body",
    [{"locations": ["main\u0000"]}, {"max_quantity": 10**30}, {"locations": [""]}],
)
def test_rules_that_could_not_be_stored_are_a_422(ledger, channel_id, body):
    with app(ledger, channel_id) as client:
        assert client.put(f"/api/v1/channels/{channel_id}/rules", json=body).status_code == 422
    assert list(ledger.events.get(channel_rules_id(channel_id))) == []


@pytest.mark.parametrize(
    ("how", "complaint"),
    [
        pytest.param(
            ("put", "", {"locations": ["L" * 4000]}),
            "locations.0: String should have at most 255 characters",
            id="channel-location",
        ),
        pytest.param(
            ("put", "", {"locations": [f"l{n}" for n in range(101)]}),
            "locations: Tuple should have at most 100 items",
            id="channel-locations",
        ),
        pytest.param(
            ("put", "/skus/{sku}", {"locations": ["east", "L" * 256]}),
            "locations.1: String should have at most 255 characters",
            id="override-location",
        ),
        pytest.param(
            ("put", "/skus/" + "S" * 256, {"stop_at": 1}),
            "sku is 256 characters long; at most 255",
            id="override-sku",
        ),
        pytest.param(
            ("delete", "/skus/" + "S" * 256, None),
            "sku is 256 characters long; at most 255",
            id="delete-sku",
        ),
        pytest.param(
            ("put", "?reason=" + "r" * 513, {"stop_at": 1}),
            "reason is 513 characters long; at most 512",
            id="channel-reason",
        ),
        pytest.param(
            ("put", "/skus/{sku}?reason=" + "r" * 513, {"stop_at": 1}),
            "reason is 513 characters long; at most 512",
            id="override-reason",
        ),
        pytest.param(
            ("put", "/skus/{sku}?reason=a%0Ab", {"stop_at": 1}),
            "holds a control character",
            id="reason-control",
        ),
    ],
)
def test_an_identifier_beyond_its_limit_is_a_422_naming_it_and_records_nothing(
    ledger, channel_id, how, complaint
):
    # Found: a 4,000-character location was accepted and stopped the projection for every SKU.
    method, tail, body = how
    path = f"/api/v1/channels/{channel_id}/rules{tail.format(sku=random_sku())}"
    with app(ledger, channel_id) as client:
        answer = client.request(method.upper(), path, json=body)
    assert answer.status_code == 422, answer.text
    assert complaint in answer.json()["detail"]
    assert list(ledger.events.get(channel_rules_id(channel_id))) == []


def test_reading_the_override_of_an_overlong_sku_is_a_422(ledger, channel_id):
    with app(ledger, channel_id) as client:
        answer = client.get(f"/api/v1/channels/{channel_id}/rules/skus/{'S' * 256}")
    assert answer.status_code == 422
    assert "at most 255" in answer.json()["detail"]
