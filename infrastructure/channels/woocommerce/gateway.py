"""WooCommerce REST v3 inventory writes: absolute `stock_quantity` per product or variation.

WooCommerce knows products by numeric id, so each SKU is looked up once
(`GET /products?sku=A,B,…`, which also finds variations when filtering by SKU) and its id and
parent kept for the life of the gateway. Writes go through the batch endpoints, products to
`/products/batch` and variations to `/products/<parent>/variations/batch`, never more than the
100 objects a request may carry (CHANNELS.md §2.2). Writes are absolute and WooCommerce offers
no compare-and-set, so `Push.acknowledged` is not used and no result is STALE.
"""

from __future__ import annotations

import email.utils
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import httpx

from infrastructure.channels.gateway import (
    AnswersAtOnce,
    ChannelAuthFailed,
    ChannelError,
    ChannelUnavailable,
    Push,
    PushResult,
    PushStatus,
    Throttled,
)

API = "/wp-json/wc/v3"
BATCH_LIMIT = 100  # objects per batch request (`woocommerce_rest_batch_items_limit`)
PAGE_LIMIT = 100  # WordPress's largest `per_page`, so one lookup call names this many SKUs
_INVALID_IDS = frozenset(
    {"woocommerce_rest_product_invalid_id", "woocommerce_rest_product_variation_invalid_id"}
)


Indexed = tuple[int, Push]  # a push and its place in the `push` call


@dataclass(frozen=True)
class _Ref:
    """Where a SKU lives in WooCommerce: a product (`parent` 0) or a variation of `parent`."""

    id: int
    parent: int


class WooCommerceGateway(AnswersAtOnce):
    """One WooCommerce store's stock, through REST v3 with a consumer key and secret.

    Parameters:
        base_url: the site's home URL (`https://shop.example`), without `/wp-json`.
        consumer_key, consumer_secret: a REST API key with write access, sent as HTTP Basic
            credentials (WooCommerce accepts them so over HTTPS).
        channel_id: the channel account's id in invsync.
        timeout: seconds for each API call.
        transport: an httpx transport, for tests.
        default_retry_after: seconds to wait after a 429 that names no Retry-After.
    """

    # One batch call per push for simple products, so the pushers' rate limit (one admission per
    # push) counts calls; a larger push still works, split into calls of 100.
    max_batch = BATCH_LIMIT

    def __init__(
        self,
        base_url: str,
        consumer_key: str,
        consumer_secret: str,
        *,
        channel_id: str = "woocommerce",
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        default_retry_after: float = 30.0,
    ) -> None:
        self.channel_id = channel_id
        self.default_retry_after = default_retry_after
        self._refs: dict[str, _Ref] = {}
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + API,
            auth=httpx.BasicAuth(consumer_key, consumer_secret),
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": "invsync", "Accept": "application/json"},
        )

    def push(self, pushes: Sequence[Push]) -> list[PushResult]:
        """Set each SKU's `stock_quantity` (and `manage_stock`), one result per push.

        Raises:
            Throttled: the host answered 429 (batches sent before it stay applied).
            ChannelUnavailable: WooCommerce could not be reached, timed out or answered 5xx.
            ChannelAuthFailed: the key was refused (401/403).
        """
        indexed = list(enumerate(pushes))
        results = self._push_once(indexed)
        # An id that no longer exists means the product was deleted, maybe re-created under a
        # new id: the cache was evicted, so one more round looks those SKUs up afresh.
        moved = [(i, push) for i, push in indexed if results[i] is None]
        if moved:
            results.update(self._push_once(moved))
        return [results[i] or _unknown(push.sku) for i, push in indexed]

    def read(self, skus: Sequence[str]) -> Mapping[str, int | None]:
        """The `stock_quantity` WooCommerce shows for each SKU; None for a SKU it does not list
        or whose stock it does not manage."""
        found = self._lookup(skus)
        shown: dict[str, int | None] = {}
        for sku in skus:
            product = found.get(sku, {})
            shown[sku] = product.get("stock_quantity") if product.get("manage_stock") else None
        return shown

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Pushing ------------------------------------------------------------------------------

    def _push_once(self, pushes: Sequence[Indexed]) -> dict[int, PushResult | None]:
        """Results by the pushes' indexes; None where the cached id has gone (cache evicted)."""
        missing = [push.sku for _, push in pushes if push.sku not in self._refs]
        if missing:
            self._lookup(missing)
        results: dict[int, PushResult | None] = {}
        by_parent: dict[int, list[Indexed]] = defaultdict(list)
        for i, push in pushes:
            ref = self._refs.get(push.sku)
            if ref is None:
                results[i] = _unknown(push.sku)
            else:
                by_parent[ref.parent].append((i, push))
        for parent, group in by_parent.items():
            for chunk in _chunks(group, BATCH_LIMIT):
                results.update(self._batch(parent, chunk))
        return results

    def _batch(self, parent: int, pushes: Sequence[Indexed]) -> dict[int, PushResult | None]:
        path = f"/products/{parent}/variations/batch" if parent else "/products/batch"
        update = [
            {"id": self._refs[p.sku].id, "manage_stock": True, "stock_quantity": p.quantity}
            for _, p in pushes
        ]
        response = self._call("POST", path, json={"update": update})
        if response.status_code >= 400:  # the whole request refused (e.g. 400, 404, 413)
            detail = _describe(response)
            return {i: PushResult(p.sku, PushStatus.REJECTED, detail=detail) for i, p in pushes}
        # WooCommerce answers the updates in the order they were asked.
        body = _json(response)
        answered = body.get("update") if isinstance(body, dict) else None
        if not isinstance(answered, list) or len(answered) != len(pushes):
            raise ChannelError(f"WooCommerce answered {path} with no result per item")
        return {i: self._result(p, item) for (i, p), item in zip(pushes, answered, strict=True)}

    def _result(self, push: Push, item: Any) -> PushResult | None:
        error = item.get("error") if isinstance(item, dict) else None
        if error is None and isinstance(item, dict):
            return PushResult(push.sku, PushStatus.APPLIED, item.get("stock_quantity"))
        error = error if isinstance(error, dict) else {}
        if error.get("code") in _INVALID_IDS:
            self._refs.pop(push.sku, None)
            return None
        detail = f"{error.get('code', 'error')}: {error.get('message', item)}"
        return PushResult(push.sku, PushStatus.REJECTED, detail=detail)

    # Looking up ---------------------------------------------------------------------------

    def _lookup(self, skus: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The products and variations with these SKUs, by SKU; caches their ids."""
        found: dict[str, dict[str, Any]] = {}
        wanted = set(skus)
        for group in _sku_groups(skus):
            response = self._call(
                "GET", "/products", params={"sku": ",".join(group), "per_page": PAGE_LIMIT}
            )
            if response.status_code >= 400:
                raise ChannelError(f"WooCommerce refused a SKU lookup: {_describe(response)}")
            products = _json(response)
            if not isinstance(products, list):
                raise ChannelError("WooCommerce answered a SKU lookup with no list")
            for product in products:
                sku = product.get("sku") if isinstance(product, dict) else None
                if sku in wanted:
                    found[sku] = product
                    self._refs[sku] = _Ref(int(product["id"]), int(product.get("parent_id") or 0))
        return found

    # HTTP ---------------------------------------------------------------------------------

    def _call(self, method: str, path: str, **options: Any) -> httpx.Response:
        """One API call; the channel-wide answers become errors, the rest is the caller's."""
        self.take_turn()
        try:
            response = self._client.request(method, path, **options)
        except httpx.TimeoutException as error:
            raise ChannelUnavailable(f"WooCommerce did not answer {path} in time") from error
        except httpx.TransportError as error:
            raise ChannelUnavailable(f"WooCommerce cannot be reached: {error}") from error
        status = response.status_code
        if status in (401, 403):
            raise ChannelAuthFailed(
                f"WooCommerce refused the API key ({_describe(response)}): check the consumer "
                "key and secret, and that the key has read/write permission"
            )
        if status == 429:
            delay = _retry_after(response.headers.get("retry-after"), self.default_retry_after)
            raise Throttled(f"WooCommerce's host throttled {path}", retry_after=delay)
        if status >= 500:
            raise ChannelUnavailable(f"WooCommerce answered {status} to {path}")
        return response


def _unknown(sku: str) -> PushResult:
    return PushResult(sku, PushStatus.UNKNOWN_SKU, detail="no WooCommerce product has this SKU")


def _chunks(items: Sequence[Indexed], size: int) -> Iterator[Sequence[Indexed]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _sku_groups(skus: Sequence[str]) -> Iterator[list[str]]:
    """SKUs to look up together. WooCommerce splits the `sku` filter on commas, so a SKU that
    holds one is looked up alone (it also matches the whole string)."""
    plain = list(dict.fromkeys(sku for sku in skus if "," not in sku))
    for start in range(0, len(plain), PAGE_LIMIT):
        yield plain[start : start + PAGE_LIMIT]
    for sku in dict.fromkeys(sku for sku in skus if "," in sku):
        yield [sku]


def _retry_after(value: str | None, default: float) -> float:
    """Retry-After in seconds, given as seconds or as an HTTP date."""
    if not value:
        return default
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(when.timestamp() - time.time(), 0.0)


def _json(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _describe(response: httpx.Response) -> str:
    """WordPress REST errors are `{"code", "message", "data": {"status"}}`."""
    body = _json(response)
    if isinstance(body, dict) and "code" in body:
        return f"HTTP {response.status_code} {body['code']}: {body.get('message', '')}"
    return f"HTTP {response.status_code}"
