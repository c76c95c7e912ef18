"""A publish's frames (sans I/O): what the encoder writes, the feed's own decoder reads back."""

from __future__ import annotations

import base64

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zmqfeed.core.encoding import Encoder, Unencodable
from zmqfeed.core.framing import Decoder
from zmqfeed.core.vocabulary import COMPRESSIONS

LIMIT = 1 << 20

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)

# Per payload kind: data a client may send, and what `data` then reads back as.
KINDS = {
    "json": (json_values, lambda data: data),
    "msgpack": (json_values, lambda data: data),
    "text": (st.text(), lambda data: data),
    "binary": (
        st.binary().map(lambda raw: base64.b64encode(raw).decode()),
        lambda data: data,
    ),
    "hex": (st.binary().map(bytes.hex), lambda data: data),
}


def read_back(framing, payload, compression, separator, frames):
    decoder = Decoder(framing, payload, LIMIT, separator=separator, compression=compression)
    topic, fragment, _ = decoder(frames)
    return topic, orjson.loads(b'{"data":' + fragment + b"}")["data"]


@settings(max_examples=300, deadline=None)
@given(
    framing=st.sampled_from(["multipart", "prefix", "raw"]),
    payload=st.sampled_from(sorted(KINDS)),
    compression=st.sampled_from(COMPRESSIONS),
    separator=st.sampled_from([b" ", b":", b"||"]),
    topic=st.binary(max_size=12),
    data=st.data(),
)
def test_what_is_published_reads_back_through_the_feeds_decoder(
    framing, payload, compression, separator, topic, data
):
    values, expected = KINDS[payload]
    value = data.draw(values)
    if framing == "raw":
        topic = b""
    if framing == "prefix":
        topic = topic.replace(separator, b"")
    encoder = Encoder(framing, payload, LIMIT, separator=separator, compression=compression)
    try:
        frames = encoder(topic, value)
    except Unencodable as exc:
        # Only what JSON or msgpack cannot hold here is refused, and said so.
        assert exc.code == "bad_request" and payload in ("json", "msgpack"), exc
        return
    assert read_back(framing, payload, compression, separator, frames) == (topic, expected(value))


@pytest.mark.parametrize(
    ("payload", "data", "code"),
    [
        ("text", 42, "bad_request"),
        ("binary", "not base64!", "bad_request"),
        ("binary", 1, "bad_request"),
        ("hex", "abc", "bad_request"),
        ("json", 2**70, "bad_request"),
        ("msgpack", 2**70, "bad_request"),
        ("text", "x" * 101, "too_large"),
    ],
)
def test_data_a_feed_cannot_carry_is_refused_with_its_error_code(payload, data, code):
    with pytest.raises(Unencodable) as refused:
        Encoder("multipart", payload, 100)(b"t", data)
    assert refused.value.code == code and refused.value.detail


def test_frames_follow_the_feeds_framing():
    assert Encoder("multipart", "json", LIMIT)(b"EUR.USD", {"bid": 1}) == [b"EUR.USD", b'{"bid":1}']
    assert Encoder("prefix", "text", LIMIT, separator=b"|")(b"log", "a|b") == [b"log|a|b"]
    assert Encoder("raw", "text", LIMIT)(b"", "hi") == [b"hi"]


def test_what_no_decoder_could_read_back_is_refused():
    with pytest.raises(Unencodable, match="separator"):
        Encoder("prefix", "text", LIMIT)(b"a b", "x")
    with pytest.raises(Unencodable, match="no topic"):
        Encoder("raw", "text", LIMIT)(b"t", "x")
    with pytest.raises(Unencodable) as jupyter:
        Encoder("jupyter", "json", LIMIT)(b"", {})
    assert jupyter.value.code == "forbidden"


def test_a_compressed_payload_is_bounded_before_compression_as_its_reader_inflates_it():
    # 1,000 repeated bytes compress to a few dozen: still over a 500-byte feed's limit.
    with pytest.raises(Unencodable) as refused:
        Encoder("multipart", "text", 500, compression="zlib")(b"t", "a" * 1000)
    assert refused.value.code == "too_large"
