"""Server-Sent Events: the Last-Event-ID parser (pure, fuzzed), and the streams end to end
against a real daphne with real ZeroMQ publishers, read by a plain HTTP client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import urllib.request
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import Site
from tests.support import Publisher, feed_doc
from zmqfeed.core import sse
from zmqfeed.core.protocol import Frame
from zmqfeed.core.sse import Position

# The parser: any header value has a defined outcome.

slugs = st.from_regex(r"[-a-zA-Z0-9_]{1,20}", fullmatch=True)
epochs = st.one_of(st.just(""), st.from_regex(r"[0-9a-f]{12}", fullmatch=True))
seqs = st.integers(min_value=0, max_value=10**18)


@given(st.text())
def test_any_header_value_parses_without_an_exception(value):
    one = sse.parse_one(value)
    assert one is None or (isinstance(one, Position) and one.seq >= 0)
    many = sse.parse_many(value)
    assert all(p.seq >= 0 for p in many.values())


@given(st.binary())
def test_any_bytes_as_latin1_parse_too(raw):
    value = raw.decode("latin-1")  # what a server may hand over for a header's bytes
    sse.parse_one(value)
    sse.parse_many(value)


@given(epochs, seqs)
def test_one_topic_ids_round_trip(epoch, seq):
    id = sse.one_id(epoch, seq)
    assert id is not None and "\n" not in id
    assert sse.parse_one(id) == Position(epoch, seq)
    assert sse.parse_one(f"  {id} ") == Position(epoch, seq)


@given(st.dictionaries(st.tuples(slugs, slugs), st.tuples(epochs, seqs), max_size=20))
def test_several_topic_ids_round_trip(positions):
    positions = {key: Position(*value) for key, value in positions.items()}
    id = sse.Ids(positions).id
    if not positions:
        assert id is None
        return
    assert id is not None and "\n" not in id and "\r" not in id
    assert sse.parse_many(id) == positions


def test_a_several_topic_id_follows_its_topics_as_they_move_and_go():
    ids = sse.Ids({("a", "x"): Position("e1", 5), ("b", "y"): Position("e2", 7)})
    assert ids.id == "a/x@e1:5,b/y@e2:7"
    ids.move("a", "x", Position("e1", 6))
    assert ids.id == "a/x@e1:6,b/y@e2:7"
    ids.keep({("b", "y")})  # access to a/x was taken away: a resume must not ask for it
    assert ids.id == "b/y@e2:7"
    ids.move("c", "z", Position("bad\nepoch", 1))  # what cannot go in an id stays out
    assert ids.id == "b/y@e2:7"
    assert sse.Ids().id is None


def test_unreadable_parts_are_left_out_and_the_first_of_a_topic_wins():
    value = "a/x@e1:5,junk,b/y@e2:-1,a/x@e3:9, c/z@:0 ,d/w@e4:12345678901234567890"
    assert sse.parse_many(value) == {("a", "x"): Position("e1", 5), ("c", "z"): Position("", 0)}
    assert sse.parse_one("e1:5:6") is None and sse.parse_one("e1") is None
    assert sse.parse_one("") is None and sse.parse_one(None) is None
    assert sse.parse_one(":7") == Position("", 7) and Position("", 7).since_epoch is None


def test_topics_of_the_query():
    assert sse.parse_topics(["a/x", "b/y", "a/x"]) == [("a", "x"), ("b", "y")]
    assert sse.parse_topics(["a"]) is None and sse.parse_topics(["a/x/y"]) is None
    assert sse.parse_topics([]) == []


def test_a_frame_is_one_event_with_its_id_built_once():
    frame = Frame.of("f", "t", 7, [b'{"seq":7}', b'{"seq":8}'], "abc")
    assert frame.sse == b'id: abc:8\ndata: {"type":"batch","messages":[{"seq":7},{"seq":8}]}\n\n'
    assert frame.sse is frame.sse  # cached: one encode for every client


def test_line_breaks_of_a_passed_through_payload_become_data_lines():
    assert sse.event(b'{"a":\r\n 1,\n"b":\r2}', "e:1") == (
        b'id: e:1\ndata: {"a":\ndata:  1,\ndata: "b":\ndata: 2}\n\n'
    )


def test_every_text_with_messages_says_where_its_topic_stands_after_it():
    """The session's positions (what SSE ids are made of): a replay's batches, the frames
    held meanwhile, and the `subscribed` before them, each at its own last seq."""
    from tests.test_session import CATALOG, envelope, frame, session
    from zmqfeed.core.continuity import Replay
    from zmqfeed.core.session import At, Join, Send

    s = session()
    assert s.subscribe(CATALOG, "f", "a", 3, "E") is None
    assert s.subscribe(CATALOG, "f", "nope", None, None) == "not_found"
    assert s.subscribe(CATALOG, "f", "staff", None, None) == "forbidden"
    [join] = s.actions_to_do()
    assert isinstance(join, Join) and (join.since, join.epoch) == (3, "E")
    s.deliver(Frame.of("f", "a", 7, [envelope("a", 7)], "E"))  # held during the replay
    s.joined("f", "a", Replay(6, [envelope("a", n) for n in (4, 5, 6)], 4, "E"))
    sends = [a for a in s.actions_to_do() if isinstance(a, Send)]
    kinds = [json.loads(a.text)["type"] for a in sends]
    assert kinds == ["subscribed", "batch", "message"]
    assert [a.at for a in sends] == [
        At("f", "a", "E", 3),
        At("f", "a", "E", 6),
        At("f", "a", "E", 7),
    ]
    assert frame("a", 8, 8).sse.startswith(b"id: :8\n")  # no epoch yet: still an id


# A plain HTTP client for event streams (no dependency: asyncio streams).


class Stream:
    """One HTTP/1.1 GET, its status and headers, then its body as SSE events."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""
        self.chunked = False
        self._buffer = b""
        self.comments: list[str] = []
        self.retry: int | None = None
        self.last_id: str | None = None
        self.ended = False

    @classmethod
    async def open(cls, server, path: str, headers: dict[str, str] | None = None) -> Stream:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        stream = cls(reader, writer)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        status, *fields = head.decode("latin-1").split("\r\n")
        stream.status = int(status.split()[1])
        for field in fields:
            if ":" in field:
                name, _, value = field.partition(":")
                stream.headers[name.strip().lower()] = value.strip()
        stream.chunked = stream.headers.get("transfer-encoding") == "chunked"
        if "content-length" in stream.headers:
            length = int(stream.headers["content-length"])
            stream.body = await asyncio.wait_for(reader.readexactly(length), 10)
        elif stream.status != 200:
            stream.body = await stream._read_all()
        return stream

    async def _read_all(self) -> bytes:
        out = b""
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                piece = await self._piece(10)
                if not piece:
                    break
                out += piece
        return out

    async def _piece(self, timeout: float) -> bytes:
        """The next bytes of the body (b"": it ended)."""
        if not self.chunked:
            return await asyncio.wait_for(self.reader.read(65536), timeout)
        size_line = await asyncio.wait_for(self.reader.readuntil(b"\r\n"), timeout)
        size = int(size_line.split(b";")[0], 16)
        data = await asyncio.wait_for(self.reader.readexactly(size + 2), timeout)
        return data[:-2]

    async def event(self, timeout: float = 10.0) -> dict:
        """The next dispatched event: {"id"?, "data": [lines]}; comments and retry are kept."""
        deadline = time.monotonic() + timeout
        fields: dict = {"data": []}
        while True:
            while b"\n" not in self._buffer:
                piece = await self._piece(max(0.01, deadline - time.monotonic()))
                if not piece:
                    self.ended = True
                    raise EOFError("the stream ended")
                self._buffer += piece
            line, _, self._buffer = self._buffer.partition(b"\n")
            text = line.decode()
            if not text:
                if fields["data"]:
                    return fields
                fields = {"data": []}
                continue
            if text.startswith(":"):
                self.comments.append(text)
                continue
            name, _, value = text.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                fields["data"].append(value)
            elif name == "id":
                fields["id"] = self.last_id = value
            elif name == "retry":
                self.retry = int(value)

    async def frame(self, timeout: float = 10.0) -> tuple[dict, str | None]:
        """The next event as the frame it carries, and its id."""
        event = await self.event(timeout)
        assert len(event["data"]) == 1, "a frame built by zmqfeed is one data line"
        return json.loads(event["data"][0]), event.get("id")

    async def ended_within(self, timeout: float) -> bool:
        with contextlib.suppress(EOFError, asyncio.IncompleteReadError, ConnectionError):
            while True:
                await self.event(timeout)
        return True

    def close(self) -> None:
        self.writer.close()


def unpack(frame: dict) -> list[dict]:
    return frame["messages"] if frame["type"] == "batch" else [frame]


async def opened(server, path: str, headers: dict | None = None, timeout: float = 10.0):
    """A stream once its topics exist (a just-imported catalog reaches the server in seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        stream = await Stream.open(server, path, headers)
        if stream.status != 404 or time.monotonic() > deadline:
            return stream
        await asyncio.sleep(0.2)


async def until_flowing(pub: Publisher, stream: Stream, *frames: str) -> dict:
    """Publish a probe until the stream carries one (SUB sockets join late), then drain."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        await pub.send(*frames)
        with contextlib.suppress(asyncio.TimeoutError):
            frame, _ = await stream.frame(0.2)
            if frame["type"] not in ("message", "batch"):
                continue
            last = unpack(frame)[-1]
            with contextlib.suppress(asyncio.TimeoutError):
                while True:
                    frame, _ = await stream.frame(0.3)
                    last = unpack(frame)[-1]
            return last
    raise AssertionError("nothing arrived within 15 s")


async def messages(stream: Stream, count: int, timeout: float = 10.0) -> list[tuple[dict, str]]:
    """The next ``count`` messages, each with the id of the event that carried it."""
    got: list[tuple[dict, str]] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        frame, id = await stream.frame(max(0.05, deadline - time.monotonic()))
        assert frame["type"] in ("message", "batch"), frame
        got.extend((m, id) for m in unpack(frame))
    return got


def metric(server, name: str) -> float:
    with urllib.request.urlopen(server.http + "/zmqfeed/metrics", timeout=5) as response:
        found = re.search(rf"^{name} (\S+)$", response.read().decode(), re.M)
    return float(found.group(1)) if found else 0.0


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 90))


# End to end.


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Site]:
    s = Site(tmp_path_factory.mktemp("sse"))
    s.create_user("alice", groups=("traders",))
    s.create_user("sam", staff=True)
    yield s
    s.close()


@pytest.fixture(scope="module")
def server(site):
    return site.daphne()


def configure(site: Site, slug: str, pub: Publisher, topics: list[dict] | None = None) -> None:
    site.configure({"feeds": [feed_doc(slug, pub.endpoint, topics or [{"slug": "all"}])]})


def test_one_topic_stream_headers_subscribed_messages_batches_and_ids(site, server, ctx):
    async def main():
        pub = Publisher(ctx)
        configure(site, "s1", pub)
        stream = await opened(server, "/zmqfeed/sse/s1/all/")
        assert stream.status == 200
        assert stream.headers["content-type"] == "text/event-stream"
        assert stream.headers["cache-control"] == "no-cache"
        assert stream.headers["x-accel-buffering"] == "no"
        subscribed, id = await stream.frame()
        assert stream.retry == 1000  # sent first
        assert subscribed["type"] == "subscribed" and (subscribed["feed"], subscribed["topic"]) == (
            "s1",
            "all",
        )
        epoch = subscribed["epoch"]
        assert id == f"{epoch}:{subscribed['seq']}" and "recovered" not in subscribed
        probe = await until_flowing(pub, stream, "t", "0")

        await pub.send("t", json.dumps({"n": 1}))
        [(msg, id)] = await messages(stream, 1)
        assert msg["seq"] == probe["seq"] + 1 and msg["data"] == {"n": 1}
        assert id == f"{epoch}:{msg['seq']}"

        # A burst is read in one drain: batches, each with the id of its last message.
        for n in range(201):
            await pub.send("t", str(n))
        batches = []
        got: list[dict] = []
        while len(got) < 201:
            frame, id = await stream.frame()
            got.extend(unpack(frame))
            assert id == f"{epoch}:{got[-1]['seq']}"
            if frame["type"] == "batch":
                batches.append(frame)
        assert batches, "200 messages at once came one by one"
        seqs = [m["seq"] for m in got]
        assert seqs == list(range(msg["seq"] + 1, msg["seq"] + 202))

        # A payload written with line breaks: several data lines, the same JSON.
        await pub.send("t", '{"pretty":\n  [1,\r\n 2]}')
        event = await stream.event()
        assert len(event["data"]) == 3
        assert json.loads("\n".join(event["data"]))["data"] == {"pretty": [1, 2]}
        stream.close()
        pub.close()

    run(main())


def test_last_event_id_resumes_with_exactly_the_missed_messages(site, server, ctx):
    async def main():
        pub = Publisher(ctx)
        configure(site, "s2", pub)
        stream = await opened(server, "/zmqfeed/sse/s2/all/")
        await stream.frame()
        probe = await until_flowing(pub, stream, "t", "0")
        last_id = stream.last_id
        assert last_id is not None and last_id.endswith(f":{probe['seq']}")
        stream.close()

        for n in range(5):
            await pub.send("t", json.dumps(f"missed {n}"))
        await asyncio.sleep(0.5)  # routed and kept meanwhile
        again = await Stream.open(server, "/zmqfeed/sse/s2/all/", {"Last-Event-ID": last_id})
        subscribed, _ = await again.frame()
        assert subscribed["type"] == "subscribed" and subscribed["recovered"] is True
        assert subscribed["seq"] == probe["seq"] + 5
        frame, id = await again.frame()
        assert frame["type"] == "batch" and frame["replayed"] is True
        assert [m["data"] for m in frame["messages"]] == [f"missed {n}" for n in range(5)]
        assert id == f"{subscribed['epoch']}:{probe['seq'] + 5}"
        await pub.send("t", '"live"')
        [(live, _)] = await messages(again, 1)
        assert (live["seq"], live["data"]) == (probe["seq"] + 6, "live")
        again.close()

        # An id of another numbering: recovered false, and all the new numbering kept.
        other = await Stream.open(server, "/zmqfeed/sse/s2/all/", {"Last-Event-ID": "0ther:3"})
        subscribed, _ = await other.frame()
        assert subscribed["recovered"] is False
        other.close()
        pub.close()

    run(main())


def test_several_topics_in_one_stream_with_their_positions_and_resume(site, server, ctx):
    async def main():
        pub = Publisher(ctx)
        configure(
            site, "s3", pub, [{"slug": "eur", "prefix": "EUR"}, {"slug": "usd", "prefix": "USD"}]
        )
        path = "/zmqfeed/sse/?topic=s3/eur&topic=s3/usd"
        stream = await opened(server, path)
        assert stream.status == 200
        subscribed = [(await stream.frame())[0] for _ in range(2)]
        assert {s["topic"] for s in subscribed} == {"eur", "usd"}
        epochs = {s["topic"]: s["epoch"] for s in subscribed}
        await until_flowing(pub, stream, "EUR.x", "0")
        await until_flowing(pub, stream, "USD.x", "0")
        await pub.send("EUR.x", "1")
        [(eur, id)] = await messages(stream, 1)
        await pub.send("USD.x", "2")
        [(usd, id)] = await messages(stream, 1)
        positions = sse.parse_many(id)
        assert positions == {
            ("s3", "eur"): Position(epochs["eur"], eur["seq"]),
            ("s3", "usd"): Position(epochs["usd"], usd["seq"]),
        }
        assert id == f"s3/eur@{epochs['eur']}:{eur['seq']},s3/usd@{epochs['usd']}:{usd['seq']}"
        stream.close()

        await pub.send("EUR.x", "3")
        await pub.send("USD.x", "4")
        await pub.send("USD.x", "5")
        await asyncio.sleep(0.5)
        again = await Stream.open(server, path, {"Last-Event-ID": id})
        replayed: dict[str, list] = {"eur": [], "usd": []}
        for _ in range(4):  # two `subscribed` and two replays, in some order
            frame, _ = await again.frame()
            if frame["type"] == "subscribed":
                assert frame["recovered"] is True
            else:
                assert frame["replayed"] is True
                replayed[frame["messages"][0]["topic"]] += [m["data"] for m in frame["messages"]]
        assert replayed == {"eur": [3], "usd": [4, 5]}
        again.close()

        # The same through the query, as zmqfeed.js re-opens a stream; the header wins.
        query = await Stream.open(server, path + "&last_event_id=" + id.replace("/", "%2F"))
        frames = [(await query.frame())[0] for _ in range(4)]
        assert sorted(m["data"] for f in frames if f["type"] == "batch" for m in f["messages"]) == [
            3,
            4,
            5,
        ]
        query.close()
        both = await Stream.open(
            server, path + "&last_event_id=junk", {"Last-Event-ID": id.split(",")[0]}
        )
        frames = [(await both.frame())[0] for _ in range(3)]
        assert [m["data"] for f in frames if f["type"] == "batch" for m in f["messages"]] == [3]
        both.close()
        pub.close()

    run(main())


def test_refusals_before_the_stream_and_a_bearer_token(site, server, ctx):
    site.configure(
        {
            "feeds": [
                feed_doc(
                    "s4",
                    "tcp://127.0.0.1:9",
                    [{"slug": "pub"}, {"slug": "boss", "access": "staff"}],
                )
            ]
        }
    )
    token = site.manage("zmq_token", "sam").stdout.strip().splitlines()[-1]

    async def main():
        assert (await opened(server, "/zmqfeed/sse/s4/pub/")).status == 200
        cases = [
            ("/zmqfeed/sse/s4/nope/", {}, 404),
            ("/zmqfeed/sse/nope/pub/", {}, 404),
            ("/zmqfeed/sse/?topic=s4/pub&topic=s4/nope", {}, 404),
            ("/zmqfeed/sse/s4/boss/", {}, 403),
            ("/zmqfeed/sse/?topic=s4/pub&topic=s4/boss", {}, 403),
            ("/zmqfeed/sse/s4/boss/", {"Cookie": site.session_cookie("alice")}, 403),
            ("/zmqfeed/sse/s4/pub/", {"Authorization": "Bearer not-a-token"}, 401),
            ("/zmqfeed/sse/", {}, 400),
            ("/zmqfeed/sse/?topic=nonsense", {}, 400),
        ]
        for path, headers, status in cases:
            refused = await Stream.open(server, path, headers)
            assert refused.status == status, (path, refused.status, refused.body)
            assert refused.headers["content-type"].startswith("text/plain")
            assert refused.body.strip(), "a refusal says why"
            refused.close()
        bearer = {"Authorization": f"Bearer {token}"}
        staff = await Stream.open(server, "/zmqfeed/sse/s4/boss/", bearer)
        assert staff.status == 200 and (await staff.frame())[0]["type"] == "subscribed"
        staff.close()
        cookie = {"Cookie": site.session_cookie("sam")}
        staff = await Stream.open(server, "/zmqfeed/sse/s4/boss/", cookie)
        assert staff.status == 200 and (await staff.frame())[0]["type"] == "subscribed"
        staff.close()
        site.manage("zmq_token", "sam", "--revoke")
        revoked = await Stream.open(server, "/zmqfeed/sse/s4/pub/", bearer)
        assert revoked.status == 401 and b"revoked" in revoked.body
        assert revoked.headers["www-authenticate"] == "Bearer"

    run(main())


def test_access_lost_while_streaming_ends_the_topic_and_a_one_topic_stream(site, server, ctx):
    site.configure(
        {
            "feeds": [
                feed_doc(
                    "s5",
                    "tcp://127.0.0.1:9",
                    [{"slug": "pub"}, {"slug": "desk", "access": "group", "groups": ["traders"]}],
                )
            ]
        }
    )
    site.shell(
        "from django.contrib.auth.models import User, Group\n"
        "User.objects.get(username='alice').groups.add(Group.objects.get(name='traders'))\n"
    )
    cookie = {"Cookie": site.session_cookie("alice")}

    async def main():
        one = await opened(server, "/zmqfeed/sse/s5/desk/", cookie)
        many = await opened(server, "/zmqfeed/sse/?topic=s5/pub&topic=s5/desk", cookie)
        assert one.status == many.status == 200
        assert (await one.frame())[0]["type"] == "subscribed"
        for _ in range(2):
            assert (await many.frame())[0]["type"] == "subscribed"
        site.shell(
            "from django.contrib.auth.models import User\n"
            "User.objects.get(username='alice').groups.clear()\n"
        )
        for stream in (one, many):
            error, id = await stream.frame(8)
            assert error == {
                "type": "error",
                "code": "forbidden",
                "detail": "access changed",
                "feed": "s5",
                "topic": "desk",
            }
            assert id is None
            assert (await stream.frame())[0] == {
                "type": "unsubscribed",
                "feed": "s5",
                "topic": "desk",
            }
        assert await one.ended_within(5), "a one-topic stream ends with its topic"
        with pytest.raises(asyncio.TimeoutError):  # the other topic goes on
            await many.event(1.0)
        assert not many.ended
        many.close()
        again = await Stream.open(server, "/zmqfeed/sse/s5/desk/", cookie)
        assert again.status == 403  # what EventSource's reconnect meets: it stops there

    run(main())


def test_a_client_that_goes_away_frees_its_stream_and_admission(tmp_path, ctx):
    site = Site(tmp_path, {"DJANGO_SETTINGS_MODULE": "tests.sites.caps_settings"})
    server = site.daphne()

    async def main():
        pub = Publisher(ctx)
        configure(site, "s6", pub)
        streams = [await opened(server, "/zmqfeed/sse/s6/all/") for _ in range(4)]
        assert [s.status for s in streams] == [200] * 4
        for stream in streams:
            await stream.frame()
        assert metric(server, "zmqfeed_sse_streams") == 4
        refused = await Stream.open(server, "/zmqfeed/sse/s6/all/")
        assert refused.status == 503 and refused.headers["retry-after"] == "5"
        assert b"MAX_CONNECTIONS" in refused.body
        await until_flowing(pub, streams[0], "t", "0")

        for stream in streams:
            stream.close()
        for _ in range(100):  # daphne tells the application of a disconnect at once
            if not metric(server, "zmqfeed_sse_streams"):
                break
            await asyncio.sleep(0.1)
        assert metric(server, "zmqfeed_sse_streams") == 0
        # Admission released: four streams fit again, and they still get what is published.
        streams = [await Stream.open(server, "/zmqfeed/sse/s6/all/") for _ in range(4)]
        assert [s.status for s in streams] == [200] * 4
        for stream in streams:
            await stream.frame()
        await pub.send("t", '"after"')
        for stream in streams:
            [(msg, _)] = await messages(stream, 1)
            assert msg["data"] == "after"
            stream.close()
        pub.close()
        assert "Traceback" not in server.log(), server.log()[-3000:]

    try:
        run(main())
    finally:
        site.close()


def test_a_slow_stream_is_shed_and_told_with_a_gap(tmp_path, ctx):
    site = Site(tmp_path)
    server = site.daphne()
    payload = json.dumps("x" * 10_000)

    async def main():
        pub = Publisher(ctx)
        configure(site, "s7", pub)
        stream = await opened(server, "/zmqfeed/sse/s7/all/")
        await stream.frame()
        probe = await until_flowing(pub, stream, "t", "0")
        count = 3000  # 30 MB: far past MAX_CLIENT_BACKLOG and the kernel's buffers
        for i in range(count):  # the stream reads nothing meanwhile
            await pub.send("t", payload)
            if i % 50 == 0:
                await asyncio.sleep(0.01)
        frames = []
        with contextlib.suppress(asyncio.TimeoutError):  # the slow stream catches up
            while True:
                frames.append((await stream.frame(2.0))[0])
        await pub.send("t", '"after"')  # the next message sent opens with the gap
        while (
            not frames or frames[-1]["type"] == "gap" or unpack(frames[-1])[-1]["data"] != "after"
        ):
            frames.append((await stream.frame(5.0))[0])
        gaps = [f for f in frames if f["type"] == "gap"]
        assert gaps and all(g["reason"] == "slow_consumer" for g in gaps)
        seqs = [m["seq"] for f in frames if f["type"] != "gap" for m in unpack(f)]
        lost = [s for g in gaps for s in range(g["from_seq"], g["to_seq"] + 1)]
        first = probe["seq"] + 1
        assert sorted(seqs + lost) == list(range(first, first + count + 1))
        stream.close()
        pub.close()

    try:
        run(main())
    finally:
        site.close()
