"""The subscriber of the tutorials: every ZeroMQ message becomes one ``group_send``.

It numbers messages per topic (``seq``) only so that the benchmark can count losses.
"""

import json
import os
from collections import defaultdict

import zmq
import zmq.asyncio
from channels.layers import get_channel_layer


async def run() -> None:
    layer = get_channel_layer()
    sock = zmq.asyncio.Context.instance().socket(zmq.SUB)
    sock.connect(os.environ["BENCH_ENDPOINT"])
    sock.subscribe(b"")
    seq: defaultdict[str, int] = defaultdict(int)
    while True:
        topic, payload = await sock.recv_multipart()
        topic = topic.decode()
        seq[topic] += 1
        await layer.group_send(
            f"feed.{topic}",
            {
                "type": "feed.message",
                "message": {
                    "type": "message",
                    "topic": topic,
                    "seq": seq[topic],
                    "data": json.loads(payload),
                },
            },
        )
