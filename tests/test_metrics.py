"""The Prometheus series an operator watches, read from a real daphne's `/zmqfeed/metrics`
while real ZeroMQ messages reach real WebSocket clients: each counter moves by what was sent."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import Publisher, connect, drain, feed_doc, messages, subscribe, until_flowing

Series = dict[tuple[str, frozenset], float]

N = 50


def scrape(server) -> Series:
    """Every sample of the server's metrics, by name and labels."""
    with urllib.request.urlopen(server.http + "/zmqfeed/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(series: Series, name: str, **labels: str) -> float:
    return series.get((name, frozenset(labels.items())), 0.0)


def moved(before: Series, after: Series, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.mark.slow
def test_counters_move_by_what_was_received_and_delivered(site, ctx):
    server = site.daphne()

    async def main():
        pub = Publisher(ctx)
        # An exact topic: the SUB filter "tick" lets "ticker" in, which no topic takes.
        topic = {"slug": "ticks", "prefix": "tick", "match": "exact"}
        site.configure({"feeds": [feed_doc("mt", pub.endpoint, [topic])]})
        clients = [await connect(server), await connect(server)]
        for ws in clients:
            await subscribe(ws, "mt", "ticks")
        await until_flowing(pub, clients[0], "tick", "-1")
        await drain(clients[1])
        before = scrape(server)
        assert value(before, "zmqfeed_connections") == 2

        sent = [("ticker", "0"), ("tick", "{not json")]
        sent += [("tick", json.dumps({"i": i, "pad": "x" * i})) for i in range(N)]
        for frames in sent:
            await pub.send(*frames)
        for ws in clients:  # in order after the other two: they were counted first
            got = await messages(ws, N)
            assert [m["data"]["i"] for m in got] == list(range(N))
        after = scrape(server)

        assert moved(before, after, "zmqfeed_received_messages_total", feed="mt") == N + 2
        assert moved(before, after, "zmqfeed_received_bytes_total", feed="mt") == sum(
            len(t) + len(p) for t, p in sent
        )
        assert moved(before, after, "zmqfeed_unrouted_messages_total", feed="mt") == 1
        assert (
            moved(before, after, "zmqfeed_dropped_messages_total", feed="mt", reason="invalid_json")
            == 1
        )
        assert moved(before, after, "zmqfeed_routed_messages_total", feed="mt", topic="ticks") == N
        delivered = moved(
            before, after, "zmqfeed_delivered_messages_total", feed="mt", topic="ticks"
        )
        assert delivered == 2 * N
        # Each message's envelope carries more than its payload; two recipients.
        payloads = sum(len(p) for t, p in sent[2:])
        assert moved(before, after, "zmqfeed_sent_bytes_total", feed="mt", topic="ticks") > (
            2 * payloads
        )
        assert moved(before, after, "zmqfeed_fanout_lag_seconds_count", feed="mt") >= 1
        assert moved(before, after, "zmqfeed_fanout_lag_seconds_sum", feed="mt") >= 0
        shed = [k for k in after if k[0] == "zmqfeed_shed_messages_total"]
        assert shed == [], "nobody was slow"

        for ws in clients:
            await ws.close()
        gone = scrape(server)
        for _ in range(50):
            if value(gone, "zmqfeed_connections") == 0:
                break
            await asyncio.sleep(0.1)
            gone = scrape(server)
        assert value(gone, "zmqfeed_connections") == 0
        pub.close()

    asyncio.run(asyncio.wait_for(main(), 90))
