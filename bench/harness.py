"""The conductor: for each scenario and system, offered rates stepped up until delivery falls
behind, every part in its own process, the figures of each step one row.

A step: clients start counting afresh (``mark``), the publisher sends at the offered rate for
a fixed time, then the clients report once every message is in or nothing has come for a
second. Delivered/s is what all clients received over the time from the first send to the
last receipt, so a backlog that drains after the publisher stops lowers it.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

from . import procs, systems
from .client import BUCKETS, EDGES
from .publisher import topic_names

ROW_KEYS = (
    "scenario",
    "system",
    "clients",
    "offered_per_s",
    "delivered_per_s",
    "p50_ms",
    "p99_ms",
    "max_ms",
    "lost",
    "cpu_s",
    "cpu_us_per_delivery",
    "peak_rss_mb",
    "rss_kb_per_conn",
)
RATES = (10, 30, 100, 300, 1000, 3000, 10_000, 30_000, 100_000, 300_000)
QUICK_RATES = (10, 100, 1000, 10_000, 100_000)
INGEST_RATES = (100_000, 200_000, 300_000, 400_000)
KEY_SCENARIO = "1topic-100c-100B"
BEHIND_P99_MS = 1000.0  # a p99 above this is a backlog, not a latency
# A step that falls behind ends the stepping unless it lost nothing and delivered this much
# more than any before it: a system that batches more under load may deliver more at a higher
# rate (the relay, whose client is the limit with one message per frame, does).
GROWING = 1.1
CONNS_PER_CLIENT_PROC = 500
RSS_MIN_CLIENTS = 100  # below this, RSS per connection is lost in the noise of the process
# `1topic-100c-100B`, `100topics-100c-10KB`, `ingest-100B`; `fixed-…-RATE`: one offered rate.
SCENARIO_NAME = re.compile(
    r"^(?P<fixed>fixed-)?(?:(?P<topics>\d+)topics?-(?P<clients>\d+)c|ingest)"
    r"-(?P<size>\d+)(?P<unit>B|KB)(?(fixed)-(?P<rate>\d+))$"
)
CONNS_SCENARIO = "fixed-1topic-10000c-100B-10"


@dataclass(frozen=True)
class Scenario:
    name: str
    clients: int  # 0: ingest alone, the rate the gateway reads ZeroMQ with nobody connected
    topics: int  # topics in use; client i reads topic i % topics
    size: int  # payload bytes
    rates: tuple[float, ...]  # a rate of 0: an idle step, connections held, nothing published
    fixed: bool = False  # its rates only, whether the system keeps up or not
    skip: tuple[str, ...] = ()  # systems left out
    conns_per_proc: int = CONNS_PER_CLIENT_PROC
    min_duration: float = 0.0  # seconds per step at least, whatever --duration says


def size_name(size: int) -> str:
    return f"{size // 1000}KB" if size >= 1000 else f"{size}B"


def full_scenarios() -> list[Scenario]:
    out = []
    for size in (100, 10_000):
        for n in (1, 10, 100, 1000):
            out.append(Scenario(f"1topic-{n}c-{size_name(size)}", n, 1, size, RATES))
        out.append(Scenario(f"100topics-100c-{size_name(size)}", 100, 100, size, RATES))
    out.append(Scenario("ingest-100B", 0, 1, 100, INGEST_RATES))
    return out + fixed_scenarios()


def quick_scenarios() -> list[Scenario]:
    return [
        Scenario(KEY_SCENARIO, 100, 1, 100, QUICK_RATES),
        Scenario("ingest-100B", 0, 1, 100, (200_000,)),
        *fixed_scenarios(),
    ]


def fixed_scenarios() -> list[Scenario]:
    """The same work for every system, at loads the relay and zmqfeed keep up with: CPU per
    delivery compares there. The last holds 10,000 connections idle first (RSS per
    connection), then publishes to them; the naive gateway cannot hold that fan-out."""
    return [
        Scenario("fixed-1topic-100c-100B-300", 100, 1, 100, (300,), fixed=True),
        Scenario("fixed-1topic-1000c-100B-100", 1000, 1, 100, (100,), fixed=True),
        Scenario(
            CONNS_SCENARIO,
            10_000,
            1,
            100,
            (0, 10),
            fixed=True,
            skip=("naive-channels",),
            # 4 client processes, not 20: fewer wake-ups, each reading more (measured: 104%
            # of a core in all against the relay, p99 260 ms; 20 processes: 111%, 550 ms).
            conns_per_proc=2500,
            # A message takes a few hundred ms to reach all 10,000: over a short step that
            # tail alone would read as delivering under 90% of what was offered.
            min_duration=5.0,
        ),
    ]


def smoke_scenarios() -> list[Scenario]:
    return [Scenario("1topic-2c-100B", 2, 1, 100, (200,))]


@dataclass
class Options:
    systems: tuple[str, ...] = systems.SYSTEMS
    scenarios: list[Scenario] = field(default_factory=quick_scenarios)
    duration: float = 3.0
    redis_url: str = "redis://127.0.0.1:6379/14"
    client_procs: int | None = None  # None: one per CONNS_PER_CLIENT_PROC connections
    client: str = "c"  # procs.CLIENTS: bench/wsclient.c or bench/client.py
    daphne_procs: int = 1
    settings: str = "bench.site_settings"
    max_rss_mb: float = 4000.0  # a system over this is stopped (it is falling behind)
    refine: bool = False  # after falling behind, one more step between the last two rates
    on_row: Callable[[dict, dict], None] | None = None


class Meter:
    """CPU seconds and peak RSS (summed over processes) between start() and stop()."""

    def __init__(self, pids: list[int], limit_mb: float | None = None) -> None:
        self.procs = [psutil.Process(pid) for pid in pids]
        self.limit = limit_mb * 1e6 if limit_mb else None
        self.over_limit = False
        self.peak = 0
        self._cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _cpu_now(self) -> float:
        for p in self.procs:
            try:
                t = p.cpu_times()
                self._cpu[p.pid] = t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass  # gone: keep its last reading
        return sum(self._cpu.values())

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            rss = 0
            for p in self.procs:
                with contextlib.suppress(psutil.Error):
                    rss += p.memory_info().rss
            self.peak = max(self.peak, rss)
            self._cpu_now()
            if self.limit and rss > self.limit and not self.over_limit:
                self.over_limit = True
                for p in self.procs:
                    with contextlib.suppress(psutil.Error):
                        p.kill()

    def start(self) -> Meter:
        self.cpu0 = self._cpu_now()
        self._thread.start()
        return self

    def stop(self) -> tuple[float, float]:
        self._stop.set()
        self._thread.join()
        return self._cpu_now() - self.cpu0, self.peak / 1e6


def percentile_ms(hist: np.ndarray, q: float) -> float | None:
    total = hist.sum()
    if total <= 0:
        return None
    i = int(np.searchsorted(np.cumsum(hist), q * total))
    i = min(i, BUCKETS - 1)
    return round(math.sqrt(EDGES[i] * EDGES[i + 1]) * 1000, 3)


class Run:
    """One scenario on one system: the server, the client processes, the steps."""

    def __init__(self, scenario: Scenario, server: systems.Server, pub: procs.Child, opts: Options):
        self.scenario, self.server, self.pub, self.opts = scenario, server, pub, opts
        self.topics = topic_names(scenario.topics)
        self.clients: list[procs.Child] = []
        self.conn_topics: list[str] = []
        self.rss_kb_per_conn: float | None = None

    def server_rss(self) -> int:
        return sum(psutil.Process(p.pid).memory_info().rss for p in self.server.procs)

    def open_clients(self, setup: systems.Setup) -> None:
        """Connect every client, then measure what the idle connections hold in the server:
        its RSS now, each connection subscribed and past its warm-up message, less before."""
        n = self.scenario.clients
        before = self.server_rss()
        count = self.opts.client_procs or max(1, math.ceil(n / self.scenario.conns_per_proc))
        urls: list[list[list[str]]] = [[] for _ in range(count)]
        for i in range(n):
            topic = self.topics[i % len(self.topics)]
            urls[i % count].append([self.server.url(i, topic), topic])
            self.conn_topics.append(topic)
        argv = procs.client_argv(self.opts.client)
        for k in range(count):
            self.clients.append(procs.Child(argv, log=setup.log(f"client{k}")))
        for child, mine in zip(self.clients, urls, strict=True):
            child.send("connect", urls=mine, origin=setup.origin)
        for child, mine in zip(self.clients, urls, strict=True):
            got = child.receive(120)
            if got["connected"] != len(mine):
                raise RuntimeError(
                    f"{got['connected']} of {len(mine)} connections opened: {got['errors']}"
                )
        self.warm_up()
        if n >= RSS_MIN_CLIENTS:
            time.sleep(0.5)  # the last warm-up frames are written and freed
            self.rss_kb_per_conn = round((self.server_rss() - before) / n / 1000, 2)

    def warm_up(self, timeout: float = 60.0) -> None:
        """One message per topic until every connection has one: the path is open end to end."""
        deadline = time.monotonic() + timeout
        while True:
            self.pub.ask("ping", topics=self.topics)
            for child in self.clients:
                child.send("ready", timeout=1.0)
            ready = [child.receive(30) for child in self.clients]
            if all(r["ready"] == r["of"] for r in ready):
                return
            if time.monotonic() > deadline:
                got = sum(r["ready"] for r in ready)
                raise TimeoutError(
                    f"only {got} of {self.scenario.clients} connections got a message "
                    f"within {timeout:.0f} s"
                )

    def close_clients(self) -> None:
        for child in self.clients:
            try:
                child.ask("close", wait=15)
                child.send("quit")
            except (OSError, TimeoutError, RuntimeError):
                pass
            child.stop()
        self.clients = []

    def step(self, rate: float) -> tuple[dict, dict]:
        """One offered rate: the row (ROW_KEYS) and extra figures for the text table."""
        for child in self.clients:
            child.send("mark", quiet=0.3)
        for child in self.clients:
            child.receive(60)
        ingest0 = self.server.ingested() if not self.clients else 0
        server = Meter([p.pid for p in self.server.procs], self.opts.max_rss_mb).start()
        client = Meter([c.proc.pid for c in self.clients]).start()
        machine0 = psutil.cpu_times()
        duration = max(self.opts.duration, self.scenario.min_duration)
        if rate:
            sent = self.pub.ask(
                "run",
                wait=duration * 3 + 60,
                topics=self.topics,
                rate=rate,
                duration=duration,
                size=self.scenario.size,
            )
        else:  # idle: what the connections cost the server with nothing to deliver
            start = time.time()
            time.sleep(duration)
            zeros = [0] * len(self.topics)
            sent = {"per_topic": zeros, "sent": 0, "rate": 0.0, "start": start, "elapsed": duration}
        per_topic = dict(zip(self.topics, sent["per_topic"], strict=True))
        if self.clients:
            received, last, hist, max_s, extra = self._collect(per_topic, duration)
            expected = sum(per_topic[t] for t in self.conn_topics)
        else:
            received, last = self._ingested(ingest0, sent["sent"], duration)
            hist, max_s, extra, expected = np.zeros(BUCKETS), None, {}, sent["sent"]
        cpu_s, peak_mb = server.stop()
        client_cpu, _ = client.stop()
        machine1 = psutil.cpu_times()
        window = max(last - sent["start"], sent["elapsed"]) if received else 0.0
        busy = (sum(machine1) - machine1.idle) - (sum(machine0) - machine0.idle)
        wall = time.time() - sent["start"]
        row = {
            "scenario": self.scenario.name,
            "system": self.server.name,
            "clients": self.scenario.clients,
            "offered_per_s": round(sent["rate"], 1),
            "delivered_per_s": round(received / window, 1) if window else 0.0,
            "p50_ms": percentile_ms(hist, 0.50),
            "p99_ms": percentile_ms(hist, 0.99),
            "max_ms": round(max_s * 1000, 3) if max_s is not None else None,
            "lost": max(0, expected - received),
            "cpu_s": round(cpu_s, 3),
            "cpu_us_per_delivery": round(cpu_s * 1e6 / received, 3)
            if self.clients and received
            else None,
            "peak_rss_mb": round(peak_mb, 1),
            "rss_kb_per_conn": self.rss_kb_per_conn,
        }
        extra.update(
            target_per_s=rate,
            expected=expected,
            server_pct=round(100 * cpu_s / window) if window else 0,
            client_pct=round(100 * client_cpu / window) if window else 0,
            busy_pct=round(100 * busy / wall),
            rss_limit=server.over_limit,
            fanout_per_s=expected / sent["elapsed"] if sent["elapsed"] else 0.0,
            frames_per_s=round(extra.get("frames", 0) / window) if window else 0,
            client_procs=len(self.clients),
        )
        return row, extra

    def _collect(self, per_topic: dict[str, int], duration: float):
        for child in self.clients:
            child.send("collect", expected=per_topic, quiet=1.0, timeout=max(5.0, 2 * duration))
        stats = [child.receive(4 * duration + 60) for child in self.clients]
        hist = np.sum([np.asarray(s["hist"]) for s in stats], axis=0)
        extra = {
            "gaps": sum(s["gaps"] for s in stats),
            "missing": sum(s["missing"] for s in stats),
            "frames": sum(s["frames"] for s in stats),
            "closed": [c for s in stats for c in s["closed"]][:3],
            "errors": [e for s in stats for e in s["errors"]][:3],
        }
        received = sum(s["received"] for s in stats)
        last = max(s["last_recv"] for s in stats)
        return received, last, hist, max(s["max_s"] for s in stats), extra

    def _ingested(self, before: int, sent: int, duration: float) -> tuple[int, float]:
        """Messages the gateway read, and when the count stopped growing."""
        deadline = time.monotonic() + max(5.0, 2 * duration)
        count, changed = self.server.ingested() - before, time.time()
        while count < sent and time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.server.ingested() - before
            if now != count:
                count, changed = now, time.time()
            elif time.time() - changed > 1.0:
                break
        return count, changed


def behind(row: dict, extra: dict) -> str:
    """Why this step is past what the system sustains ('' if it kept up)."""
    if extra.get("rss_limit"):
        return "memory limit"
    if row["lost"]:
        why = "lost messages"
    elif row["delivered_per_s"] < 0.9 * extra["fanout_per_s"]:
        why = "delivered < 90% of offered"
    elif row["p99_ms"] is not None and row["p99_ms"] > BEHIND_P99_MS:
        why = f"p99 > {BEHIND_P99_MS:.0f} ms"
    elif row["offered_per_s"] < 0.9 * extra["target_per_s"]:
        return "publisher limit"
    else:
        return ""
    if extra.get("client_procs") and extra["client_pct"] >= 90 * extra["client_procs"]:
        why += " (clients at full CPU: the client is the limit)"
    return why


def run_pair(
    scenario: Scenario,
    name: str,
    setup: systems.Setup,
    pub: procs.Child,
    opts: Options,
    out: list[tuple[dict, dict]],
) -> None:
    """Every step of one scenario on one system, appended to ``out`` as they are measured."""
    server = systems.start(name, setup)
    run = Run(scenario, server, pub, opts)
    try:
        if scenario.clients:
            run.open_clients(setup)
        pending, best, refining = list(scenario.rates), 0.0, False
        last_good, first_behind = 0.0, 0.0  # the last rate kept up with, the next one tried
        while pending:
            rate = pending.pop(0)
            row, extra = run.step(rate)
            extra["behind"] = behind(row, extra)
            dead = [p.args[0] for p in server.procs if p.poll() is not None]
            if dead and not extra["rss_limit"]:
                extra["behind"] = f"server process exited ({dead[0]})"
            # Behind without loss but delivering more than ever: the next rate may deliver more.
            growing = not row["lost"] and row["delivered_per_s"] > GROWING * best
            best = max(best, row["delivered_per_s"])
            if extra["behind"] and growing and pending and not (dead or refining or scenario.fixed):
                extra["behind"] += "; delivered still growing: next rate"
            out.append((row, extra))
            if opts.on_row:
                opts.on_row(row, extra)
            if refining or dead or (scenario.fixed and extra["behind"]):
                break
            if not extra["behind"]:
                last_good, first_behind = rate, 0.0
                continue
            first_behind = first_behind or rate
            if not growing or not pending:
                if not opts.refine or not last_good or scenario.fixed:
                    break
                # Once more, halfway (geometrically) between those two rates.
                refining, pending = True, [round(math.sqrt(last_good * first_behind))]
    finally:
        run.close_clients()
        server.stop()


def run(
    opts: Options, workdir: Path, log: Callable[[str], None] = print
) -> list[tuple[dict, dict]]:
    """The whole benchmark; every process it starts is stopped when it returns or raises."""
    results: list[tuple[dict, dict]] = []
    try:
        pub = procs.Child([procs.PYTHON, "-m", "bench.publisher"], log=workdir / "publisher.log")
        endpoint = pub.receive(30)["endpoint"]
        setup = systems.Setup(workdir, endpoint, opts.redis_url, opts.daphne_procs, opts.settings)
        for scenario in opts.scenarios:
            for name in opts.systems:
                if not scenario.clients and name == "naive-channels":
                    continue  # it counts nothing it reads: ingest alone is not measurable
                if name in scenario.skip:
                    continue
                try:
                    run_pair(scenario, name, setup, pub, opts, results)
                except (RuntimeError, TimeoutError, OSError) as exc:
                    log(f"!! {scenario.name} on {name} failed: {exc} (logs: {workdir})")
    finally:
        procs.stop_all()
    return results
