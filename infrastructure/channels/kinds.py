"""The channel kinds invsync speaks: one spec per folder, and what is built from a channel's
table through its kind (its gateway)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from infrastructure.channels.amazon.kind import AMAZON
from infrastructure.channels.config import ChannelConfig
from infrastructure.channels.gateway import ChannelGateway
from infrastructure.channels.internal.kind import INTERNAL
from infrastructure.channels.kind import ChannelKind
from infrastructure.channels.shopify.kind import SHOPIFY
from infrastructure.channels.sku_map import with_sku_map
from infrastructure.channels.woocommerce.kind import WOOCOMMERCE
from infrastructure.config import ConfigError

KINDS: Mapping[str, ChannelKind[Any]] = MappingProxyType(
    {kind.name: kind for kind in (SHOPIFY, WOOCOMMERCE, AMAZON, INTERNAL)}
)


def kind_of(channel: ChannelConfig) -> ChannelKind[Any]:
    return KINDS[channel.kind]


def api_for(channel: ChannelConfig) -> ChannelGateway | None:
    """The channel's gateway in the channel's own SKUs (for reads, matched by the channel's
    ids); None when it has no API URL or its kind no gateway.

    Raises:
        ConfigError: a credential the API needs is missing, or the URL cannot be used.
    """
    make = kind_of(channel).gateway
    if make is None or not channel.api_base_url:
        return None
    missing = channel.missing_credentials()
    if missing:  # a channel that does not push may still be read: its table was not refused
        needs = f"reading a {channel.kind} channel needs {missing[0]}"
        raise ConfigError(f"channels.{channel.id}: {needs}")
    return make(channel)


def gateway_for(channel: ChannelConfig) -> ChannelGateway | None:
    """The gateway pushes go through, in our SKUs whatever the channel's `sku_map`; None when
    nothing is pushed to the channel (no API URL, pushing switched off, or a kind without one).

    Raises:
        ConfigError: as `api_for`.
    """
    gateway = api_for(channel) if channel.push.enabled else None
    return None if gateway is None else with_sku_map(gateway, channel)
