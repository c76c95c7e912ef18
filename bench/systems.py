"""The systems under test, each started as its own processes and stopped after its runs.

- ``zmqfeed-embedded``: one daphne process running the demo site; its subscriber inside.
- ``zmqfeed-redis`` / ``zmqfeed-redis-pubsub``: ``manage.py zmq_subscribe`` plus one or more
  daphne processes, over ``RedisChannelLayer`` / ``RedisPubSubChannelLayer``.
- ``naive-channels``: the tutorial gateway of :mod:`bench.naive` under daphne.
- ``relay``: the asyncio relay of :mod:`bench.relay`, no Django.

Every system serves ``/ws/zmqfeed/bench/<topic>/`` on 127.0.0.1 and reads the publisher.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import procs
from .publisher import topic_names

SYSTEMS = ("zmqfeed-embedded", "zmqfeed-redis", "zmqfeed-redis-pubsub", "naive-channels", "relay")
FEED = "bench"
TOPICS = 100  # configured topics t000…t099: one per client in the 100-topic scenario
DAPHNE = str(Path(procs.PYTHON).with_name("daphne"))
_RECEIVED = re.compile(r'^zmqfeed_received_messages_total\{feed="bench"\} ([0-9.e+]+)$', re.M)


@dataclass
class Setup:
    """What every system of one run shares: the publisher's endpoint, a work directory."""

    workdir: Path
    endpoint: str
    redis_url: str = "redis://127.0.0.1:6379/14"  # a database of its own: flushed per system
    daphne_procs: int = 1
    settings: str = "bench.site_settings"  # another module to measure a variant (e.g. layer tuning)
    site_ready: bool = False

    @property
    def origin(self) -> str:
        return "http://127.0.0.1"

    def site_env(self, system: str) -> dict[str, str]:
        """The demo site, production-like (DEBUG off), on a database of the benchmark's own."""
        env = {
            "DJANGO_SETTINGS_MODULE": self.settings,
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "zmqfeed-bench-only",
            "DATABASE_URL": f"sqlite:///{self.workdir / 'site.sqlite3'}",
            "ZMQFEED_LOG_LEVEL": "WARNING",
            "REDIS_URL": "",
        }
        if system != "zmqfeed-embedded":
            env["REDIS_URL"] = self.redis_url
            env["ZMQFEED_REDIS_LAYER"] = "pubsub" if system.endswith("pubsub") else "core"
        return env

    def prepare_site(self) -> None:
        """Migrate a fresh database and configure the feed, once per run."""
        if self.site_ready:
            return
        env = {**os.environ, **self.site_env("zmqfeed-embedded")}
        manage = [procs.PYTHON, "manage.py"]
        run = dict(cwd=procs.ROOT, env=env, capture_output=True, text=True, timeout=120)
        done = subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], **run)
        if done.returncode:
            raise RuntimeError(f"migrate failed:\n{done.stderr[-2000:]}")
        doc = {"feeds": [feed_config(self.endpoint)]}
        done = subprocess.run([*manage, "zmq_feeds", "import", "-"], input=json.dumps(doc), **run)
        if done.returncode:
            raise RuntimeError(f"zmq_feeds import failed:\n{done.stderr[-2000:]}")
        self.site_ready = True

    def log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"


def feed_config(endpoint: str) -> dict:
    return {
        "slug": FEED,
        "name": "Benchmark",
        "endpoints": [endpoint],
        "bind": False,
        "framing": "multipart",
        "payload": "json",
        "enabled": True,
        "topics": [
            {"slug": t, "name": t, "prefix": t, "access": "public", "groups": []}
            for t in topic_names(TOPICS)
        ],
    }


@dataclass
class Server:
    """A running system: its WebSocket ports and the processes whose CPU and memory count."""

    name: str
    ports: list[int]
    procs: list[subprocess.Popen]
    ingested: Callable[[], int] | None = None  # messages read from ZeroMQ so far
    children: list[procs.Child] = field(default_factory=list)

    def url(self, i: int, topic: str) -> str:
        return f"ws://127.0.0.1:{self.ports[i % len(self.ports)]}/ws/zmqfeed/{FEED}/{topic}/"

    def stop(self) -> None:
        for proc in reversed(self.procs):
            procs.stop(proc)


def _scrape(url: str, attempts: int = 3) -> int:
    """The gateway's count of messages read (a busy server may drop a scrape: ask again)."""
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                found = _RECEIVED.search(response.read().decode())
            return int(float(found.group(1))) if found else 0
        except OSError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1)
    return 0


def _daphne(setup: Setup, app: str, env: dict[str, str], name: str) -> tuple[int, subprocess.Popen]:
    port = procs.free_port()
    argv = [DAPHNE, "-b", "127.0.0.1", "-p", str(port), "-v", "0", app]
    proc = procs.spawn(argv, env, setup.log(f"{name}-{port}"), stdout=subprocess.DEVNULL)
    procs.wait_port(port, proc)
    return port, proc


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def start(name: str, setup: Setup) -> Server:
    """Start one system and return once its WebSocket ports accept connections."""
    if name == "relay":
        args = ["--endpoint", setup.endpoint, "--topics", str(TOPICS), "--origin", setup.origin]
        child = procs.Child([procs.PYTHON, "-m", "bench.relay", *args], log=setup.log("relay"))
        port = child.receive(30)["port"]
        return Server(name, [port], [child.proc], lambda: child.ask("stats")["received"], [child])
    if name == "naive-channels":
        env = {"DJANGO_SETTINGS_MODULE": "bench.naive.settings", "BENCH_ENDPOINT": setup.endpoint}
        port, proc = _daphne(setup, "bench.naive.asgi:application", env, "naive")
        return Server(name, [port], [proc])
    if name not in SYSTEMS:
        raise ValueError(f"unknown system {name!r}; one of {', '.join(SYSTEMS)}")
    setup.prepare_site()
    env = setup.site_env(name)
    if name == "zmqfeed-embedded":
        port, proc = _daphne(setup, "project.asgi:application", env, name)
        return Server(
            name, [port], [proc], lambda: _scrape(f"http://127.0.0.1:{port}/zmqfeed/metrics")
        )
    flush_redis(setup.redis_url)
    metrics_port = procs.free_port()
    subscriber = procs.spawn(
        [procs.PYTHON, "manage.py", "zmq_subscribe", "--metrics-port", str(metrics_port)],
        env,
        setup.log(f"{name}-subscriber"),
        stdout=subprocess.DEVNULL,
    )
    server = Server(name, [], [subscriber], lambda: _scrape(f"http://127.0.0.1:{metrics_port}/"))
    try:
        procs.wait_port(metrics_port, subscriber)
        for _ in range(setup.daphne_procs):
            port, proc = _daphne(setup, "project.asgi:application", env, name)
            server.ports.append(port)
            server.procs.append(proc)
    except BaseException:
        server.stop()
        raise
    return server
