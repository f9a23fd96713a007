"""The Shopify gateway and sandbox against Shopify's own definitions, not against each other:
the Admin GraphQL SDL of 2026-04 and 2026-07 introspected from a live store, and the answers that
store gave to `inventorySetQuantities` (`../shared/specs/shopify/`, README there).

Every document the gateway sends, with its variables, is valid against both schemas; the
sandbox's schema is a part of Shopify's (so what it accepts, Shopify accepts); the sandbox answers
the live store's cases as the store did; and the gateway, given the store's recorded answers,
does the right thing with each."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLObjectType,
    GraphQLSchema,
    build_schema,
    get_operation_ast,
    is_non_null_type,
    parse,
    type_from_ast,
    validate,
)
from graphql.pyutils import Undefined
from graphql.utilities import validate_input_value

from infrastructure.channels.gateway import Push, PushStatus
from infrastructure.channels.shopify import gateway as shopify_gateway
from infrastructure.channels.shopify import level_reading, order_listing
from infrastructure.channels.shopify.gateway import ShopifyGateway
from sandboxes.server import SandboxServer
from sandboxes.shopify.quantities import REASONS
from sandboxes.shopify.store import ShopifySandbox
from tests.helpers import random_sku

SPECS = Path(__file__).resolve().parents[2].parent / "shared" / "specs" / "shopify"
VERSIONS = ("2026-04", "2026-07")
LIVE = json.loads((SPECS / "live-2026-04-inventory.json").read_text())
TOKEN = "shpat_specs"
# The mutation as the live store's recordings were made (their variables name the key so).
LIVE_SET = """
mutation InventorySet($input: InventorySetQuantitiesInput!, $idempotencyKey: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $idempotencyKey) {
    inventoryAdjustmentGroup { id reason referenceDocumentUri changes { name delta } }
    userErrors { field message code }
  }
}
"""
LIVE_SET_WITHOUT_KEY = LIVE_SET.replace(" @idempotent(key: $idempotencyKey)", "").replace(
    ", $idempotencyKey: String!", ""
)


@pytest.fixture(scope="module", params=VERSIONS)
def shopify(request: pytest.FixtureRequest) -> GraphQLSchema:
    """Shopify's schema of one version. Its deprecations do not satisfy graphql-core's schema
    rules (an implementation deprecating an interface's field), so it is taken as valid."""
    sdl = gzip.decompress((SPECS / f"admin-{request.param}.graphql.gz").read_bytes()).decode()
    return build_schema(sdl, assume_valid=True)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[ShopifySandbox, str]]:
    shop = ShopifySandbox(TOKEN)
    with SandboxServer(shop.app) as server:
        yield shop, server.url
    shop.close()


def problems(schema: GraphQLSchema, query: str, variables: dict[str, Any]) -> list[str]:
    """What is wrong with `query` and its `variables` for `schema`."""
    document = parse(query)
    found = [error.message for error in validate(schema, document)]
    operation = get_operation_ast(document)
    assert operation is not None
    for definition in operation.variable_definitions:
        kind = type_from_ast(schema, definition.type)
        name = definition.variable.name.value
        if name not in variables:
            if is_non_null_type(kind):
                found.append(f"${name} missing")
            continue

        def refuse(error, path, name=name):
            found.append(f"${name}.{'.'.join(map(str, path))}: {error.message}")

        validate_input_value(variables[name], kind, refuse)
    return found


def test_the_gateways_documents_are_valid_against_shopifys_schema(shopify):
    for name in ("LOOKUP", "SET_QUANTITIES"):
        assert validate(shopify, parse(getattr(shopify_gateway, name))) == [], name


def test_the_catalogue_reading_is_valid_against_shopifys_schema(shopify):
    variables = {"first": 250, "after": "abc", "location": "gid://shopify/Location/1"}
    assert problems(shopify, level_reading.CATALOGUE, variables) == []


def test_the_orders_listing_is_valid_against_shopifys_schema(shopify):
    variables = {"first": order_listing.ORDERS_PAGE, "after": "abc", "query": "updated_at:>='x'"}
    assert problems(shopify, order_listing.ORDERS, variables) == []


def test_every_request_the_gateway_made_is_valid_against_shopifys_schema(shopify, served):
    """The gateway's lookups, pushes (first, compared, stale, refused, batched) and reads, as
    the sandbox received them, documents and variables alike."""
    shop, url = served
    gateway = ShopifyGateway(url, TOKEN, shop.location_id, channel_id="specs")
    skus = [random_sku() for _ in range(3)]
    for sku in skus:
        shop.set_stock(sku, 5)
    since = len(shop.documents)
    gateway.push([Push(skus[0], 7, version=1)])  # first push: changeFromQuantity null
    gateway.push([Push(s, 4, version=2, acknowledged=5) for s in skus])  # one stale, re-read
    gateway.read([*skus, random_sku()])
    shop.delete_product(skus[1])
    gateway.push([Push(skus[1], 1, version=3, acknowledged=4)])  # refused: a deleted item
    gateway.close()
    sent = shop.documents[since:]
    assert len(sent) >= 6
    assert {query for query, _ in sent} == {shopify_gateway.LOOKUP, shopify_gateway.SET_QUANTITIES}
    for query, variables in sent:
        assert problems(shopify, query, variables) == [], (query, variables)


def test_the_sandboxs_schema_is_a_part_of_shopifys(shopify):
    """Every type, field, argument, input field, enum value and directive the sandbox serves
    exists in Shopify's schema with the same type, and no field of Shopify's requires an argument
    the sandbox does not know: a document the sandbox accepts, Shopify accepts."""
    sandbox = ShopifySandbox().schema
    roots = {
        sandbox.query_type.name: shopify.query_type,
        sandbox.mutation_type.name: shopify.mutation_type,
    }
    differences = []
    for name, kind in sandbox.type_map.items():
        if name.startswith("__"):
            continue
        theirs = roots.get(name) or shopify.type_map.get(name)
        if type(theirs) is not type(kind):
            differences.append(f"type {name}: {theirs!r}")
            continue
        if isinstance(kind, GraphQLEnumType):
            differences += [f"{name}.{v}" for v in set(kind.values) - set(theirs.values)]
        if not isinstance(kind, GraphQLObjectType | GraphQLInputObjectType):
            continue
        for field_name, field in kind.fields.items():
            their_field = theirs.fields.get(field_name)
            if their_field is None or str(their_field.type) != str(field.type):
                differences.append(f"{name}.{field_name}: {field.type} vs {their_field}")
                continue
            ours = getattr(field, "args", {})
            for arg, definition in ours.items():
                their_arg = their_field.args.get(arg)
                if their_arg is None or str(their_arg.type) != str(definition.type):
                    differences.append(f"{name}.{field_name}({arg}: {definition.type})")
            for arg, definition in getattr(their_field, "args", {}).items():
                required = is_non_null_type(definition.type)
                if required and definition.default_value is Undefined and arg not in ours:
                    differences.append(f"{name}.{field_name} requires {arg}")
    idempotent = sandbox.get_directive("idempotent")
    theirs = shopify.get_directive("idempotent")
    assert idempotent is not None
    assert theirs is not None
    assert {a: str(d.type) for a, d in idempotent.args.items()} == {
        a: str(d.type) for a, d in theirs.args.items()
    }
    assert idempotent.locations == theirs.locations
    assert differences == []


# The sandbox answers as the live store did --------------------------------------------------


def live_variables(shop: ShopifySandbox, case: dict[str, Any], item: int) -> dict[str, Any]:
    """A recorded request's variables, naming the sandbox's item and location instead."""
    variables = json.loads(json.dumps(case["variables"]))
    for quantity in variables["input"]["quantities"]:
        quantity["inventoryItemId"] = f"gid://shopify/InventoryItem/{item}"
        quantity["locationId"] = f"gid://shopify/Location/{shop.location_id}"
    variables["idempotencyKey"] = f"{variables['idempotencyKey']}-{random_sku()}"
    return variables


def ask(served, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    _shop, url = served
    answer = httpx.post(
        f"{url}/admin/api/2026-04/graphql.json",
        headers={"X-Shopify-Access-Token": TOKEN},
        json={"query": query, "variables": variables},
    )
    assert answer.status_code == 200
    return answer.json()


def test_a_good_set_is_answered_as_the_live_store_did(served):
    shop, _ = served
    case = LIVE["inventorySetQuantities_ok"]
    item = shop.set_stock(random_sku(), 0)
    answer = ask(served, LIVE_SET, live_variables(shop, case, item))
    group = answer["data"]["inventorySetQuantities"]["inventoryAdjustmentGroup"]
    live = case["response"]["data"]["inventorySetQuantities"]
    assert answer["data"]["inventorySetQuantities"]["userErrors"] == live["userErrors"] == []
    assert group["reason"] == live["inventoryAdjustmentGroup"]["reason"]
    assert group["changes"][0] == {
        k: live["inventoryAdjustmentGroup"]["changes"][0][k] for k in ("name", "delta")
    }
    assert set(answer["extensions"]["cost"]) == set(case["response"]["extensions"]["cost"])


@pytest.mark.parametrize(
    ("case", "query", "change"),
    [
        ("missing_idempotent_directive", LIVE_SET_WITHOUT_KEY, None),
        ("missing_changeFromQuantity", LIVE_SET, "missing_changeFromQuantity"),
        ("legacy_ignoreCompareQuantity", LIVE_SET, "legacy_ignoreCompareQuantity"),
    ],
)
def test_a_refused_request_is_answered_with_the_live_stores_top_level_error(
    served, case, query, change
):
    shop, _ = served
    sku = random_sku()
    item = shop.set_stock(sku, 3)
    recorded = LIVE[case].get("response", LIVE[case])
    request = LIVE[change] if change else LIVE["inventorySetQuantities_ok"]
    variables = live_variables(shop, request, item)
    if query is LIVE_SET_WITHOUT_KEY:
        del variables["idempotencyKey"]
    answer = ask(served, query, variables)
    [error], [live] = answer["errors"], recorded["errors"]
    assert error["message"] == live["message"]
    assert error["extensions"]["code"] == live["extensions"]["code"]
    assert ("data" in answer) == ("data" in recorded)
    if "data" in recorded:
        assert answer["data"] == recorded["data"] == {"inventorySetQuantities": None}
        assert error["path"] == live["path"]
    if "problems" in live["extensions"]:
        assert error["extensions"]["problems"] == live["extensions"]["problems"]
    assert shop.stock(sku) == 3


@pytest.mark.parametrize(
    ("case", "item", "location"),
    [("unknown_inventory_item", 999_999_999, None), ("unknown_location", None, 999_999_999)],
)
def test_an_unknown_item_or_location_is_answered_with_the_live_stores_user_errors(
    served, case, item, location
):
    shop, _ = served
    known = shop.set_stock(random_sku(), 3)
    variables = live_variables(shop, LIVE["inventorySetQuantities_ok"], item or known)
    if location:
        variables["input"]["quantities"][0]["locationId"] = f"gid://shopify/Location/{location}"
    answer = ask(served, LIVE_SET, variables)["data"]["inventorySetQuantities"]
    live = LIVE[case]["data"]["inventorySetQuantities"]
    assert answer["inventoryAdjustmentGroup"] is live["inventoryAdjustmentGroup"] is None
    assert answer["userErrors"] == live["userErrors"]  # field paths with string indices


def test_the_sandbox_takes_the_reasons_the_live_store_takes():
    assert sorted(REASONS) == sorted(LIVE["valid_reasons"])


# The gateway, given the live store's answers -------------------------------------------------


def replaying(answer: dict[str, Any], item: str = "gid://shopify/InventoryItem/53469430055218"):
    """A transport that answers a lookup with `item` and every mutation with `answer`."""

    def respond(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body["query"] == shopify_gateway.LOOKUP:
            sku = body["variables"]["query"].split('"')[1]
            node = {"id": item, "sku": sku, "inventoryLevel": None}
            return httpx.Response(200, json={"data": {"inventoryItems": {"nodes": [node]}}})
        return httpx.Response(200, json=answer)

    return httpx.MockTransport(respond)


def gateway_answered(answer: dict[str, Any]) -> ShopifyGateway:
    return ShopifyGateway(
        "https://harry-test-heelo.myshopify.com",
        "shpat_live",
        106318430514,
        transport=replaying(answer),
    )


def test_the_gateway_takes_the_live_stores_good_answer_as_applied():
    gateway = gateway_answered(LIVE["inventorySetQuantities_ok"]["response"])
    [result] = gateway.push([Push("LIVE-1", 5, version=1, acknowledged=0)])
    assert (result.status, result.channel_quantity) == (PushStatus.APPLIED, 5)


@pytest.mark.parametrize(
    "case",
    ["missing_idempotent_directive", "missing_changeFromQuantity", "legacy_ignoreCompareQuantity"],
)
def test_the_gateway_rejects_what_the_live_store_refused_as_a_whole_and_says_why(case):
    recorded = LIVE[case].get("response", LIVE[case])
    gateway = gateway_answered(recorded)
    [result] = gateway.push([Push("LIVE-1", 5, version=1, acknowledged=0)])
    assert result.status is PushStatus.REJECTED
    assert recorded["errors"][0]["extensions"]["code"] in result.detail


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("unknown_inventory_item", "INVALID_INVENTORY_ITEM"),
        ("unknown_location", "INVALID_LOCATION"),
    ],
)
def test_the_gateway_reads_the_live_stores_user_errors_by_their_string_indices(case, code):
    gateway = gateway_answered(LIVE[case])
    [result] = gateway.push([Push("LIVE-1", 5, version=1, acknowledged=0)])
    assert result.status is PushStatus.REJECTED
    assert result.detail.startswith(f"{code}: ")
