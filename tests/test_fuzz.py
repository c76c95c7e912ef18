"""The pure parsers under arbitrary input (hypothesis): each ends in one of its documented
outcomes, never another exception.

Covered here: client frames (protocol.parse_request, ClientSession.receive), import files
(schema.validate) and the router (Router.route). The ZeroMQ decoder, for every framing,
payload, frames list, compression and key, is fuzzed in tests/test_real_framings.py
(test_any_frames_give_an_envelope_or_a_reason).
"""

from __future__ import annotations

import copy
import struct

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zmqfeed.core.access import ANONYMOUS, Reader
from zmqfeed.core.catalog import Catalog, FeedConfig, TopicConfig
from zmqfeed.core.continuity import Numbering
from zmqfeed.core.protocol import ProtocolError, Request, parse_request
from zmqfeed.core.router import Router
from zmqfeed.core.session import (
    Authenticate,
    ClientSession,
    Close,
    Join,
    Leave,
    Limits,
    Replay,
    Send,
)
from zmqfeed.core.vocabulary import FEED_KEYS, PAYLOADS, TOPIC_KEYS
from zmqfeed.schema import SchemaError, validate

# The error codes of docs/protocol.md ("Errors").
CODES = {
    "bad_request",
    "not_found",
    "forbidden",
    "too_many_subscriptions",
    "rate_limited",
    "too_large",
    "idle",
}
REQUEST_TYPES = {"ping", "subscribe", "unsubscribe", "auth", "publish"}

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

# Requests that are nearly right: the real keys and types, with any values.
near_requests = st.fixed_dictionaries(
    {},
    optional={
        "type": st.one_of(st.sampled_from(sorted(REQUEST_TYPES)), json_values),
        "id": json_values,
        "feed": st.one_of(st.sampled_from(["f", ""]), json_values),
        "topic": st.one_of(st.sampled_from(["a", "b", "staff", "nope"]), json_values),
        "since": st.one_of(st.integers(-5, 2**64), json_values),
        "token": json_values,
        "data": json_values,
    },
)


def _json_text(value) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


client_texts = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    json_values.filter(lambda v: _ok(v)).map(_json_text),
    near_requests.filter(lambda v: _ok(v)).map(_json_text),
    st.sampled_from(['{"type":"ping","id":1e400}', '{"id":' + "9" * 40 + "}", "\ud800", "[]"]),
)


def _ok(value) -> bool:
    try:
        orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return False
    return True


# parse_request


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        client_texts,
        st.binary(max_size=200),
        client_texts.map(lambda t: t.encode("utf-8", "surrogatepass")),
    )
)
def test_parse_request_gives_a_request_or_a_protocol_error(frame):
    try:  # lone surrogates and cut UTF-8 included
        request = parse_request(frame)
    except ProtocolError as exc:
        assert exc.code == "bad_request"
        assert isinstance(exc.detail, str) and exc.detail
        return
    assert isinstance(request, Request)
    assert request.type in REQUEST_TYPES
    assert request.id is None or (
        isinstance(request.id, (str, int, float)) and not isinstance(request.id, bool)
    )
    if request.type in ("subscribe", "unsubscribe", "publish"):
        assert isinstance(request.feed, str) and request.feed
        assert isinstance(request.topic, str) and request.topic
    if request.since is not None:
        assert isinstance(request.since, int) and request.since >= 0


# ClientSession.receive

CATALOG = Catalog(
    (
        FeedConfig(
            "f",
            "F",
            ("tcp://127.0.0.1:1",),
            topics=(
                TopicConfig("a", "A", "a"),
                TopicConfig("b", "B", "b"),
                TopicConfig("staff", "S", "s", access="staff"),
            ),
        ),
    )
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


client_frames = st.lists(
    st.one_of(
        client_texts.map(lambda t: (t, None)),
        st.binary(max_size=64).map(lambda b: (None, b)),
        st.text(min_size=300, max_size=400).map(lambda t: (t, None)),  # over max_client_frame
        st.floats(0, 2).map(lambda dt: ("tick", dt)),  # time passes (the rate limit refills)
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(client_frames, st.sampled_from([ANONYMOUS, Reader(authenticated=True, staff=True)]))
def test_any_client_frames_end_in_documented_actions(frames, reader):
    limits = Limits(max_client_frame=256, rate=5.0, burst=3, max_subscriptions=2)
    clock = Clock()
    s = ClientSession(reader, limits, clock=clock)
    s.open(CATALOG)
    closed = False
    for text, data in frames:
        if text == "tick":
            clock.now += data
            continue
        s.receive(CATALOG, text, data)
        for action in s.actions_to_do():
            assert not closed, f"{action} after the connection was closed"
            assert isinstance(action, (Send, Join, Authenticate, Leave, Close)), action
            if isinstance(action, Send):
                sent = orjson.loads(action.text)
                assert sent["type"] in {"error", "pong", "subscribed", "unsubscribed"}, sent
                if sent["type"] == "error":
                    assert sent["code"] in CODES, sent
            elif isinstance(action, Join):
                assert (action.feed, action.topic) in {("f", "a"), ("f", "b"), ("f", "staff")}
                s.joined(action.feed, action.topic, Replay(3, [], 4))
                for reply in s.actions_to_do():
                    assert isinstance(reply, Send), reply
                    assert orjson.loads(reply.text)["type"] in {"subscribed", "error"}
            elif isinstance(action, Close):
                closed = True
    if closed:
        s.receive(CATALOG, '{"type":"ping"}')
        assert s.actions_to_do() == []


# schema.validate

TOPIC = {
    "slug": "eur",
    "name": "EUR",
    "prefix": "EUR",
    "match": "prefix",
    "access": "public",
    "groups": [],
    "history": 10,  # not the defaults, so that a changed history can refuse last_values
    "history_age": 60,
    "last_values": 1,
}
FEED = {
    "slug": "prices",
    "name": "Prices",
    "endpoints": ["tcp://127.0.0.1:5556"],
    "topics": [TOPIC],
}


@st.composite
def near_documents(draw):
    """A valid document with some keys replaced by any JSON value, removed or added."""
    doc = {"feeds": [copy.deepcopy(FEED) for _ in range(draw(st.integers(0, 2)))]}
    for feed in doc["feeds"]:
        for key in draw(st.lists(st.sampled_from(FEED_KEYS), max_size=3)):
            if draw(st.booleans()):
                feed[key] = draw(json_values)
            else:
                feed.pop(key, None)
        for topic in feed.get("topics") if isinstance(feed.get("topics"), list) else []:
            if isinstance(topic, dict):
                for key in draw(st.lists(st.sampled_from(TOPIC_KEYS), max_size=2)):
                    topic[key] = draw(json_values)
        if draw(st.booleans()):
            feed[draw(st.text(max_size=6))] = draw(json_values)
    return doc


@settings(max_examples=500, deadline=None)
@given(st.one_of(json_values, near_documents(), st.fixed_dictionaries({"feeds": json_values})))
def test_validate_gives_a_document_or_a_schema_error(document):
    before = copy.deepcopy(document)
    try:
        checked = validate(document)
    except SchemaError as exc:
        assert str(exc)
        return
    assert set(checked) == {"feeds"}
    for feed in checked["feeds"]:
        assert set(feed) == set(FEED_KEYS)
        for topic in feed["topics"]:
            assert set(topic) == set(TOPIC_KEYS)
    assert validate(copy.deepcopy(checked)) == checked  # what it gives is valid as it is
    assert document == before  # the input is left alone


# Router.route

LIMIT = 2048
ztopics = st.sampled_from([b"", b"a", b"ab", b"b", b"a b", b"a:1", b"<IDS|MSG>", b"\xff"])
zframe = st.one_of(
    ztopics,
    st.binary(max_size=40),
    st.sampled_from([b"{}", b"[1, 2]", b'"x"', b"1", b"x" * 3000]),
    st.integers(0, 2**32 - 1).map(lambda n: struct.pack("<I", n)),
)


@st.composite
def routers(draw):
    framing = draw(st.sampled_from(["multipart", "prefix"]))
    frames = ("payload",)
    if framing == "multipart":
        frames = draw(
            st.sampled_from([("payload",), ("payload", "seq_le32"), ("payload", "binary")])
        )
    topics = (
        TopicConfig("a", "A", "a"),
        TopicConfig("ab", "AB", "ab", match=draw(st.sampled_from(["prefix", "exact"]))),
        TopicConfig("all", "All", ""),
    )
    feed = FeedConfig(
        "f",
        "F",
        ("tcp://127.0.0.1:1",),
        framing=framing,
        payload=draw(st.sampled_from(PAYLOADS)),
        frames=frames,
        separator=draw(st.sampled_from([" ", ":"])),
        max_message_size=draw(st.sampled_from([64, 1 << 20])),
        topics=topics,
    )
    seqs = st.dictionaries(st.sampled_from(["f/a", "f/ab", "f/all"]), st.integers(0, 9))
    return feed, {key: Numbering("e", seq) for key, seq in draw(seqs).items()}


@settings(max_examples=300, deadline=None)
@given(routers(), st.lists(st.lists(st.lists(zframe, max_size=4), max_size=8), max_size=4))
def test_any_zmq_batches_are_routed_numbered_or_counted(config, batches):
    feed, seqs = config
    router = Router(feed, LIMIT)
    router.configure(feed, seqs)
    latest: dict[str, int] = {}
    for batch in batches:
        routed = router.route(batch, 1.5)
        assert sum(routed.dropped.values()) <= len(batch)
        assert set(routed.examples) == set(routed.dropped)
        assert routed.upstream_lost >= 0
        for topic in routed.topics:
            key = topic.route.key
            expected = latest.get(key, seqs[key].seq if key in seqs else 0) + 1
            assert {frame.epoch for frame in topic.frames} == {topic.route.epoch}
            assert topic.first == expected, (key, topic.first, expected)
            latest[key] = topic.first + len(topic.envelopes) - 1
            seen = []
            for frame in topic.frames:
                assert len(frame.data) <= LIMIT or len(topic.frames) == 1
                obj = orjson.loads(frame.data)
                seen.extend(m["seq"] for m in obj.get("messages", [obj]))
            assert seen == list(range(topic.first, topic.first + len(topic.envelopes)))
            for envelope in topic.envelopes:
                assert orjson.loads(envelope)["topic"] == topic.route.topic
