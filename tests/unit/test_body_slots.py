"""Body slots: never more than the total taken, never more than a quarter by one address."""

from __future__ import annotations

import asyncio
import contextlib

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


ADDRESSES = ("10.0.0.1", "10.0.0.2", "10.0.0.3", "::1", "")
WAITING_STEPS = st.lists(
    st.tuples(st.sampled_from(["take", "release", "wait"]), CLIENTS, st.integers(0, 3)),
    max_size=40,
)


@given(total=st.integers(1, 8), steps=WAITING_STEPS)
def test_waiters_get_released_slots_within_both_bounds_and_none_is_lost(total, steps):
    """Requests wait for slots, give up or are cancelled while others release theirs, in any
    order: the bounds hold at every step, and once everyone who got a slot gives it back, no
    slot is held (nor kept by a waiter that gave up)."""

    async def play() -> None:
        slots = BodySlots(total)
        tasks: list[tuple[str, asyncio.Task[bool]]] = []
        for action, client, ticks in steps:
            if action == "take":
                tasks.append((client, asyncio.create_task(slots.take(client, wait=ticks * 0.01))))
            elif action == "release" and (holder := _holder(tasks, client)) is not None:
                tasks.remove(holder)
                slots.release(client)
            elif action == "wait":
                await asyncio.sleep(ticks * 0.005)
            if tasks and ticks == 3:  # now and then a request goes away, waiting or not
                tasks[0][1].cancel()
            await asyncio.sleep(0)
            held = [slots.held(c) for c in ADDRESSES]
            assert sum(held) <= total
            assert max(held) <= slots.per_client
        await asyncio.gather(*(task for _, task in tasks), return_exceptions=True)
        while (holder := _holder(tasks, None)) is not None:
            tasks.remove(holder)
            slots.release(holder[0])
        assert all(slots.held(c) == 0 for c in ADDRESSES)
        assert await slots.take("10.0.0.9", wait=0)

    asyncio.run(play())


def _holder(
    tasks: list[tuple[str, asyncio.Task[bool]]], client: str | None
) -> tuple[str, asyncio.Task[bool]] | None:
    """A request of `client` (any, with None) that got its slot and still holds it."""
    for holder in tasks:
        who, task = holder
        if client in (None, who) and task.done() and not task.cancelled() and task.result():
            return holder
    return None


def test_a_released_slot_goes_to_another_address_when_its_own_has_nobody_waiting():
    async def play() -> tuple[bool, bool]:
        slots = BodySlots(4)  # one per address
        for client in ("a", "b", "c", "d"):
            assert await slots.take(client, wait=0)
        waiting = asyncio.create_task(slots.take("e", wait=5))
        blocked = asyncio.create_task(slots.take("a", wait=0.3))
        await asyncio.sleep(0.05)
        slots.release("b")
        return await waiting, await blocked

    assert asyncio.run(play()) == (True, False)


def test_a_waiter_cancelled_after_it_was_handed_a_slot_gives_it_back():
    async def play() -> bool:
        slots = BodySlots(4)
        assert await slots.take("a", wait=0)
        waiting = asyncio.create_task(slots.take("a", wait=5))
        await asyncio.sleep(0.01)
        slots.release("a")  # handed to the waiter, which has not run yet ...
        waiting.cancel()  # ... and goes away
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        return await slots.take("a", wait=0)

    assert asyncio.run(play())
