"""Amazon's own SP-API models as a referee: whether a request or an answer is one they allow.

Amazon publishes each SP-API as an OpenAPI 2 (Swagger) model, and the JSON_LISTINGS_FEED
document and its processing report as JSON Schemas (github.com/amzn/selling-partner-api-models).
They are not part of invsync: a test loads them (`SpApiModels.load`) from where they are kept and
gives them to the sandbox, which then refuses what the models refuse (400, as SP-API does) and
notes every answer of its own they do not allow; the tests hold the gateway's requests to them.

`jsonschema_rs` validates (a test dependency): import this module only where models are used.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs

MODELS = ("listingsItems_2021-08-01.json", "feeds_2021-06-30.json")
# Read where kept beside the others: the Orders model (ordersV0) is not among ../shared/specs yet,
# and the Orders operations go unchecked without it (`covers`).
OPTIONAL_MODELS = ("ordersV0.json",)
FEED_SCHEMA = "listings-feed-schema-v2.json"
REPORT_SCHEMA = "listings-feed-processing-report-schema-v2.json"


@dataclass(frozen=True)
class Operation:
    """One SP-API operation as its model declares it."""

    id: str
    method: str
    template: str  # the path, with `{name}` for each path parameter
    query: tuple[Mapping[str, Any], ...]  # the query parameters
    body: Mapping[str, Any] | None  # the body parameter's schema, None without a body
    responses: Mapping[str, Mapping[str, Any]]  # by status code
    definitions: Mapping[str, Any]

    def matches(self, method: str, raw_path: str) -> bool:
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(self.template))
        return method.upper() == self.method and re.fullmatch(pattern, raw_path) is not None


class SpApiModels:
    """The operations of some SP-API models, and the listings feed and report schemas."""

    def __init__(
        self,
        models: Sequence[Mapping[str, Any]],
        feed_schema: Mapping[str, Any],
        report_schema: Mapping[str, Any],
    ) -> None:
        self.operations = {op.id: op for model in models for op in _operations(model)}
        self._feed = jsonschema_rs.Draft7Validator(dict(feed_schema))
        self._report = jsonschema_rs.Draft7Validator(dict(report_schema))
        self._validators: dict[tuple[int, str], Any] = {}

    @classmethod
    def load(cls, directory: Path) -> SpApiModels:
        def read(name: str) -> dict[str, Any]:
            return dict(json.loads((directory / name).read_text()))

        kept = [*MODELS, *(name for name in OPTIONAL_MODELS if (directory / name).is_file())]
        return cls([read(name) for name in kept], read(FEED_SCHEMA), read(REPORT_SCHEMA))

    def covers(self, operation_id: str) -> bool:
        """Whether a model held here declares the operation."""
        return operation_id in self.operations

    def match(self, method: str, raw_path: str) -> Operation | None:
        """The operation a request for `raw_path` (percent-encoded) calls, if any."""
        return next((op for op in self.operations.values() if op.matches(method, raw_path)), None)

    def request_problems(
        self, operation_id: str, query: Iterable[tuple[str, str]], body: bytes = b""
    ) -> list[str]:
        """What the model does not allow in a call of the operation with this query and body
        (JSON; none if empty): none for a valid request."""
        operation = self.operations[operation_id]
        given: dict[str, list[str]] = {}
        for name, value in query:
            given.setdefault(name, []).append(value)
        problems = [
            f"query parameter {name!r} is not declared"
            for name in given.keys() - {p["name"] for p in operation.query}
        ]
        for parameter in operation.query:
            problems += _parameter_problems(parameter, given.get(parameter["name"], []))
        if operation.body is None:
            if body:
                problems.append("the operation takes no body")
        elif not body:
            problems.append("the body is required")
        else:
            try:
                problems += self._schema_problems(
                    operation, operation.body, json.loads(body), "body"
                )
            except ValueError:
                problems.append("the body is not JSON")
        return problems

    def response_problems(
        self, operation_id: str, status: int, body: object, headers: Mapping[str, str]
    ) -> list[str]:
        """What the model does not allow in this answer to the operation."""
        operation = self.operations[operation_id]
        response = operation.responses.get(str(status))
        if response is None:
            return [f"{operation_id} declares no {status} answer"]
        declared = {name.lower() for name in response.get("headers", {})}
        problems = [
            f"{operation_id}'s {status} answer declares no {name} header"
            for name in (n.lower() for n in headers)
            if name.startswith("x-amzn-") and name not in declared
        ]
        if "schema" in response:
            problems += self._schema_problems(operation, response["schema"], body, str(status))
        return problems

    def feed_problems(self, document: object) -> list[tuple[int | None, str]]:
        """What the listings feed schema does not allow, each with the index of the message it
        concerns (None: the document as a whole)."""
        problems = []
        for error in self._feed.iter_errors(document):
            path = list(error.instance_path)
            index = path[1] if len(path) > 1 and path[0] == "messages" else None
            where = "/".join(str(part) for part in path) or "the document"
            problems.append(
                (index if isinstance(index, int) else None, f"{where}: {error.message}")
            )
        return problems

    def report_problems(self, report: object) -> list[str]:
        return [_describe(error, "report") for error in self._report.iter_errors(report)]

    def _schema_problems(
        self, operation: Operation, schema: Mapping[str, Any], value: object, what: str
    ) -> list[str]:
        key = (id(operation.definitions), json.dumps(schema, sort_keys=True))
        validator = self._validators.get(key)
        if validator is None:
            document = {**schema, "definitions": operation.definitions}
            validator = self._validators[key] = jsonschema_rs.Draft4Validator(document)
        return [_describe(error, what) for error in validator.iter_errors(value)]


def _operations(model: Mapping[str, Any]) -> Iterable[Operation]:
    for template, item in model["paths"].items():
        shared = item.get("parameters", [])
        for method, spec in item.items():
            if method == "parameters":
                continue
            parameters = [*shared, *spec.get("parameters", [])]
            body = next((p["schema"] for p in parameters if p["in"] == "body"), None)
            yield Operation(
                id=spec["operationId"],
                method=method.upper(),
                template=template,
                query=tuple(p for p in parameters if p["in"] == "query"),
                body=body,
                responses=spec["responses"],
                definitions=model["definitions"],
            )


def _parameter_problems(parameter: Mapping[str, Any], values: list[str]) -> list[str]:
    name = parameter["name"]
    if not values:
        return [f"query parameter {name!r} is required"] if parameter.get("required") else []
    if parameter["type"] != "array":
        if len(values) > 1:
            return [f"query parameter {name!r} is given {len(values)} times"]
        return _scalar_problems(name, parameter, values[0])
    if parameter.get("collectionFormat", "csv") == "multi":
        items = values
    else:  # csv, Swagger 2's default: one value, comma-separated
        items = [item for value in values for item in value.split(",")]
    problems = []
    if len(items) < parameter.get("minItems", 0):
        problems.append(f"query parameter {name!r} needs {parameter['minItems']} items at least")
    if len(items) > parameter.get("maxItems", len(items)):
        problems.append(f"query parameter {name!r} takes {parameter['maxItems']} items at most")
    for item in items:
        problems += _scalar_problems(name, parameter["items"], item)
    return problems


def _scalar_problems(name: str, schema: Mapping[str, Any], value: str) -> list[str]:
    kind = schema.get("type", "string")
    if kind == "integer":
        if not re.fullmatch(r"-?\d+", value):
            return [f"query parameter {name!r} must be an integer, not {value!r}"]
        number = int(value)
        if number < schema.get("minimum", number) or number > schema.get("maximum", number):
            return [f"query parameter {name!r} is out of range: {value}"]
    elif kind == "boolean" and value not in ("true", "false"):
        return [f"query parameter {name!r} must be true or false, not {value!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"query parameter {name!r} must be one of {schema['enum']}, not {value!r}"]
    return []


def _describe(error: Any, what: str) -> str:
    where = "/".join(str(part) for part in error.instance_path)
    return f"{what}{'/' + where if where else ''}: {error.message}"
