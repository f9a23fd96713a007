"""An internal system's table (ERP, WMS, POS): nothing beyond what every channel holds."""

from __future__ import annotations

from typing import Literal

from infrastructure.channels.config import ChannelConfig


class InternalConfig(ChannelConfig):
    """`kind = "internal"`: our own systems, which send signed stock changes and take no push."""

    kind: Literal["internal"] = "internal"
