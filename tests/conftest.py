"""Shared fixtures: real servers on loopback ports, started and stopped per test or module."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DAPHNE = str(Path(PYTHON).with_name("daphne"))
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def skip_or_fail(reason: str) -> None:
    """Under CI a missing service is a failure, elsewhere a loud skip."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a skip is a failure)")
    pytest.skip(reason)


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Site:
    """A database file plus the environment that every process of one test site shares."""

    def __init__(self, tmp: Path, extra_env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.env = {
            **os.environ,
            "DJANGO_DEBUG": "1",
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
            "PYTHONUNBUFFERED": "1",
            "ZMQFEED_LOG_LEVEL": "INFO",
        }
        self.env.pop("REDIS_URL", None)
        self.env.update(extra_env or {})
        self.procs: list[subprocess.Popen] = []
        self.manage("migrate", "--noinput", "-v", "0")

    def manage(self, *args: str, input: str | None = None, check: bool = True):
        return subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def configure(self, doc: dict, *args: str) -> None:
        """Load a configuration document (README: Configuration) as `zmq_feeds import` does."""
        self.manage("zmq_feeds", "import", "-", *args, input=json.dumps(doc))

    def shell(self, code: str) -> str:
        return self.manage("shell", "-c", code).stdout

    def create_user(
        self,
        username: str,
        password: str = "pw-secret-123",
        *,
        staff: bool = False,
        groups: tuple[str, ...] = (),
    ) -> None:
        self.shell(
            "from django.contrib.auth.models import User, Group\n"
            f"u = User.objects.create_user({username!r}, password={password!r}, is_staff={staff})\n"
            f"for g in {list(groups)!r}:\n"
            "    u.groups.add(Group.objects.get_or_create(name=g)[0])\n"
        )

    def session_cookie(self, username: str) -> str:
        """A logged-in session for `username`, as the login form would create it."""
        key = (
            self.shell(
                "from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY\n"
                "from django.contrib.auth import SESSION_KEY\n"
                "from django.contrib.auth.models import User\n"
                "from django.contrib.sessions.backends.db import SessionStore\n"
                f"u = User.objects.get(username={username!r})\n"
                "s = SessionStore()\n"
                "s[SESSION_KEY] = str(u.pk)\n"
                "s[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'\n"
                "s[HASH_SESSION_KEY] = u.get_session_auth_hash()\n"
                "s.create()\n"
                "print(s.session_key)\n"
            )
            .strip()
            .splitlines()[-1]
        )
        return f"sessionid={key}"

    def spawn(self, args: list[str], log_name: str, env: dict[str, str] | None = None):
        log = open(self.tmp / log_name, "wb")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def daphne(self, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> Server:
        """A daphne serving the demo site; ``args``: options of daphne's own before the app."""
        port = free_port()
        name = f"daphne-{port}.log"
        proc = self.spawn(
            [DAPHNE, "-b", "127.0.0.1", "-p", str(port), *args, "project.asgi:application"],
            name,
            env,
        )
        wait_for_port(port, proc)
        return Server(port, proc, self.tmp / name)

    def subscriber(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        return self.spawn([PYTHON, "manage.py", "zmq_subscribe", *args], "subscriber.log", env)

    def log(self, name: str) -> str:
        path = self.tmp / name
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        for proc in reversed(self.procs):
            stop(proc)


class Server:
    def __init__(self, port: int, proc: subprocess.Popen, log_path: Path) -> None:
        self.port, self.proc, self.log_path = port, proc, log_path
        self.http = f"http://127.0.0.1:{port}"
        self.ws = f"ws://127.0.0.1:{port}"
        self.origin = self.http

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def ctx():
    """A ZeroMQ context for a test's publishers, destroyed after it."""
    import zmq.asyncio

    c = zmq.asyncio.Context()
    yield c
    c.destroy(linger=0)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path)
    yield s
    s.close()


def _redis_ping(url_port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", url_port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class PrivateRedis:
    """A redis-server of the caller's own on a free port, which can be stopped and restarted."""

    def __init__(self) -> None:
        self.exe = shutil.which("redis-server")
        if not self.exe:
            skip_or_fail(
                "Redis is not running on 6379 and redis-server is not installed "
                "(apt-get install redis-server)"
            )
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.dir = tempfile.mkdtemp(prefix="zmqfeed-redis-")
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", self.dir]
        self.proc = subprocess.Popen([self.exe, *args], stdout=subprocess.DEVNULL)
        wait_for_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A Redis URL: the machine's on 6379 when it answers, else a private redis-server."""
    if _redis_ping(6379):
        yield "redis://127.0.0.1:6379"
        return
    private = PrivateRedis()
    try:
        yield private.url
    finally:
        private.close()


def _redis_dbs() -> Iterator[int]:
    """Databases 1 to 13 (14 and 15 are the benchmark's), split between pytest-xdist workers
    so that two tests running at once never flush each other's."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    mine = [db for db in range(1, 14) if (db - 1) % workers == worker]
    return itertools.cycle(mine or [1 + worker % 13])  # more workers than databases: shared


_redis_db = _redis_dbs()


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """A Redis database of this test's own, flushed before and after."""
    import redis

    url = f"{redis_server}/{next(_redis_db)}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Django's default hasher spends a million rounds per user the tests create."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
