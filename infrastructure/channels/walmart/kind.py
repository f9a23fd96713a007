"""Walmart as a channel kind: HMAC-signed order webhooks (`verifier.py`, `translator.py`)."""

from __future__ import annotations

from infrastructure.channels.kind import ChannelKind
from infrastructure.channels.walmart import translator, verifier
from infrastructure.channels.walmart.config import WalmartConfig

WALMART = ChannelKind(
    config=WalmartConfig,
    verify=verifier.verify,
    translate=translator.translate,
    lane=translator.lane,
)
