"""Channel rules (what `GET /api/v1/channels/{id}/rules` answers): each channel's rules in force,
its per-SKU overrides and the history of their changes (who, when, why); and the form that
changes one key, of the channel's rules or of one SKU's override, with a reason, as `PUT` on the
JSON routes does (`write`), recorded as the rules' event like theirs."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from domain.allocation import ChannelRule, InvalidRule
from domain.rules import RULE_KEYS, check_change, rule_fields, rule_from
from interfaces.http.console.base import Console, Page
from interfaces.http.problems import invalid_fields
from interfaces.http.rules import ChannelRulesIn, SkuRulesIn

PATH = "/console/rules"
KEYS = sorted(RULE_KEYS)


def routes(console: Console) -> list[BaseRoute]:
    def listed(request: Request) -> Response:
        channels = [_channel(console, default) for default in console.api.rules]
        return console.render(request, "rules.html", channels=channels, keys=KEYS)

    def change(request: Request) -> Response:
        channel_id = request.path_params["channel_id"]
        default = next((r for r in console.api.rules if r.channel_id == channel_id), None)
        if default is None:
            detail = f"No channel {channel_id!r} is configured."
            return console.refuse(request, 404, "Unknown channel", detail)
        form = {k: str(v) for k, v in request.state.form.items()}
        who = getattr(request.state, "token", None) or "anonymous (no API tokens configured)"
        try:
            _changed(console, default, form, who)
        except ValidationError as error:
            return console.refuse(request, 422, "Invalid rules", invalid_fields(error))
        except InvalidRule as error:
            return console.refuse(request, 422, "Invalid rules", str(error))
        return console.redirect(f"{PATH}#rules-{channel_id}")

    return [
        Route(PATH, console.view(listed, "read"), methods=["GET"]),
        Route(PATH + "/{channel_id}", console.action(change, "write"), methods=["POST"]),
    ]


PAGE = Page("Rules", PATH, routes)


def _channel(console: Console, default: ChannelRule) -> dict[str, Any]:
    queries = console.api.queries
    rule, recorded = queries.channel_rules(default)
    return {
        "id": default.channel_id,
        "rules": rule_fields(rule),
        "overrides": dict(sorted(recorded.overrides.items())) if recorded else {},
        "changes": [asdict(change) for change in queries.rule_changes(default.channel_id)],
    }


def _changed(console: Console, default: ChannelRule, form: dict[str, str], who: str) -> None:
    """Record the form's one key (of the channel's rules, or of `sku`'s override when named).
    Raises `ValidationError` or `InvalidRule` for a key, value or reason it cannot take."""
    key, reason, sku = form.get("key", ""), form.get("reason", "").strip(), form.get("sku", "")
    if key not in RULE_KEYS:
        raise InvalidRule(f"key must be one of {', '.join(KEYS)}, not {key[:40]!r}")
    if not reason:
        raise InvalidRule("reason: say why the rule changes (it is recorded with the change)")
    check_change(reason, sku or None)
    value = value_of(key, form.get("value", ""))
    ledger, queries = console.api.ledger, console.api.queries
    if not sku:
        fields = {**rule_fields(queries.channel_rules(default)[0]), key: value}
        valid = ChannelRulesIn.model_validate(fields).model_dump()
        ledger.change_channel_rules(rule_from(default.channel_id, valid), who, reason)
        return
    _, recorded = queries.channel_rules(default)
    keys = {**(recorded.overrides.get(sku, {}) if recorded else {}), key: value}
    # An empty value takes the key out of the SKU's override: the channel's own applies again.
    keys = {k: v for k, v in keys.items() if v is not None}
    valid = SkuRulesIn.model_validate(keys).model_dump(exclude_unset=True)
    rule_from(default.channel_id, valid, default)  # refuse what never applies, as the API does
    ledger.override_sku_rules(default.channel_id, sku, valid, who, reason)


def value_of(key: str, text: str) -> Any:
    """A form's text as the rule's key takes it (pydantic converts numbers and flags): empty is
    None (no limit, every location); `locations` are separated by commas."""
    text = text.strip()
    if not text:
        return None
    if key == "locations":
        return [name.strip() for name in text.split(",")]
    return text
