"""An open-loop paced load generator: requests are due at a fixed rate whatever the server
does, and each one's latency runs from when it was due to its whole answer, so a server that
stalls is charged for every request that waited behind the stall (no coordinated omission, as
wrk2 measures; wrk's `delay()` pacing waits for each answer before the next request's clock
starts). Keep-alive connections, HTTP/1.1, one request at a time per connection.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Paced:
    """What a paced run saw: `achieved` requests/s answered, latencies in ms."""

    sent: int
    achieved: float
    p50: float
    p99: float
    worst: float
    non_2xx: int


def run(host: str, port: int, requests: Sequence[bytes], rate: int, connections: int) -> Paced:
    """Send every request of `requests`, `rate` a second, over `connections` connections."""
    try:
        import uvloop

        return uvloop.run(_paced(host, port, requests, rate, connections))
    except ImportError:
        return asyncio.run(_paced(host, port, requests, rate, connections))


async def _paced(
    host: str, port: int, requests: Sequence[bytes], rate: int, connections: int
) -> Paced:
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await asyncio.open_connection(host, port))
    latencies: list[float] = []
    statuses: list[int] = []

    async def one(due: float, request: bytes) -> None:
        reader, writer = await idle.get()
        writer.write(request)
        statuses.append(await _answer(reader))
        latencies.append((time.perf_counter() - due) * 1000)
        idle.put_nowait((reader, writer))

    # perf_counter, not the loop's clock: uvloop's counts whole milliseconds.
    start = time.perf_counter()
    tasks = []
    for n, request in enumerate(requests):
        due = start + n / rate
        if (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(due, request)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    while not idle.empty():
        idle.get_nowait()[1].close()
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return Paced(
        sent=len(requests),
        achieved=len(requests) / elapsed,
        p50=cuts[49],
        p99=cuts[98],
        worst=max(latencies),
        non_2xx=sum(1 for status in statuses if not 200 <= status < 300),
    )


async def _answer(reader: asyncio.StreamReader) -> int:
    """The status of the next answer on `reader`, read whole (Content-Length bodies only)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(lines[0].split(b" ", 2)[1])
