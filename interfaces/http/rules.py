"""`GET|PUT /api/v1/channels/{id}/rules`: a channel's allocation rules, changed at run time.
Each change is recorded as an event with who made it and why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from application.ledger import Ledger
from domain.allocation import ChannelRule, InvalidRule
from domain.rules import ChannelRules
from infrastructure.config import RulesConfig
from interfaces.http.problems import problem


def rules_routes(ledger: Ledger, defaults: Sequence[ChannelRule]) -> list[Route]:
    by_channel = {rule.channel_id: rule for rule in defaults}

    def document(rule: ChannelRule, recorded: ChannelRules | None) -> dict[str, Any]:
        fields = asdict(rule)
        channel_id = fields.pop("channel_id")
        change = None
        if recorded is not None and recorded.rules:
            last = recorded.modified_on
            change = {"at": last.isoformat(), "version": recorded.version}
        return {"channel_id": channel_id, "rules": fields, "last_change": change}

    def get(request: Request) -> Response:
        default = by_channel.get(request.path_params["channel_id"])
        if default is None:
            return _unknown(request.path_params["channel_id"])
        return JSONResponse(document(*ledger.channel_rules(default)))

    async def put(request: Request) -> Response:
        channel_id = request.path_params["channel_id"]
        if channel_id not in by_channel:
            return _unknown(channel_id)
        try:
            fields = RulesConfig.model_validate_json(await request.body()).model_dump()
            rule = ChannelRule(channel_id=channel_id, **fields)
        except ValidationError as error:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                for e in error.errors()
            )
            return problem(422, "Invalid rules", detail)
        except InvalidRule as error:
            return problem(422, "Invalid rules", str(error))
        who = getattr(request.state, "token", None) or "anonymous (no API tokens configured)"
        reason = request.query_params.get("reason", "")
        await run_in_threadpool(ledger.change_channel_rules, rule, who, reason)
        return JSONResponse(document(*ledger.channel_rules(rule)))

    return [
        Route("/api/v1/channels/{channel_id}/rules", get, methods=["GET"]),
        Route("/api/v1/channels/{channel_id}/rules", put, methods=["PUT"]),
    ]


def _unknown(channel_id: str) -> Response:
    return problem(404, "Unknown channel", f"no channel {channel_id!r} is configured")
