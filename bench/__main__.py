"""``python -m bench [--quick]``: the end-to-end benchmark, baselines side by side."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from . import harness, procs, report, systems
from .harness import Options, Scenario, size_name

RESULTS = Path(__file__).resolve().parent / "results"


def parse_scenario(name: str, rates: tuple[float, ...]) -> Scenario:
    """``1topic-100c-100B``, ``100topics-100c-10KB``, ``ingest-100B``,
    ``fixed-1topic-1000c-100B-100`` and the like."""
    known = {s.name: s for s in harness.fixed_scenarios()}
    if name in known and not rates:
        return known[name]
    found = harness.SCENARIO_NAME.match(name)
    if not found:
        raise argparse.ArgumentTypeError(f"bad scenario name {name!r} (e.g. 1topic-100c-100B)")
    topics, clients = found["topics"], found["clients"]
    size_bytes = int(found["size"]) * (1000 if found["unit"] == "KB" else 1)
    if topics is None:
        return Scenario(name, 0, 1, size_bytes, rates or harness.INGEST_RATES)
    if int(topics) > systems.TOPICS:
        raise argparse.ArgumentTypeError(f"at most {systems.TOPICS} topics are configured")
    if found["fixed"]:
        fixed = rates or (float(found["rate"]),)
        return Scenario(name, int(clients), int(topics), size_bytes, fixed, fixed=True)
    return Scenario(name, int(clients), int(topics), size_bytes, rates or harness.RATES)


def options(argv: list[str] | None = None) -> tuple[Options, Path, str]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smoke run, about 5 minutes")
    mode.add_argument("--smoke", action="store_true", help="seconds: 2 clients, one low rate")
    parser.add_argument("--systems", help=f"comma-separated, of: {', '.join(systems.SYSTEMS)}")
    parser.add_argument("--scenarios", help="comma-separated, e.g. 1topic-100c-100B,ingest-100B")
    parser.add_argument("--rates", help="offered messages/s to step through, comma-separated")
    parser.add_argument("--duration", type=float, help="seconds per step")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results are written")
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/14",
        help="Redis database for the scaled modes (flushed before each system starts)",
    )
    parser.add_argument("--daphne-procs", type=int, default=1, help="daphnes in scaled modes")
    parser.add_argument(
        "--settings",
        default="bench.site_settings",
        help="settings module of the zmqfeed systems (to measure a variant; on PYTHONPATH)",
    )
    parser.add_argument("--client-procs", type=int, help="client processes (default: per 500)")
    parser.add_argument(
        "--client",
        choices=procs.CLIENTS,
        default="c",
        help="the client: c (bench/wsclient.c, the default) or python (bench/client.py)",
    )
    parser.add_argument("--max-rss-mb", type=float, default=4000.0)
    args = parser.parse_args(argv)
    rates = tuple(float(r) for r in args.rates.split(",")) if args.rates else ()
    if args.smoke:
        mode_name, scenarios, duration = "smoke", harness.smoke_scenarios(), 1.0
    elif args.quick:
        mode_name, scenarios, duration = "quick", harness.quick_scenarios(), 1.5
    else:
        mode_name, scenarios, duration = "full", harness.full_scenarios(), 3.0
    if args.scenarios:
        scenarios = [parse_scenario(n.strip(), rates) for n in args.scenarios.split(",")]
    elif rates:
        scenarios = [s if s.fixed else dataclasses.replace(s, rates=rates) for s in scenarios]
    chosen = tuple(s.strip() for s in args.systems.split(",")) if args.systems else systems.SYSTEMS
    unknown = set(chosen) - set(systems.SYSTEMS)
    if unknown:
        parser.error(f"unknown system(s) {', '.join(sorted(unknown))}")
    opts = Options(
        systems=chosen,
        scenarios=scenarios,
        duration=args.duration or duration,
        redis_url=args.redis_url,
        client_procs=args.client_procs,
        client=args.client,
        daphne_procs=args.daphne_procs,
        settings=args.settings,
        max_rss_mb=args.max_rss_mb,
        refine=mode_name == "full",
    )
    return opts, args.out, mode_name


def header(opts: Options, mode: str) -> list[str]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=RESULTS.parent
    ).stdout.strip()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return [
        f"zmqfeed benchmark ({mode}), {datetime.datetime.now().isoformat(timespec='seconds')}, "
        f"commit {commit or '?'}",
        f"machine: {platform.processor() or platform.machine()}, {psutil.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; load average at start {load}",
        f"{opts.duration:g} s per step; client: {opts.client}; scenarios: "
        + ", ".join(f"{s.name} ({size_name(s.size)})" for s in opts.scenarios),
    ]


def main(argv: list[str] | None = None) -> int:
    opts, out, mode = options(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that children are stopped
    lines = header(opts, mode)
    print("\n".join(lines), flush=True)
    progress: list[tuple[dict, dict]] = []

    def on_row(row: dict, extra: dict) -> None:
        progress.append((row, extra))
        print(report.table(progress[-1:]).splitlines()[-1], flush=True)

    opts.on_row = on_row
    print(report.table([]), flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="zmqfeed-bench-"))
    failures: list[str] = []
    started = time.monotonic()
    try:
        results = harness.run(opts, workdir, log=lambda m: (failures.append(m), print(m)))
    finally:
        if failures:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    lines.append(f"took {time.monotonic() - started:.0f} s")
    text = report.write(results, out, lines + failures)
    print()
    print(text, end="")
    print(f"written: {out / 'latest.json'}, {out / 'latest.txt'}, {out / 'chart.png'}")
    return 1 if failures or not results else 0


if __name__ == "__main__":
    sys.exit(main())
