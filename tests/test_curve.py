"""CURVE on ZeroMQ ingest: keys in documents and the admin, and real CURVE publishers
(trusted, untrusted, plaintext) through a real daphne whose feed is a CURVE server."""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import zmq
import zmq.asyncio
import zmq.auth
from django.test import Client

from tests.conftest import ROOT, Site, free_port
from tests.support import connect, feed_doc, recv, subscribe, unpack, until_flowing
from zmqfeed import checks
from zmqfeed.core.catalog import Catalog, FeedConfig
from zmqfeed.schema import SchemaError, export, validate

pytestmark = pytest.mark.skipif(not zmq.has("curve"), reason="this libzmq has no CURVE")


def keypair(directory: Path, name: str) -> tuple[str, Path]:
    """(public key in Z85, path of the secret key file), as zmq.auth writes them."""
    directory.mkdir(parents=True, exist_ok=True)
    public_file, secret_file = zmq.auth.create_certificates(str(directory), name)
    public, _ = zmq.auth.load_certificate(public_file)
    return public.decode(), Path(secret_file)


def secret_of(path: Path) -> str:
    return zmq.auth.load_certificate(str(path))[1].decode()


def doc(curve_publishers: object) -> dict:
    feed = {"slug": "f", "name": "F", "endpoints": ["tcp://*:5556"], "bind": True}
    return {"feeds": [{**feed, "curve_publishers": curve_publishers}]}


# Documents


def test_valid_key_lists_pass(tmp_path: Path) -> None:
    a, _ = keypair(tmp_path, "a")
    b, _ = keypair(tmp_path, "b")
    assert validate(doc([a, b]))["feeds"][0]["curve_publishers"] == [a, b]
    assert validate(doc(["*"]))["feeds"][0]["curve_publishers"] == ["*"]
    assert validate(doc([]))["feeds"][0]["curve_publishers"] == []
    feed = {"slug": "f", "name": "F", "endpoints": ["tcp://*:5556"], "bind": True}
    assert validate({"feeds": [feed]})["feeds"][0]["curve_publishers"] == []  # the default


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("abc", "feeds[0].curve_publishers: must be a list, not a string"),
        (["short"], "feeds[0].curve_publishers[0]: 'short' is not a CURVE public key: Z85 of "
         "32 bytes is 40 characters, not 5"),
        (["~" * 40], "feeds[0].curve_publishers[0]: '" + "~" * 40 + "' is not a CURVE public "
         "key: not valid Z85"),
        ([7], "feeds[0].curve_publishers[0]: must be a string, not a number"),
        (["*", "*"], 'feeds[0].curve_publishers: "*" (any key) must be the only entry, as ["*"]'),
    ],
)  # fmt: skip
def test_bad_keys_are_named_by_their_path(keys: object, message: str) -> None:
    with pytest.raises(SchemaError) as err:
        validate(doc(keys))
    assert str(err.value) == message


def test_star_with_keys_and_repeats_are_refused(tmp_path: Path) -> None:
    a, _ = keypair(tmp_path, "a")
    with pytest.raises(SchemaError, match=r"curve_publishers: \"\*\" \(any key\) must be"):
        validate(doc([a, "*"]))
    with pytest.raises(SchemaError, match=r"curve_publishers\[1\]: .* is listed twice"):
        validate(doc([a, a]))


def test_export_writes_the_keys_and_never_the_secret(tmp_path: Path, settings) -> None:
    a, secret_file = keypair(tmp_path, "a")
    settings.ZMQFEED = {"CURVE_SECRET_FILE": str(secret_file)}
    catalog = Catalog((FeedConfig("f", "F", ("tcp://*:1",), bind=True, curve_publishers=(a,)),))
    exported = export(catalog)
    assert exported["feeds"][0]["curve_publishers"] == [a]
    assert validate(exported) == exported
    text = json.dumps(exported)
    assert secret_of(secret_file) not in text and "key_secret" not in text


# The admin and the system check


@pytest.mark.django_db
def test_admin_shows_the_gateway_public_key_never_the_secret(
    tmp_path: Path, settings, admin_client: Client
) -> None:
    from zmqfeed.models import Feed

    gateway, secret_file = keypair(tmp_path, "gateway")
    publisher, _ = keypair(tmp_path, "publisher")
    settings.ZMQFEED = {"CURVE_SECRET_FILE": str(secret_file)}
    feed = Feed.objects.create(
        slug="c", name="C", endpoints=["tcp://*:5556"], bind=True, curve_publishers=[publisher]
    )
    page = admin_client.get(f"/admin/zmqfeed/feed/{feed.pk}/change/").content.decode()
    assert html.escape(gateway) in page and html.escape(publisher) in page
    secret = secret_of(secret_file)
    assert secret not in page and html.escape(secret) not in page


@pytest.mark.django_db
def test_admin_takes_one_key_per_line_and_refuses_bad_ones(
    tmp_path: Path, admin_client: Client
) -> None:
    from tests.test_admin import errors_of, feed_form
    from zmqfeed.models import Feed

    a, _ = keypair(tmp_path, "a")
    b, _ = keypair(tmp_path, "b")
    bad = admin_client.post(
        "/admin/zmqfeed/feed/add/", feed_form("tcp://*:5556", bind="on", curve_publishers="nope")
    )
    assert "is not a CURVE public key" in " ".join(errors_of(bad)["curve_publishers"])
    admin_client.post(
        "/admin/zmqfeed/feed/add/",
        feed_form("tcp://*:5556", bind="on", curve_publishers=f"{a}\n\n {b} \n"),
    )
    assert Feed.objects.get(slug="prices").curve_publishers == [a, b]


def test_check_names_an_unusable_key_file(tmp_path: Path, settings) -> None:
    public_file = Path(zmq.auth.create_certificates(str(tmp_path), "g")[0])
    for path, words in (
        (tmp_path / "missing", "cannot be read"),
        (public_file, "has no secret key"),
    ):
        settings.ZMQFEED = {"CURVE_SECRET_FILE": str(path)}
        found = [m for m in checks.check_settings() if m.id == "zmqfeed.E008"]
        assert [e.id for e in found] == ["zmqfeed.E008"] and words in found[0].msg
    settings.ZMQFEED = {"CURVE_SECRET_FILE": str(tmp_path / "g.key_secret")}
    assert [m for m in checks.check_settings() if m.id == "zmqfeed.E008"] == []
    settings.ZMQFEED = {}
    assert [m for m in checks.check_settings() if m.id == "zmqfeed.E008"] == []


# Real sockets through daphne


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, tuple[str, Path]]:
    d = tmp_path_factory.mktemp("keys")
    return {name: keypair(d, name) for name in ("gateway", "trusted", "stranger")}


@pytest.fixture(scope="module")
def site(tmp_path_factory, keys):
    s = Site(
        tmp_path_factory.mktemp("curve"),
        extra_env={"ZMQFEED_CURVE_SECRET_FILE": str(keys["gateway"][1])},
    )
    yield s
    s.close()


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    return {"listed": free_port(), "any": free_port(), "out": free_port()}


@pytest.fixture(scope="module")
def server(site, keys, ports):
    site.configure(
        {
            "feeds": [
                feed_doc(
                    "listed",
                    f"tcp://127.0.0.1:{ports['listed']}",
                    [{"slug": "all"}],
                    bind=True,
                    curve_publishers=[keys["trusted"][0]],
                ),
                feed_doc(
                    "any",
                    f"tcp://127.0.0.1:{ports['any']}",
                    [{"slug": "all"}],
                    bind=True,
                    curve_publishers=["*"],
                ),
                feed_doc(  # two-way: the outbound socket is a CURVE server as well
                    "cmds",
                    f"tcp://127.0.0.1:{free_port()}",
                    [{"slug": "all", "publish_access": "public"}],
                    bind=True,
                    curve_publishers=[keys["trusted"][0]],
                    publish_endpoints=[f"tcp://127.0.0.1:{ports['out']}"],
                    publish_bind=True,
                ),
            ]
        }
    )
    return site.daphne()


class CurvePublisher:
    """A PUB socket connecting to the gateway: a CURVE client with ``key``, else plaintext."""

    def __init__(self, ctx, port: int, server_key: str | None, key: Path | None) -> None:
        self.sock = ctx.socket(zmq.PUB)
        self.sock.linger = 0
        if key is not None and server_key is not None:
            public, secret = zmq.auth.load_certificate(str(key))
            self.sock.curve_serverkey = server_key.encode()
            self.sock.curve_publickey = public
            self.sock.curve_secretkey = secret
        self.sock.connect(f"tcp://127.0.0.1:{port}")

    async def send(self, *frames: bytes | str) -> None:
        await self.sock.send_multipart([f.encode() if isinstance(f, str) else f for f in frames])


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 90))


def refused(server, feed: str, reason: str) -> float:
    with urllib.request.urlopen(server.http + "/zmqfeed/metrics", timeout=5) as resp:
        text = resp.read().decode()
    pattern = rf'^zmqfeed_curve_refused_total\{{feed="{feed}",reason="{reason}"\}} (\S+)$'
    match = re.search(pattern, text, re.M)
    return float(match.group(1)) if match else 0.0


async def nothing_arrives(pub: CurvePublisher, ws, seconds: float = 2.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await pub.send("x", json.dumps({"from": "intruder"}))
        with contextlib.suppress(asyncio.TimeoutError):
            frame = await recv(ws, 0.1)
            pytest.fail(f"a refused publisher delivered {frame}")


async def refusal_counted(server, feed: str, reason: str, before: float) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if refused(server, feed, reason) > before:
            return True
        await asyncio.sleep(0.2)
    return False


def test_a_trusted_curve_publisher_delivers(server, keys, ports, ctx) -> None:
    async def main():
        ws = await connect(server)
        await subscribe(ws, "listed", "all")
        pub = CurvePublisher(ctx, ports["listed"], keys["gateway"][0], keys["trusted"][1])
        last = await until_flowing(pub, ws, "t", json.dumps({"ok": True}))
        assert last["data"] == {"ok": True} and last["feed"] == "listed"
        await ws.close()

    run(main())


@pytest.mark.parametrize("kind", ["untrusted", "plaintext"])
def test_untrusted_and_plaintext_publishers_deliver_nothing_and_are_counted(
    server, keys, ports, ctx, kind
) -> None:
    reason = "untrusted_key" if kind == "untrusted" else "not_curve"

    async def main():
        ws = await connect(server)
        await subscribe(ws, "listed", "all")
        before = refused(server, "listed", reason)
        key = keys["stranger"][1] if kind == "untrusted" else None
        pub = CurvePublisher(ctx, ports["listed"], keys["gateway"][0], key)
        await nothing_arrives(pub, ws)
        assert await refusal_counted(server, "listed", reason, before)
        # The trusted publisher still gets through meanwhile.
        good = CurvePublisher(ctx, ports["listed"], keys["gateway"][0], keys["trusted"][1])
        assert (await until_flowing(good, ws, "t", json.dumps({"ok": 1})))["data"] == {"ok": 1}
        await ws.close()

    run(main())


def test_any_key_is_accepted_with_star_but_not_plaintext(server, keys, ports, ctx) -> None:
    async def main():
        ws = await connect(server)
        await subscribe(ws, "any", "all")
        stranger = CurvePublisher(ctx, ports["any"], keys["gateway"][0], keys["stranger"][1])
        assert (await until_flowing(stranger, ws, "t", '{"any": 1}'))["data"] == {"any": 1}
        before = refused(server, "any", "not_curve")
        await nothing_arrives(CurvePublisher(ctx, ports["any"], None, None), ws)
        assert await refusal_counted(server, "any", "not_curve", before)
        await ws.close()

    run(main())


def test_zmq_publish_with_the_curve_flags_delivers(server, keys, ports) -> None:
    args = [
        sys.executable,
        "manage.py",
        "zmq_publish",
        f"tcp://127.0.0.1:{ports['listed']}",
        "--topic",
        "cli",
        "--json",
        "--wait",
        "30",
        "--curve-server-key",
        keys["gateway"][0],
        "--curve-secret-file",
        str(keys["trusted"][1]),
    ]
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        env={**server_env(), "DJANGO_DEBUG": "1", "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    async def main():
        ws = await connect(server)
        await subscribe(ws, "listed", "all")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            proc.stdin.write(b'{"cli": true}\n')
            proc.stdin.flush()
            with contextlib.suppress(asyncio.TimeoutError):
                got = unpack(await recv(ws, 0.3))[-1]
                assert got["data"] == {"cli": True} and got["topic"] == "all"
                await ws.close()
                return
        pytest.fail("zmq_publish over CURVE delivered nothing")

    try:
        run(main())
    finally:
        proc.kill()
        proc.wait(10)
        stderr = proc.stderr.read().decode(errors="replace")
        proc.stdin.close()
        proc.stderr.close()
        print(stderr)


def server_env() -> dict[str, str]:
    import os

    return dict(os.environ)


class BoundCurvePublisher(CurvePublisher):
    """A publisher that binds (the gateway connects: bind false), still a CURVE client."""

    def __init__(self, ctx, server_key: str, key: Path) -> None:
        self.port = free_port()
        self.sock = ctx.socket(zmq.PUB)
        self.sock.linger = 0
        public, secret = zmq.auth.load_certificate(str(key))
        self.sock.curve_serverkey = server_key.encode()
        self.sock.curve_publickey = public
        self.sock.curve_secretkey = secret
        self.sock.bind(f"tcp://127.0.0.1:{self.port}")


def test_the_gateway_is_the_curve_server_when_it_connects_too(site, server, keys, ctx) -> None:
    async def main():
        trusted = BoundCurvePublisher(ctx, keys["gateway"][0], keys["trusted"][1])
        stranger = BoundCurvePublisher(ctx, keys["gateway"][0], keys["stranger"][1])
        endpoints = [f"tcp://127.0.0.1:{trusted.port}", f"tcp://127.0.0.1:{stranger.port}"]
        feed = feed_doc("outward", endpoints[0], [{"slug": "all"}])
        feed.update(endpoints=endpoints, curve_publishers=[keys["trusted"][0]])
        site.configure({"feeds": [feed]})
        ws = await connect(server)
        await subscribe(ws, "outward", "all")
        assert (await until_flowing(trusted, ws, "t", '{"out": 1}'))["data"] == {"out": 1}
        await nothing_arrives(stranger, ws)
        assert refused(server, "outward", "untrusted_key") > 0
        await ws.close()

    run(main())


def test_changing_the_trusted_keys_reapplies_them(site, server, keys, ctx) -> None:
    async def main():
        port = free_port()

        def feed(trusted: list[str]) -> dict:
            doc = feed_doc("rekeyed", f"tcp://127.0.0.1:{port}", [{"slug": "all"}], bind=True)
            return {"feeds": [{**doc, "curve_publishers": trusted}]}

        site.configure(feed([keys["trusted"][0]]))
        ws = await connect(server)
        await subscribe(ws, "rekeyed", "all")
        good = CurvePublisher(ctx, port, keys["gateway"][0], keys["trusted"][1])
        assert (await until_flowing(good, ws, "t", "1"))["data"] == 1
        stranger = CurvePublisher(ctx, port, keys["gateway"][0], keys["stranger"][1])
        await nothing_arrives(stranger, ws, 1.0)
        site.configure(feed([keys["stranger"][0]]))
        # libzmq does not reconnect a publisher refused at the handshake, and the old socket
        # refuses this key until the reload: a new publisher socket per attempt.
        deadline = time.monotonic() + 20
        while True:
            newcomer = CurvePublisher(ctx, port, keys["gateway"][0], keys["stranger"][1])
            try:
                assert (await until_flowing(newcomer, ws, "t", "2", timeout=2))["data"] == 2
                break
            except AssertionError:
                newcomer.sock.close(0)
                if time.monotonic() > deadline:
                    raise
        # The socket was recreated: the key taken off the list is refused, not kept on.
        await nothing_arrives(good, ws, 1.0)
        await ws.close()

    run(main())


def test_socket_settings_include_the_trusted_keys() -> None:
    a = FeedConfig("f", "F", ("tcp://*:1",), bind=True, curve_publishers=("*",))
    b = FeedConfig("f", "F", ("tcp://*:1",), bind=True)
    assert a.socket_settings() != b.socket_settings()


def test_without_a_key_pair_a_curve_feed_is_not_opened(settings, caplog) -> None:
    from zmqfeed.core.catalog import TopicConfig
    from zmqfeed.core.rates import LogThrottle
    from zmqfeed.subscriber import FeedReader

    settings.ZMQFEED = {}
    feed = FeedConfig(
        "nokeys",
        "N",
        (f"tcp://127.0.0.1:{free_port()}",),
        bind=True,
        curve_publishers=("*",),
        topics=(TopicConfig("all", "All"),),
    )
    c = zmq.asyncio.Context()
    try:
        reader = FeedReader(feed, None, None, c, LogThrottle(1.0))
        with caplog.at_level("ERROR", logger="zmqfeed.curve"):
            assert reader.open() == 0  # nothing bound: no plaintext fallback
        assert "CURVE_SECRET_FILE" in caplog.text and "not opened" in caplog.text
        assert reader.sock is not None
        assert reader.sock.getsockopt(zmq.LAST_ENDPOINT) == b""
        assert reader.machine is not None and reader.machine.state(0.0)[0] == "error"
        reader.close()
    finally:
        c.term()


def test_publishes_reach_only_a_trusted_curve_subscriber(server, keys, ports, ctx) -> None:
    def sub(key: Path | None) -> zmq.Socket:
        sock = ctx.socket(zmq.SUB)
        sock.linger = 0
        if key is not None:
            public, secret = zmq.auth.load_certificate(str(key))
            sock.curve_serverkey = keys["gateway"][0].encode()
            sock.curve_publickey, sock.curve_secretkey = public, secret
        sock.subscribe(b"")
        sock.connect(f"tcp://127.0.0.1:{ports['out']}")
        return sock

    async def publish(ws, n: int) -> dict:
        frame = {"type": "publish", "feed": "cmds", "topic": "all", "data": n, "id": n}
        await ws.send(json.dumps(frame))
        return await recv(ws)

    async def main():
        ws = await connect(server)
        await subscribe(ws, "cmds", "all")
        plain = sub(None)
        await asyncio.sleep(1.0)
        # A plaintext subscriber never completes the handshake: nobody takes the publish.
        assert (await publish(ws, 0))["code"] == "unavailable"
        trusted = sub(keys["trusted"][1])
        deadline = time.monotonic() + 15
        while (reply := await publish(ws, 1))["type"] != "published":
            assert reply["code"] == "unavailable" and time.monotonic() < deadline, reply
            await asyncio.sleep(0.1)
        assert await asyncio.wait_for(trusted.recv_multipart(), 5) == [b"", b"1"]
        with pytest.raises(zmq.Again):  # the plaintext one got nothing
            zmq.Socket.shadow(plain.underlying).recv_multipart(zmq.NOBLOCK)
        await ws.close()

    run(main())
