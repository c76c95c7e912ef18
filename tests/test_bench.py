"""`make bench` in miniature: a smoke run writes its rows and messages get through.

The benchmark itself is never part of the suite; these tests only check that its machinery
works end to end (publisher, each system, client processes, results) and that the client
counts what zmqfeed's frames carry. No figure is asserted against a threshold.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench import procs, report
from bench.client import BUCKET_FIRST_S, BUCKET_RATIO, BUCKETS, SPREAD, Connection, Stats
from bench.harness import CONNS_SCENARIO, ROW_KEYS
from zmqfeed.core.protocol import batch_frame, gap, message_head, message_tail

ROOT = Path(__file__).resolve().parent.parent


def run_bench(out: Path, *args: str) -> list[dict]:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((out / "latest.json").read_text())


def check_rows(rows: list[dict], systems: list[str]) -> None:
    assert [r["system"] for r in rows] == systems
    for row in rows:
        assert tuple(row) == ROW_KEYS
        assert (row["scenario"], row["clients"]) == ("1topic-2c-100B", 2)
        assert row["offered_per_s"] > 0
        assert row["delivered_per_s"] > 0
        assert row["lost"] == 0, row
        assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"] * 1.02
        assert row["cpu_s"] > 0
        # The step's CPU over what the clients received; a --smoke step lasts about a second,
        # so that is about delivered_per_s.
        assert row["cpu_us_per_delivery"] == pytest.approx(
            row["cpu_s"] * 1e6 / row["delivered_per_s"], rel=0.5
        ), row
        assert row["peak_rss_mb"] > 0
        assert row["rss_kb_per_conn"] is None  # too few connections to tell


def test_smoke_run_writes_rows_table_and_chart(tmp_path: Path) -> None:
    systems = ["zmqfeed-embedded", "naive-channels", "relay"]
    rows = run_bench(tmp_path, "--systems", ",".join(systems))
    check_rows(rows, systems)
    assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (tmp_path / "latest.txt").read_text()
    assert "zmqfeed-embedded" in text
    assert "x naive-channels" in text  # the ratios are in the summary


@pytest.mark.redis
def test_smoke_run_scaled_modes(tmp_path: Path, redis_url: str) -> None:
    systems = ["zmqfeed-redis", "zmqfeed-redis-pubsub"]
    rows = run_bench(tmp_path, "--systems", ",".join(systems), "--redis-url", redis_url)
    check_rows(rows, systems)


def frame(payload: bytes) -> bytes:
    """A server-to-client text frame (unmasked), as RFC 6455 lays it out."""
    n = len(payload)
    if n < 126:
        return bytes([0x81, n]) + payload
    if n < 65536:
        return bytes([0x81, 126]) + struct.pack("!H", n) + payload
    return bytes([0x81, 127]) + struct.pack("!Q", n) + payload


def envelope(seq: int, stamp: float) -> bytes:
    data = b'{"t":%.6f,"pad":"xx"}' % stamp
    return message_head("bench", "t000") + b"%d" % seq + message_tail(b'"t000"', b"1.0", data)


def test_client_counts_zmqfeed_frames_losses_gaps_and_latency() -> None:
    async def scenario() -> tuple[Connection, Stats]:
        stats = Stats()
        conn = Connection("127.0.0.1:1", "/ws/", "http://127.0.0.1", stats, "t000")
        conn.data_received(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
        base = 1_000_000.0
        stream = b"".join(
            [
                frame(b'{"type":"subscribed","feed":"bench","topic":"t000","seq":0}'),
                frame(envelope(1, base)),
                frame(batch_frame([envelope(2, base), envelope(3, base)])),
                # 4 and 5 lost, reported by the server; 6 arrives in a long frame
                frame(gap("bench", "t000", 4, 5, "slow_consumer").encode()),
                frame(envelope(6, base) + b" " * 300),
            ]
        )
        # Bytes arrive split anywhere: feed them in uneven pieces.
        for i in range(0, len(stream), 7):
            conn.data_received(stream[i : i + 7])
        return conn, stats

    conn, stats = asyncio.run(scenario())
    assert conn.received == 4  # seq 1, 2, 3, 6; the `subscribed` reply is not a message
    assert conn.missing == 2
    assert conn.gaps == 2
    assert conn.last == 6
    assert list(stats.counts) == [1, 2, 1]
    assert all(lat > 1e9 for lat in stats.lat_first)  # now minus a stamp from 1970


def test_client_reads_the_naive_gateways_json_dumps_frames() -> None:
    async def scenario() -> Connection:
        conn = Connection("127.0.0.1:1", "/ws/", "http://127.0.0.1", Stats(), "t000")
        conn.data_received(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
        for seq in (1, 2, 4):
            text = json.dumps({"type": "message", "seq": seq, "data": {"t": 1.5, "pad": "x"}})
            conn.data_received(frame(text.encode()))
        return conn

    conn = asyncio.run(scenario())
    assert (conn.received, conn.missing, conn.last) == (3, 1, 4)


def test_client_leaves_the_previous_steps_losses_out_of_a_new_step() -> None:
    async def scenario() -> Connection:
        conn = Connection("127.0.0.1:1", "/ws/", "http://127.0.0.1", Stats(), "t000")
        conn.data_received(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
        conn.data_received(frame(envelope(1, 1.0)))
        conn.fresh = True  # what `mark` does between steps
        # Dropped during the previous step: reported and skipped before the new step's first.
        conn.data_received(frame(gap("bench", "t000", 2, 9, "slow_consumer").encode()))
        conn.data_received(frame(envelope(10, 1.0)))
        conn.data_received(frame(envelope(12, 1.0)))  # 11 lost in this step
        return conn

    conn = asyncio.run(scenario())
    assert (conn.missing, conn.gaps, conn.received) == (1, 0, 3)


# The README's figures are the latest results' (bench/report.py writes them).

README = ROOT / "README.md"
RESULTS = ROOT / "bench" / "results"


def test_the_readme_shows_the_latest_results() -> None:
    text = README.read_text(encoding="utf-8")
    assert report.readme(text, RESULTS) == text, (
        "README.md's benchmark figures differ from bench/results/: run python -m bench.report"
    )


def test_figures_live_in_the_performance_section_only() -> None:
    """Elsewhere (the Scaled section's layer table, say) the README refers to them."""
    text = README.read_text(encoding="utf-8")
    start, end = text.index("\n## Performance\n"), text.index("\n## Architecture\n")
    rate = r"\d[\d,.]*\s*(?:[kM]\b)?\s*(?:/s\b|messages/s|msg/s|frames/s|publishes/s)"
    elsewhere = re.findall(rate, text[:start] + text[end:])
    assert not elsewhere, f"measured rates outside Performance: {elsewhere}"


def test_readme_blocks_are_written_from_the_rows(tmp_path: Path) -> None:
    steps = {  # (offered, share delivered): the last step of each falls behind
        "zmqfeed-embedded": ((1000, 1), (3000, 1), (9000, 0.5)),
        "relay": ((100, 1), (1000, 1), (10_000, 1), (30_000, 0.5)),
        "naive-channels": ((30, 1), (100, 1), (300, 0.5)),
    }
    cpu = {"zmqfeed-embedded": 2.0, "relay": 1.0, "naive-channels": 50.0}
    rows = [
        {"scenario": "1topic-100c-100B", "system": system, "clients": 100,
         "offered_per_s": rate, "delivered_per_s": rate * 100 * share, "p50_ms": 2.0,
         "p99_ms": 5.0 if share == 1 else 1500.0, "max_ms": 9.0, "lost": 0, "cpu_s": 1.0,
         "cpu_us_per_delivery": cpu[system], "peak_rss_mb": 80.0, "rss_kb_per_conn": 20.0}
        for system, mine in steps.items()
        for rate, share in mine
    ]  # fmt: skip
    for system, lost in (("zmqfeed-embedded", 0), ("relay", 0), ("naive-channels", 700)):
        rows.append({**rows[0], "scenario": "fixed-1topic-100c-100B-300", "system": system,
                     "offered_per_s": 300, "delivered_per_s": 30_000 - lost, "lost": lost,
                     "cpu_us_per_delivery": 3 * cpu[system]})  # fmt: skip
    for system in ("zmqfeed-embedded", "relay"):
        base = {**rows[0], "scenario": CONNS_SCENARIO, "system": system, "clients": 10_000}
        rows.append({**base, "offered_per_s": 0, "delivered_per_s": 0, "p50_ms": None,
                     "p99_ms": None, "cpu_s": 0.25, "cpu_us_per_delivery": None,
                     "peak_rss_mb": 400.0, "rss_kb_per_conn": 30.0})  # fmt: skip
        rows.append({**base, "offered_per_s": 10, "delivered_per_s": 100_000, "p99_ms": 600.0,
                     "cpu_us_per_delivery": 5 * cpu[system]})  # fmt: skip
    (tmp_path / "latest.json").write_text(json.dumps(rows))
    header = "zmqfeed benchmark (quick), 2026-01-01T00:00:00, commit abc1234\nmachine: x, 2 CPUs\n"
    (tmp_path / "latest.txt").write_text(header)
    key = report.readme_key(tmp_path)
    assert "quick run, commit abc1234" in key
    x = report.TIMES
    # CPU per delivery at 1,000 msg/s beside the relay's, and where naive kept up with it.
    embedded = f"| zmqfeed, embedded | 450,000/s | 2.0 µs (2{x}) | 2.0 / 5.0 ms |"
    assert embedded + " 3,000 msg/s (p99 5 ms) |" in key
    naive = f"| naive Channels gateway | 15,000/s | 50.0 µs (50{x}) at 100 msg/s |"
    assert naive + " falls behind from about 300 msg/s | 100 msg/s (p99 5 ms) |" in key
    assert "| asyncio relay (ceiling) | 1,500,000/s | 1.0 µs |" in key
    fixed = report.readme_fixed(tmp_path)
    assert f"| 100 clients, 300 msg/s | 6.0 µs (2{x}), p99 5 ms |" in fixed
    assert f"150.0 µs (50{x}), p99 5 ms, lost 700 |" in fixed
    conns = report.readme_connections(tmp_path)
    assert (
        f"| zmqfeed, embedded | 30.0 KB | 400 MB | 0.25 s | 10.0 µs (2{x}) | 2 / 600 ms | 0 |"
        in conns
    )
    assert "naive" not in conns
    scenarios = report.readme_scenarios(tmp_path)
    assert "fixed" not in scenarios and "300 msg/s" not in scenarios
    assert report.scenario_label("100topics-100c-10KB") == "10 KB, 100 topics, a client each"
    assert report.scenario_label("ingest-100B") == "ingest alone, no clients"
    assert report.scenario_label(CONNS_SCENARIO) == "10,000 clients, 10 msg/s"


# The C client (bench/wsclient.c) and bench/client.py, as processes, on the same frames.


def serve_known_frames(listener: socket.socket, pongs: list[bytes]) -> None:
    """One WebSocket connection: the handshake, then frames of every kind, split unevenly."""
    conn, _ = listener.accept()
    with conn:
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(4096)
        key = re.search(rb"Sec-WebSocket-Key: (\S+)", request)
        assert key and b"GET /ws/zmqfeed/bench/t000/ " in request
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
        base = time.time() - 0.002
        whole = envelope(11, base)
        stream = b"".join(
            [
                frame(b'{"type":"subscribed","feed":"bench","topic":"t000","seq":0}'),
                frame(envelope(1, base)),
                frame(batch_frame([envelope(2, base), envelope(3, base)])),
                frame(gap("bench", "t000", 4, 5, "slow_consumer").encode()),  # 4, 5 reported
                frame(envelope(6, base) + b" " * 300),  # a 16-bit length
                frame(batch_frame([envelope(7, base), envelope(9, base)])),  # 8 lost silently
                frame(envelope(10, base) + b" " * 70_000),  # a 64-bit length
                bytes([0x01, 20]) + whole[:20],  # 11 in two fragments
                bytes([0x80, len(whole) - 20]) + whole[20:],
                bytes([0x89, 4]) + b"ping",
                frame(b'{"type":"error","code":"bad_topic"}'),
            ]
        )
        for i in range(0, len(stream), 997):
            conn.sendall(stream[i : i + 997])
            time.sleep(0.001)
        head = conn.recv(2)  # the pong: masked, the ping's payload
        body = conn.recv((head[1] & 0x7F) + 4) if len(head) == 2 else b""
        mask, payload = body[:4], body[4:]
        pongs.append(bytes([head[0]]) + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


@pytest.mark.parametrize("kind", procs.CLIENTS)
def test_both_clients_count_the_same_frames_alike(kind: str) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        pongs: list[bytes] = []
        server = threading.Thread(target=serve_known_frames, args=(listener, pongs))
        server.start()
        child = procs.Child(procs.client_argv(kind))
        try:
            url = f"ws://127.0.0.1:{listener.getsockname()[1]}/ws/zmqfeed/bench/t000/"
            got = child.ask("connect", urls=[[url, "t000"]], origin="http://127.0.0.1")
            assert got == {"connected": 1, "errors": []}
            stats = child.ask("collect", expected={"t000": 11}, quiet=0.5, timeout=5.0)
            server.join(5)
            child.ask("close")
            child.send("quit")
        finally:
            child.stop()
    assert pongs == [b"\x8aping"]
    assert (stats["received"], stats["lost"], stats["missing"], stats["gaps"]) == (8, 3, 3, 2)
    assert stats["frames"] == 6  # subscribed, gap and error frames carry no messages
    assert sum(stats["hist"]) == pytest.approx(8)
    assert 0.001 < stats["max_s"] < 1.0  # against the wall clock, as the publisher stamps
    assert stats["errors"] == ['{"type":"error","code":"bad_topic"}']
    assert stats["first_recv"] <= stats["last_recv"]


def test_the_c_client_buckets_latencies_as_client_py_does() -> None:
    source = procs.C_CLIENT_SOURCE.read_text()
    defined = dict(re.findall(r"#define (\w+) (\S+)", source))
    assert int(defined["BUCKETS"]) == BUCKETS
    assert float(defined["BUCKET_RATIO"]) == BUCKET_RATIO
    assert float(defined["BUCKET_FIRST_S"]) == BUCKET_FIRST_S
    assert int(defined["SPREAD"]) == SPREAD
