"""The publish scenario: 100 WebSocket clients publish to one feed, each waiting for its
`published` before the next (acked), through an embedded daphne into one ZeroMQ socket.

Reports publishes/s acked, what the ZeroMQ side received, ack latency (p50, p99) and the
server's CPU per publish, in ``bench/results/publish.json``. Run: ``python -m bench.publish``
(``--quick``: shorter); ``make bench`` runs it after the delivery scenarios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import websockets
import zmq
import zmq.asyncio

from . import procs
from .systems import DAPHNE

RESULTS = procs.ROOT / "bench" / "results" / "publish.json"


def site(workdir: Path, out: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.publish_settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "zmqfeed-bench-only",
        "DATABASE_URL": f"sqlite:///{workdir / 'site.sqlite3'}",
        "ZMQFEED_LOG_LEVEL": "WARNING",
        "REDIS_URL": "",
    }
    doc = {
        "feeds": [
            {
                "slug": "pb",
                "name": "Publish bench",
                "endpoints": [f"tcp://127.0.0.1:{procs.free_port()}"],
                "publish_endpoints": [out],
                "topics": [{"slug": "cmd", "name": "cmd", "publish_access": "public"}],
            }
        ]
    }
    run = dict(cwd=procs.ROOT, env=env, capture_output=True, text=True, timeout=120, check=True)
    subprocess.run([procs.PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], **run)
    subprocess.run(
        [procs.PYTHON, "manage.py", "zmq_feeds", "import", "-"], input=json.dumps(doc), **run
    )
    return env


async def client(url: str, until: float, latencies: list[float], errors: list[str]) -> None:
    async with websockets.connect(url, origin="http://127.0.0.1", max_size=None) as ws:
        n = 0
        while time.monotonic() < until:
            sent = time.perf_counter()
            await ws.send(
                json.dumps({"type": "publish", "feed": "pb", "topic": "cmd", "data": {"n": n}})
            )
            reply = json.loads(await ws.recv())
            if reply["type"] == "published":
                latencies.append(time.perf_counter() - sent)
            else:
                errors.append(reply.get("code", reply["type"]))
                await asyncio.sleep(0.05)
            n += 1


async def measure(port: int, server: psutil.Process, clients: int, seconds: float) -> dict:
    ctx = zmq.asyncio.Context()
    url = f"ws://127.0.0.1:{port}/ws/zmqfeed/"
    received = 0
    sub = ctx.socket(zmq.SUB)
    sub.subscribe(b"")
    sub.bind(OUT)

    async def count() -> None:
        nonlocal received
        while True:
            await sub.recv_multipart()
            received += 1

    counter = asyncio.ensure_future(count())
    # Warm up until the gateway's socket has the subscriber (ZeroMQ connects late).
    warm: list[float] = []
    while not warm:
        await client(url, time.monotonic() + 0.3, warm, [])
    latencies: list[float] = []
    errors: list[str] = []
    before, cpu0 = received, sum(server.cpu_times()[:2])
    start = time.monotonic()
    await asyncio.gather(*(client(url, start + seconds, latencies, errors) for _ in range(clients)))
    elapsed = time.monotonic() - start
    cpu = sum(server.cpu_times()[:2]) - cpu0
    await asyncio.sleep(0.5)
    counter.cancel()
    sub.close(0)
    ctx.term()
    latencies.sort()
    acked = len(latencies)

    def pct(q: float) -> float:
        return round(latencies[min(acked - 1, int(q * acked))] * 1000, 2) if acked else 0.0

    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "acked_per_s": round(acked / elapsed),
        "zmq_received": received - before,
        "acked": acked,
        "refused": {code: errors.count(code) for code in sorted(set(errors))},
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "server_cpu_us_per_publish": round(cpu / max(acked, 1) * 1e6, 1),
    }


OUT = f"tcp://127.0.0.1:{procs.free_port()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--clients", type=int, default=100)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="zmqfeed-publish-bench-") as tmp:
        env = site(Path(tmp), OUT)
        port = procs.free_port()
        argv_ = [DAPHNE, "-b", "127.0.0.1", "-p", str(port), "-v", "0", "project.asgi:application"]
        proc = procs.spawn(argv_, env, Path(tmp) / "daphne.log", stdout=subprocess.DEVNULL)
        try:
            procs.wait_port(port, proc)
            row = asyncio.run(
                measure(port, psutil.Process(proc.pid), args.clients, 3.0 if args.quick else 10.0)
            )
        finally:
            procs.stop(proc)
    RESULTS.write_text(json.dumps(row, indent=2) + "\n")
    print(
        f"publish: {row['clients']} clients, {row['acked_per_s']} publishes/s acked "
        f"({row['zmq_received']} reached the ZeroMQ side, {row['acked']} acked), "
        f"p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, "
        f"server CPU {row['server_cpu_us_per_publish']} µs per publish"
    )
    return 0 if row["zmq_received"] == row["acked"] else 1


if __name__ == "__main__":
    sys.exit(main())
