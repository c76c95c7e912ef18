"""ZeroMQ frames to (topic, data) for one feed: the first pure step of a message's path.

The data comes out as the JSON text that goes after ``"data":`` in the envelope, so that
a JSON payload is validated once and spliced in as it came, never parsed and re-dumped.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence

import orjson

# Re-exported from the vocabulary, so that `from zmqfeed.core.framing import FRAMINGS` works.
from .vocabulary import FRAMINGS as FRAMINGS
from .vocabulary import PAYLOADS as PAYLOADS


class Dropped(ValueError):
    """A message the feed cannot carry; ``kind`` names the reason for counting and logging."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


def _json_fragment(payload: bytes) -> bytes:
    try:
        orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise Dropped("invalid_json", f"payload is not JSON: {exc}") from None
    return payload


def _text_fragment(payload: bytes) -> bytes:
    try:
        return orjson.dumps(payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise Dropped("invalid_utf8", f"payload is not UTF-8: {exc}") from None


def _binary_fragment(payload: bytes) -> bytes:
    return b'"' + base64.b64encode(payload) + b'","encoding":"base64"'


FRAGMENTS: dict[str, Callable[[bytes], bytes]] = {
    "text": _text_fragment,
    "json": _json_fragment,
    "binary": _binary_fragment,
}


def split_frames(framing: str, frames: Sequence[bytes]) -> tuple[bytes, bytes]:
    """(ZeroMQ topic, payload) of one message, or Dropped("bad_frames")."""
    if framing == "multipart":
        if len(frames) != 2:
            raise Dropped("bad_frames", f"multipart framing needs 2 frames, got {len(frames)}")
        return bytes(frames[0]), bytes(frames[1])
    if len(frames) != 1:
        raise Dropped("bad_frames", f"{framing} framing needs 1 frame, got {len(frames)}")
    frame = bytes(frames[0])
    if framing == "raw":
        return b"", frame
    topic, _, payload = frame.partition(b" ")
    return topic, payload


class Decoder:
    """Decodes one feed's messages; raises Dropped for what the feed cannot carry."""

    __slots__ = ("fragment", "framing", "max_size")

    def __init__(self, framing: str, payload: str, max_size: int) -> None:
        if framing not in FRAMINGS:
            raise ValueError(f"unknown framing {framing!r}")
        if payload not in PAYLOADS:
            raise ValueError(f"unknown payload {payload!r}")
        self.framing = framing
        self.fragment = FRAGMENTS[payload]
        self.max_size = max_size

    def __call__(self, frames: Sequence[bytes]) -> tuple[bytes, bytes]:
        if len(frames) == 2 and self.framing == "multipart":  # the common case, inlined
            topic, payload = frames
            if len(topic) + len(payload) <= self.max_size:
                return topic, self.fragment(payload)
        size = sum(len(f) for f in frames)
        if size > self.max_size:
            raise Dropped("too_large", f"{size} bytes is over the feed's limit of {self.max_size}")
        topic, payload = split_frames(self.framing, frames)
        return topic, self.fragment(payload)


def decode_topic(topic: bytes) -> str:
    """A ZeroMQ topic as text: UTF-8, with backslash escapes for bytes that are not."""
    return topic.decode("utf-8", "backslashreplace")
