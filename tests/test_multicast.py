"""Multicast feeds end to end: a ZeroMQ publisher, the real gateway, a WebSocket client.

The `multicast` tests need pyzmq built against a libzmq with NORM and OpenPGM
(`make test-multicast` builds one in .venv-multicast and runs them there). NORM delivers
between two sockets on one host over a multicast group on `lo`; PGM does not (libzmq turns
multicast loopback off), so `epgm://` is tested between two network namespaces joined by a
veth pair. The last test runs in the normal suite, where PyPI's pyzmq has no multicast: an
`epgm://` feed is reported with the remedy while the other feeds keep running.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zmq
from websockets.asyncio.client import connect, unix_connect

from .conftest import DAPHNE, PYTHON, Site, free_port, skip_or_fail, stop
from .support import feed_doc

RECEIVE_TIMEOUT = 20.0  # seconds for the first message to cross: joins take a moment

# Publishes {"n": 0, 1, 2, ...} on topic "mc.tick" every 20 ms until stopped.
PUBLISHER = """
import json, sys, time, zmq
sock = zmq.Context().socket(zmq.PUB)
sock.connect(sys.argv[1])
for n in range(100_000):
    sock.send_multipart([b"mc.tick", json.dumps({"n": n}).encode()])
    time.sleep(0.02)
"""


@pytest.fixture
def multicast_transports() -> None:
    if not (zmq.has("norm") and zmq.has("pgm")):
        skip_or_fail(
            f"pyzmq {zmq.pyzmq_version()} (libzmq {zmq.zmq_version()}) has no norm/pgm: "
            "`make test-multicast` runs these tests with pyzmq built against libzmq3-dev"
        )


def feed(slug: str, endpoint: str) -> dict:
    return feed_doc(slug, endpoint, [{"slug": "all", "prefix": "mc."}])


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def private_group() -> str:
    """A group in the organization-local scope, random so that parallel runs do not meet."""
    return f"239.192.{random.randrange(256)}.{random.randrange(1, 255)}"


def messages(frame: str) -> list[dict]:
    obj = json.loads(frame)
    if obj["type"] == "batch":
        return obj["messages"]
    return [obj] if obj["type"] == "message" else []


async def first_message(
    open_ws, logs: Callable[[], str], publish: Callable[[], None] | None = None
) -> dict:
    """Connect, then wait for the first message (publishing one per 50 ms meanwhile)."""
    async with open_ws() as ws:
        reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert reply["type"] == "subscribed", reply
        deadline = time.monotonic() + RECEIVE_TIMEOUT
        while time.monotonic() < deadline:
            if publish is not None:
                publish()
            try:
                frame = await asyncio.wait_for(ws.recv(), 0.05)
            except TimeoutError:
                continue
            found = messages(frame)
            if found:
                return found[0]
    raise AssertionError(f"no message within {RECEIVE_TIMEOUT} s; logs:\n{logs()}")


def publisher(endpoint: str, *, bind: bool = False) -> tuple[zmq.Socket, Callable[[], None]]:
    """A PUB socket in this process and a function that publishes the next tick."""
    sock = zmq.Context.instance().socket(zmq.PUB)
    sock.setsockopt(zmq.LINGER, 0)
    (sock.bind if bind else sock.connect)(endpoint)
    counter = itertools.count()

    def publish() -> None:
        sock.send_multipart([b"mc.tick", json.dumps({"n": next(counter)}).encode()])

    return sock, publish


def assert_envelope(message: dict, feed_slug: str) -> None:
    assert message["feed"] == feed_slug
    assert message["topic"] == "all"
    assert message["zmq_topic"] == "mc.tick"
    assert message["seq"] >= 1
    assert isinstance(message["data"]["n"], int)


@pytest.mark.multicast
def test_norm_feed_on_one_host(site: Site, multicast_transports: None) -> None:
    endpoint = f"norm://lo;{private_group()}:{free_udp_port()}"
    site.configure({"feeds": [feed("norm", endpoint)]})
    server = site.daphne()
    sock, publish = publisher(endpoint)
    try:
        message = asyncio.run(
            first_message(
                lambda: connect(f"{server.ws}/ws/zmqfeed/norm/all/", origin=server.origin),
                server.log,
                publish,
            )
        )
    finally:
        sock.close()
    assert_envelope(message, "norm")


# epgm between two network namespaces

NETNS_PREFIX = 24
PUB_ADDRESS = "198.18.0.1"  # RFC 2544 benchmarking range, only inside the namespaces
GATEWAY_ADDRESS = "198.18.0.2"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


@pytest.fixture
def netns_pair() -> Iterator[tuple[str, str]]:
    """Two network namespaces (publisher, gateway) joined by a veth pair, deleted afterwards.

    Both veth ends are created inside the namespaces: nothing changes in the host's network.
    """
    if shutil.which("ip") is None:
        pytest.skip("epgm between namespaces needs iproute2's `ip` (apt-get install iproute2)")
    tag = f"zmqfeed-{os.getpid()}-{random.randrange(1 << 16)}"
    pub_ns, gw_ns = f"{tag}-pub", f"{tag}-gw"
    created: list[str] = []
    try:
        try:
            for ns in (pub_ns, gw_ns):
                ip("netns", "add", ns)
                created.append(ns)
        except subprocess.CalledProcessError as exc:
            pytest.skip(
                f"network namespaces are not permitted here ({exc.stderr.strip()}): "
                "epgm:// needs two hosts, or two namespaces as root"
            )
        ip("link", "add", "mc0", "netns", pub_ns, "type", "veth", "peer", "mc0", "netns", gw_ns)
        for ns, address in ((pub_ns, PUB_ADDRESS), (gw_ns, GATEWAY_ADDRESS)):
            ip("-n", ns, "addr", "add", f"{address}/{NETNS_PREFIX}", "dev", "mc0")
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "link", "set", "mc0", "up")
            ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", "mc0")
        yield pub_ns, gw_ns
    finally:
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


def wait_for_unix_socket(path: Path, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daphne exited with {proc.returncode} before {path} opened")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(path))
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {path} after {timeout} s")


@pytest.mark.multicast
def test_epgm_feed_between_namespaces(
    multicast_transports: None, netns_pair: tuple[str, str], site: Site
) -> None:
    pub_ns, gw_ns = netns_pair
    group, port = private_group(), free_udp_port()
    # Interfaces by address: OpenPGM resolves a name such as eth0 through DNS first and gives
    # up when DNS is unreachable, as it is inside a fresh namespace.
    site.configure({"feeds": [feed("pgm", f"epgm://{GATEWAY_ADDRESS};{group}:{port}")]})
    # The gateway inside its namespace serves on a Unix socket, which the test reaches from
    # the host's namespace (filesystem sockets are not per namespace; 127.0.0.1 is).
    path = site.tmp / "daphne.sock"
    gateway = site.spawn(
        ["ip", "netns", "exec", gw_ns, DAPHNE, "-u", str(path), "project.asgi:application"],
        "daphne-netns.log",
    )
    pub_endpoint = f"epgm://{PUB_ADDRESS};{group}:{port}"
    publisher_proc = site.spawn(
        ["ip", "netns", "exec", pub_ns, PYTHON, "-c", PUBLISHER, pub_endpoint], "publisher.log"
    )

    def logs() -> str:
        return f"{site.log('daphne-netns.log')}\npublisher:\n{site.log('publisher.log')}"

    try:
        wait_for_unix_socket(path, gateway)
        message = asyncio.run(
            first_message(
                lambda: unix_connect(
                    str(path), "ws://localhost/ws/zmqfeed/pgm/all/", origin="http://localhost"
                ),
                logs,
            )
        )
    finally:
        stop(publisher_proc)
        stop(gateway)
    assert_envelope(message, "pgm")


# Without multicast (the normal suite)


def test_feed_without_transport_is_reported_and_others_run(site: Site) -> None:
    if zmq.has("pgm"):
        pytest.skip("this pyzmq has pgm: the test is of a libzmq without it (the normal .venv)")
    tcp_endpoint = f"tcp://127.0.0.1:{free_port()}"
    site.configure({"feeds": [feed("plain", tcp_endpoint)]})
    # As a database written where pyzmq had pgm holds it: the import would refuse the feed.
    pgm_endpoint = "epgm://eth0;239.192.1.1:5555"
    site.shell(
        "from zmqfeed.models import Feed, Topic\n"
        f"f = Feed.objects.create(slug='mcast', name='Multicast', endpoints=[{pgm_endpoint!r}])\n"
        "Topic.objects.create(feed=f, slug='all', name='All', prefix='mc.')\n"
    )
    server = site.daphne()
    sock, publish = publisher(tcp_endpoint, bind=True)
    try:
        message = asyncio.run(
            first_message(
                lambda: connect(f"{server.ws}/ws/zmqfeed/plain/all/", origin=server.origin),
                server.log,
                publish,
            )
        )
    finally:
        sock.close()
    assert_envelope(message, "plain")
    log = server.log()
    reports = [line for line in log.splitlines() if pgm_endpoint in line and "mcast" in line]
    assert reports, log
    assert "make multicast" in reports[0], reports
    assert server.proc.poll() is None, log
