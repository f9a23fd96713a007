"""Shopify GraphQL Admin inventory writes: `inventorySetQuantities`, compare-and-set, idempotent.

Each quantity carries `changeFromQuantity`, the quantity Shopify last acknowledged to us (null
only for a first push): a shopper's sale we have not heard of yet makes Shopify answer
`CHANGE_FROM_QUANTITY_STALE`, and we re-read instead of overwriting (CHANNELS.md §1.2); the
pusher decides what may follow (`infrastructure/push/decisions.py`).

Every mutation carries `@idempotent(key:)`, derived from everything it sends (each SKU's ledger
version, quantity and `changeFromQuantity`): a retry after a lost answer (a timeout, a 5xx) sends
the same key and gets Shopify's first result instead of applying twice, while other parameters
make another key (a rules change recomputes a quantity at the same ledger version). A key whose
answer we have seen is not sent again: the same parameters sent again on purpose get a fresh
key. Shopify's idempotency refusals leave the pushes unanswered, so they go again:
`IDEMPOTENCY_CONCURRENT_REQUEST` (the first request is still running) under the same key,
`IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED` and `IDEMPOTENCY_KEY_PARAMETER_MISMATCH` under a new one.

Shopify knows stock by inventory item id: SKUs are looked up (`inventoryItems(query: "sku:…")`)
and the ids kept for the life of the gateway. Throttling follows the calculated query cost model
(§1.3): a `THROTTLED` answer names the cost asked and the points available and restored per
second, from which the wait follows.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from infrastructure.channels.gateway import (
    NO_RATES,
    UNGATED,
    AnswersAtOnce,
    ChannelError,
    Gate,
    Push,
    PushResult,
    PushStatus,
    Throttled,
)
from infrastructure.channels.http import exchange

API_VERSION = "2026-04"  # the first version with `changeFromQuantity` required
MAX_INPUT = 250  # the largest input array or page Shopify accepts (shopify.dev/api/usage/limits)
_KEYS = uuid.UUID("5b0f9f8e-2a4c-4f57-9d38-1c2a7f0b6e21")  # uuid5 namespace of our idempotency keys
KEYS_REMEMBERED = 10_000  # answered idempotency keys kept, so none is sent again
STALE = "CHANGE_FROM_QUANTITY_STALE"
CONCURRENT = "IDEMPOTENCY_CONCURRENT_REQUEST"  # the same key again, later
SPENT = frozenset({"IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED", "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"})

LOOKUP = """
query InventoryBySku($query: String!, $first: Int!, $location: ID!) {
  inventoryItems(first: $first, query: $query) {
    nodes {
      id
      sku
      inventoryLevel(locationId: $location) { quantities(names: ["available"]) { name quantity } }
    }
  }
}
"""

SET_QUANTITIES = """
mutation SetAvailable($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id }
    userErrors { code field message }
  }
}
"""

Json = dict[str, Any]


class _Refused(ChannelError):
    """Raised when Shopify refuses a whole request (a GraphQL error other than throttling)."""


@dataclass(frozen=True)
class _Found:
    """A SKU's inventory item, and what it shows at our location (None: not stocked there)."""

    item_id: str
    available: int | None


class ShopifyGateway(AnswersAtOnce):
    """One Shopify shop's stock at one location, through the GraphQL Admin API.

    Parameters:
        shop_url: `https://<shop>.myshopify.com` (or a sandbox's URL).
        access_token: the Admin API access token (`X-Shopify-Access-Token`).
        location_id: the location whose `available` quantity invsync sets, as a gid
            (`gid://shopify/Location/123`) or its number.
        channel_id: the channel account's id in invsync (part of every idempotency key).
        api_version: the Admin API version; 2026-04 or later (`changeFromQuantity` semantics).
        timeout: seconds for each API call.
        transport: an httpx transport, for tests.
        reason: the `inventorySetQuantities` reason Shopify records with each change.
        gate: where each call takes its turn of the channel's rate.
    """

    max_batch = MAX_INPUT

    def __init__(
        self,
        shop_url: str,
        access_token: str,
        location_id: str | int,
        *,
        channel_id: str = "shopify",
        api_version: str = API_VERSION,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        reason: str = "correction",
        gate: Gate = UNGATED,
    ) -> None:
        self.channel_id = channel_id
        self.turns = gate.turns(NO_RATES)
        self.location_id = (
            location_id
            if str(location_id).startswith("gid://")
            else f"gid://shopify/Location/{location_id}"
        )
        self.reason = reason
        self._items: dict[str, str] = {}  # SKU → inventory item gid
        self._spent: dict[str, int] = {}  # parameters' fingerprint → keys of it answered
        self._client = httpx.Client(
            base_url=f"{shop_url.rstrip('/')}/admin/api/{api_version}",
            timeout=timeout,
            transport=transport,
            headers={"X-Shopify-Access-Token": access_token, "User-Agent": "invsync"},
        )

    def push(self, pushes: Sequence[Push]) -> list[PushResult]:
        """Set each SKU's `available` quantity, compared against `Push.acknowledged`.

        The mutation is all or nothing: when Shopify refuses some quantities, the others go again
        in a mutation of their own (under its own idempotency key). A stale quantity is re-read
        and answered STALE with what Shopify shows now (even when that is ours: it moved on its
        own). Pushes an idempotency refusal left unanswered have no result: they go again.

        Raises:
            Throttled: Shopify answered THROTTLED (or 429); retry after `retry_after` seconds.
            ChannelUnavailable: Shopify could not be reached, timed out or answered 5xx.
            ChannelAuthFailed: the access token was refused (401/403).
        """
        results: dict[str, PushResult] = {}
        try:
            self._resolve([p.sku for p in pushes if p.sku not in self._items])
        except _Refused as error:
            return [PushResult(p.sku, PushStatus.REJECTED, detail=str(error)) for p in pushes]
        waiting = []
        for push in pushes:
            if push.sku in self._items:
                waiting.append(push)
            else:
                results[push.sku] = PushResult(push.sku, PushStatus.UNKNOWN_SKU)
        stale: list[Push] = []
        while waiting:
            waiting = self._set(waiting, results, stale)
        results.update(self._stale(stale))
        return [results[p.sku] for p in pushes if p.sku in results]

    def read(self, skus: Sequence[str]) -> Mapping[str, int | None]:
        """The `available` quantity Shopify shows for each SKU at our location; None for a SKU
        it does not list or does not stock there."""
        found = self._resolve(skus)
        return {sku: found[sku].available if sku in found else None for sku in skus}

    def listings(self, skus: Sequence[str]) -> list[tuple[str, str]]:
        """`(item ref, sku)`: how the translator names each SKU's inventory item in
        `inventory_levels/update` observations (`shopify-inventory-item:<id>`), looked up (and
        cached for the push) if need be; SKUs Shopify does not list are left out. Filed before
        the push, so the webhook a push causes finds its SKU however fast it comes."""
        with contextlib.suppress(_Refused):  # the push answers for them
            self._resolve([sku for sku in skus if sku not in self._items])
        return [
            (f"shopify-inventory-item:{item.rsplit('/', 1)[-1]}", sku)
            for sku in skus
            if (item := self._items.get(sku))
        ]

    def close(self) -> None:
        self._client.close()

    # Writes ----------------------------------------------------------------------------------

    def _set(
        self, pushes: list[Push], results: dict[str, PushResult], stale: list[Push]
    ) -> list[Push]:
        """One mutation for `pushes`; the pushes to send again (those Shopify did not refuse,
        when it refused others)."""
        variables, fingerprint = self._set_variables(pushes)
        try:
            answer = self.graphql(SET_QUANTITIES, variables)
        except _Refused as error:
            self._spend(fingerprint)
            results.update(
                {p.sku: PushResult(p.sku, PushStatus.REJECTED, detail=str(error)) for p in pushes}
            )
            return []
        payload = (answer.get("data") or {}).get("inventorySetQuantities") or {}
        refused = _refusals(payload.get("userErrors") or [], len(pushes))
        codes = {refusal.get("code") for refusal in refused.values()}
        if CONCURRENT not in codes:  # otherwise the first request's answer is still to come
            self._spend(fingerprint)
        if not refused:
            for push in pushes:
                results[push.sku] = PushResult(push.sku, PushStatus.APPLIED, push.quantity)
            return []
        again = []
        for index, push in enumerate(pushes):
            refusal = refused.get(index)
            if refusal is None:
                again.append(push)
            elif refusal["code"] == STALE:
                stale.append(push)
            elif refusal["code"] == CONCURRENT or refusal["code"] in SPENT:
                continue  # unanswered: the pusher sends it again (under a new key if spent)
            else:
                if refusal["code"] == "INVALID_INVENTORY_ITEM":
                    self._items.pop(push.sku, None)  # deleted: the next push looks it up afresh
                results[push.sku] = PushResult(
                    push.sku, PushStatus.REJECTED, detail=_describe(refusal)
                )
        return again

    def _set_variables(self, pushes: Sequence[Push]) -> tuple[Json, str]:
        """The mutation's variables, and the fingerprint of its parameters."""
        quantities = [
            {
                "inventoryItemId": self._items[p.sku],
                "locationId": self.location_id,
                "quantity": p.quantity,
                "changeFromQuantity": p.acknowledged,  # explicit null: no check
            }
            for p in pushes
        ]
        fingerprint = json.dumps(
            [self.channel_id, self.reason, sorted(p.version for p in pushes), quantities],
            sort_keys=True,
        )
        key = self._idempotency_key(fingerprint)
        variables = {
            "key": key,
            "input": {
                "name": "available",
                "reason": self.reason,
                "referenceDocumentUri": f"invsync://{self.channel_id}/pushes/{key}",
                "quantities": quantities,
            },
        }
        return variables, fingerprint

    def _idempotency_key(self, fingerprint: str) -> str:
        """The same parameters make the same key until Shopify has answered it, so a retry
        after a lost answer gets the first result; any other parameters make another key."""
        spent = self._spent.get(fingerprint, 0)
        return str(uuid.uuid5(_KEYS, f"{fingerprint}#{spent}" if spent else fingerprint))

    def _spend(self, fingerprint: str) -> None:
        """Shopify answered the key of `fingerprint`: the same parameters get the next key."""
        self._spent[fingerprint] = self._spent.pop(fingerprint, 0) + 1
        if len(self._spent) > KEYS_REMEMBERED:
            del self._spent[next(iter(self._spent))]  # the oldest

    def _stale(self, pushes: list[Push]) -> dict[str, PushResult]:
        if not pushes:
            return {}
        shown = self.read([p.sku for p in pushes])
        results = {}
        for push in pushes:
            # STALE even when it shows our quantity: it moved on its own, and the pusher must
            # know by how much (sales of its own the ledger may not have recorded yet).
            now = shown[push.sku]
            status = PushStatus.STALE if now is not None else PushStatus.UNKNOWN_SKU
            results[push.sku] = PushResult(push.sku, status, now, detail=STALE)
        return results

    # Lookups ---------------------------------------------------------------------------------

    def _resolve(self, skus: Sequence[str]) -> dict[str, _Found]:
        """Look `skus` up (caching their ids); the ones Shopify lists."""
        found: dict[str, _Found] = {}
        unique = list(dict.fromkeys(skus))
        for chunk in (unique[i : i + MAX_INPUT] for i in range(0, len(unique), MAX_INPUT)):
            query = " OR ".join(f"sku:{_quoted(sku)}" for sku in chunk)
            # Room for a few near matches, while the cost asked stays near what is found.
            first = min(MAX_INPUT, 2 * len(chunk))
            answer = self.graphql(
                LOOKUP, {"query": query, "first": first, "location": self.location_id}
            )
            wanted = set(chunk)
            for node in ((answer.get("data") or {}).get("inventoryItems") or {}).get("nodes", []):
                # Shopify's search matches tokens: keep exact SKUs, the first item of each.
                sku = node.get("sku")
                if sku in wanted and sku not in found:
                    found[sku] = _Found(node["id"], available_of(node.get("inventoryLevel")))
        self._items.update({sku: f.item_id for sku, f in found.items()})
        for sku in skus:
            if sku not in found:
                self._items.pop(sku, None)
        return found

    # HTTP ------------------------------------------------------------------------------------

    def graphql(self, query: str, variables: Json) -> Json:
        self.take_turn()
        response = exchange(
            self._client,
            "Shopify",
            "POST",
            "/graphql.json",
            json={"query": query, "variables": variables},
            retry_after=lambda throttled: _retry_after(throttled, _json(throttled)),
            credentials_refused=_token_refused,
        )
        answer = _json(response)
        if _throttled(answer):  # the cost model's refusal comes as a 200
            raise Throttled("Shopify throttled the call", _retry_after(response, answer))
        if response.status_code >= 400 or answer.get("errors"):
            raise _Refused(
                f"Shopify refused the request ({response.status_code}): {answer.get('errors')}"
            )
        return answer


def _json(response: httpx.Response) -> Json:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _token_refused(response: httpx.Response) -> str:
    return f"Shopify refused the access token ({response.status_code})"


def _throttled(answer: Json) -> bool:
    errors = answer.get("errors")
    return isinstance(errors, list) and any(
        isinstance(e, dict) and (e.get("extensions") or {}).get("code") == "THROTTLED"
        for e in errors
    )


def _retry_after(response: httpx.Response, answer: Json) -> float:
    """Seconds until the bucket holds the cost asked: (requested - available) / restore rate;
    a 429's Retry-After when it names one."""
    header = response.headers.get("Retry-After")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
    cost = (answer.get("extensions") or {}).get("cost") or {}
    status = cost.get("throttleStatus") or {}
    try:
        missing = float(cost["requestedQueryCost"]) - float(status["currentlyAvailable"])
        return max(missing, 1.0) / float(status["restoreRate"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return 1.0


def _refusals(errors: list[Json], size: int) -> dict[int, Json]:
    """User errors by the index of the quantity they name (`input.quantities.<i>.…`); an error
    naming no quantity (a reason, the idempotency key) refuses all of them."""
    by_index: dict[int, Json] = {}
    for error in errors:
        path = error.get("field") or []
        if len(path) > 2 and path[:2] == ["input", "quantities"] and str(path[2]).isdigit():
            by_index.setdefault(int(path[2]), error)
        else:
            by_index.update({i: error for i in range(size) if i not in by_index})
    return by_index


def _describe(error: Json) -> str:
    return f"{error.get('code')}: {error.get('message')}"


def available_of(level: Json | None) -> int | None:
    if level is None:
        return None
    shown = {q["name"]: q["quantity"] for q in level.get("quantities") or []}
    value = shown.get("available")
    return int(value) if value is not None else None


def _quoted(sku: str) -> str:
    return '"' + sku.replace("\\", "\\\\").replace('"', '\\"') + '"'
