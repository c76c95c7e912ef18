"""The WebSocket protocol (docs/protocol.md) as pure functions: client frames in, frames out.

Message envelopes are assembled from bytes pieces: the per-topic head is built once, the
per-message tail once per message, so one message costs one concatenation per topic and
the frame that reaches the clients is encoded once per topic and batch, never per client.

A :class:`Frame` is that encoded frame with what the rest of the path needs to know about
it (its topic, its seqs, where each message starts), from the router to the socket: it
crosses the channel layer as a :class:`FrameEvent` and is merged and trimmed here, by
offset, never by parsing or slicing text elsewhere.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import orjson

from . import sse, wsframe
from .continuity import EPOCH_MAX
from .vocabulary import SUBTOPIC_MAX

ERROR_CODES = (
    "bad_request",
    "not_found",
    "forbidden",
    "too_large",
    "rate_limited",
    "too_many_subscriptions",
    "idle",
    "unavailable",  # a publish no subscriber process could take (none up, queue full)
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
    epoch: str | None = None  # of `since`, as `subscribed` gave it
    subtopic: str = ""  # of a `publish`: what is added to the topic's prefix


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
        epoch = obj.get("epoch") if kind == "subscribe" else None
        if epoch is not None and (not isinstance(epoch, str) or len(epoch) > EPOCH_MAX):
            raise ProtocolError(
                "bad_request", f"'epoch' must be a string of at most {EPOCH_MAX} characters", id
            )
        return Request(kind, id, feed, topic, since, epoch=epoch)
    if kind == "auth":
        token = obj.get("token")
        if not isinstance(token, str) or not token:
            raise ProtocolError("bad_request", "'auth' needs a 'token' string", id)
        return Request("auth", id, data=token)
    if kind == "publish":
        feed, topic = _name(obj, "feed", id), _name(obj, "topic", id)
        if "data" not in obj:
            raise ProtocolError("bad_request", "'publish' needs 'data'", id)
        subtopic = obj.get("subtopic", "")
        # orjson refuses lone surrogates, so every string here encodes.
        if not isinstance(subtopic, str) or len(subtopic.encode()) > SUBTOPIC_MAX:
            raise ProtocolError(
                "bad_request", f"'subtopic' must be text of at most {SUBTOPIC_MAX} bytes", id
            )
        return Request("publish", id, feed, topic, data=obj["data"], subtopic=subtopic)
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


TS_FIELD = b',"ts":'


def message_tail(zmq_topic_json: bytes, ts_json: bytes, data_fragment: bytes) -> bytes:
    return (
        b',"zmq_topic":' + zmq_topic_json + TS_FIELD + ts_json + b',"data":' + data_fragment + b"}"
    )


BATCH_HEAD = b'{"type":"batch","messages":['
BATCH_OVERHEAD = len(BATCH_HEAD) + 2  # and "]}"
REPLAYED_HEAD = b'{"type":"batch","replayed":true,"messages":['


def replayed(envelopes: list[bytes], limit: int) -> list[tuple[str, int]]:
    """Messages from the history (a replay after `since`, a topic's last values), as
    `batch` frames marked ``"replayed": true`` of at most ``limit`` bytes, each with the
    number of messages it holds; sent to one client, so built for it."""
    if not envelopes:
        return []
    return [
        ((REPLAYED_HEAD + b",".join(run) + b"]}").decode(), len(run))
        for run in batch_runs(envelopes, limit - len(REPLAYED_HEAD) + len(BATCH_HEAD))
    ]


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


# Frames of messages, as they travel from the router to the sockets.

FRAME_EVENT = "zmqfeed.frame"  # the channel-layer message type of a Frame


class FrameEvent(TypedDict):
    """A Frame as a channel-layer message: plain values that msgpack and Redis carry."""

    type: str  # FRAME_EVENT
    group: str
    feed: str
    topic: str
    first: int
    epoch: str  # of the topic's numbering
    data: bytes  # the WebSocket frame, UTF-8 JSON
    starts: bytes  # offsets of the envelopes in data, as native uint32 (array "I")


class Frame:
    """Messages ``first`` … ``last`` of one topic's numbering ``epoch``, encoded once as one
    WebSocket text frame.

    One envelope is sent as itself; several as a ``batch``. ``starts`` holds the offset of
    each envelope in ``data``, so frames are merged and trimmed by slicing, and a message's
    bytes are never parsed or re-encoded after the router made them.
    """

    __slots__ = (
        "_sse",
        "_text",
        "_wire",
        "data",
        "epoch",
        "feed",
        "first",
        "last",
        "starts",
        "topic",
    )

    def __init__(
        self,
        feed: str,
        topic: str,
        first: int,
        data: bytes,
        starts: Sequence[int],
        epoch: str = "",
    ):
        self.feed, self.topic, self.first, self.epoch = feed, topic, first, epoch
        self.data = data
        self.starts = starts
        self.last = first + len(starts) - 1
        self._text: str | None = None
        self._sse: bytes | None = None
        self._wire: bytes | None = None

    @classmethod
    def of(
        cls, feed: str, topic: str, first: int, envelopes: Sequence[bytes], epoch: str = ""
    ) -> Frame:
        """The frame of envelopes ``first``, ``first + 1``, … (at least one)."""
        if len(envelopes) == 1:
            return cls(feed, topic, first, envelopes[0], (0,), epoch)
        starts = []
        offset = len(BATCH_HEAD)
        for envelope in envelopes:
            starts.append(offset)
            offset += len(envelope) + 1
        return cls(feed, topic, first, batch_frame(list(envelopes)), starts, epoch)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def text(self) -> str:
        """The frame as ASGI's ``websocket.send`` wants it: decoded once, shared by clients."""
        if self._text is None:
            self._text = self.data.decode()
        return self._text

    @property
    def wire(self) -> bytes:
        """The frame as an unmasked RFC 6455 text frame, header and payload: built once,
        shared by every WebSocket that takes it as it is (zmqfeed/daphne/preframed.py)."""
        if self._wire is None:
            self._wire = wsframe.text_frame(self.data)
        return self._wire

    @property
    def sse(self) -> bytes:
        """The frame as a one-topic SSE event, ``id: <epoch>:<last>`` and the frame as its
        data: built once, shared by every one-topic stream of the topic."""
        if self._sse is None:
            self._sse = sse.event(self.data, sse.one_id(self.epoch, self.last))
        return self._sse

    def arrived(self) -> float | None:
        """When the frame's first message reached the subscriber: its envelope's ``ts``,
        found without parsing (``,"ts":`` cannot occur inside the JSON strings before it);
        None for a frame without one."""
        data = self.data
        start = data.find(TS_FIELD, self.starts[0])
        if start < 0:
            return None
        start += len(TS_FIELD)
        try:
            return float(data[start : data.find(b",", start)])
        except ValueError:
            return None

    def envelopes(self) -> list[bytes]:
        if len(self.starts) == 1:
            return [self.data]
        ends = [start - 1 for start in self.starts[1:]]
        ends.append(len(self.data) - 2)
        return [self.data[a:b] for a, b in zip(self.starts, ends, strict=True)]

    def _inner(self) -> bytes:
        """The envelopes joined by commas, as they sit inside a batch."""
        if len(self.starts) == 1:
            return self.data
        return self.data[len(BATCH_HEAD) : -2]

    def after(self, seq: int) -> Frame | None:
        """The part of this frame with the messages after ``seq`` (None: nothing is left)."""
        if seq < self.first:
            return self
        if seq >= self.last:
            return None
        envelopes = self.envelopes()[seq + 1 - self.first :]
        return Frame.of(self.feed, self.topic, seq + 1, envelopes, self.epoch)

    def event(self, group: str) -> FrameEvent:
        return {
            "type": FRAME_EVENT,
            "group": group,
            "feed": self.feed,
            "topic": self.topic,
            "first": self.first,
            "epoch": self.epoch,
            "data": self.data,
            "starts": array("I", self.starts).tobytes(),
        }

    @classmethod
    def from_event(cls, event: FrameEvent) -> Frame:
        starts = array("I")
        starts.frombytes(event["starts"])
        feed, topic, first, data = event["feed"], event["topic"], event["first"], event["data"]
        return cls(feed, topic, first, data, starts, event["epoch"])

    def __repr__(self) -> str:
        return (
            f"<Frame {self.feed}/{self.topic} {self.epoch}:{self.first}..{self.last}, "
            f"{self.size} bytes>"
        )


def frames(
    feed: str, topic: str, first: int, envelopes: list[bytes], limit: int, epoch: str = ""
) -> list[Frame]:
    """One topic's envelopes (seqs ``first`` on) as frames of at most ``limit`` bytes each."""
    out = []
    for run in batch_runs(envelopes, limit):
        out.append(Frame.of(feed, topic, first, run, epoch))
        first += len(run)
    return out


def merge(run: Sequence[Frame]) -> Frame:
    """Frames of one topic whose seqs follow on, as one frame."""
    if len(run) == 1:
        return run[0]
    starts: list[int] = []
    parts: list[bytes] = []
    offset = len(BATCH_HEAD)
    for frame in run:
        inner = frame._inner()
        shift = offset - (len(BATCH_HEAD) if len(frame.starts) > 1 else 0)
        starts.extend(start + shift for start in frame.starts)
        parts.append(inner)
        offset += len(inner) + 1
    data = BATCH_HEAD + b",".join(parts) + b"]}"
    return Frame(run[0].feed, run[0].topic, run[0].first, data, starts, run[0].epoch)


def coalesce(pending: list[tuple[str, Frame]], limit: int) -> list[tuple[str, Frame]]:
    """Merge the frames of each group whose seqs follow on into frames of at most ``limit``.

    Frames queue up in a server process that is busier than the subscriber (which, in its
    own process, cannot feel that): merging them is the process's adaptive batching, one
    frame per client instead of one per queued frame. Each group keeps its order and its
    gaps; frames of different groups may change places, as they may on the wire.
    """
    if len(pending) < 2:
        return pending
    runs: dict[str, list[tuple[list[Frame], int]]] = {}
    for group, frame in pending:
        group_runs = runs.setdefault(group, [])
        inner = frame.size - (BATCH_OVERHEAD if len(frame.starts) > 1 else 0)
        if group_runs:
            run, size = group_runs[-1]
            if (
                frame.first == run[-1].last + 1
                and frame.epoch == run[-1].epoch
                and size + 1 + inner + BATCH_OVERHEAD <= limit
            ):
                run.append(frame)
                group_runs[-1] = (run, size + 1 + inner)
                continue
        group_runs.append(([frame], inner))
    return [(group, merge(run)) for group, group_runs in runs.items() for run, _ in group_runs]
