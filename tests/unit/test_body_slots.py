"""Body slots: never more than the total taken, never more than a quarter by one address."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from interfaces.http.body_slots import BodySlots, client_of

CLIENTS = st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3", "::1", ""])
STEPS = st.lists(st.tuples(st.booleans(), CLIENTS), max_size=60)


@given(total=st.integers(1, 16), steps=STEPS)
def test_slots_taken_and_released_in_any_order_keep_both_bounds(total, steps):
    async def play() -> None:
        slots = BodySlots(total)
        held: dict[str, int] = {}
        for take, client in steps:
            if take:
                could = sum(held.values()) < total and held.get(client, 0) < slots.per_client
                assert await slots.take(client, wait=0) is could
                if could:
                    held[client] = held.get(client, 0) + 1
            elif held.get(client):
                slots.release(client)
                held[client] -= 1
            assert slots.held(client) == held.get(client, 0)
            assert sum(held.values()) <= total
            assert all(n <= max(1, total // 4) for n in held.values())

    asyncio.run(play())


def test_a_slot_released_while_another_waits_is_taken_by_it():
    async def play() -> bool:
        slots = BodySlots(4)  # one per address
        assert await slots.take("a", wait=0)
        waiting = asyncio.create_task(slots.take("a", wait=1))
        await asyncio.sleep(0.1)
        slots.release("a")
        return await waiting

    assert asyncio.run(play())


def test_ipv6_peers_are_counted_by_their_64_and_ipv4_by_address():
    assert client_of("2001:db8:1:2:aaaa::1") == client_of("2001:db8:1:2:ffff::9")
    assert client_of("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert client_of("2001:db8:1:3::1") != client_of("2001:db8:1:2::1")
    assert client_of("::ffff:192.0.2.7") == client_of("192.0.2.7") == "192.0.2.7"
    assert client_of("192.0.2.8") != client_of("192.0.2.7")
    assert client_of("testclient") == "testclient"
