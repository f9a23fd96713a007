"""What a channel shows of every SKU it lists, read once for adoption (`invsync reconcile
CHANNEL --adopt`) through the kind's `read_levels`, taking turns of the channel's rate limit."""

from __future__ import annotations

from application.adoption import latest_shown
from infrastructure.channels.config import ChannelConfig
from infrastructure.channels.gateway import Gate
from infrastructure.channels.kinds import api_for, kind_of
from infrastructure.reconcile.service import NotReconciled


def shown_levels(channel: ChannelConfig, gate: Gate) -> dict[str, int]:
    """Our SKU -> the quantity the channel shows, for every SKU it lists.

    Raises:
        NotReconciled: the channel has no API, or invsync cannot read its kind's levels.
        ChannelError: the channel's API failed.
    """
    read_levels = kind_of(channel).read_levels
    gateway = api_for(channel, gate)
    if read_levels is None or gateway is None:
        raise NotReconciled(f"invsync cannot read the levels of channel {channel.id!r}")
    try:
        readings = read_levels(channel, gateway, None)
        return latest_shown((r.sku, r.quantity, r.read_at) for r in readings)
    finally:
        gateway.close()
