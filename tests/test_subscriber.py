"""The subscriber's SUB socket, for real: it takes in only what the feed's topics can use."""

from __future__ import annotations

import asyncio

import zmq
import zmq.asyncio

from zmqfeed.core.catalog import FeedConfig, TopicConfig
from zmqfeed.core.rates import LogThrottle
from zmqfeed.history import MemoryHistory
from zmqfeed.layers import InMemoryChannelLayer
from zmqfeed.subscriber import FeedReader


async def _read_through(feed: FeedConfig, send) -> list[list[bytes]]:
    """Start a FeedReader on ``feed``, call ``send(pub)`` once it receives, return what it read."""
    ctx = zmq.asyncio.Context()
    pub = ctx.socket(zmq.PUB)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    feed = FeedConfig(
        feed.slug, feed.name, (f"tcp://127.0.0.1:{port}",), framing=feed.framing, topics=feed.topics
    )
    layer = InMemoryChannelLayer()
    reader = FeedReader(feed, layer, MemoryHistory(10), ctx, LogThrottle(1.0))
    await reader.configure(feed)
    read: list[list[bytes]] = []
    deliver = reader.deliver

    async def spy(batch: list[list[bytes]]) -> None:
        read.extend(batch)
        await deliver(batch)

    reader.deliver = spy  # type: ignore[method-assign]
    task = asyncio.ensure_future(reader.run())
    try:
        for _ in range(200):  # until the subscription has reached the publisher
            pub.send_multipart([b"a", b'"probe"'])
            await asyncio.sleep(0.02)
            if read:
                break
        assert read, "the reader never received anything"
        await send(pub)
        pub.send_multipart([b"a", b'"end"'])
        for _ in range(200):
            await asyncio.sleep(0.02)
            if read[-1] == [b"a", b'"end"']:
                break
        return read
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        pub.close(0)
        ctx.term()


def test_the_sub_socket_filters_by_the_topics_prefixes(settings):
    feed = FeedConfig("sf", "SF", (), topics=(TopicConfig("a", "A", "a"),))

    async def others(pub: zmq.asyncio.Socket) -> None:
        for _ in range(500):
            pub.send_multipart([b"b", b"1"])
            pub.send_multipart([b"", b"1"])

    read = asyncio.run(_read_through(feed, others))
    assert read[-1] == [b"a", b'"end"']
    assert {frames[0] for frames in read} == {b"a"}  # nothing else crossed the network


def test_a_topic_with_an_empty_prefix_takes_everything(settings):
    feed = FeedConfig(
        "sf", "SF", (), topics=(TopicConfig("a", "A", "a"), TopicConfig("e", "E", ""))
    )

    async def others(pub: zmq.asyncio.Socket) -> None:
        pub.send_multipart([b"b", b"1"])

    read = asyncio.run(_read_through(feed, others))
    assert [b"b", b"1"] in read


def test_a_rewritten_jupyter_connection_file_is_read_again(settings, tmp_path):
    """A kernel restarted with a new key: the feed verifies with the new key within a reload."""
    import hashlib
    import hmac
    import json
    import os

    import pytest

    from zmqfeed.core.framing import Dropped
    from zmqfeed.subscriber import Subscriber

    def signed(key: bytes) -> list[bytes]:
        parts = [b'{"msg_type": "stream"}', b"{}", b"{}", b'{"text": "hi"}']
        mac = hmac.new(key, digestmod=hashlib.sha256)
        for part in parts:
            mac.update(part)
        return [b"stream", b"<IDS|MSG>", mac.hexdigest().encode(), *parts]

    path = tmp_path / "kernel.json"
    path.write_text(json.dumps({"key": "first", "signature_scheme": "hmac-sha256"}))
    feed = FeedConfig(
        "jk",
        "JK",
        ("tcp://127.0.0.1:1",),
        framing="jupyter",
        jupyter_connection_file=str(path),
        topics=(TopicConfig("all", "All", ""),),
    )

    async def main() -> None:
        subscriber = Subscriber(InMemoryChannelLayer(), MemoryHistory(10), None)  # type: ignore[arg-type]
        try:
            await subscriber._start_or_update("jk", feed)
            decode = subscriber.readers["jk"].router.decoder
            assert decode(signed(b"first"))[0] == b"stream"
            path.write_text(json.dumps({"key": "second", "signature_scheme": "hmac-sha256"}))
            os.utime(path, ns=(1, 1))  # a different stamp even on a coarse clock
            await subscriber._start_or_update("jk", feed)
            decode = subscriber.readers["jk"].router.decoder
            assert decode(signed(b"second"))[0] == b"stream"
            with pytest.raises(Dropped):
                decode(signed(b"first"))
        finally:
            for slug in list(subscriber.readers):
                await subscriber._stop(slug, "test over")
            subscriber.ctx.term()

    asyncio.run(main())
