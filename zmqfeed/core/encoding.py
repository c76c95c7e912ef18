"""A client's `publish` to ZeroMQ frames: the inverse of :mod:`zmqfeed.core.framing`.

What a feed's decoder reads, its encoder writes: the same framing, separator, payload kind
and compression, so that a message published through the gateway reads back, through the
gateway's own subscriber, as the `data` the client sent. Pure: the shell that owns the
outbound socket sends the frames.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import zlib
from typing import Any

import msgpack
import orjson

from .catalog import FeedConfig
from .vocabulary import (
    COMPRESSION_GZIP,
    COMPRESSION_NONE,
    COMPRESSION_ZLIB,
    COMPRESSIONS,
    FRAMING_JUPYTER,
    FRAMING_MULTIPART,
    FRAMING_PREFIX,
    FRAMING_RAW,
    FRAMINGS,
    PAYLOAD_BINARY,
    PAYLOAD_HEX,
    PAYLOAD_JSON,
    PAYLOAD_MSGPACK,
    PAYLOAD_TEXT,
    PAYLOADS,
)


class Unencodable(ValueError):
    """Data the feed cannot carry; ``code`` is the `error` code the client is given."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _text(data: Any) -> bytes:
    if not isinstance(data, str):
        raise Unencodable("bad_request", "a text feed carries a string as `data`")
    return data.encode("utf-8")


def _json(data: Any) -> bytes:
    try:
        return orjson.dumps(data)
    except orjson.JSONEncodeError as exc:  # an integer beyond 64 bits, say
        raise Unencodable("bad_request", f"`data` has no JSON form here: {exc}") from None


def _binary(data: Any) -> bytes:
    if not isinstance(data, str):
        raise Unencodable("bad_request", "a binary feed carries `data` as a base64 string")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise Unencodable("bad_request", "`data` is not valid base64") from None


def _hex(data: Any) -> bytes:
    if not isinstance(data, str):
        raise Unencodable("bad_request", "a hex feed carries `data` as a hex string")
    try:
        return bytes.fromhex(data)
    except ValueError:
        raise Unencodable("bad_request", "`data` is not a string of hex digit pairs") from None


def _msgpack(data: Any) -> bytes:
    try:
        return msgpack.packb(data)
    except (OverflowError, TypeError, ValueError) as exc:
        raise Unencodable("bad_request", f"`data` has no msgpack form: {exc}") from None


PAYLOADS_OUT = {
    PAYLOAD_TEXT: _text,
    PAYLOAD_JSON: _json,
    PAYLOAD_BINARY: _binary,
    PAYLOAD_HEX: _hex,
    PAYLOAD_MSGPACK: _msgpack,
}


def deflate(payload: bytes, compression: str) -> bytes:
    if compression == COMPRESSION_ZLIB:
        return zlib.compress(payload)
    if compression == COMPRESSION_GZIP:
        return gzip.compress(payload, mtime=0)
    return payload


class Encoder:
    """One feed's way back: ``encoder(topic, data)`` → the ZeroMQ frames to send, or
    :class:`Unencodable` with the `error` code and detail for the client."""

    __slots__ = ("compression", "framing", "max_size", "payload", "separator")

    def __init__(
        self,
        framing: str,
        payload: str,
        max_size: int,
        *,
        separator: bytes = b" ",
        compression: str = COMPRESSION_NONE,
    ) -> None:
        if framing not in FRAMINGS:
            raise ValueError(f"unknown framing {framing!r}")
        if payload not in PAYLOADS:
            raise ValueError(f"unknown payload {payload!r}")
        if compression not in COMPRESSIONS:
            raise ValueError(f"unknown compression {compression!r}")
        if not separator:
            raise ValueError("the separator must not be empty")
        self.framing = framing
        self.payload = PAYLOADS_OUT[payload]
        self.max_size = max_size
        self.separator = separator
        self.compression = compression

    def __call__(self, topic: bytes, data: Any) -> list[bytes]:
        if self.framing == FRAMING_JUPYTER:
            raise Unencodable(
                "forbidden", "a Jupyter feed takes no messages back (its kernel signs them)"
            )
        if self.framing == FRAMING_RAW and topic:
            raise Unencodable("bad_request", "a raw feed's messages have no topic")
        if self.framing == FRAMING_PREFIX and self.separator in topic:
            raise Unencodable(
                "bad_request", f"the topic holds the feed's separator {self.separator!r}"
            )
        payload = self.payload(data)
        if len(payload) > self.max_size:  # before compression too: what a reader inflates
            raise Unencodable(
                "too_large", f"{len(payload)} bytes is over the feed's limit of {self.max_size}"
            )
        payload = deflate(payload, self.compression)
        if self.framing == FRAMING_MULTIPART:
            frames = [topic, payload]
        elif self.framing == FRAMING_PREFIX:
            frames = [topic + self.separator + payload]
        else:
            frames = [payload]
        size = sum(map(len, frames))
        if size > self.max_size:
            raise Unencodable(
                "too_large", f"{size} bytes is over the feed's limit of {self.max_size}"
            )
        return frames


def encoder(feed: FeedConfig) -> Encoder:
    """The feed's encoder: the inverse of :func:`zmqfeed.core.router.decoder`."""
    return Encoder(
        feed.framing,
        feed.payload,
        feed.max_message_size,
        separator=feed.separator.encode(),
        compression=feed.compression,
    )
