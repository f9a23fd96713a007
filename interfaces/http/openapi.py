"""The OpenAPI 3.1 document of `/api/v1`, served at `/api/v1/openapi.json`, built from the
operations in interfaces.http.catalogue (register new routes there). JSON Schemas come from the
pydantic types each operation names, through `TypeAdapter.json_schemas`, never by hand."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import metadata
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from interfaces.http import schemas as s
from interfaces.http.auth import required_scope
from interfaces.http.catalogue import METRICS_PATH, OPERATIONS, Operation, Param
from interfaces.http.inputs import Text

REF = "#/components/schemas/{model}"
PROBLEM_MEDIA = "application/problem+json"

PathText = Annotated[Text, Field(min_length=1)]

_PROBLEMS = {
    400: "A path or query parameter cannot be read",
    401: "No valid bearer token (only when API tokens are configured)",
    403: "The token lacks the scope this operation needs",
    404: "Nothing by that name or id",
    408: "The request body did not arrive within INVSYNC_BODY_TIMEOUT_SECONDS; the connection "
    "is closed",
    409: "The request conflicts with what is recorded",
    413: "The request body is over INVSYNC_MAX_API_BODY_BYTES; the connection is closed",
    422: "The body is invalid or breaks a stock rule; nothing was recorded",
    503: "The database cannot be reached, or the server holds as many connections as it may "
    "(INVSYNC_HTTP_LIMIT_CONCURRENCY); retry after a few seconds",
}
_PATH_PARAMS = {
    "sku": "the SKU; percent-encode a '/' in it (`TEE%2FRED%2FL` names TEE/RED/L)",
}
_SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "A configured API token. Scopes: `read` may GET, `write` may change stock, "
    "`admin` may do anything, including operating the intake.",
}


def openapi_endpoint(
    routes: Sequence[BaseRoute], *, metrics_scope: str | None = None
) -> Callable[[Request], Response]:
    """The handler for the document of those `OPERATIONS` that `routes` serve, built at the
    first request (so `routes` may still grow, by this very route). `metrics_scope` is the
    scope `/metrics` needs, when it needs one."""
    built: list[dict[str, Any]] = []

    def document(request: Request) -> Response:
        if not built:
            served = _served(routes)
            operations = (op for op in OPERATIONS if op_key(op) in served)
            built.append(openapi_document(operations, metrics_scope=metrics_scope))
        return JSONResponse(built[0])

    return document


def undocumented(routes: Sequence[BaseRoute]) -> set[tuple[str, str]]:
    """The `(method, path)` pairs under /api/ that `routes` serve and `OPERATIONS` miss."""
    return {key for key in _served(routes) if key[1].startswith("/api/")} - {
        op_key(op) for op in OPERATIONS
    }


def op_key(operation: Operation) -> tuple[str, str]:
    return operation.method, operation.path


def openapi_document(
    operations: Iterable[Operation], *, metrics_scope: str | None = None
) -> dict[str, Any]:
    operations = list(operations)
    refs, definitions = TypeAdapter.json_schemas(
        [(key, mode, TypeAdapter(type_)) for op in operations for key, mode, type_ in _types(op)],
        ref_template=REF,
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(
            op, lambda key, mode: refs[(key, mode)], metrics_scope
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "invsync internal API",
            "version": metadata.version("invsync"),
            "description": "Stock levels, history, reservations and stock changes. Errors are "
            "RFC 9457 problem documents.",
        },
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"bearer": _SECURITY_SCHEME},
        },
    }


_Key = tuple[str, ...]
_Mode = Literal["validation", "serialization"]


def _types(op: Operation) -> Iterable[tuple[_Key, _Mode, Any]]:
    """Every type `op` names, each under a key of its own, in the mode pydantic should use."""
    yield ("problem",), "serialization", s.Problem
    for param in _params(op):
        yield (*op_key(op), "param", param.name), "validation", param.type
    if op.body is not None:
        yield (*op_key(op), "body"), "validation", op.body
    for status, content in op.answers.items():
        for media, type_ in _media(status, content).items():
            yield (*op_key(op), str(status), media), "serialization", type_


def _operation(
    op: Operation, ref: Callable[[_Key, _Mode], dict[str, Any]], metrics_scope: str | None
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "operationId": _operation_id(op),
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required or p.where == "path",
                "description": p.description or _PATH_PARAMS.get(p.name, "")
                if p.where == "path"
                else p.description,
                "schema": ref((*op_key(op), "param", p.name), "validation"),
            }
            for p in _params(op)
        ],
        "responses": {
            str(status): {
                "description": _PROBLEMS.get(status, "OK"),
                "content": {
                    media: {"schema": ref((*op_key(op), str(status), media), "serialization")}
                    for media in _media(status, content)
                },
            }
            for status, content in op.answers.items()
        },
    }
    if op.body is not None:
        body = ref((*op_key(op), "body"), "validation")
        document["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    scope = metrics_scope if op.path == METRICS_PATH else required_scope(op.method, op.path)
    document["security"] = [{"bearer": [scope]}] if scope else []
    problem = {"schema": ref(("problem",), "serialization")}
    # BodyLimits answers 413 (declared or read too large) and 408 (too slow) where a body is
    # read; uvicorn answers 503 past its connection limit, on any route.
    limited = (408, 413) if op.body is not None else ()
    for status in (400, *op.problems, *((401, 403) if scope else ()), *limited, 503):
        document["responses"].setdefault(
            str(status),
            {"description": _PROBLEMS[status], "content": {PROBLEM_MEDIA: problem}},
        )
    return document


def _params(op: Operation) -> list[Param]:
    declared = {p.name for p in op.params if p.where == "path"}
    implied = [
        Param(name, PathText, where="path")
        for name in re.findall(r"{(\w+)}", op.path)
        if name not in declared
    ]
    return [*implied, *op.params]


def _media(status: int, content: Any) -> Mapping[str, Any]:
    if isinstance(content, Mapping):
        return content
    return {PROBLEM_MEDIA if status >= 400 else "application/json": content}


def _operation_id(op: Operation) -> str:
    words = re.findall(r"\w+", op.path.removeprefix("/api/v1/"))
    return "_".join([op.method.lower(), *words])


def _served(routes: Sequence[BaseRoute]) -> set[tuple[str, str]]:
    return {
        (method, re.sub(r"{(\w+):\w+}", r"{\1}", route.path))
        for route in routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
