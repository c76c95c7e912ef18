"""ZeroMQ frames to (topic, data fragment): split per framing, decode per payload, drop with a kind.

The data fragment is what goes after ``"data":`` in an envelope, so every accepted message is
checked the way a client sees it: spliced into an object and parsed.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zmqfeed.core.framing import Decoder, Dropped, decode_topic, split_frames

BIG = 1024 * 1024


def envelope(fragment: bytes) -> dict[str, Any]:
    """The object a client parses, built around the fragment as the subscriber splices it."""
    return orjson.loads(b'{"data":' + fragment + b"}")


def dropped_kind(decoder: Decoder, frames: list[bytes]) -> str:
    with pytest.raises(Dropped) as info:
        decoder(frames)
    return info.value.kind


# split_frames


@pytest.mark.parametrize(
    ("framing", "frames", "expected"),
    [
        ("multipart", [b"EUR.USD", b'{"bid":1}'], (b"EUR.USD", b'{"bid":1}')),
        ("multipart", [b"", b"x"], (b"", b"x")),
        ("multipart", [b"t", b""], (b"t", b"")),
        ("prefix", [b"EUR.USD 1.05"], (b"EUR.USD", b"1.05")),
        ("prefix", [b"EUR a b  c"], (b"EUR", b"a b  c")),
        ("prefix", [b" payload"], (b"", b"payload")),
        ("prefix", [b"EUR.USD"], (b"EUR.USD", b"")),
        ("prefix", [b""], (b"", b"")),
        ("raw", [b"EUR.USD 1.05"], (b"", b"EUR.USD 1.05")),
        ("raw", [b""], (b"", b"")),
    ],
)
def test_split_frames_gives_topic_and_payload(framing, frames, expected) -> None:
    assert split_frames(framing, frames) == expected


def test_split_frames_accepts_buffers_as_well_as_bytes() -> None:
    topic, payload = split_frames("multipart", [memoryview(b"t"), bytearray(b"p")])
    assert (topic, payload) == (b"t", b"p")
    assert type(topic) is bytes and type(payload) is bytes


@pytest.mark.parametrize(
    ("framing", "count"),
    [
        ("multipart", 0),
        ("multipart", 1),
        ("multipart", 3),
        ("prefix", 0),
        ("prefix", 2),
        ("raw", 0),
        ("raw", 2),
    ],
)
def test_wrong_frame_count_is_dropped_as_bad_frames(framing: str, count: int) -> None:
    with pytest.raises(Dropped) as info:
        split_frames(framing, [b"x"] * count)
    assert info.value.kind == "bad_frames"
    assert str(count) in str(info.value)


# Decoder: construction and limits


@pytest.mark.parametrize(("framing", "payload"), [("pubsub", "json"), ("multipart", "xml")])
def test_decoder_refuses_unknown_framing_or_payload(framing: str, payload: str) -> None:
    with pytest.raises(ValueError, match="unknown"):
        Decoder(framing, payload, BIG)


def test_size_counts_every_frame_and_the_limit_itself_is_allowed() -> None:
    decoder = Decoder("multipart", "text", 10)
    assert decoder([b"abcd", b"efghij"]) == (b"abcd", b'"efghij"', None)  # 4 + 6 = 10
    assert dropped_kind(decoder, [b"abcde", b"efghij"]) == "too_large"  # 5 + 6 = 11
    # Neither frame alone is over the limit: the sum is what counts.
    assert dropped_kind(decoder, [b"abcdefgh", b"abc"]) == "too_large"


def test_oversize_message_is_too_large_whatever_its_frames() -> None:
    decoder = Decoder("multipart", "binary", 4)
    assert dropped_kind(decoder, [b"abc", b"def", b"ghi"]) == "too_large"
    assert dropped_kind(Decoder("prefix", "binary", 4), [b"abc", b"def"]) == "too_large"


@pytest.mark.parametrize("framing", ["prefix", "raw"])
def test_one_frame_framings_drop_other_frame_counts(framing: str) -> None:
    assert dropped_kind(Decoder(framing, "text", BIG), [b"a", b"b", b"c"]) == "bad_frames"
    assert dropped_kind(Decoder(framing, "text", BIG), []) == "bad_frames"
    assert dropped_kind(Decoder("multipart", "text", BIG), []) == "bad_frames"


# Decoder: text


@pytest.mark.parametrize("text", ["", "hello", 'quote " and \\ backslash', "tab\tnl\n", "€ 😀"])
def test_text_payload_arrives_as_the_same_string(text: str) -> None:
    topic, fragment, _ = Decoder("multipart", "text", BIG)([b"log", text.encode()])
    assert topic == b"log"
    assert envelope(fragment) == {"data": text}


def test_text_payload_that_is_not_utf8_is_dropped() -> None:
    decoder = Decoder("prefix", "text", BIG)
    assert dropped_kind(decoder, [b"log caf\xe9"]) == "invalid_utf8"
    assert dropped_kind(decoder, [b"log \xed\xa0\x80"]) == "invalid_utf8"  # encoded surrogate


@given(st.text())
def test_any_text_round_trips(text: str) -> None:
    _, fragment, _ = Decoder("raw", "text", 1 << 30)([text.encode()])
    assert envelope(fragment) == {"data": text}


# Decoder: json


@pytest.mark.parametrize(
    "payload",
    [
        b'{"bid": 1.05, "ask": 1.06}',
        b"[1, 2, 3]",
        b'"just a string"',
        b"42",
        b"-0.5e-3",
        b"true",
        b"null",
        b'  {"pretty":\n  [1,\n   2]}\n',
        b'{"nested": {"a": [{"b": null}]}, "u": "\\u00e9\\ud83d\\ude00"}',
    ],
)
def test_json_payload_arrives_as_the_same_value(payload: bytes) -> None:
    _, fragment, _ = Decoder("multipart", "json", BIG)([b"t", payload])
    assert envelope(fragment) == {"data": json.loads(payload)}


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"   ",
        b"{",
        b"[1,]",
        b"{'single': 1}",
        b"1 2",
        b'{"a": 1} x',
        b"undefined",
        b'"unterminated',
        b"\xef\xbb\xbf{}",  # a byte order mark
        b'"caf\xe9"',  # not UTF-8
        b'"tab\tinside"',  # a raw control character in a string
        b"NaN",
        b"-Infinity",
        b"Infinity",
        b'{"x": NaN}',
        b"[Infinity]",
    ],
)
def test_payload_that_is_not_json_is_dropped(payload: bytes) -> None:
    assert dropped_kind(Decoder("multipart", "json", BIG), [b"t", payload]) == "invalid_json"


@pytest.mark.parametrize("number", [2**64, -(2**63) - 1, 10**40, -(10**40)])
def test_integers_beyond_64_bits_are_carried_with_every_digit(number: int) -> None:
    payload = b'{"n": %d}' % number
    _, fragment, _ = Decoder("multipart", "json", BIG)([b"t", payload])
    assert fragment == payload
    # A parser with arbitrary integers (the stdlib's, a browser's BigInt-aware one) sees them.
    assert json.loads(b'{"data":' + fragment + b"}") == {"data": {"n": number}}
    # orjson (what the consumer uses to split batches) reads the envelope too.
    assert envelope(fragment)["data"]["n"] == pytest.approx(number)


def test_deeply_nested_json_is_dropped_not_raised() -> None:
    """A publisher must not be able to crash the feed reader (and lose its batch)."""
    deep = b"[" * 5000 + b"]" * 5000
    assert dropped_kind(Decoder("multipart", "json", BIG), [b"t", deep]) == "invalid_json"


@pytest.mark.parametrize("payload", [b"1e400", b'{"x": -1e999}', b'"\\ud800"', b'["\\udc00x"]'])
def test_every_accepted_json_payload_parses_in_an_envelope(payload: bytes) -> None:
    """Overflowing numbers and lone surrogates: either dropped, or readable by clients."""
    decoder = Decoder("multipart", "json", BIG)
    try:
        _, fragment, _ = decoder([b"t", payload])
    except Dropped as exc:
        assert exc.kind == "invalid_json"
    else:
        envelope(fragment)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=60)
@given(JSON_VALUES)
def test_any_json_value_round_trips(value: Any) -> None:
    _, fragment, _ = Decoder("multipart", "json", 1 << 30)([b"t", orjson.dumps(value)])
    assert envelope(fragment) == {"data": value}


@settings(max_examples=60)
@given(JSON_VALUES)
def test_any_json_value_round_trips_from_stdlib_text(value: Any) -> None:
    """Publishers write JSON with other libraries: spaces, escapes, ``\\uXXXX`` all pass."""
    payload = json.dumps(value, indent=1, ensure_ascii=True).encode()
    _, fragment, _ = Decoder("prefix", "json", 1 << 30)([b"t " + payload])
    assert envelope(fragment) == {"data": value}


# Decoder: binary


@pytest.mark.parametrize("payload", [b"", b"\x00\xff\xfe", b"plain text", bytes(range(256))])
def test_binary_payload_arrives_as_base64(payload: bytes) -> None:
    _, fragment, _ = Decoder("multipart", "binary", BIG)([b"t", payload])
    obj = envelope(fragment)
    assert obj["encoding"] == "base64"
    assert base64.b64decode(obj["data"], validate=True) == payload
    assert set(obj) == {"data", "encoding"}


@given(st.binary())
def test_any_bytes_round_trip(payload: bytes) -> None:
    _, fragment, _ = Decoder("raw", "binary", 1 << 30)([payload])
    obj = envelope(fragment)
    assert obj["encoding"] == "base64"
    assert base64.b64decode(obj["data"], validate=True) == payload


# Topics as text


@pytest.mark.parametrize(
    ("topic", "text"),
    [
        (b"", ""),
        (b"EUR.USD", "EUR.USD"),
        (b"caf\xc3\xa9", "café"),
        (b"\xff", "\\xff"),
        (b"a\xe9b", "a\\xe9b"),
        (b"\xed\xa0\x80", "\\xed\\xa0\\x80"),  # UTF-8 of a surrogate is not UTF-8
        (b"\xc3", "\\xc3"),  # truncated sequence
        (b"ok\x00", "ok\x00"),
    ],
)
def test_decode_topic_escapes_bytes_that_are_not_utf8(topic: bytes, text: str) -> None:
    assert decode_topic(topic) == text


@given(st.binary())
def test_any_topic_decodes_to_json_text(topic: bytes) -> None:
    text = decode_topic(topic)
    assert orjson.loads(orjson.dumps(text)) == text  # no surrogates: orjson can encode it
    try:
        assert text == topic.decode("utf-8")
    except UnicodeDecodeError:
        assert "\\x" in text


@given(st.text())
def test_utf8_topics_decode_unchanged(text: str) -> None:
    assert decode_topic(text.encode()) == text
