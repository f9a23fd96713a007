"""The channel kinds invsync speaks: one spec per folder, and what is built from a channel's
table through its kind (its gateway)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from infrastructure.channels.amazon.kind import AMAZON
from infrastructure.channels.config import ChannelConfig
from infrastructure.channels.ebay.kind import EBAY
from infrastructure.channels.gateway import ChannelGateway, Gate
from infrastructure.channels.internal.kind import INTERNAL
from infrastructure.channels.kind import ChannelKind, GatewayBuilder
from infrastructure.channels.offer_file import UNFILED, OfferFile
from infrastructure.channels.shopify.kind import SHOPIFY
from infrastructure.channels.sku_map import with_sku_map
from infrastructure.channels.walmart.kind import WALMART
from infrastructure.channels.woocommerce.kind import WOOCOMMERCE
from infrastructure.config import ConfigError

KINDS: Mapping[str, ChannelKind[Any]] = MappingProxyType(
    {kind.name: kind for kind in (SHOPIFY, WOOCOMMERCE, AMAZON, EBAY, WALMART, INTERNAL)}
)


def kind_of(channel: ChannelConfig) -> ChannelKind[Any]:
    return KINDS[channel.kind]


def api_for(channel: ChannelConfig, gate: Gate) -> ChannelGateway | None:
    """The channel's gateway in the channel's own SKUs (for reads, matched by the channel's
    ids), built behind `gate`; None when it has no API URL or its kind no gateway.

    Raises:
        ConfigError: a credential the API needs is missing, or the URL cannot be used.
    """
    make = kind_of(channel).gateway
    if make is None or not channel.api_base_url:
        return None
    return _built(channel, make, gate)


def gateway_for(
    channel: ChannelConfig, gate: Gate, *, offers: OfferFile = UNFILED
) -> ChannelGateway | None:
    """The gateway pushes go through, built behind `gate` with `offers`, in our SKUs whatever
    the channel's `sku_map`; None when nothing is pushed to the channel (see `push_gateway`).

    Raises:
        ConfigError: as `api_for`.
    """
    build = push_gateway(channel, offers=offers)
    return None if build is None else build(gate)


def push_gateway(
    channel: ChannelConfig, *, offers: OfferFile = UNFILED
) -> Callable[[Gate], ChannelGateway] | None:
    """How the gateway pushes go through is built behind the gate its pusher is given, filing
    the offers it looks up in `offers` (in the channel's SKUs); None when nothing is pushed to
    the channel (no API URL, pushing switched off, or a kind without a gateway)."""
    make = kind_of(channel).gateway
    if make is None or not channel.api_base_url or not channel.push.enabled:
        return None
    return lambda gate: with_sku_map(_built(channel, make, gate, offers=offers), channel)


def _built(
    channel: ChannelConfig,
    make: GatewayBuilder[Any],
    gate: Gate,
    *,
    offers: OfferFile = UNFILED,
) -> ChannelGateway:
    missing = channel.missing_credentials()
    if missing:  # a channel that does not push may still be read: its table was not refused
        needs = f"reading a {channel.kind} channel needs {missing[0]}"
        raise ConfigError(f"channels.{channel.id}: {needs}")
    return make(channel, gate, offers=offers)
