"""The WebSocket protocol (docs/protocol.md) as pure functions: requests in, frames out."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zmqfeed.core.framing import Decoder, decode_topic
from zmqfeed.core.protocol import (
    ERROR_CODES,
    Frame,
    ProtocolError,
    Request,
    batch_frame,
    batch_runs,
    error,
    gap,
    message_head,
    message_tail,
    parse_request,
    reply,
)


def refused(frame: str | bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        parse_request(frame)
    assert info.value.code == "bad_request"
    assert info.value.detail == str(info.value)
    return info.value


# Requests that are accepted


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ({"type": "ping"}, Request("ping")),
        ({"type": "ping", "id": 1}, Request("ping", 1)),
        ({"type": "ping", "id": "abc", "extra": [1]}, Request("ping", "abc")),
        (
            {"type": "subscribe", "feed": "prices", "topic": "eur"},
            Request("subscribe", None, "prices", "eur"),
        ),
        (
            {"type": "subscribe", "feed": "prices", "topic": "eur", "since": 0, "id": 2},
            Request("subscribe", 2, "prices", "eur", since=0),
        ),
        (
            {"type": "subscribe", "feed": "prices", "topic": "eur", "since": 41},
            Request("subscribe", None, "prices", "eur", since=41),
        ),
        (
            {"type": "subscribe", "feed": "p", "topic": "t", "since": 2**64 - 1},
            Request("subscribe", None, "p", "t", since=2**64 - 1),
        ),
        (
            {"type": "subscribe", "feed": "p", "topic": "t", "since": None},
            Request("subscribe", None, "p", "t"),
        ),
        (
            {"type": "unsubscribe", "feed": "prices", "topic": "eur", "id": "u"},
            Request("unsubscribe", "u", "prices", "eur"),
        ),
        (
            # `since` means nothing to unsubscribe: ignored, never an error.
            {"type": "unsubscribe", "feed": "prices", "topic": "eur", "since": "x"},
            Request("unsubscribe", None, "prices", "eur"),
        ),
        (
            {"type": "publish", "feed": "chat", "topic": "room", "data": {"text": "hi"}},
            Request("publish", None, "chat", "room", data={"text": "hi"}),
        ),
        (
            {"type": "publish", "feed": "chat", "topic": "room", "data": None, "id": 9},
            Request("publish", 9, "chat", "room", data=None),
        ),
        (
            {"type": "ping", "id": None},
            Request("ping"),
        ),
    ],
)
def test_valid_requests_parse(frame: dict, expected: Request) -> None:
    assert parse_request(json.dumps(frame)) == expected
    assert parse_request(json.dumps(frame).encode()) == expected


@pytest.mark.parametrize("id", ["", "x" * 500, 0, -1, 2**63 - 1, 1.5, -0.25, "é😀"])
def test_string_and_number_ids_are_echoed_as_given(id: Any) -> None:
    assert parse_request(json.dumps({"type": "ping", "id": id})).id == id
    frame = json.loads(reply("pong", parse_request(json.dumps({"type": "ping", "id": id})).id))
    assert frame == {"type": "pong", "id": id}


# Requests that are refused


@pytest.mark.parametrize(
    "frame", ["", "{", "ping", "{'type': 'ping'}", '{"type": "ping"} x', "NaN", b"\xff\xfe"]
)
def test_invalid_json_is_a_bad_request(frame: str | bytes) -> None:
    assert refused(frame).id is None


@pytest.mark.parametrize("frame", ["[]", '["ping"]', '"ping"', "1", "null", "true"])
def test_frame_that_is_not_an_object_is_a_bad_request(frame: str) -> None:
    assert "object" in refused(frame).detail


@pytest.mark.parametrize("id", [True, False, [1], {"a": 1}])
def test_id_of_another_type_is_refused_and_not_echoed(id: Any) -> None:
    error = refused(json.dumps({"type": "ping", "id": id}))
    assert "'id'" in error.detail
    assert error.id is None


@pytest.mark.parametrize(
    ("frame", "named"),
    [
        ({"id": 1}, "'type'"),
        ({"type": None, "id": 1}, "'type'"),
        ({"type": 3, "id": 1}, "'type'"),
        ({"type": ["ping"], "id": 1}, "'type'"),
        ({"type": "PING", "id": 1}, "'PING'"),
        ({"type": "message", "id": 1}, "'message'"),
        ({"type": "", "id": 1}, "''"),
    ],
)
def test_missing_or_unknown_type_is_refused_with_the_id(frame: dict, named: str) -> None:
    error = refused(json.dumps(frame))
    assert named in error.detail
    assert error.id == 1


@pytest.mark.parametrize("kind", ["subscribe", "unsubscribe", "publish"])
@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"topic": "t"}, "'feed'"),
        ({"feed": "f"}, "'topic'"),
        ({"feed": "", "topic": "t"}, "'feed'"),
        ({"feed": "f", "topic": ""}, "'topic'"),
        ({"feed": 1, "topic": "t"}, "'feed'"),
        ({"feed": "f", "topic": ["t"]}, "'topic'"),
        ({"feed": None, "topic": "t"}, "'feed'"),
        ({"feed": "f" * 101, "topic": "t"}, "'feed'"),
        ({"feed": "f", "topic": "t" * 101}, "'topic'"),
    ],
)
def test_feed_and_topic_must_be_short_non_empty_strings(
    kind: str, fields: dict, named: str
) -> None:
    frame = {"type": kind, "id": "req-7", "data": 1, **fields}
    error = refused(json.dumps(frame))
    assert named in error.detail
    assert error.id == "req-7"


def test_names_up_to_100_characters_are_accepted() -> None:
    request = parse_request(json.dumps({"type": "subscribe", "feed": "f" * 100, "topic": "t"}))
    assert request.feed == "f" * 100


@pytest.mark.parametrize("since", [-1, 1.0, 0.5, "3", True, False, [1], {"seq": 1}, 2**64])
def test_since_must_be_a_non_negative_integer(since: Any) -> None:
    frame = {"type": "subscribe", "feed": "f", "topic": "t", "since": since, "id": 5}
    error = refused(json.dumps(frame))
    assert "'since'" in error.detail
    assert error.id == 5


def test_publish_needs_data() -> None:
    error = refused(json.dumps({"type": "publish", "feed": "f", "topic": "t", "id": 0}))
    assert "'data'" in error.detail
    assert error.id == 0


@settings(max_examples=200)
@given(st.text())
def test_any_text_is_a_request_or_a_protocol_error(text: str) -> None:
    try:
        request = parse_request(text)
    except ProtocolError as exc:
        assert exc.code == "bad_request"
    else:
        assert isinstance(request, Request)


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5)
    | st.sampled_from(["ping", "subscribe", "unsubscribe", "publish", "f", "t"])
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=5,
)
FRAMES = st.dictionaries(
    st.sampled_from(["type", "id", "feed", "topic", "since", "data"]) | st.text(max_size=3),
    JSON_VALUES,
    max_size=5,
)


@settings(max_examples=100)
@given(FRAMES)
def test_any_object_is_a_valid_request_or_a_protocol_error(frame: dict) -> None:
    try:
        request = parse_request(orjson.dumps(frame))
    except ProtocolError as exc:
        assert exc.code == "bad_request"
        assert exc.id in (None, frame.get("id"))
    else:
        assert request.type == frame["type"]
        assert request.id == frame.get("id")
        if request.type != "ping":
            assert (request.feed, request.topic) == (frame["feed"], frame["topic"])
        if request.type == "publish":
            assert request.data == frame["data"]


# Frames out


def test_reply_carries_its_fields_and_the_id() -> None:
    assert json.loads(reply("pong")) == {"type": "pong"}
    assert json.loads(reply("pong", 0)) == {"type": "pong", "id": 0}
    assert json.loads(reply("pong", "")) == {"type": "pong", "id": ""}
    assert json.loads(reply("subscribed", "s1", feed="prices", topic="eur", seq=42)) == {
        "type": "subscribed",
        "id": "s1",
        "feed": "prices",
        "topic": "eur",
        "seq": 42,
    }
    assert json.loads(reply("unsubscribed", feed="prices", topic="eur")) == {
        "type": "unsubscribed",
        "feed": "prices",
        "topic": "eur",
    }


@pytest.mark.parametrize("code", ERROR_CODES)
def test_error_frames(code: str) -> None:
    assert json.loads(error(code, "what went wrong")) == {
        "type": "error",
        "code": code,
        "detail": "what went wrong",
    }
    assert json.loads(error(code, 'quote "x"', 3, feed="f", topic="t")) == {
        "type": "error",
        "code": code,
        "detail": 'quote "x"',
        "id": 3,
        "feed": "f",
        "topic": "t",
    }


def test_error_codes_are_the_documented_ones() -> None:
    assert set(ERROR_CODES) == {
        "bad_request",
        "not_found",
        "forbidden",
        "too_large",
        "rate_limited",
        "too_many_subscriptions",
        "idle",
        "unavailable",
    }


def test_a_protocol_error_becomes_an_error_frame_with_its_id() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_request('{"type": "subscribe", "id": "a1", "feed": "prices"}')
    exc = info.value
    assert json.loads(error(exc.code, exc.detail, exc.id)) == {
        "type": "error",
        "code": "bad_request",
        "detail": exc.detail,
        "id": "a1",
    }


@pytest.mark.parametrize("reason", ["history", "slow_consumer", "lost"])
def test_gap_frame(reason: str) -> None:
    assert json.loads(gap("prices", "eur", 43, 97, reason)) == {
        "type": "gap",
        "feed": "prices",
        "topic": "eur",
        "from_seq": 43,
        "to_seq": 97,
        "reason": reason,
    }


def make_envelope(feed: str, topic: str, seq: int, ztopic: bytes, ts: float, fragment: bytes):
    """As the subscriber assembles it: head once per topic, tail once per message."""
    tail = message_tail(orjson.dumps(decode_topic(ztopic)), b"%.3f" % ts, fragment)
    return message_head(feed, topic) + b"%d" % seq + tail


def test_message_envelope_is_the_documented_one() -> None:
    _, fragment, _ = Decoder("multipart", "json", 1024)([b"EUR.USD", b'{"bid": 1.05}'])
    envelope = make_envelope("prices", "eur", 42, b"EUR.USD", 1764230000.123, fragment)
    assert orjson.loads(envelope) == {
        "type": "message",
        "feed": "prices",
        "topic": "eur",
        "zmq_topic": "EUR.USD",
        "seq": 42,
        "ts": 1764230000.123,
        "data": {"bid": 1.05},
    }


@given(st.binary(max_size=40), st.floats(0, 4e9), st.integers(1, 5))
def test_a_frame_tells_when_its_first_message_arrived(ztopic: bytes, ts: float, count: int):
    """The fan-out's lag sample: the first envelope's ts, whatever the ZeroMQ topic holds."""
    envelopes = [make_envelope("f", "t", i, ztopic, ts + i, b'{"ts":1}') for i in range(count)]
    assert Frame.of("f", "t", 0, envelopes).arrived() == float(b"%.3f" % ts)
    assert Frame.of("f", "t", 0, [b'{"type":"message"}']).arrived() is None


def test_message_envelopes_for_text_and_binary_feeds() -> None:
    _, text, _ = Decoder("prefix", "text", 1024)([b'log\xff line "one"'])
    obj = orjson.loads(make_envelope("logs", "all", 1, b"log\xff", 1.5, text))
    assert obj["data"] == 'line "one"'
    assert obj["zmq_topic"] == "log\\xff"
    assert "encoding" not in obj

    _, binary, _ = Decoder("raw", "binary", 1024)([b"\x00\x01"])
    obj = orjson.loads(make_envelope("bin", "all", 7, b"", 2.0, binary))
    assert obj == {
        "type": "message",
        "feed": "bin",
        "topic": "all",
        "zmq_topic": "",
        "seq": 7,
        "ts": 2.0,
        "data": "AAE=",
        "encoding": "base64",
    }


@given(
    st.text(min_size=1, max_size=20),
    st.text(min_size=1, max_size=20),
    st.integers(min_value=1, max_value=2**63),
    st.binary(max_size=20),
    st.text(max_size=20),
)
def test_envelope_parses_for_any_names(feed: str, topic: str, seq: int, ztopic, data) -> None:
    fragment = orjson.dumps(data)
    obj = orjson.loads(make_envelope(feed, topic, seq, ztopic, 1.25, fragment))
    assert obj == {
        "type": "message",
        "feed": feed,
        "topic": topic,
        "zmq_topic": decode_topic(ztopic),
        "seq": seq,
        "ts": 1.25,
        "data": data,
    }


def test_one_envelope_is_sent_as_itself() -> None:
    envelope = make_envelope("prices", "eur", 1, b"EUR", 1.0, b"1")
    assert batch_frame([envelope]) == envelope


def test_several_envelopes_are_one_batch_in_order() -> None:
    envelopes = [make_envelope("prices", "eur", seq, b"EUR", 1.0, b"%d" % seq) for seq in (5, 6, 7)]
    obj = orjson.loads(batch_frame(envelopes))
    assert obj == {"type": "batch", "messages": [orjson.loads(e) for e in envelopes]}
    assert [m["seq"] for m in obj["messages"]] == [5, 6, 7]
    assert [m["data"] for m in obj["messages"]] == [5, 6, 7]


@given(st.lists(st.integers(min_value=0, max_value=1000), min_size=2, max_size=30))
def test_batches_of_any_size_parse(values: list[int]) -> None:
    envelopes = [make_envelope("f", "t", i + 1, b"z", 0.5, b"%d" % v) for i, v in enumerate(values)]
    obj = orjson.loads(batch_frame(envelopes))
    assert obj["type"] == "batch"
    assert [m["data"] for m in obj["messages"]] == values
    assert [m["seq"] for m in obj["messages"]] == list(range(1, len(values) + 1))


@given(st.lists(st.binary(min_size=1, max_size=50), max_size=40), st.integers(1, 300))
def test_batch_runs_keep_every_envelope_in_order_within_the_limit(envelopes, limit) -> None:
    runs = batch_runs(envelopes, limit)
    assert [e for run in runs for e in run] == envelopes
    assert all(runs) or runs == [[]]
    for i, run in enumerate(runs):
        assert len(batch_frame(run) if run else b"") <= limit or len(run) == 1
        if i + 1 < len(runs):  # a run ends only where the next envelope would not fit
            assert len(batch_frame([*run, runs[i + 1][0]])) > limit


def test_batch_runs_leave_a_batch_within_the_limit_whole() -> None:
    envelopes = [b"x" * 10] * 5
    assert batch_runs(envelopes, len(batch_frame(envelopes))) == [envelopes]
    assert batch_runs(envelopes, len(batch_frame(envelopes)) - 1) == [envelopes[:4], envelopes[4:]]
