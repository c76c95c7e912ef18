"""Memory per idle WebSocket connection: one daphne serving the demo site, embedded mode.

``python -m bench.memory --clients N`` starts daphne on a fresh SQLite database with one feed
(:mod:`bench.systems`' ``bench`` feed, nothing published to it), connects a few warm-up
clients (the first connection starts the embedded subscriber, the Fanout, the watchers),
reads the server's RSS, connects N more to ``/ws/zmqfeed/bench/<topic>/`` in batches from a
few client processes, waits until each has its ``subscribed``, reads the RSS again and
prints JSON: KB per connection is the RSS growth over N. ``--tracemalloc`` also snapshots
the server's Python heap at both points (SIGUSR1, :mod:`bench.memory_settings`) and adds
the growth per connection by allocating line and by package. ``--env NAME=VALUE`` runs the
server with an environment setting (e.g. ``MALLOC_ARENA_MAX=2``) to measure it.

Self-contained apart from :mod:`bench.procs` and :mod:`bench.systems`' site helpers; the
clients are a lean asyncio Protocol (handshake, wait for ``subscribed``, then hold).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path

from . import procs
from .publisher import topic_names
from .systems import DAPHNE, FEED, TOPICS, Setup

PACKAGES = ("zmqfeed", "channels", "daphne", "autobahn", "twisted", "django", "asgiref", "txaio")
ROOT = str(procs.ROOT)


def _raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


# The client processes


class Client(asyncio.Protocol):
    """One WebSocket: the handshake, then the first text frame that says ``subscribed``."""

    def __init__(self, request: bytes, done: asyncio.Future) -> None:
        self.request = request
        self.done = done
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return  # idle from now on: nothing is published
        self.buf += data
        if b"\r\n\r\n" in self.buf and b" 101 " not in self.buf.split(b"\r\n", 1)[0]:
            self.done.set_exception(ConnectionError(self.buf.split(b"\r\n", 1)[0].decode()))
        elif b'"subscribed"' in self.buf:
            self.done.set_result(None)
            self.buf = b""
        elif b"\x88" in self.buf.partition(b"\r\n\r\n")[2][:1]:
            self.done.set_exception(ConnectionError(f"closed: {self.buf[-40:]!r}"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"lost: {exc!r}"))


async def clients(port: int, first: int, count: int, batch: int) -> None:
    """Connect ``count`` clients, ``batch`` at a time; report; hold them until stdin closes."""
    loop = asyncio.get_running_loop()
    topics = topic_names(TOPICS)
    held: list[asyncio.Transport] = []
    failed: list[str] = []

    async def one(i: int) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        path = f"/ws/zmqfeed/{FEED}/{topics[i % TOPICS]}/"
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: http://127.0.0.1\r\n\r\n"
        ).encode()
        done = loop.create_future()
        try:
            transport, _ = await loop.create_connection(
                lambda: Client(request, done), "127.0.0.1", port
            )
            held.append(transport)
            await asyncio.wait_for(done, 180)
        except (OSError, asyncio.TimeoutError) as exc:
            failed.append(repr(exc))

    for start in range(first, first + count, batch):
        await asyncio.gather(*(one(i) for i in range(start, min(start + batch, first + count))))
    procs.reply({"subscribed": count - len(failed), "failed": len(failed), "errors": failed[:3]})
    await loop.run_in_executor(None, sys.stdin.buffer.readline)
    for transport in held:
        transport.abort()


def connect(port: int, first: int, count: int, nprocs: int, batch: int) -> dict:
    """``count`` clients from ``nprocs`` processes, numbered from ``first``; still held."""
    share = -(-count // nprocs)
    children = []
    for n in range(nprocs):
        begin = first + n * share
        size = min(share, first + count - begin)
        if size <= 0:
            break
        argv = [procs.PYTHON, "-m", "bench.memory", "--client-of", str(port)]
        argv += ["--first", str(begin), "--clients", str(size), "--batch", str(batch)]
        children.append(procs.Child(argv))
    total = {"subscribed": 0, "failed": 0, "errors": [], "children": children}
    for child in children:
        got = child.receive(600)
        total["subscribed"] += got["subscribed"]
        total["failed"] += got["failed"]
        total["errors"] += got["errors"]
    return total


# tracemalloc


def package(filename: str) -> str:
    """zmqfeed, channels, daphne, …; asyncio; or other (the rest of the stdlib, C code)."""
    parts = filename.replace("\\", "/").split("/")
    if "site-packages" in parts:
        found = parts[parts.index("site-packages") + 1].split(".")[0].lower()
        return found if found in PACKAGES else "other"
    if filename.startswith(ROOT) and len(parts) > 1:
        found = filename[len(ROOT) :].strip("/").split("/")[0]
        return found if found == "zmqfeed" else "other"
    return "asyncio" if "asyncio" in parts else "other"


def owner(frames: list[tracemalloc.Frame]) -> str:
    """The innermost frame (nearest the allocation) in a package of ours or a server's."""
    for frame in reversed(frames):
        found = package(frame.filename)
        if found in PACKAGES:
            return found
    return package(frames[-1].filename) if frames else "other"


def breakdown(before: Path, after: Path, clients: int, top: int) -> dict:
    """The heap's growth per connection, by allocating line, by its package and by owner."""
    old = tracemalloc.Snapshot.load(str(before))
    new = tracemalloc.Snapshot.load(str(after))
    lines: dict[str, float] = defaultdict(float)
    counts: dict[str, float] = defaultdict(float)
    sites: dict[str, float] = defaultdict(float)
    owners: dict[str, float] = defaultdict(float)
    total = 0
    for diff in new.compare_to(old, "traceback"):
        frames = list(diff.traceback)
        if not frames:
            continue
        site = frames[-1]
        where = f"{site.filename.replace(ROOT + '/', '')}:{site.lineno}"
        lines[where] += diff.size_diff
        counts[where] += diff.count_diff
        sites[package(site.filename)] += diff.size_diff
        owners[owner(frames)] += diff.size_diff
        total += diff.size_diff

    def per(d: dict[str, float]) -> dict[str, float]:
        ranked = sorted(d.items(), key=lambda kv: -kv[1])
        return {k: round(v / clients / 1024, 3) for k, v in ranked if abs(v) / clients >= 1}

    ranked = sorted(lines, key=lambda k: -lines[k])[:top]
    return {
        "traced_kb_per_connection": round(total / clients / 1024, 2),
        "by_site_package_kb": per(sites),
        "by_owner_package_kb": per(owners),
        "top_lines": [
            {
                "line": k,
                "kb": round(lines[k] / clients / 1024, 3),
                "blocks": round(counts[k] / clients, 2),
            }
            for k in ranked
        ],
    }


def snapshot(proc, path: Path, dest: Path, timeout: float = 120.0) -> None:
    """Have the server dump its heap to ``path`` (its BENCH_SNAPSHOT), then keep it as ``dest``."""
    path.unlink(missing_ok=True)
    proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("no tracemalloc snapshot from the server")
        time.sleep(0.2)
    os.replace(path, dest)


# The run


def settle(pid: int, quiet: float) -> int:
    """The RSS once it has stopped moving for a moment (the loop finishes what it started)."""
    time.sleep(quiet)
    last = rss_kb(pid)
    for _ in range(20):
        time.sleep(quiet)
        now = rss_kb(pid)
        if abs(now - last) < 64:
            return now
        last = now
    return last


def run(args: argparse.Namespace) -> dict:
    _raise_nofile()
    work = Path(tempfile.mkdtemp(prefix="zmqfeed-memory-"))
    setup = Setup(workdir=work, endpoint=args.endpoint, settings="bench.memory_settings")
    setup.prepare_site()
    env = setup.site_env("zmqfeed-embedded")
    env.update(dict(item.split("=", 1) for item in args.env))
    dump, snaps = work / "heap.snapshot", (work / "before.snapshot", work / "after.snapshot")
    env["BENCH_CENSUS"] = str(work / "census.json")
    if args.tracemalloc:
        env["BENCH_TRACEMALLOC"] = str(args.frames)
        env["BENCH_SNAPSHOT"] = str(dump)
    argv = [DAPHNE, "-b", "127.0.0.1", "-p", str(args.port), "-v", "0", "project.asgi:application"]
    server = procs.spawn(argv, env, work / "daphne.log")
    held = []
    try:
        procs.wait_port(args.port, server)
        started = settle(server.pid, 0.5)
        warm = connect(args.port, 0, args.warmup, 1, args.batch)
        held += warm["children"]
        before = settle(server.pid, args.quiet)
        if args.tracemalloc:
            snapshot(server, dump, snaps[0])
            before = settle(server.pid, args.quiet)
        began = time.monotonic()
        got = connect(args.port, args.warmup, args.clients, args.procs, args.batch)
        held += got["children"]
        took = time.monotonic() - began
        after = settle(server.pid, args.quiet)
        result = {
            "clients": args.clients,
            "subscribed": got["subscribed"],
            "failed": got["failed"],
            "errors": got["errors"],
            "env": args.env,
            "rss_started_kb": started,
            "rss_before_kb": before,
            "rss_after_kb": after,
            "kb_per_connection": round((after - before) / max(got["subscribed"], 1), 2),
            "connect_seconds": round(took, 1),
        }
        if args.census:
            census = work / "census.json"
            census.unlink(missing_ok=True)
            server.send_signal(signal.SIGUSR2)
            while not census.exists():
                time.sleep(0.2)
            result["census"] = json.loads(census.read_text())
        if args.tracemalloc:
            snapshot(server, dump, snaps[1])
            result["tracemalloc"] = breakdown(*snaps, got["subscribed"], args.top)
        return result
    finally:
        for child in held:
            child.stop()
        procs.stop(server)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--procs", type=int, default=4, help="client processes")
    parser.add_argument("--batch", type=int, default=200, help="connections opened at once")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--port", type=int, default=9310)
    parser.add_argument("--endpoint", default="tcp://127.0.0.1:9311")
    parser.add_argument("--quiet", type=float, default=1.0, help="seconds between RSS reads")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--census", action="store_true", help="live objects by type, after")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--client-of", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client_of:
        _raise_nofile()
        asyncio.run(clients(args.client_of, args.first, args.clients, args.batch))
        return
    try:
        print(json.dumps(run(args), indent=2))
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
