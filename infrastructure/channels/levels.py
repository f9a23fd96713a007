"""Reading a channel's levels in bulk (`ChannelKind.read_levels`): what every kind's
`level_reading.py` shares. Readings are stamped when the channel's answer came, and named by our
SKUs (through the channel's `sku_map`); SKUs the channel does not list, or whose stock it does
not keep, give no reading."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime

from infrastructure.channels.base import LevelPage, LevelReading
from infrastructure.channels.config import ChannelConfig

Read = Callable[[Sequence[str]], Mapping[str, int | None]]


def read_named(
    channel: ChannelConfig, read: Read, skus: Sequence[str], page: int
) -> Iterator[LevelReading]:
    """The levels of `skus` (ours), read `page` SKUs a call with the gateway's `read`."""
    theirs = list(dict.fromkeys(channel.channel_sku(sku) for sku in skus))
    for start in range(0, len(theirs), page):
        shown = read(theirs[start : start + page])
        read_at = datetime.now(UTC)
        yield from readings(channel, shown.items(), read_at)


def paged(read_page: Callable[[str | None], LevelPage]) -> Iterator[LevelReading]:
    """Every reading of a catalogue read a page at a time by `read_page` (from a cursor to the
    next: `ChannelKind.read_page`), the first page first."""
    cursor: str | None = None
    while True:
        page = read_page(cursor)
        yield from page.readings
        if page.next is None:
            return
        cursor = page.next


def readings(
    channel: ChannelConfig, shown: Iterable[tuple[str, int | None]], read_at: datetime
) -> Iterator[LevelReading]:
    """`(channel SKU, quantity)` pairs as readings in our SKUs; None quantities left out."""
    for sku, quantity in shown:
        if quantity is not None:
            yield LevelReading(channel.our_sku(sku), quantity, read_at)
