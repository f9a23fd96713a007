"""What one kind of channel is to invsync: the spec each channel folder registers
(`infrastructure/channels/<kind>/kind.py`), listed in `kinds.py`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from application.intake import Delivery, Translation
from infrastructure.channels.base import (
    ChannelReads,
    Lane,
    LevelPage,
    LevelReading,
    PolledOrder,
    SignedRequest,
    Verdict,
)
from infrastructure.channels.config import ChannelConfig
from infrastructure.channels.gateway import ChannelGateway, Gate
from infrastructure.channels.offer_file import UNFILED, OfferFile

C = TypeVar("C", bound=ChannelConfig)
C_contra = TypeVar("C_contra", bound=ChannelConfig, contravariant=True)


class GatewayBuilder(Protocol[C_contra]):
    """Builds a channel's gateway behind its gate, filing the offers its gateways look up in
    `offers` (eBay's); a kind whose gateways look none up registers `files_no_offers(build)`."""

    def __call__(
        self, channel: C_contra, gate: Gate, *, offers: OfferFile = UNFILED
    ) -> ChannelGateway: ...


def files_no_offers(build: Callable[[C, Gate], ChannelGateway]) -> GatewayBuilder[C]:
    """`build`, a kind's builder that takes no offer file, as a `GatewayBuilder`: its gateways
    look up no offers, so it is never given the file."""

    def built(channel: C, gate: Gate, *, offers: OfferFile = UNFILED) -> ChannelGateway:
        return build(channel, gate)

    return built


@dataclass(frozen=True)
class ChannelKind(Generic[C]):
    """A channel kind's configuration model and code, each function given the channel's table
    read into that model.

    Attributes:
        config: the model of the kind's `[[channels]]` table (its `kind` names the kind).
        verify: checks a webhook's signature (the request as received, now) and names the
            delivery; raises `SignatureInvalid` or `VerificationUnavailable`.
        translate: what a stored delivery teaches; parks (never raises) what it cannot read.
        lane: the intake queue of a delivery's topic.
        gateway: the kind's API for pushes and reads, built behind the channel's gate, with
            the file of the offers its gateways look up by keyword (eBay's; the others look
            none up and take none: `files_no_offers`); None for a kind invsync does not push to.
        acknowledge: an outbound hand-shake a stored delivery asks for (SNS subscriptions).
        blocking: whether verification may do I/O (fetching a certificate): run it off-loop.
        read_levels: the quantities the channel shows, read in bulk through its gateway (in the
            channel's SKUs, built by `api_for`): of the given SKUs (ours), or of every SKU it
            lists when given None, paged with the largest page its API allows; None for a kind
            whose levels invsync does not read (reconciliation skips it).
        read_page: one page of the catalogue `read_levels(None)` reads, from a cursor (None:
            the first page) to the next: a run reads its catalogue one message per page
            through it. None: a kind without one reads its whole catalogue in one message.
        list_orders: the orders the channel modified from `since` to `until`, oldest first,
            paged within the channel's rate limit, read through the gateway `gateway` builds
            (or its client); None for a kind whose orders invsync cannot list.
        challenge: answers the channel's endpoint validation, `GET /webhooks/{id}` with the
            query given (eBay's `challenge_code`), with the JSON body of a 200; raises
            `ChallengeRefused` (400) for a query it cannot answer. None: no such GET.
        success_status: what a stored (or duplicate) delivery is answered: 200 with a JSON
            body naming it, or 204 with none (eBay's SDK answers 204).
    """

    config: type[C]
    verify: Callable[[C, SignedRequest, datetime], Verdict]
    translate: Callable[[C, Delivery, ChannelReads], Translation]
    lane: Callable[[str], Lane]
    gateway: GatewayBuilder[C] | None = None
    acknowledge: Callable[[C, Delivery], None] | None = None
    blocking: bool = False
    # The gateway is the kind's own class (Any): each kind reads through its own API.
    read_levels: Callable[[C, Any, Sequence[str] | None], Iterable[LevelReading]] | None = None
    list_orders: Callable[[C, Any, datetime, datetime], Iterable[PolledOrder]] | None = None
    challenge: Callable[[C, Mapping[str, str]], Mapping[str, Any]] | None = None
    success_status: int = 200
    read_page: Callable[[C, Any, str | None], LevelPage] | None = None

    @property
    def name(self) -> str:
        """The `kind` the configuration file names it by."""
        name: Any = self.config.model_fields["kind"].default
        return str(name)
