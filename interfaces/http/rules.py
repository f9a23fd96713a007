"""`GET|PUT /api/v1/channels/{id}/rules`: a channel's allocation rules, changed at run time.
Each change is recorded as an event with who made it and why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Annotated, Any

from pydantic import Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from application.ledger import Ledger
from application.ledger_queries import LedgerQueries
from domain.allocation import ChannelRule, InvalidRule
from domain.rules import MAX_LOCATIONS, ChannelRules, check_change, rule_from
from infrastructure.config import RulesConfig
from interfaces.http.inputs import Location
from interfaces.http.paths import CHANNEL_PARAM, SKU_PARAM
from interfaces.http.problems import invalid_fields, problem


def rules_routes(
    ledger: Ledger, queries: LedgerQueries, defaults: Sequence[ChannelRule]
) -> list[Route]:
    """The routes over `ledger` (changes) and `queries` (what is recorded), for the channels
    configured with `defaults`."""
    rules = _ChannelRules(ledger, queries, defaults)
    sku_path = f"/api/v1/channels/{CHANNEL_PARAM}/rules/skus/{SKU_PARAM}"
    return [
        Route("/api/v1/channels/{channel_id}/rules", rules.get, methods=["GET"]),
        Route("/api/v1/channels/{channel_id}/rules", rules.put, methods=["PUT"]),
        Route(sku_path, rules.get_sku, methods=["GET"]),
        Route(sku_path, rules.put_sku, methods=["PUT"]),
        Route(sku_path, rules.delete_sku, methods=["DELETE"]),
    ]


class _ChannelRules:
    def __init__(
        self, ledger: Ledger, queries: LedgerQueries, defaults: Sequence[ChannelRule]
    ) -> None:
        self.ledger, self.queries = ledger, queries
        self.by_channel = {rule.channel_id: rule for rule in defaults}

    def get(self, request: Request) -> Response:
        default = self.by_channel.get(request.path_params["channel_id"])
        if default is None:
            return _unknown(request.path_params["channel_id"])
        return JSONResponse(_document(*self.queries.channel_rules(default)))

    async def put(self, request: Request) -> Response:
        channel_id = request.path_params["channel_id"]
        if channel_id not in self.by_channel:
            return _unknown(channel_id)
        who, why = _who_and_why(request)
        try:
            fields = ChannelRulesIn.model_validate_json(await request.body()).model_dump()
            rule = rule_from(channel_id, fields)
            check_change(why)
        except ValidationError as error:
            return problem(422, "Invalid rules", invalid_fields(error))
        except InvalidRule as error:
            return problem(422, "Invalid rules", str(error))
        await run_in_threadpool(self.ledger.change_channel_rules, rule, who, why)
        return JSONResponse(_document(*self.queries.channel_rules(rule)))

    def get_sku(self, request: Request) -> Response:
        channel_id, sku = request.path_params["channel_id"], request.path_params["sku"]
        if channel_id not in self.by_channel:
            return _unknown(channel_id)
        return _refusal("", sku) or JSONResponse(self._sku_document(channel_id, sku))

    async def put_sku(self, request: Request) -> Response:
        channel_id, sku = request.path_params["channel_id"], request.path_params["sku"]
        if channel_id not in self.by_channel:
            return _unknown(channel_id)
        try:
            keys = SkuRulesIn.model_validate_json(await request.body()).model_dump(
                exclude_unset=True
            )
        except ValidationError as error:
            return problem(422, "Invalid rules", invalid_fields(error))
        if not keys:
            return problem(422, "Invalid rules", "set at least one key (DELETE removes them all)")
        return await self._override(request, channel_id, sku, keys)

    async def delete_sku(self, request: Request) -> Response:
        channel_id, sku = request.path_params["channel_id"], request.path_params["sku"]
        if channel_id not in self.by_channel:
            return _unknown(channel_id)
        return await self._override(request, channel_id, sku, {})

    async def _override(
        self, request: Request, channel_id: str, sku: str, keys: dict[str, Any]
    ) -> Response:
        who, why = _who_and_why(request)
        try:
            check_change(why, sku)
            rule_from(channel_id, keys, self.by_channel[channel_id])  # refuse what never applies
        except InvalidRule as error:
            return problem(422, "Invalid rules", str(error))
        await run_in_threadpool(self.ledger.override_sku_rules, channel_id, sku, keys, who, why)
        return JSONResponse(self._sku_document(channel_id, sku))

    def _sku_document(self, channel_id: str, sku: str) -> dict[str, Any]:
        default = self.by_channel[channel_id]
        _, recorded = self.queries.channel_rules(default)
        override = recorded.overrides.get(sku, {}) if recorded else {}
        rule = self.queries.rule_for(sku, default)
        return {
            "channel_id": channel_id,
            "sku": sku,
            "override": override,
            "rules": {k: v for k, v in asdict(rule).items() if k != "channel_id"},
        }


def _document(rule: ChannelRule, recorded: ChannelRules | None) -> dict[str, Any]:
    fields = asdict(rule)
    channel_id = fields.pop("channel_id")
    change = None
    if recorded is not None and recorded.rules:
        last = recorded.modified_on
        change = {"at": last.isoformat(), "version": recorded.version}
    return {"channel_id": channel_id, "rules": fields, "last_change": change}


class ChannelRulesIn(RulesConfig):
    """A channel's rules as the API takes them: its locations within the ledger's limits."""

    locations: Annotated[tuple[Location, ...], Field(max_length=MAX_LOCATIONS)] | None = None


class SkuRulesIn(ChannelRulesIn):
    """The keys of a channel's rule that differ for one SKU: only those set are recorded."""


def _who_and_why(request: Request) -> tuple[str, str]:
    who = getattr(request.state, "token", None) or "anonymous (no API tokens configured)"
    return who, request.query_params.get("reason", "")


def _refusal(reason: str, sku: str) -> Response | None:
    """A 422 for a SKU (or reason) the ledger could not record, else None."""
    try:
        check_change(reason, sku)
    except InvalidRule as error:
        return problem(422, "Invalid rules", str(error))
    return None


def _unknown(channel_id: str) -> Response:
    return problem(404, "Unknown channel", f"no channel {channel_id!r} is configured")
