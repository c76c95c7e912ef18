"""`python -m bench.memory` in miniature: its clients subscribe, it reads the server's RSS and
its heap, and prints one JSON document. No figure is asserted against a threshold."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.memory import package
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_a_small_run_subscribes_its_clients_and_reports_the_heap():
    args = ["--clients", "20", "--warmup", "2", "--procs", "2", "--quiet", "0.2"]
    args += ["--port", str(free_port()), "--endpoint", f"tcp://127.0.0.1:{free_port()}"]
    done = subprocess.run(
        [sys.executable, "-m", "bench.memory", *args, "--tracemalloc", "--census"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert (result["subscribed"], result["failed"]) == (20, 0), result["errors"]
    assert result["rss_after_kb"] > 0 and "kb_per_connection" in result
    heap = result["tracemalloc"]
    assert heap["top_lines"] and "by_owner_package_kb" in heap
    census = result["census"]
    assert census["types"] and len(census["protocol_dicts"]) == 3  # daphne's, sampled


def test_allocations_are_told_by_package():
    site = "/x/lib/python3.11/site-packages"
    assert package(f"{site}/autobahn/websocket/protocol.py") == "autobahn"
    assert package(f"{site}/twisted/internet/tcp.py") == "twisted"
    assert package("/usr/lib/python3.11/asyncio/queues.py") == "asyncio"
    assert package(f"{ROOT}/zmqfeed/consumer.py") == "zmqfeed"
    assert package("/usr/lib/python3.11/json/decoder.py") == "other"
