"""zmq_publish as users run it: a real subprocess publishing to a real SUB socket in the test."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import zmq
from django.core.management import CommandError, call_command

ROOT = Path(__file__).resolve().parent.parent
# Seconds any one wait may take before the test fails: generous, as a loaded machine can take
# seconds to start Django; a test that works returns as soon as what it waits for happens.
TIMEOUT = 30.0
# Connect-mode tests bind their SUB first, so publishing starts on its subscription, well
# before this: a long --wait makes them independent of how fast the machine is.
WAIT = ("--wait", "30")


class Publisher:
    """``manage.py zmq_publish ARGS`` in a subprocess, with its stdin and stderr at hand."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "DJANGO_DEBUG": "1", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "zmq_publish", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.stderr = ""
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stderr, selectors.EVENT_READ)

    def _read_stderr(self, timeout: float) -> bool:
        """Read what stderr has within timeout; False at its end."""
        if not self._selector.select(timeout):
            return True
        data = os.read(self.proc.stderr.fileno(), 65536)
        self.stderr += data.decode(errors="replace")
        return bool(data)

    def wait_for(self, pattern: str, serve: zmq.Socket | None = None) -> re.Match:
        """The first match of pattern on stderr.

        libzmq attaches a connection to a bound socket (and a SUB sends its subscriptions)
        only when the application touches the socket: ``serve`` is touched meanwhile.
        """
        deadline = time.monotonic() + TIMEOUT
        while not (match := re.search(pattern, self.stderr)):
            left = deadline - time.monotonic()
            if left <= 0 or not self._read_stderr(min(left, 0.02)):
                pytest.fail(f"no {pattern!r} on stderr; it says:\n{self.stderr}")
            if serve is not None:
                serve.getsockopt(zmq.EVENTS)
        return match

    def write(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def finish(self) -> int:
        """Wait for the process to end by itself; its exit status."""
        deadline = time.monotonic() + TIMEOUT
        while self._read_stderr(max(deadline - time.monotonic(), 0)):
            if time.monotonic() > deadline:
                pytest.fail(f"zmq_publish did not exit; stderr:\n{self.stderr}")
        return self.proc.wait(timeout=TIMEOUT)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        return self.finish()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)
        while self._read_stderr(0):
            pass
        print(f"zmq_publish stderr:\n{self.stderr}")  # shown when the test fails
        self.proc.stdin.close()
        self.proc.stderr.close()
        self._selector.close()


@pytest.fixture
def publish():
    started: list[Publisher] = []

    def start(*args: str) -> Publisher:
        started.append(Publisher(*args))
        return started[-1]

    yield start
    for publisher in started:
        publisher.kill()


@pytest.fixture
def context():
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


@pytest.fixture
def sub(context):
    """A SUB socket bound to a free loopback port, subscribed to everything: (socket, endpoint)."""
    sock = context.socket(zmq.SUB)
    sock.subscribe(b"")
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    return sock, f"tcp://127.0.0.1:{port}"


def recv(sock: zmq.Socket, timeout: float = TIMEOUT) -> list[bytes]:
    if not sock.poll(int(timeout * 1000)):
        pytest.fail(f"no message within {timeout} s")
    return sock.recv_multipart()


def nothing_more(sock: zmq.Socket, timeout: float = 0.3) -> bool:
    return not sock.poll(int(timeout * 1000))


# --- stdin --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--topic", "logs"], lambda p: [b"logs", p]),
        ([], lambda p: [b"", p]),
        (["--topic", "logs", "--framing", "prefix"], lambda p: [b"logs " + p]),
        (["--framing", "raw"], lambda p: [p]),
    ],
    ids=["multipart", "empty-topic", "prefix", "raw"],
)
def test_stdin_lines_arrive_with_the_topic(publish, sub, args, expected):
    sock, endpoint = sub
    publisher = publish(endpoint, *WAIT, *args)
    publisher.write(b"first line\n\nsecond line\r\nthird\n")
    publisher.proc.stdin.close()
    received = [recv(sock) for _ in range(3)]
    assert received == [expected(p) for p in (b"first line", b"second line", b"third")]
    assert publisher.finish() == 0
    assert "sent 3 messages" in publisher.stderr
    assert nothing_more(sock)


def test_stdin_json_skips_a_bad_line_and_carries_on(publish, sub):
    sock, endpoint = sub
    publisher = publish(endpoint, *WAIT, "--json", "--topic", "j")
    publisher.write(b'{"a": 1}\nnot json\n[2, 3]\n')
    publisher.proc.stdin.close()
    assert recv(sock) == [b"j", b'{"a": 1}']
    assert recv(sock) == [b"j", b"[2, 3]"]
    assert publisher.finish() == 0
    assert "skipped an invalid line of stdin" in publisher.stderr
    assert "sent 2 messages" in publisher.stderr
    assert "skipped 1 invalid lines" in publisher.stderr


def test_stdin_count_stops_without_waiting_for_the_end_of_input(publish, sub):
    sock, endpoint = sub
    publisher = publish(endpoint, *WAIT, "--count", "2")
    publisher.write(b"a\nb\nc\n")  # stdin stays open
    assert [recv(sock)[1] for _ in range(2)] == [b"a", b"b"]
    assert publisher.finish() == 0
    assert nothing_more(sock)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_ends_a_publisher_waiting_on_stdin_cleanly(publish, sub, sig):
    sock, endpoint = sub
    publisher = publish(endpoint, *WAIT, "--topic", "t")
    publisher.write(b"only\n")
    assert recv(sock) == [b"t", b"only"]
    assert publisher.stop(sig) == 0
    assert "Traceback" not in publisher.stderr
    assert "sent 1 messages" in publisher.stderr


def test_publishing_starts_on_the_first_subscription_not_after_the_whole_wait(publish, sub):
    sock, endpoint = sub
    publisher = publish(endpoint, "--wait", "60", "--topic", "t")
    publisher.write(b"first\n")
    publisher.proc.stdin.close()
    after = float(publisher.wait_for(r"first subscription after (\d+\.\d+) s", sock).group(1))
    assert after < 60
    assert recv(sock) == [b"t", b"first"]
    assert publisher.finish() == 0


def test_without_a_subscriber_the_wait_runs_out_and_publishing_goes_on(publish):
    publisher = publish("tcp://127.0.0.1:*", "--bind", "--wait", "0.2")
    publisher.write(b"nobody hears this\n")
    publisher.proc.stdin.close()
    assert publisher.finish() == 0
    assert "no subscriber within 0.2 s (--wait); publishing anyway" in publisher.stderr
    assert "sent 1 messages" in publisher.stderr


# --- --follow -----------------------------------------------------------------------------


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def test_follow_two_files_through_truncation_and_rotation(publish, sub, tmp_path):
    sock, endpoint = sub
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_bytes(b"old line, already there at start\n" * 20)
    publisher = publish(
        endpoint, *WAIT, "--topic", "app", "--follow", str(a), str(b), "--interval", "0.05"
    )
    publisher.wait_for("publishing from", sock)

    append(a, b"one\n")
    assert recv(sock) == [b"app.a.log", b"one"]
    b.write_bytes(b"two\n")  # b.log did not exist at start: read from its start
    assert recv(sock) == [b"app.b.log", b"two"]
    append(a, b"par")
    append(a, b"tial\n")
    assert recv(sock) == [b"app.a.log", b"partial"]

    with open(a, "r+b") as f:  # truncated in place (logrotate copytruncate)
        f.truncate(0)
    append(a, b"after truncation\n")
    assert recv(sock) == [b"app.a.log", b"after truncation"]

    append(a, b"last of the old file\n")
    a.rename(tmp_path / "a.log.1")  # rotated: renamed, and a new file takes the name
    a.write_bytes(b"first of the new file\n")
    assert recv(sock) == [b"app.a.log", b"last of the old file"]
    assert recv(sock) == [b"app.a.log", b"first of the new file"]
    append(a, b"second of the new file\n")
    append(b, b"three\n")
    received = {tuple(recv(sock)) for _ in range(2)}
    assert received == {(b"app.a.log", b"second of the new file"), (b"app.b.log", b"three")}

    assert publisher.stop() == 0
    assert "sent 8 messages" in publisher.stderr
    assert nothing_more(sock)


def test_follow_json_skips_bad_lines(publish, sub, tmp_path):
    sock, endpoint = sub
    events = tmp_path / "events.jsonl"
    publisher = publish(endpoint, *WAIT, "--json", "--follow", str(events), "--interval", "0.05")
    publisher.wait_for("publishing from", sock)
    events.write_bytes(b'{"ok": true}\n{broken\n{"ok": 2}\n')
    assert recv(sock) == [b"events.jsonl", b'{"ok": true}']
    assert recv(sock) == [b"events.jsonl", b'{"ok": 2}']
    publisher.wait_for(f"skipped an invalid line of {re.escape(str(events))}")
    assert publisher.stop() == 0


# --- --rate -------------------------------------------------------------------------------


def test_rate_with_count_delivers_that_many_messages(publish, sub):
    sock, endpoint = sub
    before = time.time()
    publisher = publish(
        endpoint, *WAIT, "--rate", "2000", "--count", "300", "--json", "--topic", "demo"
    )
    received = [recv(sock) for _ in range(300)]
    assert publisher.finish() == 0
    after = time.time()
    assert nothing_more(sock)
    by_topic: dict[bytes, list[dict]] = {}
    for topic, payload in received:
        by_topic.setdefault(topic, []).append(orjson.loads(payload))
    assert set(by_topic) == {b"demo.sine", b"demo.counter", b"demo.random"}
    for docs in by_topic.values():
        assert [d["n"] for d in docs] == list(range(100))
        assert all(before < d["ts"] < after for d in docs)
    timestamps = [orjson.loads(p)["ts"] for _, p in received]
    assert timestamps == sorted(timestamps)
    assert "sent 300 messages" in publisher.stderr


def test_rate_text_payloads_padded_to_size(publish, sub):
    sock, endpoint = sub
    publisher = publish(endpoint, *WAIT, "--rate", "1000", "--count", "6", "--size", "256")
    received = [recv(sock) for _ in range(6)]
    assert publisher.finish() == 0
    assert [t for t, _ in received] == [b"sine", b"counter", b"random"] * 2
    assert all(len(p) == 256 and p.startswith(b"n=") for _, p in received)


def test_bind_mode_subscriber_connects_and_sigterm_stops(publish, context):
    publisher = publish("tcp://127.0.0.1:*", "--bind", "--rate", "200", "--json", "--topic", "d")
    endpoint = publisher.wait_for(r"bound (tcp://127\.0\.0\.1:\d+)").group(1)
    sock = context.socket(zmq.SUB)
    sock.subscribe(b"d.counter")
    sock.connect(endpoint)
    counts = [orjson.loads(recv(sock)[1])["n"] for _ in range(5)]
    assert counts == list(range(counts[0], counts[0] + 5))  # consecutive: nothing lost
    assert publisher.stop() == 0
    assert "Traceback" not in publisher.stderr


# --- bad arguments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["tcp://nowhere"], "expected HOST:PORT"),
        (["udp://127.0.0.1:5556"], "scheme must be one of"),
        (["tcp://127.0.0.1:*"], r"can only be bound \(--bind\)"),
        (["tcp://127.0.0.1:1", "--size", "100"], "--size applies to --rate only"),
        (["tcp://127.0.0.1:1", "--topic", "a b", "--framing", "prefix"], "has a space"),
        (["tcp://127.0.0.1:1", "--follow", "/x/app.log", "/y/app.log"], "would share a topic"),
        (["tcp://127.0.0.1:1", "--rate", "0"], "invalid positive float value"),
    ],
)
def test_bad_arguments_are_refused_with_a_reason(args, error):
    with pytest.raises(CommandError, match=error):
        call_command("zmq_publish", *args)


def test_bind_to_a_port_in_use_is_a_clear_error(context):
    taken = context.socket(zmq.PUB)
    port = taken.bind_to_random_port("tcp://127.0.0.1")
    with pytest.raises(CommandError, match=r"cannot bind .*Address already in use"):
        call_command("zmq_publish", f"tcp://127.0.0.1:{port}", "--bind")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
