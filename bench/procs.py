"""Child processes for the benchmark: started so that none outlives the harness.

Each part talks to the harness in JSON lines (commands on stdin, replies on stdout), so that
every part is also a plain program one can run, profile (py-spy) or debug on its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import queue
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
C_CLIENT_SOURCE = ROOT / "bench" / "wsclient.c"
C_CLIENT = ROOT / "bench" / ".build" / "wsclient"
CLIENTS = ("c", "python")
_PR_SET_PDEATHSIG = 1
_started: list[subprocess.Popen] = []


def _child_setup() -> None:
    # Linux: the kernel sends SIGTERM to the child when the harness dies, even by SIGKILL.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    # A socket per connection, in the servers and the clients alike (10,000 in one scenario).
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def spawn(
    argv: Sequence[str], env: dict[str, str] | None = None, log: Path | None = None, **kw: Any
) -> subprocess.Popen:
    """Start a child in its own session (Ctrl-C reaches the harness, which stops it in order)."""
    full_env = {**os.environ, **(env or {})}
    stderr = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (closed in stop_all)
    proc = subprocess.Popen(
        list(argv),
        cwd=ROOT,
        env=full_env,
        stderr=stderr,
        start_new_session=True,
        preexec_fn=_child_setup,
        **kw,
    )
    proc._bench_log = stderr  # type: ignore[attr-defined]
    _started.append(proc)
    return proc


def stop(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time; always reaped."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
        except ProcessLookupError:
            pass
    for stream in (proc.stdin, proc.stdout):
        if stream:
            with contextlib.suppress(OSError):
                stream.close()
    log = getattr(proc, "_bench_log", None)
    if log not in (None, subprocess.DEVNULL):
        log.close()
    if proc in _started:
        _started.remove(proc)


def stop_all() -> None:
    for proc in reversed(list(_started)):
        stop(proc)


class Child:
    """A child process driven by JSON-line commands; each command gets one JSON-line reply."""

    def __init__(
        self, argv: Sequence[str], env: dict[str, str] | None = None, log: Path | None = None
    ) -> None:
        self.proc = spawn(argv, env, log, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self._lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.name = Path(argv[2] if len(argv) > 2 else argv[0]).name

    def _read(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(b"")

    def receive(self, timeout: float) -> dict:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"{self.name}: no reply within {timeout:.0f} s") from None
        if not line:
            raise RuntimeError(f"{self.name} exited (code {self.proc.wait()})")
        return json.loads(line)

    def send(self, cmd: str, **args: Any) -> None:
        assert self.proc.stdin
        self.proc.stdin.write(json.dumps({"cmd": cmd, **args}).encode() + b"\n")

    def ask(self, cmd: str, wait: float = 30.0, **args: Any) -> dict:
        """Send a command and return its reply, waiting at most ``wait`` seconds."""
        self.send(cmd, **args)
        return self.receive(wait)

    def stop(self) -> None:
        stop(self.proc)


def client_argv(kind: str = "c") -> list[str]:
    """The client process to start: ``c`` (bench/wsclient.c, built here on first use and
    whenever the source is newer) unless no C compiler is found, else bench/client.py."""
    if kind == "c":
        built = C_CLIENT.exists() and C_CLIENT.stat().st_mtime >= C_CLIENT_SOURCE.stat().st_mtime
        cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
        if not built and cc:
            C_CLIENT.parent.mkdir(exist_ok=True)
            tmp = C_CLIENT.with_name(f"wsclient.{os.getpid()}.tmp")
            subprocess.run(
                [cc, "-O2", "-o", str(tmp), str(C_CLIENT_SOURCE), "-lm"],
                check=True,
                capture_output=True,
            )
            tmp.replace(C_CLIENT)  # atomic: a concurrent harness sees the old or the new one
            built = True
        if built:
            return [str(C_CLIENT)]
        warnings.warn("no C compiler found: the Python client (bench/client.py)", stacklevel=2)
    return [PYTHON, "-m", "bench.client"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Until something accepts on 127.0.0.1:port; fails early if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with code {proc.returncode} at start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port} after {timeout:.0f} s")


def serve_commands(handlers: dict[str, Any]) -> None:
    """The child side for synchronous parts: read commands until EOF or ``quit``."""
    for line in sys.stdin.buffer:
        msg = json.loads(line)
        cmd = msg.pop("cmd")
        if cmd == "quit":
            return
        reply(handlers[cmd](**msg))


def reply(obj: dict) -> None:
    sys.stdout.buffer.write(json.dumps(obj).encode() + b"\n")
    sys.stdout.buffer.flush()
