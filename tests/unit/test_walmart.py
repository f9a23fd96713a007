"""Walmart's webhook signatures (CHANNELS.md §6 vector 5) and what its order events and listed
orders teach the ledger."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infrastructure.channels.base import Accepted, Lane, SignatureInvalid, SignedRequest
from infrastructure.channels.walmart import translator
from infrastructure.channels.walmart.config import WalmartConfig
from infrastructure.channels.walmart.order_listing import polled
from infrastructure.channels.walmart.verifier import string_to_sign, verify
from tests.orders import Stock, delivery

VECTOR_BODY = b'{"eventType":"PO_CREATED"}'
VECTOR_SIGNATURE = "QuEsEwtkT2x9hKZ4xyi+jwEqLVDLImAHLJTKIni3UJQ="
VECTOR_TIME = 1700000000
NOW = datetime.fromtimestamp(VECTOR_TIME + 10, UTC)
CHANNEL = WalmartConfig(
    id="walmart-us",
    webhook_secrets=("wm_secret",),
    push={"enabled": False},
    reconcile={"enabled": False},
)


def request(body=VECTOR_BODY, signature=VECTOR_SIGNATURE, timestamp=str(VECTOR_TIME), **line):
    headers = {"wm_sec.timestamp": timestamp, "wm_sec.signature": signature}
    return SignedRequest(
        headers, body, line.get("method", "POST"), line.get("target", "/webhooks/walmart")
    )


def signed(body: bytes, target="/webhooks/walmart-us", secret="wm_secret", at=VECTOR_TIME):
    message = string_to_sign("POST", target, str(at), body)
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return request(body, base64.b64encode(digest).decode(), str(at), target=target)


# Signatures ---------------------------------------------------------------------------------


def test_the_documented_vector_verifies():
    expected = (
        "POST\n/webhooks/walmart\n1700000000\n"
        "868b52bec10567fa4f02ad716ead5414d2c42836bd90eac94f75f8c028e53af0"
    )
    assert string_to_sign("POST", "/webhooks/walmart", "1700000000", VECTOR_BODY).decode() == (
        expected
    )
    verdict = verify(CHANNEL, request(), NOW)
    assert verdict == Accepted("sha256:" + hashlib.sha256(VECTOR_BODY).hexdigest(), "PO_CREATED")


def test_any_of_the_rotated_secrets_verifies():
    channel = CHANNEL.model_copy(update={"webhook_secrets": ("new_secret", "wm_secret")})
    assert verify(channel, request(), NOW)


@pytest.mark.parametrize(
    "tampered",
    [
        {"body": b'{"eventType":"PO_CREATED "}'},
        {"target": "/webhooks/walmart?x=1"},
        {"target": "/webhooks/other"},
        {"method": "PUT"},
        {"timestamp": str(VECTOR_TIME + 1)},
        {"signature": VECTOR_SIGNATURE.replace("Q", "R", 1)},
        {"signature": "not base64!"},
        {"signature": ""},
    ],
)
def test_a_tampered_delivery_is_refused(tampered):
    with pytest.raises(SignatureInvalid):
        verify(CHANNEL, request(**tampered), NOW)


@pytest.mark.parametrize("skew", [-301, 301, 86400])
def test_a_timestamp_outside_the_replay_window_is_refused(skew):
    with pytest.raises(SignatureInvalid, match=r"WM_SEC\.TIMESTAMP is more than 300 s"):
        verify(CHANNEL, request(), datetime.fromtimestamp(VECTOR_TIME + skew, UTC))


@pytest.mark.parametrize("timestamp", ["", "soon", "1700000000.5", "9" * 13, "\u0661" * 10])
def test_a_timestamp_that_is_not_unix_seconds_is_refused(timestamp):
    with pytest.raises(SignatureInvalid, match="unix seconds"):
        verify(CHANNEL, request(timestamp=timestamp), NOW)


def test_a_delivery_is_keyed_by_its_event_id_whatever_the_signing_time():
    body = json.dumps(po_created("E-1")).encode()
    first = verify(CHANNEL, signed(body), NOW)
    again = verify(CHANNEL, signed(body, at=VECTOR_TIME + 5), NOW)
    assert first == again == Accepted("event:E-1", "PO_CREATED")


def test_an_order_update_is_named_by_its_sub_event():
    body = json.dumps(order_update("E-2", "FRAUD_CANCEL", line("1", "SKU-1", 2))).encode()
    assert verify(CHANNEL, signed(body), NOW) == Accepted("event:E-2", "FRAUD_CANCEL")
    assert translator.lane("FRAUD_CANCEL") == Lane.DECREMENTS


# Orders -------------------------------------------------------------------------------------

PO = "1796277083022"


def line(number: str, sku: str, quantity: int, status: str = "CREATED"):
    return {
        "lineNumber": number,
        "sku": sku,
        "productName": sku.title(),
        "quantity": {"unitOfMeasure": "EACH", "measurementValue": str(quantity)},
        "status": status,
    }


def po_created(event_id: str = "E-1", *lines):
    return {
        "source": {
            "eventType": "PO_CREATED",
            "eventTime": "2026-11-30T10:00:00Z",
            "eventId": event_id,
        },
        "payload": {
            "partnerId": "1000",
            "purchaseOrderId": PO,
            "customerOrderId": "200",
            "orderDate": "2026-11-30T09:59:00Z",
            "orderLines": list(lines) or [line("1", "SKU-1", 3)],
        },
    }


def order_update(event_id: str, sub_event: str, *lines, at="2026-11-30T11:00:00Z"):
    order = {"purchaseOrderId": PO, "customerOrderId": "200", "orderLines": list(lines)}
    return {
        "source": {"eventType": "ORDER_UPDATES", "eventTime": at, "eventId": event_id},
        "payload": {"subEventType": sub_event, "order": order},
    }


def listed(*lines):
    """An order as GET /v3/orders lists it: each line's units per status."""
    return {
        "purchaseOrderId": PO,
        "customerOrderId": "200",
        "orderDate": 1_796_277_000_000,
        "orderLines": {
            "orderLine": [
                {
                    "lineNumber": number,
                    "item": {"productName": sku, "sku": sku},
                    "orderLineQuantity": {
                        "unitOfMeasurement": "EACH",
                        "amount": str(sum(n for _, n in statuses)),
                    },
                    "statusDate": 1_796_277_083_000,
                    "orderLineStatuses": {
                        "orderLineStatus": [
                            {
                                "status": s,
                                "statusQuantity": {"unitOfMeasurement": "EACH", "amount": str(n)},
                            }
                            for s, n in statuses
                        ]
                    },
                }
                for number, sku, statuses in lines
            ]
        },
    }


def levels(*deliveries):
    stock = Stock()
    stock.receive("SKU-1", 10)
    stock.receive("SKU-2", 10)
    stock.apply_all(translator.translate(CHANNEL, d, None) for d in deliveries)
    return {sku: (lv.committed, lv.on_hand) for (sku, _), lv in stock.levels().items()}


def event(payload):
    body = json.dumps(payload).encode()
    return delivery(CHANNEL.id, verify(CHANNEL, signed(body), NOW).topic, body)


def poll(order):
    found = polled(order)
    return delivery(CHANNEL.id, found.topic, found.body)


def test_a_new_order_commits_its_units():
    assert levels(event(po_created()))["SKU-1"] == (3, 10)


def test_an_auto_cancelled_line_releases_its_units_and_leaves_the_others():
    cancel = order_update("E-3", "PO_LINE_AUTOCANCELLED", line("2", "SKU-2", 1, "CANCELLED"))
    created = po_created("E-1", line("1", "SKU-1", 3), line("2", "SKU-2", 1))
    assert levels(event(created), event(cancel)) == {"SKU-1": (3, 10), "SKU-2": (0, 10)}


def test_a_fraud_cancel_releases_the_lines_it_names():
    cancel = order_update("E-4", "FRAUD_CANCEL", line("1", "SKU-1", 3))
    assert levels(event(cancel), event(po_created()))["SKU-1"] == (0, 10)


def test_an_intent_to_cancel_keeps_the_units_committed_until_walmart_cancels_them():
    intent = order_update("E-5", "INTENT_TO_CANCEL", line("1", "SKU-1", 3))
    assert levels(event(po_created()), event(intent))["SKU-1"] == (3, 10)
    cancelled = listed(("1", "SKU-1", [("Cancelled", 3)]))
    assert levels(event(po_created()), event(intent), poll(cancelled))["SKU-1"] == (0, 10)


def test_a_listed_order_ships_and_cancels_part_of_a_line():
    order = listed(("1", "SKU-1", [("Shipped", 1), ("Cancelled", 1), ("Acknowledged", 1)]))
    assert levels(event(po_created()), poll(order))["SKU-1"] == (1, 9)


def test_an_order_event_without_its_lines_is_parked():
    broken = po_created()
    del broken["payload"]["orderLines"]
    body = json.dumps(broken).encode()
    assert translator.translate(CHANNEL, delivery(CHANNEL.id, "PO_CREATED", body), None).parked


@given(
    st.lists(
        st.sampled_from(["created", "update", "intent", "poll", "poll_acknowledged"]),
        min_size=1,
        max_size=8,
    )
)
def test_an_order_seen_by_events_and_polls_in_any_order_any_number_of_times_counts_once(routes):
    seen = {
        "created": event(po_created()),
        "update": event(order_update("E-6", "PO_CREATED", line("1", "SKU-1", 3))),
        "intent": event(order_update("E-7", "INTENT_TO_CANCEL", line("1", "SKU-1", 3))),
        "poll": poll(listed(("1", "SKU-1", [("Created", 3)]))),
        "poll_acknowledged": poll(listed(("1", "SKU-1", [("Acknowledged", 3)]))),
    }
    assert levels(*(seen[route] for route in routes)) == levels(seen["created"])


@given(st.permutations(["created", "autocancel", "poll_cancelled", "intent", "created"]))
def test_a_cancellation_converges_whichever_way_and_order_it_comes(routes):
    seen = {
        "created": event(po_created()),
        "autocancel": event(order_update("E-8", "PO_LINE_AUTOCANCELLED", line("1", "SKU-1", 3))),
        "poll_cancelled": poll(listed(("1", "SKU-1", [("Cancelled", 3)]))),
        "intent": event(order_update("E-9", "INTENT_TO_CANCEL", line("1", "SKU-1", 3))),
    }
    assert levels(*(seen[route] for route in routes))["SKU-1"] == (0, 10)


@given(
    st.one_of(
        st.binary(max_size=300),
        st.integers(1, 100_000).map(lambda depth: b"[" * depth + b"]" * depth),
        st.dictionaries(st.sampled_from(["source", "payload", "eventType"]), st.integers()).map(
            lambda value: json.dumps(value).encode()
        ),
    )
)
def test_a_signed_delivery_is_accepted_whatever_its_body_and_keyed_by_its_bytes(body):
    verdict = verify(CHANNEL, signed(body), NOW)
    assert verdict == Accepted(f"sha256:{hashlib.sha256(body).hexdigest()}", verdict.topic)


def test_a_listed_order_needs_no_order_date_when_its_lines_are_dated():
    order = listed(("1", "SKU-1", [("Created", 2)]))
    del order["orderDate"]
    assert levels(poll(order))["SKU-1"] == (2, 10)
