"""Real publishers' wire formats end to end: a real Jupyter kernel, and PUB sockets sending
exactly what Bitcoin Core, Pupil, Monero, EDDN, MISP and the 2011 pyzmq example send,
through the real subscriber inside a real daphne, to a real WebSocket client.

Each of the six is the feed of its file in examples/feeds/, imported as it is with only its
endpoint rewritten to the test's PUB socket; all six are imported at once, into one daphne
for the module. The Jupyter test starts an ipykernel and imports the Jupyter example with
the kernel's IOPub endpoint and connection file, plus a second feed of its own (a PUB
socket of the test, the same connection file) for signed and forged messages.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import time
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path

import msgpack
import pytest
import zmq
from jupyter_client.manager import KernelManager
from jupyter_client.session import Session

from tests.conftest import ROOT, Site
from tests.support import connect, drain, feed_doc, messages, recv, subscribe, unpack

EXAMPLES = ROOT / "examples" / "feeds"
PUBLISHERS = ("bitcoin-core", "pupil", "monero", "eddn", "misp", "seed-2011")


def example(name: str, endpoint: str, **changes) -> dict:
    """The one feed of examples/feeds/<name>.json, its endpoint rewritten, all else as it is."""
    [feed] = json.loads((EXAMPLES / f"{name}.json").read_text())["feeds"]
    feed["endpoints"] = [endpoint]
    feed.update(changes)
    return feed


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    s = Site(tmp_path_factory.mktemp("publishers"))
    yield s
    s.close()


@pytest.fixture(scope="module")
def server(site):
    return site.daphne()


@pytest.fixture(scope="module")
def zctx():
    c = zmq.Context()
    yield c
    c.destroy(linger=0)


def pub_socket(ctx: zmq.Context) -> tuple[zmq.Socket, str]:
    """A PUB socket bound on a port the OS picks, as the real publisher binds its own."""
    sock = ctx.socket(zmq.PUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 0)  # a PUB send then never blocks or drops on our side
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    return sock, f"tcp://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def pubs(site, server, zctx) -> dict[str, zmq.Socket]:
    """One PUB socket per publisher, and its example feed imported, all in one import."""
    sockets, feeds = {}, []
    for name in PUBLISHERS:
        sockets[name], endpoint = pub_socket(zctx)
        feeds.append(example(name, endpoint))
    site.configure({"feeds": feeds})
    return sockets


@pytest.fixture(scope="module")
def analyst(site, pubs) -> dict[str, str]:
    """Headers of a logged-in staff user in misp-readers: the examples' topics are not all
    public (MISP: group misp-readers; Pupil's world camera and Jupyter: staff)."""
    site.create_user("analyst", staff=True, groups=("misp-readers",))
    return {"Cookie": site.session_cookie("analyst")}


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 90))


def metrics(server) -> str:
    with urllib.request.urlopen(server.http + "/zmqfeed/metrics", timeout=5) as resp:
        return resp.read().decode()


def dropped_line(feed: str, reason: str, count: int) -> str:
    return f'zmqfeed_dropped_messages_total{{feed="{feed}",reason="{reason}"}} {count}.0'


async def flowing(ws, send: Callable[[int], object], timeout: float = 20.0) -> dict:
    """Call send(0), send(1), … until the client receives something (SUB sockets join
    late, and the feed is picked up at a reload), then drain; return the last message."""
    deadline = time.monotonic() + timeout
    i = 0
    while time.monotonic() < deadline:
        send(i)
        i += 1
        with contextlib.suppress(asyncio.TimeoutError):
            last = unpack(await recv(ws, 0.25))[-1]
            while True:  # drain the probes still on their way
                try:
                    last = unpack(await recv(ws, 0.4))[-1]
                except asyncio.TimeoutError:
                    return last
    raise AssertionError(f"nothing arrived within {timeout} s")


async def no_more(ws, quiet: float = 0.5) -> None:
    with pytest.raises(asyncio.TimeoutError):
        extra = await recv(ws, quiet)
        raise AssertionError(f"unexpected frame: {extra}")


def assert_envelope(msg: dict, feed: str, topic: str, zmq_topic: str) -> None:
    assert msg["type"] == "message", msg
    assert (msg["feed"], msg["topic"], msg["zmq_topic"]) == (feed, topic, zmq_topic), msg
    assert isinstance(msg["seq"], int) and msg["seq"] > 0, msg
    assert abs(msg["ts"] - time.time()) < 10, msg


# Bitcoin Core: [topic, body, uint32 little-endian sequence number], one counter per topic.


def block_hash(n: int) -> bytes:
    return hashlib.sha256(b"block %d" % n).digest()


def test_bitcoin_core_hashblock_hex_with_upstream_seq_and_a_counted_gap(server, pubs):
    sock = pubs["bitcoin-core"]

    def hashblock(seq: int) -> list[bytes]:
        return [b"hashblock", block_hash(seq), seq.to_bytes(4, "little")]

    async def main():
        ws = await connect(server)
        assert (await subscribe(ws, "bitcoin-core", "hashblock"))["type"] == "subscribed"
        # Numbered from 300 (2c 01 00 00 little-endian; big-endian that would be 738263040),
        # one after another: no gap.
        probe = await flowing(ws, lambda i: sock.send_multipart(hashblock(300 + i)))
        n = probe["upstream_seq"] + 1
        assert n > 300
        sock.send_multipart(hashblock(n))
        [msg] = await messages(ws, 1)
        assert_envelope(msg, "bitcoin-core", "hashblock", "hashblock")
        assert msg["data"] == block_hash(n).hex() and len(msg["data"]) == 64
        assert msg["encoding"] == "hex" and msg["upstream_seq"] == n
        assert "parts" not in msg and msg["seq"] == probe["seq"] + 1

        sock.send_multipart(hashblock(n + 4))  # n+1, n+2, n+3 never reached the gateway
        [msg] = await messages(ws, 1)
        assert msg["upstream_seq"] == n + 4 and msg["data"] == block_hash(n + 4).hex()
        lost = 'zmqfeed_upstream_lost_messages_total{feed="bitcoin-core"} '
        text = metrics(server)
        assert lost + "3.0" in text, [line for line in text.splitlines() if lost in line]

        # Each topic has its own counter: a hashtx numbered 0 is no gap for hashblock.
        sock.send_multipart([b"hashtx", block_hash(1), (0).to_bytes(4, "little")])
        sock.send_multipart(hashblock(n + 5))
        [msg] = await messages(ws, 1)
        assert msg["upstream_seq"] == n + 5 and msg["zmq_topic"] == "hashblock"
        assert lost + "3.0" in metrics(server)
        await ws.close()

    run(main())


# Pupil: [topic, msgpack map, raw data frames…]; the world camera image as the third frame.


def test_pupil_world_frame_msgpack_map_and_image_part(server, pubs, analyst):
    sock = pubs["pupil"]
    image = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8 + b"\xff\xd9"

    def world(index: int, raw: bytes = b"\xff\xd8probe") -> list[bytes]:
        datum = {
            "topic": "frame.world",
            "width": 1280,
            "height": 720,
            "index": index,
            "timestamp": 5124.391002 + index,
            "format": "jpeg",
        }
        return [b"frame.world", msgpack.packb(datum, use_bin_type=True), raw]

    async def main():
        ws = await connect(server, additional_headers=analyst)
        for topic in ("world-frames", "gaze"):
            assert (await subscribe(ws, "pupil", topic))["type"] == "subscribed", topic
        await flowing(ws, lambda i: sock.send_multipart(world(i)))

        sock.send_multipart(world(9114, image))
        [msg] = await messages(ws, 1)
        assert_envelope(msg, "pupil", "world-frames", "frame.world")
        assert msg["data"] == {
            "topic": "frame.world",
            "width": 1280,
            "height": 720,
            "index": 9114,
            "timestamp": 5124.391002 + 9114,
            "format": "jpeg",
        }
        assert len(msg["parts"]) == 1 and base64.b64decode(msg["parts"][0]) == image
        assert "encoding" not in msg and "upstream_seq" not in msg

        gaze = {"topic": "gaze.3d.01.", "norm_pos": [0.5123, 0.4711], "confidence": 0.97}
        sock.send_multipart([b"gaze.3d.01.", msgpack.packb(gaze, use_bin_type=True)])
        [msg] = await messages(ws, 1)
        assert_envelope(msg, "pupil", "gaze", "gaze.3d.01.")
        assert msg["data"] == gaze and "parts" not in msg  # no raw data frame, no parts
        await ws.close()

    run(main())


# Monero: one frame, "<topic>:<json>".


def test_monero_txpool_topic_colon_json(server, pubs):
    sock = pubs["monero"]
    txs = [
        {
            "id": "93ad3484cdee0253752f1b8bc7960c25c846f60df734ca9f406cf3bd1a4e4699",
            "blob_size": 1534,
            "weight": 1534,
            "fee": 30720000,
        }
    ]

    def txpool(body: list) -> bytes:
        return b"json-minimal-txpool_add:" + json.dumps(body, separators=(",", ":")).encode()

    async def main():
        ws = await connect(server)
        assert (await subscribe(ws, "monero", "txpool-minimal"))["type"] == "subscribed"
        await flowing(ws, lambda i: sock.send(txpool([{"id": f"probe-{i}"}])))

        # A block on another topic first: exact topics, so it must not reach txpool-minimal.
        chain = {"first_height": 3301234, "first_prev_id": "39e2", "ids": ["aa83"]}
        sock.send(b"json-minimal-chain_main:" + json.dumps(chain).encode())
        sock.send(txpool(txs))
        [msg] = await messages(ws, 1)
        assert_envelope(msg, "monero", "txpool-minimal", "json-minimal-txpool_add")
        assert msg["data"] == txs
        assert not {"encoding", "parts", "upstream_seq"} & msg.keys()
        await no_more(ws)
        await ws.close()

    run(main())


# EDDN: one frame, no topic, zlib-compressed JSON.


def test_eddn_zlib_json_and_a_decompression_bomb_dropped_as_too_large(server, pubs):
    sock = pubs["eddn"]

    def eddn(message: dict) -> bytes:
        return zlib.compress(
            json.dumps(
                {
                    "$schemaRef": "https://eddn.edcd.io/schemas/journal/1",
                    "header": {"uploaderID": "aa06b180", "softwareName": "E:D Market Connector"},
                    "message": message,
                }
            ).encode()
        )

    jump = {"event": "FSDJump", "StarSystem": "Shinrarta Dezhra", "StarPos": [55.71875, 17.6]}
    bomb = zlib.compress(b"\0" * (64 << 20), 9)  # 64 MiB of zeros, about 64 KB compressed
    assert len(bomb) < 1 << 20  # under max_message_size as it travels: only inflating tells

    async def main():
        ws = await connect(server)
        assert (await subscribe(ws, "eddn", "all"))["type"] == "subscribed"
        await flowing(ws, lambda i: sock.send(eddn({"event": "probe", "n": i})))

        sock.send(eddn(jump))
        [msg] = await messages(ws, 1)
        assert_envelope(msg, "eddn", "all", "")
        assert msg["data"]["$schemaRef"] == "https://eddn.edcd.io/schemas/journal/1"
        assert msg["data"]["message"] == jump and "encoding" not in msg

        sock.send(bomb)
        sock.send(eddn({"event": "Docked", "StationName": "Jameson Memorial"}))
        [msg] = await messages(ws, 1)
        assert msg["data"]["message"] == {"event": "Docked", "StationName": "Jameson Memorial"}
        await no_more(ws)
        text = metrics(server)
        assert dropped_line("eddn", "too_large", 1) in text, [
            line for line in text.splitlines() if 'feed="eddn"' in line
        ]

    run(main())


# MISP: one frame, "<topic> <json>"; every topic exact.


def test_misp_event_topic_space_json_for_a_misp_reader(server, pubs, analyst):
    sock = pubs["misp"]
    event = {
        "Event": {
            "id": "2231",
            "info": "Phishing campaign",
            "uuid": "5b5a3a8e-7e1c-4c53-9d2e-5f2f0a8b1c44",
            "Attribute": [{"type": "ip-dst", "value": "198.51.100.23"}],
        },
        "action": "edit",
    }

    async def main():
        anonymous = await connect(server)
        reply = await subscribe(anonymous, "misp", "events")
        assert reply["type"] == "error" and reply["code"] != "not_found", reply
        await anonymous.close()

        ws = await connect(server, additional_headers=analyst)
        assert (await subscribe(ws, "misp", "events"))["type"] == "subscribed"
        await flowing(ws, lambda i: sock.send(b"misp_json_event " + json.dumps({"p": i}).encode()))

        # misp_json_event is a prefix of neither of these, but misp_json is of both.
        attribute = {"Attribute": {"type": "ip-dst", "value": "198.51.100.23"}, "action": "add"}
        sock.send(b"misp_json_attribute " + json.dumps(attribute).encode())
        sock.send(b"misp_json " + json.dumps(event).encode())
        sock.send(b"misp_json_event " + json.dumps(event).encode())
        [msg] = await messages(ws, 1)
        assert_envelope(msg, "misp", "events", "misp_json_event")
        assert msg["data"] == event
        await no_more(ws)
        await ws.close()

    run(main())


# The 2011 pyzmq example: one frame, "%d %d" % (topic, value).


def test_seed_2011_exact_topic_gets_only_its_number_and_bad_json_is_counted(server, pubs):
    sock = pubs["seed-2011"]

    async def main():
        ws = await connect(server)
        for topic in ("topic-10001", "all"):
            assert (await subscribe(ws, "seed-2011", topic))["type"] == "subscribed"
        await flowing(ws, lambda i: sock.send(b"10001 %d" % i))
        await drain(ws)

        for frame in (b"10001 23", b"10002 24", b"1000 25", b"100010 26", b"10001 {x"):
            sock.send(frame)
        sock.send(b"10001 27")
        got = await messages(ws, 7)
        await no_more(ws)
        by_topic: dict[str, list] = {"topic-10001": [], "all": []}
        for msg in got:
            assert_envelope(msg, "seed-2011", msg["topic"], msg["zmq_topic"])
            by_topic[msg["topic"]].append((msg["zmq_topic"], msg["data"]))
        assert by_topic["topic-10001"] == [("10001", 23), ("10001", 27)]
        assert by_topic["all"] == [
            ("10001", 23),
            ("10002", 24),
            ("1000", 25),
            ("100010", 26),
            ("10001", 27),
        ]
        text = metrics(server)
        assert dropped_line("seed-2011", "invalid_json", 1) in text, [
            line for line in text.splitlines() if 'feed="seed-2011"' in line
        ]
        await ws.close()

    run(main())


# Jupyter: a real ipykernel's IOPub, and a PUB socket of our own for forged messages.


def test_a_real_jupyter_kernels_output_and_forged_messages_dropped(
    site, server, zctx, analyst, tmp_path: Path
):
    connection_file = tmp_path / "kernel-publishers.json"
    km = KernelManager(kernel_name="python3", connection_file=str(connection_file))
    # IPYTHONDIR: the kernel's history and profile stay in the test's own directory.
    km.start_kernel(env={**os.environ, "IPYTHONDIR": str(tmp_path / "ipython")})
    kc = km.client()
    forge_sock = None
    try:
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        info = json.loads(connection_file.read_text())
        assert info["transport"] == "tcp" and info["key"], info
        forge_sock, forge_endpoint = pub_socket(zctx)
        site.configure(
            {
                "feeds": [
                    example(
                        "jupyter-iopub",
                        f"tcp://{info['ip']}:{info['iopub_port']}",
                        jupyter_connection_file=str(connection_file),
                    ),
                    feed_doc(
                        "jupyter-forged",
                        forge_endpoint,
                        [{"slug": "all"}],
                        framing="jupyter",
                        jupyter_connection_file=str(connection_file),
                    ),
                ]
            }
        )
        run(_kernel_output(server, kc, analyst))
        run(_forged(server, forge_sock, info))
    finally:
        if forge_sock is not None:
            forge_sock.close(0)
        kc.stop_channels()
        km.shutdown_kernel(now=True)


async def _kernel_output(server, kc, headers) -> None:
    ws = await connect(server, additional_headers=headers)
    for topic in ("all", "stream", "kernel"):
        assert (await subscribe(ws, "jupyter-iopub", topic))["type"] == "subscribed", topic
    # Every request makes the kernel publish busy and idle: ask until they come through.
    await flowing(ws, lambda i: kc.kernel_info())

    kc.execute('print("hello from the kernel")')
    kc.execute("6*7")
    seen: list[dict] = []
    deadline = time.monotonic() + 20

    def found(topic: str, msg_type: str, check) -> list[dict]:
        return [
            m
            for m in seen
            if m["topic"] == topic and m["data"]["header"]["msg_type"] == msg_type and check(m)
        ]

    def printed(m):
        return "hello from the kernel" in m["data"]["content"]["text"]

    def the_answer(m):
        return m["data"]["content"]["data"]["text/plain"] == "42"

    def complete() -> bool:
        return bool(
            found("all", "execute_result", the_answer)
            and found("kernel", "execute_result", the_answer)
            and found("all", "stream", printed)
            and found("stream", "stream", printed)
        )

    while not complete():
        assert time.monotonic() < deadline, [
            (m["topic"], m["zmq_topic"], m["data"]["header"]["msg_type"]) for m in seen
        ]
        seen.extend(await messages(ws, 1, timeout=max(0.1, deadline - time.monotonic())))

    [out] = found("all", "stream", printed)
    assert_envelope(out, "jupyter-iopub", "all", "stream.stdout")
    assert out["data"]["content"] == {"name": "stdout", "text": "hello from the kernel\n"}
    assert set(out["data"]) == {"header", "parent_header", "metadata", "content", "buffers"}
    assert out["data"]["parent_header"]["msg_type"] == "execute_request"
    assert out["data"]["buffers"] == []
    [result] = found("all", "execute_result", the_answer)
    ident = result["zmq_topic"].split(".")[1]
    assert result["zmq_topic"] == f"kernel.{ident}.execute_result", result["zmq_topic"]
    assert result["data"]["content"]["execution_count"] >= 1
    # The example's topics take what their names say: stream.* on stream, kernel.* on kernel.
    assert found("stream", "stream", printed)[0]["zmq_topic"] == "stream.stdout"
    assert not [
        m for m in seen if m["topic"] == "stream" and not m["zmq_topic"].startswith("stream.")
    ]
    assert not [
        m for m in seen if m["topic"] == "kernel" and not m["zmq_topic"].startswith("kernel.")
    ]
    await ws.close()


async def _forged(server, sock: zmq.Socket, info: dict) -> None:
    """Messages in the Jupyter wire format, made by jupyter_client's own Session."""
    signed = Session(key=info["key"].encode(), signature_scheme=info["signature_scheme"])
    forger = Session(key=b"not-the-kernels-key", signature_scheme=info["signature_scheme"])

    def stream(session: Session, text: str) -> list[bytes]:
        msg = session.msg("stream", content={"name": "stdout", "text": text})
        return session.serialize(msg, ident=b"stream.stdout")

    ws = await connect(server)
    assert (await subscribe(ws, "jupyter-forged", "all"))["type"] == "subscribed"
    await flowing(ws, lambda i: sock.send_multipart(stream(signed, f"probe {i}")))

    sock.send_multipart(stream(forger, "forged: wrong key\n"))
    tampered = stream(signed, "signed, then changed\n")
    tampered[-1] = json.dumps({"name": "stdout", "text": "tampered\n"}).encode()
    sock.send_multipart(tampered)
    sock.send_multipart(stream(signed, "signed\n"))
    got = await messages(ws, 1)
    texts = [m["data"]["content"]["text"] for m in got]
    assert texts == ["signed\n"], f"a forged or tampered message got through: {texts}"
    [msg] = got
    assert_envelope(msg, "jupyter-forged", "all", "stream.stdout")
    assert msg["data"]["content"] == {"name": "stdout", "text": "signed\n"}
    assert msg["data"]["header"]["msg_type"] == "stream"
    await no_more(ws)
    text = metrics(server)
    assert dropped_line("jupyter-forged", "bad_signature", 2) in text, [
        line for line in text.splitlines() if 'feed="jupyter-forged"' in line
    ]
    await ws.close()
