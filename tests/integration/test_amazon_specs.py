"""The gateway and the sandbox held to Amazon's own SP-API models (../shared/specs/amazon), not to
each other: every request the gateway makes is one the Listings Items and Feeds models allow (its
path, method, query and body) and every feed document one the listings feed schema allows; the
sandbox refuses what the models refuse (400, as SP-API does), and its answers and processing
reports are ones the models and the report schema allow."""

import gzip
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infrastructure.channels.amazon.gateway import AmazonGateway
from infrastructure.channels.amazon.lwa import LwaCredentials
from infrastructure.channels.gateway import Push, PushStatus, Throttled
from sandboxes.amazon.quotas import RATES, Rate
from sandboxes.amazon.seller import AmazonSandbox
from tests.integration.amazon_models import required_models
from tests.integration.intake_fixtures import wait_until

SELLER, MARKETPLACE = "A3TH9S8BH6GOGM", "ATVPDKIKX0DER"
ITEMS = f"/listings/2021-08-01/items/{SELLER}"
FEEDS = "/feeds/2021-06-30"
FEED_CONTENT_TYPE = "application/json; charset=UTF-8"


class Recording(httpx.HTTPTransport):
    """Real HTTP, every exchange kept to be held to the models afterwards."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[tuple[httpx.Request, httpx.Response]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        response.read()
        self.exchanges.append((request, response))
        return response


@dataclass
class Seller:
    sandbox: AmazonSandbox
    url: str
    recording: Recording = field(default_factory=Recording)

    def gateway(self, **options) -> AmazonGateway:
        client_id, secret, refresh = self.sandbox.credentials
        return AmazonGateway(
            self.url,
            SELLER,
            MARKETPLACE,
            LwaCredentials(client_id, secret, refresh),
            token_url=self.url + "/auth/o2/token",
            timeout=2.0,
            feed_poll_interval=0.02,
            transport=self.recording,
            **options,
        )

    def headers(self) -> dict[str, str]:
        client_id, secret, refresh = self.sandbox.credentials
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "client_id": client_id,
            "client_secret": secret,
        }
        token = httpx.post(self.url + "/auth/o2/token", data=form).json()["access_token"]
        return {"x-amz-access-token": token}


def serve(**options) -> Iterator[Seller]:
    sandbox = AmazonSandbox(
        seller_id=SELLER,
        marketplace_id=MARKETPLACE,
        models=required_models(),
        **{"apply_delay": 0.02, "feed_delay": 0.05, **options},
    )
    with sandbox.server() as server:
        yield Seller(sandbox, server.url)
    sandbox.close()
    assert sandbox.model_violations == []


@pytest.fixture
def seller() -> Iterator[Seller]:
    yield from serve()


def push(sku: str, quantity: int) -> Push:
    return Push(sku, quantity, version=1)


def settled(gateway, ticket, skus):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        results = gateway.settle(ticket, skus)
        if results is not None:
            return results
        time.sleep(0.02)
    raise AssertionError(f"feed {ticket} not settled")


def problems_of(exchanges) -> tuple[set[str], list[str]]:
    """The operations the exchanges called, and what the models refuse in them."""
    models, called, problems = required_models(), set(), []
    for request, response in exchanges:
        path = request.url.raw_path.decode().split("?")[0]
        if path.startswith("/_s3/"):
            problems += document_problems(request, response)
            continue
        operation = models.match(request.method, path)
        if operation is None:
            if path != "/auth/o2/token":
                problems.append(f"{request.method} {path} is no SP-API operation")
            continue
        called.add(operation.id)
        problems += models.request_problems(
            operation.id, request.url.params.multi_items(), request.content
        )
        body = response.json() if response.content else None
        problems += models.response_problems(
            operation.id, response.status_code, body, dict(response.headers)
        )
    return called, problems


def document_problems(request: httpx.Request, response: httpx.Response) -> list[str]:
    """A feed document uploaded, held to the listings feed schema; a report downloaded, to the
    report schema."""
    models = required_models()
    if request.method == "PUT":
        return [problem for _, problem in models.feed_problems(json.loads(request.content))]
    return models.report_problems(json.loads(gzip.decompress(response.content)))


def test_every_request_the_gateway_makes_and_every_answer_it_gets_are_what_the_models_allow(
    seller,
):
    fields = {"lead_time_to_ship_max_days": 2}
    for sku in ("AMZ-1", "AMZ-2", "AMZ/3 ü", "AMZ-4"):
        seller.sandbox.add_listing(sku, 0, **fields)
    with seller.gateway() as gateway:
        assert gateway.push([push("AMZ-1", 4)])[0].status is PushStatus.APPLIED
        assert gateway.push([push("NOPE", 4)])[0].status is PushStatus.UNKNOWN_SKU
        # The call's lead goes as a patch, the rest by feed.
        sent = [push("AMZ-4", 7), push("AMZ-2", 5), push("AMZ/3 ü", 6), push("NOPE", 1)]
        submitted = gateway.push(sent)
        [ticket] = {r.ticket for r in submitted if r.status is PushStatus.SUBMITTED}
        assert [r.status for r in settled(gateway, ticket, ["AMZ-2", "AMZ/3 ü"])] == [
            PushStatus.APPLIED,
            PushStatus.APPLIED,
        ]
        wait_until(lambda: seller.sandbox.stock("AMZ-1") == 4, timeout=5)
        assert gateway.read(["AMZ-1", "AMZ/3 ü", "NOPE"]) == {
            "AMZ-1": 4,
            "AMZ/3 ü": 6,
            "NOPE": None,
        }
        seller.sandbox.set_rate("patchListingsItem", 0.5, 0)
        with pytest.raises(Throttled):
            gateway.push([push("AMZ-1", 5)])
    called, problems = problems_of(seller.recording.exchanges)
    assert problems == []
    assert called == {
        "getListingsItem",
        "searchListingsItems",
        "patchListingsItem",
        "createFeedDocument",
        "createFeed",
        "getFeed",
        "getFeedDocument",
    }
    assert {path for r, _ in seller.recording.exchanges if (path := r.url.path).startswith("/_s3")}
    statuses = {response.status_code for _, response in seller.recording.exchanges}
    assert {200, 201, 202, 404, 429} <= statuses


def test_a_feed_document_the_gateway_uploads_patches_by_merge(seller):
    for sku in ("AMZ-0", "AMZ-1", "AMZ-2"):
        seller.sandbox.add_listing(sku, 0)
    with seller.gateway() as gateway:  # the call's lead goes as a patch, the rest by feed
        gateway.push([push("AMZ-0", 0), push("AMZ-1", 1), push("AMZ-2", 2)])
    [upload] = [r for r, _ in seller.recording.exchanges if r.method == "PUT"]
    document = json.loads(upload.content)
    assert required_models().feed_problems(document) == []
    assert [m["patches"] for m in document["messages"]] == [
        [
            {
                "op": "merge",
                "path": "/attributes/fulfillment_availability",
                "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": quantity}],
            }
        ]
        for quantity in (1, 2)
    ]


# The sandbox refuses what SP-API refuses ---------------------------------------------------

MERGE = {
    "op": "merge",
    "path": "/attributes/fulfillment_availability",
    "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 3}],
}
PATCH_BODY = {"productType": "PRODUCT", "patches": [MERGE]}
MARKET = {"marketplaceIds": MARKETPLACE}

INVALID = {
    "a patch with an operation JSON Patch has not": (
        "PATCH",
        f"{ITEMS}/AMZ-1",
        MARKET,
        {"productType": "PRODUCT", "patches": [{**MERGE, "op": "upsert"}]},
    ),
    "a patch without productType": ("PATCH", f"{ITEMS}/AMZ-1", MARKET, {"patches": [MERGE]}),
    "a patch without patches": (
        "PATCH",
        f"{ITEMS}/AMZ-1",
        MARKET,
        {"productType": "PRODUCT", "patches": []},
    ),
    "a patch whose value is no list": (
        "PATCH",
        f"{ITEMS}/AMZ-1",
        MARKET,
        {"productType": "PRODUCT", "patches": [{**MERGE, "value": {"quantity": 3}}]},
    ),
    "a patch in a mode that does not exist": (
        "PATCH",
        f"{ITEMS}/AMZ-1",
        {**MARKET, "mode": "PERSIST"},
        PATCH_BODY,
    ),
    "a patch without marketplaceIds": ("PATCH", f"{ITEMS}/AMZ-1", {}, PATCH_BODY),
    "a read of data that does not exist": (
        "GET",
        f"{ITEMS}/AMZ-1",
        {**MARKET, "includedData": "fulfillmentAvailability,stock"},
        None,
    ),
    "a feed document without contentType": ("POST", f"{FEEDS}/documents", {}, {}),
    "a feed for no marketplace": (
        "POST",
        f"{FEEDS}/feeds",
        {},
        {"feedType": "JSON_LISTINGS_FEED", "marketplaceIds": [], "inputFeedDocumentId": "x"},
    ),
    "a feed for 26 marketplaces": (
        "POST",
        f"{FEEDS}/feeds",
        {},
        {
            "feedType": "JSON_LISTINGS_FEED",
            "marketplaceIds": [MARKETPLACE] * 26,
            "inputFeedDocumentId": "x",
        },
    ),
    "a feed without its document": (
        "POST",
        f"{FEEDS}/feeds",
        {},
        {"feedType": "JSON_LISTINGS_FEED", "marketplaceIds": [MARKETPLACE]},
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_the_sandbox_answers_400_to_a_request_the_models_refuse(seller, case):
    method, path, params, body = INVALID[case]
    seller.sandbox.add_listing("AMZ-1", 0)
    answer = httpx.request(
        method, seller.url + path, params=params, json=body, headers=seller.headers()
    )
    assert answer.status_code == 400, answer.text
    [error] = answer.json()["errors"]
    assert error["code"] == "InvalidInput"
    assert "x-amzn-RateLimit-Limit" in answer.headers  # declared on 400s
    assert seller.sandbox.stock("AMZ-1") == 0


def test_the_sandbox_accepts_a_patch_for_a_sku_the_seller_does_not_list_as_amazon_does(seller):
    answer = httpx.patch(
        f"{seller.url}{ITEMS}/GHOST", params=MARKET, json=PATCH_BODY, headers=seller.headers()
    )
    assert answer.status_code == 200
    assert answer.json()["status"] == "ACCEPTED"
    assert answer.json()["sku"] == "GHOST"
    time.sleep(0.1)
    assert seller.sandbox.stock("GHOST") is None  # no stub made here


def fulfillment(seller: Seller, op: str, value: list[dict]) -> list[dict] | None:
    """The listing's fulfillment availability once a patch `op` of it with `value` applies."""
    before = seller.sandbox.fulfillment_availability("AMZ-1")
    body = {"productType": "PRODUCT", "patches": [{**MERGE, "op": op, "value": value}]}
    answer = httpx.patch(
        f"{seller.url}{ITEMS}/AMZ-1", params=MARKET, json=body, headers=seller.headers()
    )
    assert answer.json()["status"] == "ACCEPTED"
    wait_until(lambda: seller.sandbox.fulfillment_availability("AMZ-1") != before, timeout=5)
    return seller.sandbox.fulfillment_availability("AMZ-1")


def test_merge_keeps_the_other_fields_of_fulfillment_availability_and_replace_drops_them(seller):
    seller.sandbox.add_listing("AMZ-1", 5, lead_time_to_ship_max_days=4, restock_date="2027-02-01")
    quantity = [{"fulfillment_channel_code": "DEFAULT", "quantity": 3}]
    merged = fulfillment(seller, "merge", quantity)
    assert merged == [
        {
            "fulfillment_channel_code": "DEFAULT",
            "quantity": 3,
            "lead_time_to_ship_max_days": 4,
            "restock_date": "2027-02-01",
        }
    ]
    assert fulfillment(seller, "replace", [{**quantity[0], "quantity": 2}]) == [
        {"fulfillment_channel_code": "DEFAULT", "quantity": 2}
    ]
    headers = seller.headers()
    answer = httpx.get(
        f"{seller.url}{ITEMS}/AMZ-1",
        params={**MARKET, "includedData": "summaries,attributes,issues,fulfillmentAvailability"},
        headers=headers,
    )
    assert answer.json()["fulfillmentAvailability"] == [
        {"fulfillmentChannelCode": "DEFAULT", "quantity": 2}
    ]
    assert answer.json()["attributes"]["fulfillment_availability"] == [
        {"fulfillment_channel_code": "DEFAULT", "quantity": 2}
    ]


def test_a_quantity_that_is_no_whole_number_is_invalid_with_an_issue_saying_why(seller):
    seller.sandbox.add_listing("AMZ-1", 5)
    body = {
        "productType": "PRODUCT",
        "patches": [{**MERGE, "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": -1}]}],
    }
    answer = httpx.patch(
        f"{seller.url}{ITEMS}/AMZ-1", params=MARKET, json=body, headers=seller.headers()
    )
    assert answer.status_code == 200
    assert answer.json()["status"] == "INVALID"
    [issue] = answer.json()["issues"]
    assert issue["severity"] == "ERROR"
    assert "INVALID_ATTRIBUTE" in issue["categories"]


def test_a_validation_preview_is_valid_and_changes_nothing(seller):
    seller.sandbox.add_listing("AMZ-1", 5)
    answer = httpx.patch(
        f"{seller.url}{ITEMS}/AMZ-1",
        params={**MARKET, "mode": "VALIDATION_PREVIEW"},
        json=PATCH_BODY,
        headers=seller.headers(),
    )
    assert answer.json()["status"] == "VALID"
    time.sleep(0.1)
    assert seller.sandbox.stock("AMZ-1") == 5


def test_a_429_carries_no_rate_limit_header_but_other_answers_do(seller):
    seller.sandbox.add_listing("AMZ-1", 1)
    seller.sandbox.set_rate("getListingsItem", 5.0, 1)
    headers = seller.headers()
    answers = [
        httpx.get(f"{seller.url}{ITEMS}/AMZ-1", params=MARKET, headers=headers) for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [200, 429]
    assert answers[0].headers["x-amzn-RateLimit-Limit"] == "5.0"
    assert "x-amzn-RateLimit-Limit" not in answers[1].headers
    assert "x-amzn-RequestId" in answers[1].headers
    assert answers[1].json()["errors"][0]["code"] == "QuotaExceeded"


# Feed documents and their processing reports ------------------------------------------------


def processed(seller: Seller, document: dict) -> tuple[dict, dict]:
    """Upload `document`, create its feed, and return the feed once processed and its report."""
    headers = seller.headers()
    created = httpx.post(
        seller.url + FEEDS + "/documents", json={"contentType": FEED_CONTENT_TYPE}, headers=headers
    ).json()
    httpx.put(
        created["url"], content=json.dumps(document), headers={"Content-Type": FEED_CONTENT_TYPE}
    ).raise_for_status()
    body = {
        "feedType": "JSON_LISTINGS_FEED",
        "marketplaceIds": [MARKETPLACE],
        "inputFeedDocumentId": created["feedDocumentId"],
    }
    feed_id = httpx.post(seller.url + FEEDS + "/feeds", json=body, headers=headers).json()["feedId"]
    url = f"{seller.url}{FEEDS}/feeds/{feed_id}"
    wait_until(
        lambda: httpx.get(url, headers=headers).json()["processingStatus"] in ("DONE", "FATAL"),
        timeout=5,
    )
    feed = httpx.get(url, headers=headers).json()
    result = httpx.get(
        f"{seller.url}{FEEDS}/documents/{feed['resultFeedDocumentId']}", headers=headers
    ).json()
    report = json.loads(gzip.decompress(httpx.get(result["url"]).content))
    assert required_models().report_problems(report) == []
    return feed, report


def message(number: int, sku: str, **fields) -> dict:
    return {
        "messageId": number,
        "sku": sku,
        "operationType": "PATCH",
        "productType": "PRODUCT",
        "patches": [MERGE],
        **fields,
    }


def test_a_message_the_feed_schema_refuses_is_invalid_in_the_report_and_the_others_apply(seller):
    for sku in ("AMZ-1", "AMZ-2", "AMZ-3"):
        seller.sandbox.add_listing(sku, 0)
    without_patches = message(2, "AMZ-2")
    del without_patches["patches"]
    document = {
        "header": {"sellerId": SELLER, "version": "2.0"},
        "messages": [
            message(1, "AMZ-1"),
            without_patches,
            message(3, "AMZ-3", attributes={"item_name": [{"value": "x"}]}),
        ],
    }
    feed, report = processed(seller, document)
    assert feed["processingStatus"] == "DONE"
    assert sorted(issue["messageId"] for issue in report["issues"]) == [2, 3]
    assert report["summary"]["messagesAccepted"] == 1
    assert report["summary"]["messagesInvalid"] == 2
    assert [seller.sandbox.stock(sku) for sku in ("AMZ-1", "AMZ-2", "AMZ-3")] == [3, 0, 0]


def test_a_document_the_feed_schema_refuses_as_a_whole_is_fatal(seller):
    seller.sandbox.add_listing("AMZ-1", 0)
    document = {"header": {"sellerId": SELLER, "version": "2.0", "locale": 1}, "messages": []}
    document["header"].pop("version")
    document["messages"].append(message(1, "AMZ-1"))
    feed, report = processed(seller, document)
    assert feed["processingStatus"] == "FATAL"
    [issue] = report["issues"]
    assert "version" in issue["message"]
    assert "messageId" not in issue
    assert seller.sandbox.stock("AMZ-1") == 0


# Any pushes, in any order, any number of times ----------------------------------------------


@pytest.fixture(scope="module")
def shared_seller() -> Iterator[Seller]:
    yield from serve(rates={operation: Rate(1000.0, 1000) for operation in RATES})


def looks(seller: Seller) -> int:
    return seller.sandbox.log.count("getListingsItem") + seller.sandbox.log.count(
        "searchListingsItems"
    )


LISTED = ("L1", "L2", "L3")
pushes_strategy = st.lists(
    st.lists(
        st.tuples(st.sampled_from([*LISTED, "U1", "U2"]), st.integers(0, 50)),
        min_size=1,
        max_size=6,
    ),
    min_size=1,
    max_size=5,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(calls=pushes_strategy)
def test_any_pushes_patch_only_listed_skus_keep_the_sellers_fields_and_end_at_the_last_quantity(
    shared_seller, calls
):
    seller, prefix = shared_seller, uuid.uuid4().hex[:8]
    for sku in LISTED:
        seller.sandbox.add_listing(f"{prefix}-{sku}", 99, lead_time_to_ship_max_days=7)
    before = looks(seller)
    last: dict[str, int] = {}
    with seller.gateway() as gateway:
        for call in calls:
            batch = list({sku: push(f"{prefix}-{sku}", q) for sku, q in call}.values())
            results = gateway.push(batch)
            for result in results:
                unlisted = result.sku.endswith(("U1", "U2"))
                assert (result.status is PushStatus.UNKNOWN_SKU) == unlisted
            tickets = {r.ticket for r in results if r.status is PushStatus.SUBMITTED}
            for ticket in tickets:
                skus = [r.sku for r in results if r.ticket == ticket]
                assert {r.status for r in settled(gateway, ticket, skus)} == {PushStatus.APPLIED}
            answered = {r.sku for r in results}
            last.update({p.sku: p.quantity for p in batch if p.sku in answered})
    distinct = {f"{prefix}-{sku}" for call in calls for sku, _ in call}
    assert looks(seller) - before <= len(distinct)  # each SKU looked at once at most
    for sku in LISTED:
        name = f"{prefix}-{sku}"
        expected = last.get(name, 99)
        wait_until(lambda n=name, q=expected: seller.sandbox.stock(n) == q, timeout=5)
        [entry] = seller.sandbox.fulfillment_availability(name)
        assert entry["lead_time_to_ship_max_days"] == 7
    for sku in ("U1", "U2"):
        assert seller.sandbox.stock(f"{prefix}-{sku}") is None
