"""The WebSocket protocol (docs/protocol.md) as pure functions: client frames in, frames out.

Message envelopes are assembled from bytes pieces: the per-topic head is built once, the
per-message tail once per message, so one message costs one concatenation per topic and
the frame that reaches the clients is encoded once per topic and batch, never per client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

ERROR_CODES = (
    "bad_request",
    "not_found",
    "forbidden",
    "too_large",
    "rate_limited",
    "too_many_subscriptions",
)
_ID_TYPES = (str, int, float)
_NAME_MAX = 100


class ProtocolError(ValueError):
    def __init__(self, code: str, detail: str, id: Any = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.id = id


@dataclass(frozen=True)
class Request:
    type: str
    id: Any = None
    feed: str = ""
    topic: str = ""
    since: int | None = None
    data: Any = None


def _name(obj: dict, key: str, id: Any) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value or len(value) > _NAME_MAX:
        raise ProtocolError("bad_request", f"{key!r} must be a non-empty string", id)
    return value


def parse_request(text: str | bytes) -> Request:
    """One client frame to a Request, or ProtocolError naming what is wrong."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ProtocolError("bad_request", "frame is not valid JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad_request", "frame must be a JSON object")
    id = obj.get("id")
    if id is not None and (not isinstance(id, _ID_TYPES) or isinstance(id, bool)):
        raise ProtocolError("bad_request", "'id' must be a string or a number")
    kind = obj.get("type")
    if kind == "ping":
        return Request("ping", id)
    if kind in ("subscribe", "unsubscribe"):
        feed, topic = _name(obj, "feed", id), _name(obj, "topic", id)
        since = obj.get("since") if kind == "subscribe" else None
        if since is not None and (
            not isinstance(since, int) or isinstance(since, bool) or since < 0
        ):
            raise ProtocolError("bad_request", "'since' must be a non-negative integer", id)
        return Request(kind, id, feed, topic, since)
    if kind == "publish":
        if "data" not in obj:
            raise ProtocolError("bad_request", "'publish' needs 'data'", id)
        return Request(
            "publish", id, _name(obj, "feed", id), _name(obj, "topic", id), data=obj["data"]
        )
    if not isinstance(kind, str):
        raise ProtocolError("bad_request", "frame needs a string 'type'", id)
    raise ProtocolError("bad_request", f"unknown type {kind!r}", id)


def _frame(obj: dict, id: Any = None) -> str:
    if id is not None:
        obj["id"] = id
    return orjson.dumps(obj).decode()


def reply(kind: str, id: Any = None, **fields: Any) -> str:
    return _frame({"type": kind, **fields}, id)


def error(code: str, detail: str, id: Any = None, **fields: Any) -> str:
    return _frame({"type": "error", "code": code, "detail": detail, **fields}, id)


def gap(feed: str, topic: str, from_seq: int, to_seq: int, reason: str) -> str:
    return _frame(
        {
            "type": "gap",
            "feed": feed,
            "topic": topic,
            "from_seq": from_seq,
            "to_seq": to_seq,
            "reason": reason,
        }
    )


# Server-to-client message frames, from bytes pieces.


def message_head(feed: str, topic: str) -> bytes:
    return (
        b'{"type":"message","feed":'
        + orjson.dumps(feed)
        + b',"topic":'
        + orjson.dumps(topic)
        + b',"seq":'
    )


def message_tail(zmq_topic_json: bytes, ts_json: bytes, data_fragment: bytes) -> bytes:
    return (
        b',"zmq_topic":' + zmq_topic_json + b',"ts":' + ts_json + b',"data":' + data_fragment + b"}"
    )


BATCH_HEAD = b'{"type":"batch","messages":['
BATCH_OVERHEAD = len(BATCH_HEAD) + 2  # and "]}"


def batch_frame(envelopes: list[bytes]) -> bytes:
    """One envelope is sent as itself; several as one `batch` frame."""
    if len(envelopes) == 1:
        return envelopes[0]
    return BATCH_HEAD + b",".join(envelopes) + b"]}"


def batch_runs(envelopes: list[bytes], limit: int) -> list[list[bytes]]:
    """The envelopes in order, cut so that each run's batch_frame is at most ``limit`` bytes.

    Daphne refuses to send a WebSocket message over its size limit (1 MiB by default).
    An envelope over the limit on its own makes a run of its own.
    """
    if sum(map(len, envelopes)) + len(envelopes) + BATCH_OVERHEAD - 1 <= limit:
        return [envelopes]
    runs: list[list[bytes]] = []
    run: list[bytes] = []
    size = BATCH_OVERHEAD - 1
    for envelope in envelopes:
        if run and size + len(envelope) + 1 > limit:
            runs.append(run)
            run, size = [], BATCH_OVERHEAD - 1
        run.append(envelope)
        size += len(envelope) + 1
    runs.append(run)
    return runs
