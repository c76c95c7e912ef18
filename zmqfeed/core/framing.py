"""ZeroMQ frames to (topic, data) for one feed: the first pure step of a message's path.

The data comes out as the JSON text that goes after ``"data":`` in the envelope (with any
``encoding``, ``parts`` and ``upstream_seq`` after it), so that a JSON payload is validated
once and spliced in as it came, never parsed and re-dumped. Each feed's decoder is put
together once, from its framing, payload, frames, separator and compression, so that a
feed pays only for what it uses: the common two-frame JSON message takes one branch.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import msgpack
import orjson

from .vocabulary import (
    COMPRESSION_GZIP,
    COMPRESSION_NONE,
    COMPRESSION_ZLIB,
    FRAME_PAYLOAD,
    FRAMING_JUPYTER,
    FRAMING_MULTIPART,
    FRAMING_PREFIX,
    FRAMING_RAW,
    PAYLOAD_BINARY,
    PAYLOAD_HEX,
    PAYLOAD_JSON,
    PAYLOAD_MSGPACK,
    PAYLOAD_TEXT,
    SEQ_KINDS,
)

# Re-exported from the vocabulary, so that `from zmqfeed.core.framing import FRAMINGS` works.
from .vocabulary import COMPRESSIONS as COMPRESSIONS
from .vocabulary import FRAME_KINDS as FRAME_KINDS
from .vocabulary import FRAMINGS as FRAMINGS
from .vocabulary import PAYLOADS as PAYLOADS

JUPYTER_DELIMITER = b"<IDS|MSG>"
JUPYTER_PARTS = ("header", "parent_header", "metadata", "content")


class Dropped(ValueError):
    """A message the feed cannot carry; ``kind`` names the reason for counting and logging."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


# Values: one frame as a JSON value (the text that stands for it in the envelope).


def _json_value(payload: bytes) -> bytes:
    try:
        orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise Dropped("invalid_json", f"payload is not JSON: {exc}") from None
    return payload


def _text_value(payload: bytes) -> bytes:
    try:
        return orjson.dumps(payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise Dropped("invalid_utf8", f"payload is not UTF-8: {exc}") from None


def _base64_value(payload: bytes) -> bytes:
    return b'"' + base64.b64encode(payload) + b'"'


def _hex_value(payload: bytes) -> bytes:
    return b'"' + payload.hex().encode() + b'"'


def _msgpack_default(value: Any) -> Any:
    """What JSON has no word for: bytes as base64, extension types as code and base64."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, msgpack.ExtType):
        return {"ext": value.code, "data": base64.b64encode(value.data).decode()}
    raise TypeError(f"{type(value).__name__} has no JSON form")


def _msgpack_value(payload: bytes) -> bytes:
    try:
        value = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several kinds: any of them is a bad message
        raise Dropped("invalid_msgpack", f"payload is not msgpack: {exc!r}") from None
    try:
        return orjson.dumps(value, default=_msgpack_default, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError as exc:
        raise Dropped("invalid_msgpack", f"msgpack value has no JSON form: {exc}") from None


VALUES: dict[str, Callable[[bytes], bytes]] = {
    PAYLOAD_TEXT: _text_value,
    PAYLOAD_JSON: _json_value,
    PAYLOAD_BINARY: _base64_value,
    PAYLOAD_HEX: _hex_value,
    PAYLOAD_MSGPACK: _msgpack_value,
}


# Data fragments: a payload as `data`, and what says how to read it.


def _binary_fragment(payload: bytes) -> bytes:
    return _base64_value(payload) + b',"encoding":"base64"'


def _hex_fragment(payload: bytes) -> bytes:
    return _hex_value(payload) + b',"encoding":"hex"'


FRAGMENTS: dict[str, Callable[[bytes], bytes]] = {
    **VALUES,
    PAYLOAD_BINARY: _binary_fragment,
    PAYLOAD_HEX: _hex_fragment,
}

_SEQ_FORMATS = {
    "seq_le32": (4, "little"),
    "seq_be32": (4, "big"),
    "seq_le64": (8, "little"),
    "seq_be64": (8, "big"),
}


def _sequence(kind: str, frame: bytes) -> int:
    size, order = _SEQ_FORMATS[kind]
    if len(frame) != size:
        raise Dropped("bad_frames", f"a {kind} sequence number is {size} bytes, not {len(frame)}")
    return int.from_bytes(frame, order)  # type: ignore[arg-type]


def inflate(data: bytes, compression: str, limit: int) -> bytes:
    """``data`` decompressed, reading at most ``limit`` + 1 bytes of output (a bomb stops there)."""
    wbits = 16 + zlib.MAX_WBITS if compression == COMPRESSION_GZIP else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise Dropped("bad_compression", f"not {compression} data: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise Dropped("too_large", f"decompressed, it is over the feed's limit of {limit} bytes")
    if not inflater.eof:
        raise Dropped("bad_compression", f"the {compression} stream is cut short")
    return out


def split_frames(
    framing: str, frames: Sequence[bytes], separator: bytes = b" "
) -> tuple[bytes, bytes]:
    """(ZeroMQ topic, payload) of a message of one of the two-part framings, or Dropped."""
    if framing == FRAMING_MULTIPART:
        if len(frames) != 2:
            raise Dropped("bad_frames", f"expected 2 frames, got {len(frames)}")
        return bytes(frames[0]), bytes(frames[1])
    if len(frames) != 1:
        raise Dropped("bad_frames", f"{framing} framing needs 1 frame, got {len(frames)}")
    frame = bytes(frames[0])
    if framing == FRAMING_RAW:
        return b"", frame
    topic, _, payload = frame.partition(separator)
    return topic, payload


def signer(key: bytes, scheme: str) -> Callable[..., Any]:
    """An HMAC maker for a Jupyter ``signature_scheme`` such as ``hmac-sha256``."""
    kind, _, digest = scheme.partition("-")
    if kind != "hmac" or digest not in hashlib.algorithms_available:
        raise ValueError(f"unsupported Jupyter signature scheme {scheme!r}")
    return lambda: hmac.new(key, digestmod=digest)


Decoded = tuple[bytes, bytes, int | None]  # (ZeroMQ topic, data fragment, upstream seq)


class Decoder:
    """Decodes one feed's messages; raises Dropped for what the feed cannot carry.

    Returns (topic, fragment, upstream_seq): the fragment is what follows ``"data":`` in the
    envelope; upstream_seq the publisher's own number when a frame carries one, else None.
    """

    __slots__ = (
        "_decode",
        "_fast",
        "compression",
        "data",
        "framing",
        "kinds",
        "max_size",
        "payload_value",
        "separator",
        "sign",
    )

    def __init__(
        self,
        framing: str,
        payload: str,
        max_size: int,
        *,
        frames: Sequence[str] = (FRAME_PAYLOAD,),
        separator: bytes = b" ",
        compression: str = COMPRESSION_NONE,
        key: bytes = b"",
        signature_scheme: str = "hmac-sha256",
    ) -> None:
        if framing not in FRAMINGS:
            raise ValueError(f"unknown framing {framing!r}")
        if payload not in PAYLOADS:
            raise ValueError(f"unknown payload {payload!r}")
        if compression not in (COMPRESSION_NONE, COMPRESSION_ZLIB, COMPRESSION_GZIP):
            raise ValueError(f"unknown compression {compression!r}")
        kinds = tuple(frames) or (FRAME_PAYLOAD,)
        if kinds[0] in SEQ_KINDS or any(k not in FRAME_KINDS for k in kinds):
            raise ValueError(f"bad frames list {list(frames)!r}")
        if not separator:
            raise ValueError("the separator must not be empty")
        self.framing = framing
        self.max_size = max_size
        self.separator = separator
        self.compression = compression
        self.kinds = kinds
        first = payload if kinds[0] == FRAME_PAYLOAD else kinds[0]
        self.data = FRAGMENTS[first]
        self.payload_value = VALUES[payload]  # a later frame named "payload", as a part
        self.sign = signer(key, signature_scheme) if key else None
        # The common case: two frames, nothing to undo; anything else takes _decode.
        self._fast = framing == FRAMING_MULTIPART and compression == COMPRESSION_NONE
        self._decode: Callable[[Sequence[bytes]], Decoded] = {
            FRAMING_MULTIPART: self._multipart,
            FRAMING_PREFIX: self._prefix,
            FRAMING_RAW: self._raw,
            FRAMING_JUPYTER: self._jupyter,
        }[framing]

    def __call__(self, frames: Sequence[bytes]) -> Decoded:
        if self._fast and len(frames) == 2:  # the common case, inlined
            topic, payload = frames
            if len(topic) + len(payload) <= self.max_size:
                return topic, self.data(payload), None
        size = sum(len(f) for f in frames)
        if size > self.max_size:
            raise Dropped("too_large", f"{size} bytes is over the feed's limit of {self.max_size}")
        return self._decode(frames)

    def _payload(self, payload: bytes) -> bytes:
        if self.compression != COMPRESSION_NONE:
            payload = inflate(payload, self.compression, self.max_size)
        return self.data(payload)

    def _multipart(self, frames: Sequence[bytes]) -> Decoded:
        if not frames:
            raise Dropped("bad_frames", "a message with no frames")
        topic = bytes(frames[0])
        if len(frames) == 1:
            return topic, b"null", None  # a topic-only message
        fragment = self._payload(bytes(frames[1]))
        if len(frames) == 2:
            return topic, fragment, None
        kinds, parts, seq = self.kinds, [], None
        for index in range(2, len(frames)):
            frame = bytes(frames[index])
            kind = kinds[index - 1] if index - 1 < len(kinds) else PAYLOAD_BINARY
            if kind in _SEQ_FORMATS:
                seq = _sequence(kind, frame)
            elif kind == FRAME_PAYLOAD:
                parts.append(self.payload_value(frame))
            else:
                parts.append(VALUES[kind](frame))
        if parts:
            fragment += b',"parts":[' + b",".join(parts) + b"]"
        if seq is not None:
            fragment += b',"upstream_seq":%d' % seq
        return topic, fragment, seq

    def _prefix(self, frames: Sequence[bytes]) -> Decoded:
        topic, payload = split_frames(FRAMING_PREFIX, frames, self.separator)
        return topic, self._payload(payload), None

    def _raw(self, frames: Sequence[bytes]) -> Decoded:
        _, payload = split_frames(FRAMING_RAW, frames)
        return b"", self._payload(payload), None

    def _jupyter(self, frames: Sequence[bytes]) -> Decoded:
        """identities…, <IDS|MSG>, signature, header, parent_header, metadata, content, buffers…"""
        try:
            at = list(frames).index(JUPYTER_DELIMITER)
        except ValueError:
            raise Dropped("bad_frames", "no <IDS|MSG> delimiter frame") from None
        if len(frames) < at + 6:
            raise Dropped("bad_frames", f"{len(frames) - at - 1} frames after <IDS|MSG>, not 5+")
        signature = bytes(frames[at + 1])
        parts = [bytes(f) for f in frames[at + 2 : at + 6]]
        if self.sign is not None:
            mac = self.sign()
            for part in parts:
                mac.update(part)
            if not hmac.compare_digest(mac.hexdigest().encode(), signature):
                raise Dropped("bad_signature", "the HMAC signature does not match the key")
        fragment = b"{"
        for name, part in zip(JUPYTER_PARTS, parts, strict=True):
            try:
                orjson.loads(part)
            except orjson.JSONDecodeError as exc:
                raise Dropped("invalid_json", f"jupyter {name} is not JSON: {exc}") from None
            fragment += b'"' + name.encode() + b'":' + part + b","
        buffers = b",".join(_base64_value(bytes(b)) for b in frames[at + 6 :])
        fragment += b'"buffers":[' + buffers + b"]}"
        return (bytes(frames[0]) if at else b""), fragment, None


def decode_topic(topic: bytes) -> str:
    """A ZeroMQ topic as text: UTF-8, with backslash escapes for bytes that are not."""
    return topic.decode("utf-8", "backslashreplace")
