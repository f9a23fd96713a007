"""Shopify's calculated query cost (CHANNELS.md §1.3): what a GraphQL request costs, the leaky
bucket of points it is paid from, and the answers when the bucket cannot pay."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DirectiveNode,
    FieldNode,
    GraphQLEnumType,
    GraphQLInt,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    OperationDefinitionNode,
    get_named_type,
    value_from_ast,
)

# Standard plan: 100 points/s restored (§1.3); the bucket holds 20 s of that.
RESTORE_RATE = 100.0
MAXIMUM_AVAILABLE = 2000.0
SINGLE_QUERY_MAX_COST = 1000

Json = dict[str, Any]


@dataclass
class Bucket:
    """The app+store's leaky bucket of cost points (§1.3)."""

    maximum: float = MAXIMUM_AVAILABLE
    restore_rate: float = RESTORE_RATE
    available: float = MAXIMUM_AVAILABLE
    _at: float = field(default_factory=time.monotonic)

    def refill(self) -> float:
        now = time.monotonic()
        self.available = min(self.maximum, self.available + (now - self._at) * self.restore_rate)
        self._at = now
        return self.available

    def drain(self, to: float = 0.0) -> None:
        """Leave `to` points in the bucket, as if spent just now (for tests and demos)."""
        self.available, self._at = to, time.monotonic()

    def status(self) -> Json:
        return {
            "maximumAvailable": self.maximum,
            "currentlyAvailable": round(self.available, 1),
            "restoreRate": self.restore_rate,
        }


def query_cost(
    schema: GraphQLSchema, operation: OperationDefinitionNode, variables: Json, data: Any = None
) -> int:
    """Shopify's calculated cost: scalars and enums 0, objects 1, connections 2 plus their size
    (`first`, or the nodes returned when `data` is the answer) times a node's cost, mutations 10.
    """
    root = schema.mutation_type if operation.operation.value == "mutation" else schema.query_type
    assert root is not None
    base = 10 * len(operation.selection_set.selections) if root is schema.mutation_type else 0
    return base + _selections_cost(root, operation.selection_set.selections, variables, data)


def _selections_cost(parent: Any, selections: Any, variables: Json, data: Any) -> int:
    total = 0
    for node in selections:
        if not isinstance(node, FieldNode) or node.name.value not in parent.fields:
            continue
        definition = parent.fields[node.name.value]
        kind = get_named_type(definition.type)
        if isinstance(kind, GraphQLScalarType | GraphQLEnumType) or node.selection_set is None:
            continue
        assert isinstance(kind, GraphQLObjectType)
        value = data.get((node.alias or node.name).value) if isinstance(data, dict) else None
        if kind.name.endswith("Connection"):
            total += 2 + _connection_cost(kind, node, variables, value)
        else:
            total += 1 + _selections_cost(kind, node.selection_set.selections, variables, None)
    return total


def argument(node: FieldNode | DirectiveNode, name: str, kind: Any, variables: Json) -> Any:
    """The value of argument `name` written on `node` (literal or variable)."""
    for argument in node.arguments or ():
        if argument.name.value == name:
            return value_from_ast(argument.value, kind, variables)
    return None


def _connection_cost(kind: Any, node: FieldNode, variables: Json, value: Any) -> int:
    size = len(value["nodes"]) if isinstance(value, dict) and "nodes" in value else None
    if size is None:
        size = argument(node, "first", GraphQLInt, variables) or 0
    per_node = 0
    assert node.selection_set is not None
    for child in node.selection_set.selections:
        if isinstance(child, FieldNode) and child.name.value == "nodes" and child.selection_set:
            item = get_named_type(kind.fields["nodes"].type)
            per_node = 1 + _selections_cost(item, child.selection_set.selections, variables, None)
    return size * per_node


def throttled(requested: int, status: Json) -> Json:
    return {
        "errors": [
            {
                "message": "Throttled",
                "extensions": {
                    "code": "THROTTLED",
                    "documentation": "https://shopify.dev/api/usage/rate-limits",
                },
            }
        ],
        "extensions": {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": None,
                "throttleStatus": status,
            }
        },
    }


def throttle_cost(answer: Json) -> Json:
    """The cost extension of a THROTTLED answer (empty for any other)."""
    codes = {(e.get("extensions") or {}).get("code") for e in answer.get("errors") or []}
    return answer["extensions"]["cost"] if "THROTTLED" in codes else {}


def throttle_wait(answer: Json) -> float:
    cost = throttle_cost(answer)
    status = cost["throttleStatus"]
    missing = cost["requestedQueryCost"] - status["currentlyAvailable"]
    return float(max(missing, 0.0) / status["restoreRate"])


def max_cost_exceeded(requested: int) -> Json:
    message = (
        f"Query cost is {requested}, which exceeds the single query max cost limit "
        f"({SINGLE_QUERY_MAX_COST})."
    )
    extensions = {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": SINGLE_QUERY_MAX_COST}
    return {"errors": [{"message": message, "extensions": extensions}]}
