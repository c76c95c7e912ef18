"""RSS of one embedded daphne with 1,000 clients that stop reading under a fast feed.

Run: ``python -m bench.stalled [--clients 1000] [--seconds 15] [--total-cap BYTES]``. It
prints the server's peak RSS and what the fast client received. Each stalled client may hold
MAX_CLIENT_BACKLOG (4 MiB) unsent; MAX_BACKLOG_TOTAL caps what they hold together.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import psutil
import zmq.asyncio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import Site  # noqa: E402
from tests.support import Publisher, connect, feed_doc, subscribe, until_flowing  # noqa: E402


async def main(args: argparse.Namespace, site: Site, server) -> dict:
    ctx = zmq.asyncio.Context()
    pub = Publisher(ctx)
    site.configure({"feeds": [feed_doc("st", pub.endpoint, [{"slug": "all"}])]})
    fast = await connect(server)
    await subscribe(fast, "st", "all")
    await until_flowing(pub, fast, "t", "0")
    stalled = []
    for _ in range(args.clients):
        ws = await connect(server, max_queue=1)
        await ws.send(json.dumps({"type": "subscribe", "feed": "st", "topic": "all"}))
        stalled.append(ws)
    proc = psutil.Process(server.proc.pid)
    base = proc.memory_info().rss
    peak, received = base, 0
    payload = json.dumps("x" * 10_000)

    async def read_fast() -> None:
        nonlocal received
        with contextlib.suppress(Exception):
            while True:
                frame = json.loads(await fast.recv())
                received += len(frame.get("messages", [frame]))

    reader = asyncio.ensure_future(read_fast())
    end = time.monotonic() + args.seconds
    sent = 0
    while time.monotonic() < end:
        for _ in range(20):
            await pub.send("t", payload)
            sent += 1
        await asyncio.sleep(0.01)
        peak = max(peak, proc.memory_info().rss)
    await asyncio.sleep(2)
    peak = max(peak, proc.memory_info().rss)
    reader.cancel()
    closed = sum(ws.close_code is not None for ws in stalled)
    for ws in stalled:
        ws.transport.abort()
    pub.close()
    ctx.destroy(linger=0)
    return {
        "clients": args.clients,
        "sent": sent,
        "fast_received": received,
        "rss_before_mb": round(base / 2**20),
        "rss_peak_mb": round(peak / 2**20),
        "stalled_closed": closed,
    }


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--total-cap", type=int, default=None, help="MAX_BACKLOG_TOTAL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {}
        if args.total_cap is not None:
            settings = Path(tmp) / "stalled_settings.py"
            settings.write_text(
                "from project.settings import *  # noqa\n"
                f"ZMQFEED = {{'MAX_BACKLOG_TOTAL': {args.total_cap}}}\n"
            )
            env = {"DJANGO_SETTINGS_MODULE": "stalled_settings", "PYTHONPATH": f"{tmp}:{ROOT}"}
        site = Site(Path(tmp))
        try:
            server = site.daphne(env)
            print(json.dumps(asyncio.run(main(args, site, server))))
        finally:
            site.close()


if __name__ == "__main__":
    run()
