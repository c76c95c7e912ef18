"""Messages over daphne's 1 MiB: carried whole to clients when the server allows it, else
dropped and counted, never lost unseen.

Autobahn checks what daphne sends against daphne's --websocket-max-message-size, meant for
what clients send (zmqfeed/daphne/send_limit.py). The send_limit adapter is tested here on a
real daphne protocol object, and end to end: a ZeroMQ publisher sends an 8 MiB JSON event to
a feed whose max_message_size is 9 MiB, through a real daphne, to a websockets client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets
from autobahn.exception import PayloadExceededError
from autobahn.websocket.protocol import TrafficStats
from daphne.ws_protocol import WebSocketProtocol

import zmqfeed.daphne.metrics  # noqa: F401  (registers the adapters' collector)
from tests.conftest import Server, Site
from tests.support import Publisher, eventually, feed_doc, recv, subscribe, unpack, until_flowing
from zmqfeed import daphne
from zmqfeed.daphne import guard, send_limit

MIB = 1024 * 1024
LARGE_FRAMES = {"DJANGO_SETTINGS_MODULE": "tests.sites.large_frames_settings"}  # 16 MiB frames
RAISED_LIMIT = ("--websocket-max-message-size", str(16 * MIB))

# -- the adapter, on a real daphne protocol object ---------------------------------------------


@pytest.fixture
def fresh() -> Iterator[None]:
    """Nothing lifted, decided or reported; put back afterwards as the app's ready() left it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(send_limit, "_enabled", False)
        mp.setattr(send_limit, "_refused", False)
        mp.setattr(send_limit, "_reported", False)
        mp.setattr(send_limit, "short_connections", 0)
        mp.setattr(send_limit, "lifted_connections", 0)
        mp.setattr(guard, "_warned", set())
        yield
    assert "sendMessage" not in vars(WebSocketProtocol)  # the class is never patched


def open_protocol(limit: int) -> tuple[WebSocketProtocol, list[bytes]]:
    """Daphne's protocol as a connection leaves it once open, its frames kept in a list."""
    proto = WebSocketProtocol()
    proto.state = WebSocketProtocol.STATE_OPEN
    proto.maxMessagePayloadSize = limit  # as _connectionMade copies it from the factory
    proto.autoFragmentSize = 0  # daphne sets none
    proto._perMessageCompress = None
    proto.trackedTimings = None
    proto.trafficStats = TrafficStats()
    sent: list[bytes] = []
    proto.sendFrame = lambda opcode, payload=b"", **kw: sent.append(payload)  # type: ignore[method-assign]
    return proto, sent


def test_autobahn_applies_the_incoming_limit_to_sends(fresh):
    """What the adapter is for: daphne's --websocket-max-message-size caps what it sends."""
    proto, sent = open_protocol(1 * MIB)
    proto.sendMessage(b"x" * MIB)
    with pytest.raises(PayloadExceededError, match="tried to send"):
        proto.sendMessage(b"x" * (MIB + 1))
    assert len(sent) == 1


def test_lifted_sends_reach_max_frame_size_and_receives_keep_the_limit(fresh):
    assert send_limit.install(8 * MIB) is True and send_limit.active()
    proto, sent = open_protocol(1 * MIB)
    send_limit.observe(proto, 8 * MIB)  # a zmqfeed connection opens
    proto.sendMessage(b"x" * (8 * MIB))
    assert sent == [b"x" * (8 * MIB)]
    assert proto.maxMessagePayloadSize == 1 * MIB  # what clients may send is unchanged
    with pytest.raises(PayloadExceededError):  # past MAX_FRAME_SIZE autobahn still refuses
        proto.sendMessage(b"x" * (8 * MIB + 1))
    assert proto.maxMessagePayloadSize == 1 * MIB
    unlimited, sent = open_protocol(0)  # --websocket-max-message-size 0: no limit, left so
    send_limit.observe(unlimited, 8 * MIB)
    unlimited.sendMessage(b"x" * (9 * MIB))
    assert len(sent[0]) == 9 * MIB and unlimited.maxMessagePayloadSize == 0
    agreeing, _ = open_protocol(8 * MIB)  # limits that agree: its sends are left alone
    send_limit.observe(agreeing, 8 * MIB)
    assert "sendMessage" not in vars(agreeing) and "sendMessage" not in vars(unlimited)
    assert send_limit.lifted_connections == 1
    send_limit.uninstall()
    later, _ = open_protocol(1 * MIB)
    send_limit.observe(later, 8 * MIB)
    with pytest.raises(PayloadExceededError):
        later.sendMessage(b"x" * (2 * MIB))


def test_install_reads_lift_send_limit(fresh, monkeypatch, settings):
    monkeypatch.setattr(daphne, "_result", None)
    monkeypatch.setitem(sys.modules, "twisted.internet.reactor", object())
    settings.ZMQFEED = {"MAX_FRAME_SIZE": 4 * MIB, "LIFT_SEND_LIMIT": False}
    daphne.install()
    assert not send_limit.active()
    monkeypatch.setattr(daphne, "_result", None)
    settings.ZMQFEED = {"MAX_FRAME_SIZE": 4 * MIB}
    assert daphne.install() is True and send_limit.active()


def test_an_autobahn_outside_the_range_lifts_nothing_and_warns_once(fresh, monkeypatch, caplog):
    real = guard.version_of
    monkeypatch.setattr(guard, "version_of", lambda d: "27.1.1" if d == "autobahn" else real(d))
    assert send_limit.install(8 * MIB) is False
    assert send_limit.install(8 * MIB) is False
    assert "sendMessage" not in vars(WebSocketProtocol)
    [warning] = [r for r in caplog.records if "send_limit" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert "autobahn 27.1.1 is outside the tested range >=22.4,<27" in warning.getMessage()
    assert "frames over it are lost" in warning.getMessage()


def test_a_daphne_that_no_longer_copies_the_limit_lifts_nothing(fresh, monkeypatch):
    monkeypatch.setattr(WebSocketProtocol, "CONFIG_ATTRS", ("autoPingTimeout",))
    assert send_limit.problems() == [
        "daphne's WebSocketProtocol takes no maxMessagePayloadSize per connection"
    ]
    assert send_limit.install(8 * MIB) is False


def test_a_connection_that_cannot_send_max_frame_size_is_counted_and_reported_once(fresh, caplog):
    short, _ = open_protocol(1 * MIB)
    send_limit.observe(short, 16 * MIB)
    send_limit.observe(short, 16 * MIB)
    send_limit.observe(open_protocol(16 * MIB)[0], 16 * MIB)  # its limit lets it out
    send_limit.observe(open_protocol(0)[0], 16 * MIB)  # no limit
    send_limit.observe(object(), 16 * MIB)  # not autobahn's
    assert send_limit.short_connections == 2
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "MAX_FRAME_SIZE (16777216 bytes) is over this daphne's" in error.getMessage()
    assert "--websocket-max-message-size (1048576 bytes)" in error.getMessage()
    send_limit.install(16 * MIB)
    send_limit.observe(short, 16 * MIB)  # lifted: nothing to report
    assert send_limit.short_connections == 2


# -- end to end: a real daphne, ZeroMQ publisher and websockets client ---------------------------


def misp_event(size: int) -> bytes:
    """A MISP-like event of about ``size`` bytes of JSON: many attributes, as big events have."""
    attributes = []
    length = 0
    while length < size:
        i = len(attributes)
        attribute = {
            "id": str(i),
            "type": "sha256",
            "category": "Payload delivery",
            "value": f"{i:064x}",
            "comment": f"sample {i} seen in the wild, ünïcode included",
            "to_ids": i % 2 == 0,
        }
        attributes.append(attribute)
        length += len(json.dumps(attribute)) + 2
    event = {"Event": {"uuid": "5e8f0c3a-0000-4000-8000-000000000001", "Attribute": attributes}}
    return json.dumps(event, ensure_ascii=False).encode()


EVENT = misp_event(8 * MIB)


def metrics(server: Server) -> str:
    with urllib.request.urlopen(server.http + "/zmqfeed/metrics", timeout=5) as resp:
        return resp.read().decode()


def series(text: str, name: str, **labels: str) -> float | None:
    """The value of one series in Prometheus text, or None when it is not there."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if want else "") + r" (\S+)$"
    found = re.search("^" + pattern, text, re.M)
    return float(found.group(1)) if found else None


async def publish_event_then_small_ones(site: Site, server: Server, ctx, slug: str) -> list:
    """Subscribe (max_size 16 MiB), publish EVENT, then {"after": n} until one arrives.

    Several: a frame lost by autobahn takes the messages batched with it along.
    Returns the last probe of until_flowing, then the messages received, in order.
    """
    pub = Publisher(ctx)
    doc = feed_doc(slug, pub.endpoint, [{"slug": "all"}], max_message_size=9 * MIB)
    site.configure({"feeds": [doc]})
    ws = await websockets.connect(
        server.ws + "/ws/zmqfeed/", origin=server.origin, max_size=16 * MIB, open_timeout=10
    )
    try:
        await subscribe(ws, slug, "all")
        probe = await until_flowing(pub, ws, "misp", "0")
        await pub.send("misp", EVENT)
        got: list = [probe]
        for n in range(1, 30):
            await pub.send("misp", json.dumps({"after": n}))
            with contextlib.suppress(asyncio.TimeoutError):
                while True:
                    got += unpack(await recv(ws, 2))
            last = got[-1].get("data")
            if len(got) > 1 and isinstance(last, dict) and "after" in last:
                return got
        raise AssertionError(f"no message arrived after the event: {got[1:2]}")
    finally:
        await ws.close()
        pub.close()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 90))


@pytest.mark.parametrize(
    "daphne_args, env, lifted",
    [
        (RAISED_LIMIT, {"ZMQFEED_TEST_LIFT_SEND_LIMIT": "0"}, 0.0),  # daphne's own limit allows it
        ((), {}, 1.0),  # daphne's default limit, lifted for sends by the adapter
    ],
    ids=["raised-websocket-max-message-size", "send-limit-adapter"],
)
def test_an_8_mib_message_reaches_the_client_whole(tmp_path: Path, ctx, daphne_args, env, lifted):
    site = Site(tmp_path)
    try:
        server = site.daphne({**LARGE_FRAMES, **env}, daphne_args)
        got = run(publish_event_then_small_ones(site, server, ctx, "misp"))
        whole = len(got) > 2 and got[1].get("data") == json.loads(EVENT)  # no 8 MiB diff if not
        assert whole, f"the event did not arrive whole; then came {got[-1]}\n{server.log()}"
        _, event, *rest = got
        # Under load the small ones after it may be shed for this slow reader: then a gap
        # says so, and the numbering still follows on.
        skipped = sum(f["to_seq"] - f["from_seq"] + 1 for f in rest if f["type"] == "gap")
        after = next(m for m in rest if m["type"] == "message")
        assert "after" in after["data"] and after["seq"] == event["seq"] + 1 + skipped
        text = metrics(server)
        assert series(text, "zmqfeed_daphne_send_limit_lifted") == lifted
        # Lifted per connection, only where daphne's limit is under MAX_FRAME_SIZE.
        assert series(text, "zmqfeed_daphne_send_limit_lifted_connections_total") == lifted
        assert series(text, "zmqfeed_daphne_send_limit_short_connections_total") == 0.0
        assert (
            series(text, "zmqfeed_dropped_messages_total", feed="misp", reason="too_large") is None
        )
        assert "PayloadExceededError" not in server.log()
        assert "daphne adapter" not in server.log()
    finally:
        site.close()


def test_over_daphnes_limit_with_the_adapter_off_the_loss_is_reported(tmp_path: Path, ctx):
    """The fallback (LIFT_SEND_LIMIT off, or an autobahn outside the range): lost, but said."""
    site = Site(tmp_path)
    try:
        server = site.daphne({**LARGE_FRAMES, "ZMQFEED_TEST_LIFT_SEND_LIMIT": "0"})
        got = run(publish_event_then_small_ones(site, server, ctx, "misp"))
        assert all("after" in m["data"] for m in got[1:]), "the event was not lost?"
        log = server.log()
        assert "MAX_FRAME_SIZE (16777216 bytes) is over this daphne's" in log
        assert log.count("--websocket-max-message-size (1048576 bytes)") == 1, log
        assert "PayloadExceededError" in log  # and each lost frame is logged where it fails
        text = metrics(server)
        assert series(text, "zmqfeed_daphne_send_limit_lifted") == 0.0
        assert series(text, "zmqfeed_daphne_send_limit_short_connections_total") == 1.0
    finally:
        site.close()


def test_at_default_limits_an_8_mib_message_is_dropped_and_counted_too_large(site: Site, ctx):
    server = site.daphne()  # the demo's settings: MAX_FRAME_SIZE 1 MiB, daphne's 1 MiB
    got = run(publish_event_then_small_ones(site, server, ctx, "misp"))
    probe, after = got
    assert after["data"] == {"after": 1} and after["seq"] == probe["seq"] + 1  # no seq taken

    async def too_large():
        return series(
            metrics(server), "zmqfeed_dropped_messages_total", feed="misp", reason="too_large"
        )

    assert run(eventually(too_large)) == 1.0, server.log()
    assert "too_large" in server.log()  # logged as well as counted
    assert "PayloadExceededError" not in server.log()
