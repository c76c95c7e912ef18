"""The daphne adapters: what eager writes change on a Twisted connection, the version guards,
the backlog meter, and, against a real daphne serving a site's own ASGI stack, that the
adapters are installed from ready() and that frames really go out eagerly."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import sys
import urllib.request
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest
from autobahn.twisted.websocket import WebSocketServerFactory
from autobahn.websocket.protocol import TrafficStats
from daphne.ws_protocol import WebSocketProtocol
from prometheus_client import REGISTRY, generate_latest
from twisted.internet import abstract, tcp

import zmqfeed.daphne.metrics  # noqa: F401  (registers the adapters' collector)
from tests.conftest import DAPHNE, PYTHON, Server, Site, free_port, wait_for_port
from tests.support import Publisher, connect, feed_doc, recv, subscribe, unpack, until_flowing
from zmqfeed import daphne
from zmqfeed.core.protocol import Frame
from zmqfeed.daphne import backlog, eager_writes, guard, lean, preframed

REACTOR = "twisted.internet.reactor"
# Twisted's own (TLS-aware) write, even if ready() already patched it in this process.
TWISTED_WRITE = eager_writes._buffered_write or tcp.Connection.write


# -- a real tcp.Connection on a fake socket and a fake reactor ---------------------------------


class FakeSocket:
    """Takes up to `room` bytes per send (all of it when None)."""

    def __init__(self, room: int | None = None) -> None:
        self.room = room
        self.sent: list[bytes] = []

    def setblocking(self, flag: bool) -> None:
        pass

    def fileno(self) -> int:
        return 99

    def setsockopt(self, *args) -> None:  # TCP_NODELAY, from an HTTPChannel
        pass

    def send(self, data) -> int:
        n = len(data) if self.room is None else min(self.room, len(data))
        self.sent.append(bytes(data[:n]))
        return n


class FakeReactor:
    """Records the descriptors waiting for writability; `turn()` is one reactor round."""

    def __init__(self) -> None:
        self.writers: list[tcp.Connection] = []

    def addWriter(self, writer) -> None:
        if writer not in self.writers:
            self.writers.append(writer)

    def removeWriter(self, writer) -> None:
        if writer in self.writers:
            self.writers.remove(writer)

    def turn(self) -> None:
        for writer in list(self.writers):
            writer.doWrite()


def connection(room: int | None = None) -> tuple[tcp.Connection, FakeSocket, FakeReactor]:
    sock, reactor = FakeSocket(room), FakeReactor()
    conn = tcp.Connection(sock, None, reactor=reactor)  # type: ignore[arg-type]
    conn.connected = 1
    return conn, sock, reactor


class Protocol:
    """Daphne's WebSocket protocol as backlog.meter sees it: something with a transport."""

    def __init__(self, transport) -> None:
        self.transport = transport


def handle_reply(protocol, message) -> None:  # daphne's Server.handle_reply, in shape
    pass


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    """Each test starts with nothing installed or decided, no reactor, no warning given.

    The test process has daphne's reactor (the "daphne" app imports it), so ready() installed
    the adapters here too: that patch is put back as it was afterwards.
    """
    before = (tcp.Connection.write, eager_writes._buffered_write)
    eager_writes.uninstall()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(eager_writes, "_refused", False)
        mp.setattr(backlog, "_supported", None)
        mp.setattr(preframed, "_enabled", False)
        mp.setattr(preframed, "_refused", False)
        mp.setattr(lean, "_enabled", None)
        mp.setattr(lean, "_queues_ok", None)
        mp.setattr(daphne, "_result", None)
        mp.setattr(guard, "_warned", set())
        mp.delitem(sys.modules, REACTOR, raising=False)
        yield
        eager_writes.uninstall()
        assert tcp.Connection.write is TWISTED_WRITE
    tcp.Connection.write, eager_writes._buffered_write = before  # type: ignore[method-assign]


def under_a_reactor(monkeypatch) -> None:
    """What daphne's import leaves behind: the reactor module in sys.modules."""
    monkeypatch.setitem(sys.modules, REACTOR, FakeReactor())


# -- eager writes ------------------------------------------------------------------------------


def test_without_eager_writes_a_write_waits_for_the_reactor():
    conn, sock, reactor = connection()
    conn.write(b"frame")
    assert sock.sent == []
    assert conn._tempDataBuffer == [b"frame"] and reactor.writers == [conn]
    reactor.turn()
    assert sock.sent == [b"frame"] and reactor.writers == []


def test_with_eager_writes_an_idle_connection_sends_at_once():
    assert eager_writes.install() is True
    before = eager_writes.writes
    conn, sock, reactor = connection()
    conn.write(b"frame")
    assert sock.sent == [b"frame"]
    assert conn._tempDataBuffer == [] and conn.dataBuffer == b"" and reactor.writers == []
    assert eager_writes.writes == before + 1
    eager_writes.uninstall()
    assert tcp.Connection.write is TWISTED_WRITE


def test_eager_writes_leave_what_the_socket_did_not_take_to_twisted():
    eager_writes.install()
    before = eager_writes.writes
    conn, sock, reactor = connection(room=3)
    conn.write(b"frame")
    assert sock.sent == [b"fra"] and conn._tempDataBuffer == [b"me"]
    conn.write(b"next")  # something is queued: order matters, this one waits too
    assert sock.sent == [b"fra"] and conn._tempDataBuffer == [b"me", b"next"]
    assert reactor.writers == [conn] and eager_writes.writes == before
    sock.room = None
    reactor.turn()
    assert b"".join(sock.sent) == b"framenext"


def test_install_honours_eager_writes_setting_and_waits_for_a_reactor(monkeypatch, settings):
    assert daphne.install() is False  # not under daphne: nothing, and no decision taken
    assert not eager_writes.active() and tcp.Connection.write is TWISTED_WRITE
    settings.ZMQFEED = {"EAGER_WRITES": False}
    under_a_reactor(monkeypatch)
    assert daphne.install() is True
    assert daphne.active() == {
        "eager_writes": False,
        "preframed": True,
        "backlog": True,
        "lean": True,
    }
    monkeypatch.setattr(daphne, "_result", None)
    preframed.uninstall()
    settings.ZMQFEED = {"EAGER_WRITES": True, "PREFRAMED_SENDS": False}
    assert daphne.install() is True
    assert daphne.active() == {
        "eager_writes": True,
        "preframed": False,
        "backlog": True,
        "lean": True,
    }
    assert tcp.Connection.write is not TWISTED_WRITE


# -- version guards ----------------------------------------------------------------------------


def test_a_twisted_outside_the_range_patches_nothing_and_warns_once(monkeypatch, caplog):
    real = guard.version_of
    monkeypatch.setattr(guard, "version_of", lambda d: "27.1.0" if d == "Twisted" else real(d))
    under_a_reactor(monkeypatch)
    assert daphne.install() is False
    assert daphne.install() is False and eager_writes.install() is False
    assert tcp.Connection.write is TWISTED_WRITE
    assert daphne.active() == {
        "eager_writes": False,
        "preframed": True,
        "backlog": False,
        "lean": False,
    }
    mine = [r for r in caplog.records if "eager_writes" in r.getMessage()]
    assert len(mine) == 1 and mine[0].levelno == logging.WARNING
    assert "Twisted 27.1.0 is outside the tested range >=22.10,<27" in mine[0].getMessage()
    assert "buffered writes are used" in mine[0].getMessage()
    [off] = [r.getMessage() for r in caplog.records if "backlog" in r.getMessage()]
    assert "MAX_CLIENT_BACKLOG is not applied" in off
    conn, _, _ = connection()
    assert backlog.meter(functools.partial(handle_reply, Protocol(conn))) is None


@pytest.mark.parametrize(
    "breakage, named",
    [
        ("attribute", "tcp.Connection has no _writeDisconnected"),
        ("constructor", "tcp.Connection(socket, protocol, reactor) failed"),
    ],
    ids=["attribute-gone", "constructor-changed"],
)
def test_a_twisted_without_what_the_patch_uses_patches_nothing(
    monkeypatch, caplog, breakage, named
):
    if breakage == "attribute":
        monkeypatch.delattr(abstract.FileDescriptor, "_writeDisconnected")
    else:
        monkeypatch.setattr(tcp.Connection, "__init__", lambda self, transport: None)
    assert eager_writes.install() is False
    assert tcp.Connection.write is TWISTED_WRITE
    [message] = [r.getMessage() for r in caplog.records]
    assert named in message and "eager_writes off" in message


@pytest.mark.parametrize("packaging", [True, False])
def test_version_ranges(monkeypatch, packaging):
    if not packaging:
        monkeypatch.setitem(sys.modules, "packaging.specifiers", None)  # import fails
    cases = {
        "22.10.0": True,
        "26.10.0": True,
        "26.10.0rc1": True,
        "22.9.0": False,
        "27.0.0rc1": False,
        "27.0.0": False,
    }
    assert {v: guard.in_range(v, "22.10", "27") for v in cases} == cases


def test_the_installed_versions_are_supported():
    assert eager_writes.problems() == [] and backlog.problems() == []
    assert preframed.problems() == [] and lean.problems() == []


# -- backlog -----------------------------------------------------------------------------------


def test_the_first_daphne_connection_installs_what_ready_could_not(monkeypatch):
    under_a_reactor(monkeypatch)  # the reactor came after ready(): nothing installed yet
    conn, sock, _ = connection()
    queued = backlog.meter(functools.partial(handle_reply, Protocol(conn)))
    assert queued is not None and eager_writes.active()
    conn.write(b"frame")
    assert sock.sent == [b"frame"] and queued() == 0


def test_backlog_meter_reads_what_a_daphne_connection_has_queued():
    conn, _, reactor = connection()
    queued = backlog.meter(functools.partial(handle_reply, Protocol(conn)))
    assert queued is not None and queued() == 0
    conn.write(b"abc")
    conn.write(b"defg")
    assert queued() == 7
    reactor.turn()
    assert queued() == 0


async def plain_send(message) -> None:
    pass


@pytest.mark.parametrize(
    "send",
    [
        plain_send,
        functools.partial(plain_send),
        functools.partial(handle_reply, object()),
        functools.partial(handle_reply, Protocol(object())),
    ],
    ids=["function", "partial-without-args", "no-transport", "foreign-transport"],
)
def test_backlog_meter_of_anything_else_is_none(send):
    assert backlog.meter(send) is None


# -- observability, reactor hook ---------------------------------------------------------------


def test_metrics_expose_eager_writes_and_adapter_state():
    text = generate_latest(REGISTRY).decode()
    assert re.search(r"^zmqfeed_eager_writes_total \d", text, re.M)
    assert 'zmqfeed_daphne_adapter_active{adapter="eager_writes"} 0.0' in text
    eager_writes.install()
    conn, _, _ = connection()
    conn.write(b"x")
    text = generate_latest(REGISTRY).decode()
    assert 'zmqfeed_daphne_adapter_active{adapter="eager_writes"} 1.0' in text
    assert f"zmqfeed_eager_writes_total {float(eager_writes.writes)}" in text


def test_call_soon_schedules_on_the_reactor(monkeypatch):
    calls: list[tuple] = []

    class Reactor:
        def callLater(self, delay, fn):
            calls.append((delay, fn))

    assert daphne.call_soon(print) is False
    monkeypatch.setitem(sys.modules, REACTOR, Reactor())
    assert daphne.call_soon(print) is True and calls == [(0, print)]


# -- a real daphne, serving a site's own ASGI stack --------------------------------------------

COUNT = 30
# -- lean: what an idle WebSocket holds -------------------------------------------------------


def ws_factory():
    """Daphne's WebSocket factory with daphne's options, as its Server.run makes it."""
    from daphne.ws_protocol import WebSocketFactory

    factory = WebSocketFactory(None, server="Daphne", reactor=FakeReactor())
    factory.setProtocolOptions(autoPingTimeout=30, allowedOrigins=["*"], autoPingInterval=20)
    return factory


def test_after_one_connection_the_next_ones_share_autobahns_options():
    factory = ws_factory()
    first = factory.buildProtocol(None)
    assert lean.share_config(first)
    second = factory.buildProtocol(None)
    names = type(second).CONFIG_ATTRS
    assert len(names) > 20
    for name in names:  # what autobahn copies only when the protocol lacks it
        assert hasattr(second, name) and name not in vars(second), name
        assert getattr(second, name) is getattr(factory, name), name  # functions unbound
    assert isinstance(second, type(first)) and type(second).__name__ == "WebSocketProtocol"
    assert lean.share_config(second) and type(factory.buildProtocol(None)) is type(second)


def upgraded() -> tuple[Protocol, tcp.Connection, object]:
    """A TCP connection whose HTTP channel handed it to a WebSocket, as daphne upgrades one."""
    from twisted.web import http

    conn, _, _ = connection()
    channel = http.HTTPChannel()
    channel.timeOut = None
    conn.protocol = channel
    channel.makeConnection(conn)
    channel.requests.append(object())
    ws = Protocol(conn)
    conn.protocol = ws  # type: ignore[assignment]
    return ws, conn, channel


def test_an_upgraded_websocket_lets_its_http_channel_go():
    ws, conn, channel = upgraded()
    assert conn.producer is channel  # what kept the channel and its request alive
    assert lean.release_http(ws)
    assert conn.producer is None and channel.requests == []  # type: ignore[attr-defined]
    assert not lean.release_http(ws)


def test_a_connection_still_served_by_http_keeps_its_channel():
    """An SSE stream's request: the transport's protocol is Twisted's wrapper of the channel."""
    from twisted.web import http

    _, conn, channel = upgraded()
    conn.protocol = http._genericHTTPChannelProtocolFactory(None)  # type: ignore[assignment]
    request = Protocol(conn)  # what backlog.meter sees of daphne's WebRequest
    assert not lean.release_http(request) and conn.producer is channel


def test_an_autobahn_outside_the_range_changes_nothing_and_warns_once(monkeypatch, caplog):
    real = guard.version_of
    monkeypatch.setattr(guard, "version_of", lambda d: "27.0.0" if d == "autobahn" else real(d))
    factory = ws_factory()
    protocol = factory.buildProtocol(None)
    ws, conn, channel = upgraded()
    lean.observe(protocol)
    lean.observe(ws)
    assert factory.protocol is type(protocol) and conn.producer is channel
    [message] = [r.getMessage() for r in caplog.records]
    assert "lean off: autobahn 27.0.0 is outside" in message and "HTTP request" in message


async def _through_a_trimmed_queue() -> list:
    queue: asyncio.Queue = asyncio.Queue()
    queue.put_nowait({"type": "websocket.connect"})  # there before the application reads
    assert lean.trim_queue(queue.get)
    deques = [queue._queue, queue._getters, queue._putters, queue._finished._waiters]  # type: ignore[attr-defined]
    assert all(type(d) is lean.Short for d in deques)  # no 64-slot block each
    got = [await queue.get()]
    waiting = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("a")
    queue.put_nowait("b")
    got += [await waiting, await queue.get()]
    cancelled = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    assert not queue._getters  # type: ignore[attr-defined]
    for _ in got:
        queue.task_done()
    await asyncio.wait_for(queue.join(), 1)
    queue.put_nowait("c")
    got.append(await queue.get())
    return got


def test_a_trimmed_receive_queue_still_queues():
    assert run(_through_a_trimmed_queue()) == [{"type": "websocket.connect"}, "a", "b", "c"]


def test_only_a_plain_unbounded_idle_queue_is_trimmed():
    class Own(asyncio.Queue):
        pass

    assert not lean.trim_queue(asyncio.Queue(maxsize=1).get)
    assert not lean.trim_queue(Own().get)
    assert not lean.trim_queue(plain_send)


def test_a_python_outside_the_range_keeps_the_queues_deques(monkeypatch, caplog):
    monkeypatch.setattr(lean, "_queues_ok", None)
    monkeypatch.setattr(lean, "PYTHONS", ((3, 0), (3, 1)))
    queue: asyncio.Queue = asyncio.Queue()
    assert not lean.trim_queue(queue.get) and not lean.trim_queue(queue.get)
    assert type(queue._getters).__name__ == "deque"  # type: ignore[attr-defined]
    [message] = [r.getMessage() for r in caplog.records]
    assert "lean-queue off: Python" in message and "outside the tested range" in message


OWN_STACK = "tests.sites.own_stack_asgi:application"


def scrape(server: Server) -> tuple[dict[str, float], float]:
    """(adapter -> active, eager writes so far) from the server's /zmqfeed/metrics."""
    with urllib.request.urlopen(server.http + "/zmqfeed/metrics", timeout=5) as resp:
        text = resp.read().decode()
    state = {
        m.group(1): float(m.group(2))
        for m in re.finditer(
            r'^zmqfeed_daphne_adapter_active\{adapter="(\w+)"\} (\S+)$', text, re.M
        )
    }
    found = re.search(r"^zmqfeed_eager_writes_total (\S+)$", text, re.M)
    assert found, "no zmqfeed_eager_writes_total on /metrics"
    return state, float(found.group(1))


async def receive_frames(site: Site, server: Server, ctx, slug: str) -> int:
    """Subscribe over WebSocket, publish COUNT messages one by one; the frames received."""
    pub = Publisher(ctx)
    site.configure({"feeds": [feed_doc(slug, pub.endpoint, [{"slug": "all"}])]})
    ws = await connect(server)
    await subscribe(ws, slug, "all")
    await until_flowing(pub, ws, "t", "0")
    frames, got = 0, 0
    for i in range(COUNT):
        await pub.send("t", str(i + 1))
        while got < i + 1:  # one at a time: each goes as a frame of its own
            got += len(unpack(await recv(ws)))
            frames += 1
    await ws.close()
    pub.close()
    return frames


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def spawn_server(site: Site, port: int, args: list[str], log_name: str, env=None) -> Server:
    proc = site.spawn(args, log_name, env)
    wait_for_port(port, proc)
    return Server(port, proc, site.tmp / log_name)


def own_stack_server(site: Site, how: str) -> Server:
    port = free_port()
    if how == "daphne":
        args = [DAPHNE, "-b", "127.0.0.1", "-p", str(port), OWN_STACK]
        return spawn_server(site, port, args, "daphne.log")
    # daphne's runserver: ASGI_APPLICATION is the own-stack site's.
    args = [PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    env = {"DJANGO_SETTINGS_MODULE": "tests.sites.own_stack_settings"}
    return spawn_server(site, port, args, "runserver.log", env)


@pytest.mark.parametrize("how", ["daphne", "runserver"])
def test_own_asgi_stack_sends_frames_eagerly(tmp_path: Path, ctx, how):
    """A site that never calls websocket_application() still gets the adapters, from ready()."""
    site = Site(tmp_path)
    try:
        server = own_stack_server(site, how)
        # Before any WebSocket (whose connection would install them too): only ready() did.
        state, before = scrape(server)
        assert state == {"eager_writes": 1.0, "preframed": 1.0, "backlog": 1.0, "lean": 1.0}, (
            server.log()
        )
        frames = run(receive_frames(site, server, ctx, "own"))
        _, after = scrape(server)
        with urllib.request.urlopen(server.http + "/zmqfeed/metrics", timeout=5) as resp:
            text = resp.read().decode()
        assert "zmqfeed_daphne_released_http_channels_total 1.0" in text  # daphne's upgrade
        assert frames >= COUNT // 2
        assert after - before >= frames, f"{frames} frames, {after - before} eager writes"
        assert "daphne adapter" not in server.log()
    finally:
        site.close()


# -- preframed sends, on a real daphne protocol object -----------------------------------------


class Transport:
    """A connection's transport, as far as autobahn's sends and preframed writes go."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))


def open_ws(**config) -> tuple[WebSocketProtocol, Transport]:
    """Daphne's protocol as a connection leaves it once open (what _connectionMade sets)."""
    proto = WebSocketProtocol()
    proto.factory = WebSocketServerFactory()
    for attr in proto.CONFIG_ATTRS:
        setattr(proto, attr, config.get(attr, getattr(proto.factory, attr)))
    proto._perMessageCompress = None
    proto.trackedTimings = None
    proto.trafficStats = TrafficStats()
    proto.state = WebSocketProtocol.STATE_OPEN
    proto.send_state = WebSocketProtocol.SEND_STATE_GROUND
    proto.send_queue = deque()
    proto.transport = Transport()
    return proto, proto.transport


def frame_of(size: int) -> Frame:
    return Frame("f", "t", 1, b'"' + b"x" * (size - 2) + b'"', (0,))


@pytest.mark.parametrize("size", [2, 125, 126, 65535, 65536, 1 << 20])
def test_a_preframed_write_is_what_autobahn_would_send(size):
    """Byte for byte, and autobahn's traffic counts as sendMessage keeps them."""
    assert preframed.install() is True
    frame = frame_of(size)
    ordinary, theirs = open_ws()
    ordinary.sendMessage(frame.data)
    proto, ours = open_ws()
    assert preframed.target(functools.partial(handle_reply, proto)) is proto
    before = preframed.writes
    assert preframed.write(proto, frame) is True
    assert ours.written == theirs.written and preframed.writes == before + 1
    assert proto.trafficStats.__json__() == ordinary.trafficStats.__json__()


@pytest.mark.parametrize(
    "change",
    [
        {"send_state": WebSocketProtocol.SEND_STATE_INSIDE_MESSAGE},  # a message of its own
        {"send_queue": deque([(b"x", True)])},  # a sync or chopped send still queued
        {"_perMessageCompress": object()},  # permessage-deflate negotiated
        {"autoFragmentSize": 100},  # the frame is to go in fragments
        {"maxMessagePayloadSize": 100},  # over daphne's limit: send_limit or the error decide
    ],
    ids=["mid-message", "send-queue", "compression", "fragmenting", "over-limit"],
)
def test_a_preframed_write_leaves_other_sends_to_the_ordinary_path(change):
    preframed.install()
    proto, transport = open_ws()
    for attr, value in change.items():
        setattr(proto, attr, value)
    assert preframed.write(proto, frame_of(200)) is False and transport.written == []
    size_only = {"autoFragmentSize", "maxMessagePayloadSize"} >= change.keys()
    assert preframed.write(proto, frame_of(50)) is size_only  # a frame within the sizes goes


@pytest.mark.parametrize("state", ["STATE_CLOSING", "STATE_CLOSED"])
def test_a_closing_connection_takes_no_frame(state):
    preframed.install()
    proto, transport = open_ws()
    proto.state = getattr(WebSocketProtocol, state)
    assert preframed.write(proto, frame_of(10)) is True and transport.written == []
    proto.state = WebSocketProtocol.STATE_CONNECTING  # not accepted: daphne's path refuses
    assert preframed.write(proto, frame_of(10)) is False


@pytest.mark.parametrize("config", ["maskServerFrames", "logFrames", "logOctets", "trackTimings"])
def test_connections_configured_otherwise_take_the_ordinary_path(config):
    preframed.install()
    proto, _ = open_ws(**{config: True})
    assert preframed.target(functools.partial(handle_reply, proto)) is None


@pytest.mark.parametrize(
    "send",
    [plain_send, functools.partial(plain_send), functools.partial(handle_reply, Protocol(None))],
    ids=["function", "partial-without-args", "not-daphne"],
)
def test_preframed_target_of_anything_else_is_none(send):
    preframed.install()
    assert preframed.target(send) is None


def test_preframed_off_targets_nothing():
    proto, _ = open_ws()
    assert not preframed.active()
    assert preframed.target(functools.partial(handle_reply, proto)) is None


def test_an_autobahn_outside_the_range_or_without_a_setting_is_not_preframed(monkeypatch, caplog):
    real = guard.version_of
    monkeypatch.setattr(guard, "version_of", lambda d: "27.0.0" if d == "autobahn" else real(d))
    assert preframed.install() is False and preframed.install() is False
    [message] = [r.getMessage() for r in caplog.records]
    assert "preframed off: autobahn 27.0.0 is outside the tested range" in message
    assert "daphne's send path" in message
    monkeypatch.setattr(guard, "version_of", real)
    monkeypatch.setattr(WebSocketProtocol, "CONFIG_ATTRS", ["logFrames"])
    assert preframed.problems() == [
        "daphne's WebSocketProtocol takes no maskServerFrames, logOctets, trackTimings, "
        "autoFragmentSize, maxMessagePayloadSize per connection"
    ]
