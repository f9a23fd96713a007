"""WooCommerce REST v3 inventory writes: absolute `stock_quantity` per product or variation.

WooCommerce knows products by numeric id, so each SKU is looked up once
(`GET /products?sku=A,B,…`, which also finds variations when filtering by SKU) and its id and
parent kept for the life of the gateway. Writes go through the batch endpoints, products to
`/products/batch` and variations to `/products/<parent>/variations/batch`, never more than the
100 objects a request may carry (CHANNELS.md §2.2).

Writes are absolute and WooCommerce offers no compare-and-set, so the gateway makes one: before
pushes with an acknowledgement it reads what the store shows (the lookup call: one per 100 SKUs,
a turn of the channel's rate), writes where the store still shows what it acknowledged, writes
nothing where it shows the target already, and answers STALE with what it shows where it moved
under us (`compare_and_set`), as Shopify's `changeFromQuantity` refusal does.

WooCommerce answers success but ignores `stock_quantity` when stock management is off, for the
product or for the whole store: a write whose answer does not show the quantity sent, managed, is
REJECTED with what to change.

Credentials: HTTP Basic over HTTPS; one-legged OAuth 1.0a over plain HTTP (see `auth`).
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

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
)
from infrastructure.channels.http import exchange, json_of
from infrastructure.channels.woocommerce.auth import api_auth
from infrastructure.channels.woocommerce.batch_items import (
    NoResult,
    failed_on_its_side,
    stock_ignored,
)
from infrastructure.channels.woocommerce.compare_and_set import Verdict, decide, needs_read
from infrastructure.channels.woocommerce.refunds import WooRefund, parse_refunds

log = logging.getLogger(__name__)

API = "/wp-json/wc/v3"
BATCH_LIMIT = 100  # objects per batch request (`woocommerce_rest_batch_items_limit`)
PAGE_LIMIT = 100  # WordPress's largest `per_page`, so one lookup call names this many SKUs
_INVALID_IDS = frozenset(
    {"woocommerce_rest_product_invalid_id", "woocommerce_rest_product_variation_invalid_id"}
)


Indexed = tuple[int, Push]  # a push and its place in the `push` call
Write = tuple[int, Push, int]  # ... and the quantity to write


_Outcome = PushResult | NoResult


@dataclass(frozen=True)
class _Ref:
    """Where a SKU lives in WooCommerce: a product (`parent` 0) or a variation of `parent`."""

    id: int
    parent: int


class WooCommerceGateway(AnswersAtOnce):
    """One WooCommerce store's stock, through REST v3 with a consumer key and secret.

    Parameters:
        base_url: the site's home URL (`https://shop.example`), without `/wp-json`.
        consumer_key, consumer_secret: a REST API key with write access: HTTP Basic credentials
            over HTTPS, OAuth 1.0a signatures over plain HTTP.
        channel_id: the channel account's id in invsync.
        timeout: seconds for each API call.
        transport: an httpx transport, for tests.
        default_retry_after: seconds to wait after a 429 that names no Retry-After.
        gate: where each call takes its turn of the channel's rate.

    Raises:
        ValueError: `base_url` is neither https:// nor http://.
    """

    # One read and one batch call per push for simple products, on the two turns the pusher
    # takes together; a larger push still works, in calls of 100, each extra on a turn of its own.
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
        gate: Gate = UNGATED,
    ) -> None:
        self.channel_id = channel_id
        self.turns = gate.turns(NO_RATES)
        self.default_retry_after = default_retry_after
        self._refs: dict[str, _Ref] = {}
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + API,
            auth=api_auth(base_url, consumer_key, consumer_secret),
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": "invsync", "Accept": "application/json"},
        )

    def push(self, pushes: Sequence[Push]) -> list[PushResult]:
        """Set each SKU's `stock_quantity` (and `manage_stock`), one result per push: APPLIED
        with what the store shows; STALE with what it shows, nothing written, where it no
        longer shows what it acknowledged; REJECTED where WooCommerce refused or ignored it;
        UNKNOWN_SKU where no product has the SKU; none where WooCommerce failed the item on
        its side (a 5xx in the batch's 200 answer): it goes again.

        Raises:
            Throttled: the host answered 429 (batches sent before it stay applied).
            ChannelUnavailable: WooCommerce could not be reached, timed out or answered 5xx.
            ChannelAuthFailed: the key was refused (401/403).
        """
        indexed = list(enumerate(pushes))
        results = self._push_once(indexed)
        # An id that no longer exists means the product was deleted, maybe re-created under a
        # new id: the cache was evicted, so one more round looks those SKUs up afresh.
        evicted = [(i, push) for i, push in indexed if results[i] is NoResult.EVICTED]
        if evicted:
            results.update(self._push_once(evicted))
        return [r for i, p in indexed if (r := _answer(p, results[i])) is not None]

    def read(self, skus: Sequence[str]) -> Mapping[str, int | None]:
        """The `stock_quantity` WooCommerce shows for each SKU; None for a SKU it does not list
        or whose stock it does not manage."""
        found = self._lookup(skus)
        return {sku: managed_stock(found.get(sku)) for sku in skus}

    def refunds(self, order_id: str) -> list[WooRefund]:
        """The refunds of WooCommerce order `order_id`, oldest first, each line with the order
        line it refunds, its SKU, the units (a positive count) and whether they were restocked
        (None when WooCommerce's records do not tell). An order WooCommerce does not know has
        none. One call for the refunds, one more for the order when a refund has lines; each
        takes a turn of the channel's rate.

        Raises:
            ValueError: `order_id` is not a WooCommerce order id (digits).
            Throttled, ChannelUnavailable, ChannelAuthFailed: as for `push`.
            ChannelError: WooCommerce refused the read or answered something unreadable.
        """
        _check_order_id(order_id)
        refunds = [item for page in self.pages(f"/orders/{order_id}/refunds") for item in page]
        order = None
        if any(refund.get("line_items") for refund in refunds if isinstance(refund, dict)):
            response = self._call("GET", f"/orders/{order_id}")
            body = json_of(response) if response.status_code == 200 else None
            order = body if isinstance(body, dict) else None
        try:
            return parse_refunds(refunds, order)
        except ValueError as error:
            raise ChannelError(str(error)) from error

    def order(self, order_id: str) -> dict[str, Any] | None:
        """WooCommerce order `order_id` as its REST API shows it now (a trashed one with status
        `trash`); None once it is deleted for good. One call, on a turn of the channel's rate.

        Raises:
            ValueError: `order_id` is not a WooCommerce order id (digits).
            Throttled, ChannelUnavailable, ChannelAuthFailed: as for `push`.
            ChannelError: WooCommerce refused the read or answered something unreadable.
        """
        _check_order_id(order_id)
        response = self._call("GET", f"/orders/{order_id}")
        if response.status_code == 404:
            return None
        body = json_of(response)
        if response.status_code != 200 or not isinstance(body, dict):
            raise ChannelError(f"WooCommerce answered {response.status_code} for order {order_id}")
        return body

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Pushing ------------------------------------------------------------------------------

    def _push_once(self, pushes: Sequence[Indexed]) -> dict[int, _Outcome]:
        """Results by the pushes' indexes, or why a push has none."""
        wanted = [p.sku for _, p in pushes if p.sku not in self._refs or needs_read(p.acknowledged)]
        shown = self._lookup(wanted) if wanted else {}
        results: dict[int, _Outcome] = {}
        by_parent: dict[int, list[Write]] = defaultdict(list)
        for i, push in pushes:
            ref = self._refs.get(push.sku)
            if ref is None:
                results[i] = _unknown(push.sku)
                continue
            decision = decide(push.quantity, push.acknowledged, managed_stock(shown.get(push.sku)))
            if decision.verdict is Verdict.WRITE:
                by_parent[ref.parent].append((i, push, decision.quantity))
            elif decision.verdict is Verdict.UNCHANGED:  # a write would only race a sale
                results[i] = PushResult(push.sku, PushStatus.APPLIED, decision.quantity)
            else:
                results[i] = _moved(push, decision.quantity)
        for parent, group in by_parent.items():
            for start in range(0, len(group), BATCH_LIMIT):
                results.update(self._batch(parent, group[start : start + BATCH_LIMIT]))
        return results

    def _batch(self, parent: int, writes: Sequence[Write]) -> dict[int, _Outcome]:
        path = f"/products/{parent}/variations/batch" if parent else "/products/batch"
        update = [
            {"id": self._refs[p.sku].id, "manage_stock": True, "stock_quantity": quantity}
            for _, p, quantity in writes
        ]
        response = self._call("POST", path, json={"update": update})
        if response.status_code >= 400:  # the whole request refused (e.g. 400, 404, 413)
            detail = _describe(response)
            return {i: PushResult(p.sku, PushStatus.REJECTED, detail=detail) for i, p, _ in writes}
        # WooCommerce answers the updates in the order they were asked.
        body = json_of(response)
        answered = body.get("update") if isinstance(body, dict) else None
        if not isinstance(answered, list) or len(answered) != len(writes):
            raise ChannelError(f"WooCommerce answered {path} with no result per item")
        return {
            i: self._result(p, quantity, item)
            for (i, p, quantity), item in zip(writes, answered, strict=True)
        }

    def _result(self, push: Push, quantity: int, item: Any) -> _Outcome:
        """The push's result from its item in the batch's answer, or why it has none."""
        error = item.get("error") if isinstance(item, dict) else None
        if error is None and isinstance(item, dict):
            if item.get("manage_stock") is True and item.get("stock_quantity") == quantity:
                return PushResult(push.sku, PushStatus.APPLIED, quantity)
            return PushResult(push.sku, PushStatus.REJECTED, detail=stock_ignored(quantity, item))
        error = error if isinstance(error, dict) else {}
        if error.get("code") in _INVALID_IDS:
            self._refs.pop(push.sku, None)
            return NoResult.EVICTED
        detail = f"{error.get('code', 'error')}: {error.get('message', item)}"
        if failed_on_its_side(error):
            log.warning("%s: %s=%d goes again: %s", self.channel_id, push.sku, quantity, detail)
            return NoResult.AGAIN
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
            products = json_of(response)
            if not isinstance(products, list):
                raise ChannelError("WooCommerce answered a SKU lookup with no list")
            for product in products:
                sku = product.get("sku") if isinstance(product, dict) else None
                if sku in wanted:
                    found[sku] = product
                    self._refs[sku] = _Ref(int(product["id"]), int(product.get("parent_id") or 0))
        return found

    def page(self, path: str, params: Mapping[str, str | int], page: int) -> tuple[list[Any], int]:
        """Page `page` of a paged list (`PAGE_LIMIT` items) and how many pages it has
        (`X-WP-TotalPages`); one call, on a turn of the channel's rate.

        Raises:
            ChannelError: WooCommerce refused the read or answered no list (and as `push`).
        """
        query = {**params, "per_page": PAGE_LIMIT, "page": page}
        response = self._call("GET", path, params=query)
        if response.status_code >= 400:
            raise ChannelError(f"WooCommerce refused to list {path}: {_describe(response)}")
        body = json_of(response)
        if not isinstance(body, list):
            raise ChannelError(f"WooCommerce answered {path} with no list")
        total = response.headers.get("x-wp-totalpages", "1")
        return body, int(total) if total.isdigit() else 1

    def pages(self, path: str) -> Iterator[list[Any]]:
        """The pages of a paged list, one call each as it is asked for. Raises as `page`."""
        number, pages = 1, 1
        while number <= pages:
            found, pages = self.page(path, {}, number)
            yield found
            number += 1

    # HTTP ---------------------------------------------------------------------------------

    def _call(self, method: str, path: str, **options: Any) -> httpx.Response:
        """One API call; the channel-wide answers become errors, the rest is the caller's."""
        self.take_turn()
        return exchange(
            self._client,
            "WooCommerce",
            method,
            path,
            retry_after=lambda throttled: _retry_after(
                throttled.headers.get("retry-after"), self.default_retry_after
            ),
            credentials_refused=_key_refused,
            **options,
        )


def _key_refused(response: httpx.Response) -> str:
    return (
        f"WooCommerce refused the API key ({_describe(response)}): check the consumer key and "
        "secret, and that the key has read/write permission"
    )


def _check_order_id(order_id: str) -> None:
    # Checked before it goes into a path: only digits name an order.
    if not order_id.isdigit():
        raise ValueError(f"WooCommerce order ids are numbers, not {order_id!r}")


def _answer(push: Push, outcome: _Outcome) -> PushResult | None:
    """The push's result once its rounds are over: none where it goes again, UNKNOWN_SKU
    where its id went in the second round too."""
    if outcome is NoResult.AGAIN:
        return None
    return _unknown(push.sku) if outcome is NoResult.EVICTED else outcome


def _unknown(sku: str) -> PushResult:
    return PushResult(sku, PushStatus.UNKNOWN_SKU, detail="no WooCommerce product has this SKU")


def managed_stock(product: dict[str, Any] | None) -> int | None:
    """The stock a product shows, None when WooCommerce does not manage it (or lists none)."""
    if product is None or product.get("manage_stock") is not True:
        return None
    quantity = product.get("stock_quantity")
    return quantity if isinstance(quantity, int) else None


def _moved(push: Push, shows: int) -> PushResult:
    detail = (
        f"STALE: WooCommerce shows {shows}, not the {push.acknowledged} it last confirmed "
        "(its own sales or an edit since); nothing written"
    )
    return PushResult(push.sku, PushStatus.STALE, shows, detail=detail)


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


def _describe(response: httpx.Response) -> str:
    """WordPress REST errors are `{"code", "message", "data": {"status"}}`."""
    body = json_of(response)
    if isinstance(body, dict) and "code" in body:
        return f"HTTP {response.status_code} {body['code']}: {body.get('message', '')}"
    return f"HTTP {response.status_code}"
