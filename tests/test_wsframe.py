"""Server-to-client WebSocket frames (pure), checked against the websockets library's parser."""

from __future__ import annotations

from collections.abc import Generator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode
from websockets.streams import StreamReader

from zmqfeed.core import wsframe
from zmqfeed.core.protocol import Frame


def parse(wire: bytes) -> tuple[WsFrame, bytes]:
    """The frame websockets reads from ``wire`` as a client does (unmasked), and what is left."""
    reader = StreamReader()
    reader.feed_data(wire)
    reader.feed_eof()
    parser: Generator = WsFrame.parse(reader.read_exact, mask=False, max_size=None)
    try:
        next(parser)
    except StopIteration as done:
        return done.value, bytes(reader.buffer)
    raise AssertionError("the parser wanted more bytes than the frame has")


# Lengths around each boundary of the 7-, 16- and 64-bit length forms, and some in between.
EDGES = [0, 1, 124, 125, 126, 127, 65534, 65535, 65536, 65537, 1 << 20]


@given(
    st.one_of(
        st.text(max_size=300),
        st.sampled_from(EDGES).flatmap(lambda n: st.just("x" * n)),
        st.integers(0, 70000).map(lambda n: "é" * (n // 2)),
    )
)
def test_a_text_frame_parses_back_to_its_payload(text):
    payload = text.encode()
    frame, rest = parse(wsframe.text_frame(payload))
    assert frame.fin and frame.opcode == Opcode.TEXT
    assert not (frame.rsv1 or frame.rsv2 or frame.rsv3)
    assert frame.data == payload and rest == b""


@pytest.mark.parametrize(
    "length, size",
    [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10), (wsframe.MAX_PAYLOAD, 10)],
)
def test_the_header_takes_the_shortest_length_form(length, size):
    assert len(wsframe.header(length)) == size


@pytest.mark.parametrize("length", [-1, wsframe.MAX_PAYLOAD + 1])
def test_impossible_lengths_are_refused(length):
    with pytest.raises(ValueError):
        wsframe.header(length)


def test_a_frame_of_a_topic_builds_its_wire_bytes_once():
    frame = Frame("f", "t", 1, b'{"type":"message"}', (0,))
    wire = frame.wire
    assert wire is frame.wire and wire == b"\x81\x12" + frame.data
