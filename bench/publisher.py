"""The ZeroMQ publisher: multipart (topic, JSON payload) at a steady offered rate.

Each payload carries the send time, ``{"t": <unix seconds>, "pad": "xx…"}``, padded to the
message size, so that clients measure latency from publish to receipt. The stamp is taken
every 32 messages (about 60 µs at the top rate), which keeps the publisher well above
500,000 messages/s in one Python process.

Run: ``python -m bench.publisher`` prints ``{"endpoint": ...}`` and then obeys JSON lines:
``ping`` (one message per topic, for warm-up), ``run`` (rate, duration, size), ``quit``.
"""

from __future__ import annotations

import argparse
import time

import zmq

from .procs import reply, serve_commands

STAMP_EVERY = 32
# Messages the publisher may queue in libzmq before it drops: enough never to be the
# bottleneck, few enough not to fill the memory (10 KB each) when a system falls behind. Set
# once before bind: changing SNDHWM while peers come and go crashes libzmq 4.3.5's I/O thread.
SNDHWM = 100_000
TICK = 0.001  # seconds: the longest sleep between bursts


def topic_names(count: int) -> list[str]:
    """ZeroMQ topics ``t000``… of one width, so that no topic is a prefix of another."""
    return [f"t{i:03d}" for i in range(count)]


def payload_tail(size: int) -> bytes:
    """What follows the stamp, so that ``{"t":<17 chars>`` + tail is ``size`` bytes."""
    fixed = len(b'{"t":1764230000.123456,"pad":""}')
    return b',"pad":"' + b"x" * max(0, size - fixed) + b'"}'


def stamp(tail: bytes) -> bytes:
    return b'{"t":%.6f' % time.time() + tail


class Publisher:
    def __init__(self, bind: str) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.PUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, SNDHWM)
        self.sock.bind(bind)
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)

    def ping(self, topics: list[str], size: int = 100) -> dict:
        tail = payload_tail(size)
        for topic in topics:
            self.sock.send_multipart([topic.encode(), stamp(tail)])
        return {"ok": True}

    def run(self, topics: list[str], rate: float, duration: float, size: int) -> dict:
        """Send ``rate`` messages/s in all, round robin over the topics, for ``duration`` s."""
        names = [t.encode() for t in topics]
        count = len(names)
        per_topic = [0] * count
        total = int(rate * duration)
        tail = payload_tail(size)
        send = self.sock.send
        more = zmq.SNDMORE
        perf = time.perf_counter
        sent = 0
        start_wall, start = time.time(), perf()
        while sent < total:
            due = min(total, int((perf() - start) * rate) + 1)
            if due <= sent:
                time.sleep(max(0.0, min(TICK, (sent + 1) / rate - (perf() - start))))
                continue
            burst = 0
            while sent < due:
                if not burst % STAMP_EVERY:
                    payload = stamp(tail)
                burst += 1
                i = sent % count
                send(names[i], more)
                send(payload)
                per_topic[i] += 1
                sent += 1
        # The last message leaves at (total - 1) / rate: count the schedule's full length.
        elapsed = max(perf() - start, duration)
        return {
            "sent": sent,
            "per_topic": per_topic,
            "start": start_wall,
            "elapsed": elapsed,
            "rate": sent / elapsed if elapsed else 0.0,
        }

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="tcp://127.0.0.1:*")
    args = parser.parse_args()
    pub = Publisher(args.bind)
    reply({"endpoint": pub.endpoint})
    try:
        serve_commands({"ping": pub.ping, "run": pub.run})
    finally:
        pub.close()


if __name__ == "__main__":
    main()
