"""The GraphQL Admin subset the sandbox serves (`schema.graphql`), its fields resolved against a
shop, and Shopify's INVALID_VARIABLE errors for variables its input types refuse."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from graphql import (
    GraphQLError,
    GraphQLInputType,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    build_schema,
    type_from_ast,
)
from graphql.utilities import validate_input_value

from sandboxes.shopify import orders
from sandboxes.shopify.stock import Item, gid, gid_number

if TYPE_CHECKING:
    from sandboxes.shopify.store import ShopifySandbox

MAX_PAGE = 250  # the largest `first`, and the largest input array (shopify.dev/api/usage/limits)

Json = dict[str, Any]


def invalid_variables(
    schema: GraphQLSchema, operation: OperationDefinitionNode, variables: Json
) -> list[Json]:
    """Shopify's INVALID_VARIABLE errors for variables its input types refuse (an input field
    it does not define, as the removed `ignoreCompareQuantity`), as a live store words them."""
    errors: list[Json] = []
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        kind = type_from_ast(schema, definition.type)
        if name not in variables or kind is None:
            continue  # graphql-core's own checks answer for missing ones
        problems = _problems(variables[name], cast(GraphQLInputType, kind))
        if problems:
            first = problems[0]
            errors.append(
                {
                    "message": f"Variable ${name} of type {kind} was provided invalid value for "
                    f"{'.'.join(first['path'])} ({first['explanation']})",
                    "locations": [
                        {"line": token.line, "column": token.column}
                        for token in ([definition.loc.start_token] if definition.loc else [])
                    ],
                    "extensions": {
                        "code": "INVALID_VARIABLE",
                        "value": variables[name],
                        "problems": problems,
                    },
                }
            )
    return errors


def _problems(value: Any, kind: GraphQLInputType) -> list[Json]:
    """Where `value` does not fit `kind`, and why, in Shopify's words."""
    problems: list[Json] = []

    def refuse(error: GraphQLError, path: list[Any]) -> None:
        unknown = re.match(
            r"Expected value of type '(\w+)' not to include unknown field '(\w+)'", error.message
        )
        if unknown:
            where = [*map(str, path), unknown[2]]
            explanation = f"Field is not defined on {unknown[1]}"
        else:
            where, explanation = list(map(str, path)), error.message
        problems.append({"path": where, "explanation": explanation})

    validate_input_value(value, kind, refuse, hide_suggestions=True)
    return problems


def _page(items: list[Any], first: int | None, after: str | None = None) -> Json:
    """`first` items after the cursor `after`; a cursor is opaque to clients (here: how many
    items came before the page's end, as Shopify's are opaque strings)."""
    if first is None or not 0 < first <= MAX_PAGE:
        raise GraphQLError(f"first must be between 1 and {MAX_PAGE}")
    start = 0 if after is None else _position(after)
    end = start + first
    info = {"hasNextPage": len(items) > end, "endCursor": str(min(end, len(items)))}
    return {"nodes": items[start:end], "pageInfo": info}


def _position(cursor: str) -> int:
    if not cursor.isdigit():
        raise GraphQLError(f"Invalid cursor for current pagination sort: {cursor!r}")
    return int(cursor)


def resolved_schema(shop: ShopifySandbox) -> GraphQLSchema:
    """The schema subset with its fields resolved against `shop` (sources are `Item`s and dicts)."""
    schema = build_schema((Path(__file__).parent / "schema.graphql").read_text())

    def counted(name: str, resolve: Any) -> Any:
        def resolver(source: Any, info: Any, **args: Any) -> Any:
            shop.fields[name] += 1
            return resolve(info, **args)

        return resolver

    def level_at(item: Item, _info: Any, locationId: str) -> Json | None:  # noqa: N803
        here = gid_number(locationId, "Location") == shop.location_id
        return shop.level(item) if here else None

    def quantities(level: Json, _info: Any, names: list[str]) -> list[Json]:
        item = level["item"]
        shown = {"available": item.available, "on_hand": item.available}
        return [
            {"id": f"{level['id']}&name={name}", "name": name, "quantity": shown.get(name, 0)}
            for name in names
        ]

    resolvers: dict[tuple[str, str], Any] = {
        ("Query", "inventoryItem"): counted("inventoryItem", lambda _, id: shop.item_by_gid(id)),
        ("Query", "inventoryItems"): counted(
            "inventoryItems",
            lambda _, first=None, after=None, query=None: _page(
                shop.items_matching(query), first, after
            ),
        ),
        ("Query", "productVariants"): counted(
            "productVariants",
            lambda _, first=None, query=None: _page(shop.items_matching(query), first),
        ),
        ("Query", "location"): counted("location", lambda _, id=None: shop.location()),
        ("Query", "orders"): counted(
            "orders", lambda _, **args: orders.listed(list(shop.orders.values()), **args)
        ),
        ("Mutation", "inventorySetQuantities"): counted(
            "inventorySetQuantities", lambda info, **args: shop.set_quantities(info, args["input"])
        ),
        ("InventoryItem", "id"): lambda item, _: gid("InventoryItem", item.id),
        ("InventoryItem", "tracked"): lambda item, _: True,
        ("InventoryItem", "variant"): lambda item, _: item,
        ("InventoryItem", "inventoryLevel"): level_at,
        ("InventoryItem", "inventoryLevels"): lambda item, _, first=None: _page(
            [shop.level(item)], first
        ),
        ("InventoryLevel", "quantities"): quantities,
        ("ProductVariant", "id"): lambda item, _: gid("ProductVariant", item.variant_id),
        ("ProductVariant", "title"): lambda item, _: "Default Title",
        ("ProductVariant", "inventoryQuantity"): lambda item, _: item.available,
        ("ProductVariant", "inventoryItem"): lambda item, _: item,
    }
    for (type_name, field_name), resolve in resolvers.items():
        kind = schema.get_type(type_name)
        assert isinstance(kind, GraphQLObjectType)
        kind.fields[field_name].resolve = resolve
    return schema
