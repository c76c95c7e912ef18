"""zmqfeed's in-memory layer keeps the stock layer's contract: members, copies, capacity, expiry."""

import asyncio

import pytest
from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer as Stock

from zmqfeed import layers
from zmqfeed.layers import InMemoryChannelLayer, copy_message


def run(coro):
    return asyncio.run(coro)


def test_it_is_an_in_memory_layer_for_everything_that_asks():
    assert isinstance(InMemoryChannelLayer(), Stock)


def test_group_send_reaches_every_member_and_only_members():
    async def go():
        layer = InMemoryChannelLayer()
        a, b, c = [await layer.new_channel() for _ in range(3)]
        await layer.group_add("g", a)
        await layer.group_add("g", b)
        await layer.group_add("other", c)
        await layer.group_send("g", {"type": "x", "n": 1})
        got = [await layer.receive(a), await layer.receive(b)]
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(layer.receive(c), 0.05)
        return got

    assert run(go()) == [{"type": "x", "n": 1}] * 2


def test_a_full_member_misses_the_message_and_the_others_still_get_it():
    async def go():
        layer = InMemoryChannelLayer(capacity=1)
        full, free = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("g", full)
        await layer.group_add("g", free)
        await layer.send(full, {"type": "first"})
        with pytest.raises(ChannelFull):
            await layer.send(full, {"type": "second"})
        await layer.group_send("g", {"type": "broadcast"})
        return await layer.receive(full), await layer.receive(free)

    assert run(go()) == ({"type": "first"}, {"type": "broadcast"})


def test_each_receiver_gets_its_own_copy():
    async def go():
        layer = InMemoryChannelLayer()
        a, b = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("g", a)
        await layer.group_add("g", b)
        sent = {"type": "x", "items": [1, 2], "text": "t"}
        await layer.group_send("g", sent)
        first = await layer.receive(a)
        first["items"].append(3)
        first["text"] = "changed"
        sent["items"].append(4)
        return await layer.receive(b)

    assert run(go()) == {"type": "x", "items": [1, 2], "text": "t"}


def test_flat_messages_are_copied_shallow_and_nested_ones_deep():
    flat = {"type": "x", "text": "t", "n": 1, "f": 1.5, "b": b"", "none": None}
    assert copy_message(flat) == flat and copy_message(flat) is not flat
    nested = {"type": "x", "d": {"k": [1]}}
    copied = copy_message(nested)
    assert copied == nested and copied["d"] is not nested["d"]
    assert copied["d"]["k"] is not nested["d"]["k"]


def test_expired_messages_are_still_cleaned(monkeypatch):
    monkeypatch.setattr(layers, "CLEAN_INTERVAL", 0.0)

    async def go():
        layer = InMemoryChannelLayer(expiry=0.05)
        a = await layer.new_channel()
        await layer.group_add("g", a)
        await layer.group_send("g", {"type": "stale"})
        await asyncio.sleep(0.1)
        # The next send cleans first: the stale message goes, and with it (as in the stock
        # layer) the member it was waiting for, which then misses the fresh one too.
        await layer.group_send("g", {"type": "fresh"})
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(layer.receive(a), 0.05)
        return a in layer.groups.get("g", {})

    assert run(go()) is False


def test_cleaning_runs_at_most_once_per_interval(monkeypatch):
    layer = InMemoryChannelLayer()
    calls = []
    monkeypatch.setattr(Stock, "_clean_expired", lambda self: calls.append(1))
    for _ in range(100):
        layer._clean_expired()
    assert calls == [1]
    layer._next_clean = 0.0
    layer._clean_expired()
    assert calls == [1, 1]
