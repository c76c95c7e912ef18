"""What a run produced: the table on stdout, ``latest.json``, ``latest.txt`` and the charts."""

from __future__ import annotations

import json
import math
import os
import re
import textwrap
from pathlib import Path

from .harness import CONNS_SCENARIO, KEY_SCENARIO, ROW_KEYS, SCENARIO_NAME

NAIVE, RELAY = "naive-channels", "relay"
ZMQFEED = ("zmqfeed-embedded", "zmqfeed-redis", "zmqfeed-redis-pubsub")
COLORS = {
    "zmqfeed-embedded": "#1f77b4",
    "zmqfeed-redis": "#2ca02c",
    "zmqfeed-redis-pubsub": "#17becf",
    "naive-channels": "#d62728",
    "relay": "#7f7f7f",
}
COLUMNS = (
    ("scenario", "{}", 27),
    ("system", "{}", 20),
    ("clients", "{}", 7),
    ("offered_per_s", "{:,.0f}", 11),
    ("delivered_per_s", "{:,.0f}", 12),
    ("p50_ms", "{:.2f}", 8),
    ("p99_ms", "{:.2f}", 8),
    ("max_ms", "{:.1f}", 8),
    ("lost", "{:,}", 9),
    ("missing", "{:,}", 8),
    ("gaps", "{:,}", 8),
    ("cpu_s", "{:.2f}", 6),
    ("cpu_us_per_delivery", "{:.2f}", 7),
    ("peak_rss_mb", "{:.0f}", 6),
    ("rss_kb_per_conn", "{:.1f}", 7),
    ("server_pct", "{}", 5),
    ("client_pct", "{}", 5),
    ("frames_per_s", "{:,}", 9),
    ("busy_pct", "{}", 5),
    ("behind", "{}", 0),
)
HEADERS = {
    "offered_per_s": "offered/s",
    "delivered_per_s": "delivered/s",
    "p50_ms": "p50 ms",
    "p99_ms": "p99 ms",
    "max_ms": "max ms",
    "missing": "holes",
    "gaps": "gap'd",
    "cpu_s": "cpu s",
    "cpu_us_per_delivery": "µs/dlv",
    "peak_rss_mb": "RSS MB",
    "rss_kb_per_conn": "KB/conn",
    "server_pct": "srv%",
    "client_pct": "cli%",
    "frames_per_s": "frames/s",
    "busy_pct": "box%",
    "behind": "stopped because",
}
LEGEND = (
    "delivered/s: messages received by all clients together per second, from the first send "
    "to the last receipt. lost: messages not received within the step (expected minus "
    "received); holes: of those, the ones missing from the seq numbers that clients saw "
    "(dropped by the server; the rest were dropped before the server numbered them, or were "
    "still on their way); gap'd: how many the server reported in `gap` frames (holes minus "
    "gap'd: dropped silently). cpu s / RSS MB: "
    "the system's processes (Redis not included). µs/dlv: their CPU over the step divided by "
    "the messages all clients received, in µs: what one delivery costs the server. "
    "KB/conn: the system's RSS with the scenario's clients connected and idle, less before "
    "any connected, per connection (scenarios of 100 clients or more). srv% / cli%: CPU of "
    "the system / of the "
    "client processes over the step, in % of one core (about 100 on a one-process system means "
    "it is the limit). frames/s: WebSocket frames all clients read per second. "
    "box%: the whole machine's busy CPU (200 = both cores), other "
    "programs included. The summary gives each system's most delivered at a step where it "
    "lost nothing, and its CPU per delivery as a multiple of the relay's and the naive "
    "gateway's at the highest rate both kept up with (the same work)."
)


def _cell(value, fmt: str) -> str:
    if value is None or value == "":
        return "-"
    return fmt.format(value)


def table(results: list[tuple[dict, dict]]) -> str:
    lines = [
        " ".join(HEADERS.get(k, k).rjust(w) if w else HEADERS.get(k, k) for k, _, w in COLUMNS)
    ]
    previous = None
    for row, extra in results:
        if previous and previous != row["scenario"]:
            lines.append("")
        previous = row["scenario"]
        values = {**row, **extra}
        cells = []
        for key, fmt, width in COLUMNS:
            text = _cell(values.get(key), fmt)
            cells.append(
                text.rjust(width) if key not in ("scenario", "system") else text.ljust(width)
            )
        lines.append(" ".join(cells).rstrip())
    return "\n".join(lines)


def best(results: list[tuple[dict, dict]], scenario: str) -> dict[str, dict]:
    """Per system, its step that delivered the most in the scenario without losing anything.

    Steps that fell behind without loss count: their rate is what the system pushes through,
    and one that lags on latency at one rate may keep up at the next (a relay too fast for its
    clients at one message per frame catches up with more messages per frame).
    """
    out: dict[str, dict] = {}
    for row, _ in results:
        if row["scenario"] == scenario and not row["lost"] and row["offered_per_s"]:
            top = out.get(row["system"])
            if top is None or row["delivered_per_s"] > top["delivered_per_s"]:
                out[row["system"]] = row
    return out


def _step(offered: float) -> int:
    """Which step of the ladder an offered rate is (tenths of a decade): measured rates of
    one step (9,947 and 10,000/s) match, those of the next (30,000/s) do not."""
    return round(10 * math.log10(offered)) if offered > 0 else -1


def equal_work(rows: list[dict], scenario: str, system: str, base: str) -> tuple[float, float]:
    """(system's CPU per delivery ÷ base's, system's offered rate) at the highest rate both
    kept up with in the scenario, where they did the same work; (0, 0) if there is none."""
    kept: dict[tuple[str, int], dict] = {}
    for r in rows:
        if r["scenario"] == scenario and r.get("cpu_us_per_delivery") and kept_up(r):
            kept[(r["system"], _step(r["offered_per_s"]))] = r
    common = [step for (s, step) in kept if s == system and (base, step) in kept]
    if not common:
        return 0.0, 0.0
    mine, theirs = kept[(system, max(common))], kept[(base, max(common))]
    return mine["cpu_us_per_delivery"] / theirs["cpu_us_per_delivery"], mine["offered_per_s"]


def times(ratio: float, sign: str = "x") -> str:
    """A ratio of CPU per delivery: ``1.3x``, ``0.0083x``."""
    return f"{ratio:.2g}{sign}" if ratio < 10 else f"{ratio:,.0f}{sign}"


def summary(results: list[tuple[dict, dict]]) -> list[str]:
    rows = [row for row, _ in results]
    lines = []
    for scenario in dict.fromkeys(r["scenario"] for r in rows):
        top = best(results, scenario)
        parts = []
        for system, row in top.items():
            ratios = []
            for base in (RELAY, NAIVE):
                ratio, rate = equal_work(rows, scenario, system, base) if system != base else (0, 0)
                if ratio:
                    ratios.append(f"{times(ratio)} {base} at {_about(rate)}/s")
            text = f"{system} {row['delivered_per_s']:,.0f}/s"
            parts.append(text + (f" (CPU per delivery: {', '.join(ratios)})" if ratios else ""))
        lines.append(f"{scenario}: most delivered without loss: " + "; ".join(parts))
    key = best(results, KEY_SCENARIO)
    if key:
        lines += [
            "",
            f"Targets ({KEY_SCENARIO}: one topic, 100 clients, 100 B messages; CPU per "
            "delivery at the highest rate both kept up with):",
        ]
        for system in ZMQFEED:
            if system not in key:
                continue
            figures = []
            for base, target in ((RELAY, ""), (NAIVE, "")):
                ratio, rate = equal_work(rows, KEY_SCENARIO, system, base)
                if ratio:
                    figures.append(
                        f"CPU per delivery {times(ratio)} {base} at {_about(rate)}/s{target}"
                    )
            for r in rows:
                if (r["scenario"], r["system"]) == (KEY_SCENARIO, system) and (
                    900 <= r["offered_per_s"] <= 1100
                ):
                    p99 = _cell(r["p99_ms"], "{:.1f}")
                    figures.append(f"p99 {p99} ms at 1,000 msg/s (target <= 20), lost {r['lost']}")
            lines.append(f"  {system}: " + "; ".join(figures))
    lines += fixed_targets(rows)
    ingest = [r for r in rows if not r["clients"]]
    if ingest:
        lines += ["", "Ingest alone (no clients; target >= 200,000 msg/s of 100 B without loss):"]
        for system, row in best(results, ingest[0]["scenario"]).items():
            lines.append(
                f"  {system}: read {row['delivered_per_s']:,.0f}/s without loss "
                f"(offered {row['offered_per_s']:,.0f}/s)"
            )
    return lines


def fixed_targets(rows: list[dict]) -> list[str]:
    """The fixed loads against their targets: CPU per delivery <= 0.7x the relay's (one
    message per frame: the unbatched loads), and at 10,000 connections <= 20 KB per idle
    connection, p99 <= 100 ms and nothing lost at 10 msg/s."""
    fixed = [r for r in rows if r["scenario"].startswith("fixed-")]
    if not fixed:
        return []
    lines = [
        "",
        "Fixed loads (targets: CPU per delivery <= 0.7x the relay's; at 10,000 "
        "connections <= 20 KB per idle connection, p99 <= 100 ms, nothing lost):",
    ]
    for scenario in dict.fromkeys(r["scenario"] for r in fixed):
        here = {r["system"]: r for r in fixed if r["scenario"] == scenario and r["offered_per_s"]}
        idle = {
            r["system"]: r for r in fixed if r["scenario"] == scenario and not r["offered_per_s"]
        }
        relay = here.get(RELAY)
        for system in ZMQFEED:
            row = here.get(system)
            if row is None or not row["cpu_us_per_delivery"]:
                continue
            figures = [f"{row['cpu_us_per_delivery']:.1f} µs per delivery"]
            if relay and relay["cpu_us_per_delivery"]:
                figures[0] += (
                    f" ({times(row['cpu_us_per_delivery'] / relay['cpu_us_per_delivery'])} relay)"
                )
            figures.append(f"p99 {_cell(row['p99_ms'], '{:.0f}')} ms, lost {row['lost']:,}")
            if system in idle and idle[system].get("rss_kb_per_conn"):
                figures.append(f"{idle[system]['rss_kb_per_conn']:.1f} KB per idle connection")
            lines.append(f"  {scenario} {system}: " + "; ".join(figures))
    return lines


def chart(results: list[tuple[dict, dict]], path: Path, scenarios: list[str]) -> None:
    """Delivered rate and p99 latency against offered rate, one row of panels per scenario.

    Hollow markers: steps where the system fell behind (the last of each line).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(scenarios), 2, figsize=(11, 3.8 * len(scenarios)), squeeze=False)
    for (left, right), scenario in zip(axes, scenarios, strict=True):
        # Idle steps (nothing offered) have no place on a log scale.
        here = [(r, e) for r, e in results if r["scenario"] == scenario and r["offered_per_s"]]
        top = max(r["offered_per_s"] for r, _ in here)
        fanout = max(e.get("fanout_per_s", 0) / max(r["offered_per_s"], 1) for r, e in here)
        left.plot([1, top], [fanout, top * fanout], ":", color="#999", linewidth=1)
        for system, color in COLORS.items():
            mine = sorted(
                (p for p in here if p[0]["system"] == system), key=lambda p: p[0]["offered_per_s"]
            )
            if not mine:
                continue
            x = [r["offered_per_s"] for r, _ in mine]
            left.plot(x, [r["delivered_per_s"] for r, _ in mine], "-", color=color, label=system)
            p99 = [(r["offered_per_s"], r["p99_ms"]) for r, _ in mine if r["p99_ms"] is not None]
            if p99:
                right.plot(*zip(*p99, strict=True), "-", color=color, label=system)
            for r, e in mine:
                face = "white" if e.get("behind") else color
                style = dict(color=color, markerfacecolor=face, markersize=5)
                left.plot(r["offered_per_s"], r["delivered_per_s"], "o", **style)
                if r["p99_ms"] is not None:
                    right.plot(r["offered_per_s"], r["p99_ms"], "o", **style)
        clients = here[0][0]["clients"]
        left.set_title(f"{scenario}: delivered, all {clients} clients (dotted: all offered)")
        left.set_ylabel("delivered messages/s")
        right.set_title(f"{scenario}: p99 latency, publish to receipt")
        right.set_ylabel("p99 ms (dotted: 20 ms)")
        right.axhline(20, color="#999", linestyle=":", linewidth=1)
        for ax in (left, right):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("offered messages/s (hollow: fell behind)")
            ax.grid(True, which="both", alpha=0.3)
        left.set_xlim(left=min(r["offered_per_s"] for r, _ in here) / 1.5, right=top * 1.5)
        left.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write(results: list[tuple[dict, dict]], out: Path, header: list[str]) -> str:
    """Write latest.json (rows), latest.txt (table and summary) and the charts; return the text."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [{k: row[k] for k in ROW_KEYS} for row, _ in results]
    tmp = out / "latest.json.tmp"
    tmp.write_text(json.dumps(rows, indent=1) + "\n")
    os.replace(tmp, out / "latest.json")
    legend = textwrap.fill(LEGEND, 100)
    text = "\n".join([*header, "", table(results), "", legend, "", *summary(results)]) + "\n"
    (out / "latest.txt").write_text(text)
    with_clients = list(dict.fromkeys(r["scenario"] for r in rows if r["clients"]))
    if with_clients:
        key = KEY_SCENARIO if KEY_SCENARIO in with_clients else with_clients[0]
        chart(results, out / "chart.png", [key])
        if len(with_clients) > 1:
            chart(results, out / "chart-all.png", with_clients)
    return text


# The README's figures: written from bench/results/ by `python -m bench.report --readme
# README.md` (make bench runs it), and checked against the results by tests/test_bench.py.

README_SYSTEMS = {
    "zmqfeed-embedded": "zmqfeed, embedded",
    "zmqfeed-redis-pubsub": "zmqfeed, Redis pub/sub (default)",
    "zmqfeed-redis": "zmqfeed, Redis `RedisChannelLayer`",
    NAIVE: "naive Channels gateway",
    RELAY: "asyncio relay (ceiling)",
}
TIMES = "\N{MULTIPLICATION SIGN}"  # after a multiple of the relay's CPU per delivery
SCENARIO_COLUMNS = ("zmqfeed-embedded", "zmqfeed-redis-pubsub", RELAY)


def scenario_label(name: str) -> str:
    """``100topics-100c-10KB`` → ``100 topics, a client each, 10 KB``."""
    found = SCENARIO_NAME.match(name)
    if not found:
        return name
    topics, clients, size, unit = found.group("topics", "clients", "size", "unit")
    size_text = f"{size} {unit}" if unit == "KB" else ""
    if topics is None:
        words = ["ingest alone, no clients"]
    elif int(topics) > 1:
        each = int(clients) // int(topics)
        reader = "a client" if each == 1 else f"{each:,} clients"
        words = [f"{int(topics):,} topics, {reader} each"]
    else:
        words = [f"{int(clients):,} client{'s' * (int(clients) != 1)}"]
    if found["rate"]:
        words.append(f"{int(found['rate']):,} msg/s")
    return ", ".join([size_text, *words] if size_text else words)


def fanout(row: dict) -> float:
    """Deliveries per message offered in the row's scenario."""
    found = SCENARIO_NAME.match(row["scenario"])
    topics = int(found["topics"]) if found and found["topics"] else 1
    return max(row["clients"], 1) / topics if row["clients"] else 1.0


def kept_up(row: dict) -> bool:
    """As the harness judges a step, from what latest.json keeps of it."""
    from .harness import BEHIND_P99_MS

    p99 = row["p99_ms"]
    return (
        not row["lost"]
        and row["delivered_per_s"] >= 0.9 * row["offered_per_s"] * fanout(row)
        and (p99 is None or p99 <= BEHIND_P99_MS)
    )


def _about(rate: float) -> str:
    """A measured offered rate as its two significant digits (29,999 → 30,000)."""
    return f"{float(f'{rate:.2g}'):,.0f}"


def _ratio(value: float, base: float) -> str:
    share = 100 * value / base
    return f"{share:.0f}%" if share >= 10 else f"{share:.2g}%"


def run_line(results: Path) -> tuple[str, str, str]:
    """(mode, commit, CPUs) from the first lines of latest.txt."""
    lines = (results / "latest.txt").read_text().splitlines()
    head = re.match(r"zmqfeed benchmark \((\w+)\), .*, commit (\S+)$", lines[0])
    cpus = re.search(r"(\d+) CPUs", lines[1])
    assert head and cpus, f"{results / 'latest.txt'}: not a benchmark's header"
    return head.group(1), head.group(2), cpus.group(1)


def _cpu_cell(rows: list[dict], scenario: str, system: str, at: float) -> str:
    """A system's CPU per delivery and its multiple of the relay's at the same rate: ``at``
    if both kept up there, else the highest rate both kept up with."""
    here = [r for r in rows if r["scenario"] == scenario and r.get("cpu_us_per_delivery")]
    mine = {_step(r["offered_per_s"]): r for r in here if r["system"] == system}
    relay = {_step(r["offered_per_s"]): r for r in here if r["system"] == RELAY}
    step = _step(at)
    if step not in mine or not kept_up(mine[step]):
        ratio, rate = equal_work(rows, scenario, system, RELAY)
        if not ratio:
            return "-"
        step = _step(rate)
    cell = f"{mine[step]['cpu_us_per_delivery']:.1f} µs"
    if system != RELAY and step in relay and kept_up(relay[step]):
        ratio = mine[step]["cpu_us_per_delivery"] / relay[step]["cpu_us_per_delivery"]
        cell += f" ({times(ratio, TIMES)})"
    return cell if step == _step(at) else f"{cell} at {_about(mine[step]['offered_per_s'])} msg/s"


def readme_key(results: Path) -> str:
    rows = json.loads((results / "latest.json").read_text())
    pairs = [(r, {}) for r in rows]
    mode, commit, cpus = run_line(results)
    key = [r for r in rows if r["scenario"] == KEY_SCENARIO]
    top = best(pairs, KEY_SCENARIO)
    found = SCENARIO_NAME.match(KEY_SCENARIO)
    assert key and found, f"no {KEY_SCENARIO} in {results / 'latest.json'}"
    lines = [
        f"One topic to {key[0]['clients']:,} clients, {found['size']}-byte messages, one "
        f"gateway process, {cpus} CPUs, loopback (`bench/results/latest.txt`, {mode} run, "
        f"commit {commit}):",
        "",
        "| system | most delivered without loss | server CPU per delivery at 1,000 msg/s "
        f"({TIMES} relay's) | p50 / p99 at 1,000 msg/s | most offered kept up with |",
        "|---|---:|---:|---:|---:|",
    ]
    for system, label in README_SYSTEMS.items():
        row = top.get(system)
        if row is None:
            continue
        mine = sorted((r for r in key if r["system"] == system), key=lambda r: r["offered_per_s"])
        at_1000 = [r for r in mine if 900 <= r["offered_per_s"] <= 1100 and kept_up(r)]
        if at_1000:
            latency = f"{at_1000[0]['p50_ms']:.1f} / {at_1000[0]['p99_ms']:.1f} ms"
        else:
            behind = [r["offered_per_s"] for r in mine if not kept_up(r)]
            latency = f"falls behind from about {_about(min(behind))} msg/s" if behind else "-"
        kept = [r for r in mine if kept_up(r)]
        if kept:
            fastest = max(kept, key=lambda r: r["offered_per_s"])
            ceiling = f"{_about(fastest['offered_per_s'])} msg/s (p99 {fastest['p99_ms']:.0f} ms)"
        else:
            ceiling = "-"
        cpu = _cpu_cell(rows, KEY_SCENARIO, system, 1000.0)
        lines.append(
            f"| {label} | {row['delivered_per_s']:,.0f}/s | {cpu} | {latency} | {ceiling} |"
        )
    return "\n".join(lines)


def _fixed(name: str) -> bool:
    found = SCENARIO_NAME.match(name)
    return bool(found and found["fixed"])


def readme_scenarios(results: Path) -> str:
    rows = json.loads((results / "latest.json").read_text())
    pairs = [(r, {}) for r in rows]
    names = [
        s for s in dict.fromkeys(r["scenario"] for r in rows) if s != KEY_SCENARIO and not _fixed(s)
    ]
    heads = [README_SYSTEMS[s].split(" (")[0].removeprefix("zmqfeed, ") for s in SCENARIO_COLUMNS]
    lines = [
        "| scenario | " + " | ".join(heads) + " |",
        "|---|" + "---:|" * len(heads),
    ]
    for name in names:
        top = best(pairs, name)
        relay = top.get(RELAY)
        cells = []
        for system in SCENARIO_COLUMNS:
            row = top.get(system)
            if row is None:
                cells.append("-")
                continue
            cell = f"{row['delivered_per_s']:,.0f}/s"
            if relay and system != RELAY:
                cell += f" ({_ratio(row['delivered_per_s'], relay['delivered_per_s'])})"
            cells.append(cell)
        lines.append(f"| {scenario_label(name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def readme_fixed(results: Path) -> str:
    """The fixed loads: every system's CPU per delivery at the same rate, and its p99."""
    rows = [r for r in json.loads((results / "latest.json").read_text()) if r["offered_per_s"]]
    names = [s for s in dict.fromkeys(r["scenario"] for r in rows) if _fixed(s)]
    assert names, f"no fixed-load scenario in {results / 'latest.json'}"
    heads = [README_SYSTEMS[s].split(" (")[0].removeprefix("zmqfeed, ") for s in README_SYSTEMS]
    lines = [
        "| one topic, 100 B | " + " | ".join(heads) + " |",
        "|---|" + "---:|" * len(heads),
    ]
    for name in names:
        here = {r["system"]: r for r in rows if r["scenario"] == name}
        relay = here.get(RELAY)
        cells = []
        for system in README_SYSTEMS:
            row = here.get(system)
            if row is None or not row["cpu_us_per_delivery"]:
                cells.append("-")
                continue
            cell = f"{row['cpu_us_per_delivery']:.1f} µs"
            if system != RELAY and relay and relay["cpu_us_per_delivery"]:
                cell += (
                    f" ({times(row['cpu_us_per_delivery'] / relay['cpu_us_per_delivery'], TIMES)})"
                )
            p99 = _cell(row["p99_ms"], "{:.0f}")
            cell += f", p99 {p99} ms"
            if row["lost"]:
                cell += f", lost {row['lost']:,}"
            elif not kept_up(row):
                cell += ", behind"
            cells.append(cell)
        lines.append(f"| {scenario_label(name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def readme_connections(results: Path) -> str:
    """10,000 connections: what they hold idle, then what 10 msg/s to each costs."""
    rows = [r for r in json.loads((results / "latest.json").read_text())]
    here = [r for r in rows if r["scenario"] == CONNS_SCENARIO]
    assert here, f"no {CONNS_SCENARIO} in {results / 'latest.json'}"
    clients = here[0]["clients"]
    lines = [
        f"| {clients:,} connections | RSS per idle connection | RSS, idle | CPU idle "
        "| at 10 msg/s: CPU per delivery | p50 / p99 | lost |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for system, label in README_SYSTEMS.items():
        idle = [r for r in here if r["system"] == system and not r["offered_per_s"]]
        busy = [r for r in here if r["system"] == system and r["offered_per_s"]]
        if not idle or not busy:
            continue
        i, b = idle[0], busy[0]
        relay = [r for r in here if r["system"] == RELAY and r["offered_per_s"]]
        cpu = f"{b['cpu_us_per_delivery']:.1f} µs" if b["cpu_us_per_delivery"] else "-"
        if (
            system != RELAY
            and relay
            and relay[0]["cpu_us_per_delivery"]
            and b["cpu_us_per_delivery"]
        ):
            cpu += f" ({times(b['cpu_us_per_delivery'] / relay[0]['cpu_us_per_delivery'], TIMES)})"
        latency = f"{_cell(b['p50_ms'], '{:.0f}')} / {_cell(b['p99_ms'], '{:.0f}')} ms"
        lines.append(
            f"| {label} | {i['rss_kb_per_conn']:.1f} KB | {i['peak_rss_mb']:,.0f} MB "
            f"| {i['cpu_s']:.2f} s | {cpu} | {latency} | {b['lost']:,} |"
        )
    return "\n".join(lines)


def readme_daphne_procs(results: Path) -> str:
    """The scaled run with two daphne processes, in bench/results/daphne-procs-2/."""
    where = results / "daphne-procs-2"
    rows = json.loads((where / "latest.json").read_text())
    _, commit, _ = run_line(where)
    system = "zmqfeed-redis-pubsub"
    row = best([(r, {}) for r in rows], KEY_SCENARIO)[system]
    at_1000 = [
        r
        for r in rows
        if (r["scenario"], r["system"]) == (KEY_SCENARIO, system)
        and 900 <= r["offered_per_s"] <= 1100
    ]
    latency = f", with p99 {at_1000[0]['p99_ms']:.1f} ms at 1,000 msg/s" if at_1000 else ""
    return (
        "With two daphne processes behind one subscriber (`--daphne-procs 2`, "
        f"`bench/results/daphne-procs-2/`, commit {commit}), pub/sub delivered "
        f"{row['delivered_per_s']:,.0f}/s without loss{latency}."
    )


def readme_publish(results: Path) -> str:
    row = json.loads((results / "publish.json").read_text())
    return (
        "Publishing back (`python -m bench.publish`, run by `make bench`, "
        f"`bench/results/publish.json`, a {row['seconds']:.0f} s run): {row['clients']} clients, "
        "each waiting for its `published` before the next, through one embedded daphne into "
        f"one ZeroMQ socket: {row['acked_per_s']:,} publishes/s acked, {row['zmq_received']:,} "
        f"of {row['acked']:,} received on the ZeroMQ side, ack p50 {row['p50_ms']:.0f} ms and "
        f"p99 {row['p99_ms']:.0f} ms, {row['server_cpu_us_per_publish']:.0f} µs of server CPU "
        "per publish."
    )


README_BLOCKS = {
    "key": readme_key,
    "scenarios": readme_scenarios,
    "fixed": readme_fixed,
    "connections": readme_connections,
    "daphne-procs": readme_daphne_procs,
    "publish": readme_publish,
}
_BLOCK = re.compile(r"(<!-- bench:(\S+) -->\n)(?:.*?\n)?(<!-- /bench:\2 -->)", re.S)


def readme(text: str, results: Path) -> str:
    """``text`` with each ``<!-- bench:NAME -->`` … ``<!-- /bench:NAME -->`` block written
    again from ``results``; every block of README_BLOCKS must be there."""
    seen = []

    def fill(match: re.Match) -> str:
        seen.append(match.group(2))
        block = README_BLOCKS[match.group(2)](results)
        return f"{match.group(1)}\n{block}\n\n{match.group(3)}"  # blank lines: Markdown blocks

    out = _BLOCK.sub(fill, text)
    missing = sorted(set(README_BLOCKS) - set(seen))
    assert not missing, f"no <!-- bench:NAME --> block for {missing}"
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m bench.report",
        description="Write the README's benchmark figures from the results.",
    )
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    new = readme(text, args.results)
    if new != text:
        args.readme.write_text(new, encoding="utf-8")
    print(f"{args.readme}: {'updated' if new != text else 'already current'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
