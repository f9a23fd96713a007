"""Our own systems as a channel kind: signed stock-change documents, nothing pushed back."""

from __future__ import annotations

from infrastructure.channels.internal import translator, verifier
from infrastructure.channels.internal.config import InternalConfig
from infrastructure.channels.kind import ChannelKind

INTERNAL = ChannelKind(
    config=InternalConfig,
    verify=verifier.verify,
    translate=translator.translate,
    lane=translator.lane,
)
