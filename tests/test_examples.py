"""The example feeds (examples/feeds/*.json) and their page (docs/publishers.md), together.

Each file is one feed, written to the configuration contract, that the schema accepts as
written (nothing dropped or changed) and that ``zmq_feeds import`` loads and exports back.
Every ```json block of the page parses; every message envelope on it is one the contract
allows for the feed it names: a known feed and topic, a ``zmq_topic`` that the topic
matches, and ``encoding``, ``parts`` and ``upstream_seq`` as the feed's payload and frames
give them. Every file is named on the page, and every feed has an envelope there. Each
envelope is then made real: its publisher's wire message is rebuilt from it, routed by the
imported feed's own router, and must come back as the same envelope.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import hmac
import io
import json
import re
import zlib
from pathlib import Path
from typing import Any

import msgpack
import pytest
from django.core.management import call_command

from tests.conftest import ROOT
from zmqfeed import schema
from zmqfeed.core.continuity import Numbering
from zmqfeed.core.router import Router, topic_key
from zmqfeed.models import Feed, load_catalog

EXAMPLES_DIR = ROOT / "examples" / "feeds"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.json"))
PAGE = ROOT / "docs" / "publishers.md"
README = ROOT / "README.md"

EXPECTED_FILES = {
    "jupyter-iopub.json",
    "bitcoin-core.json",
    "misp.json",
    "monero.json",
    "eddn.json",
    "pupil.json",
    "seed-2011.json",
}

# The configuration contract: keys and values of a feed and of a topic.
FEED_KEYS = {
    "slug",
    "name",
    "endpoints",
    "bind",
    "framing",
    "frames",
    "separator",
    "payload",
    "compression",
    "jupyter_connection_file",
    "enabled",
    "max_message_size",
    "topics",
}
TOPIC_KEYS = {
    "slug",
    "name",
    "prefix",
    "match",
    "access",
    "groups",
    "history",
    "history_age",
    "last_values",
}
FRAMINGS = {"multipart", "prefix", "raw", "jupyter"}
PAYLOADS = {"text", "json", "binary", "hex", "msgpack"}
SEQ_FRAMES = {"seq_le32": 32, "seq_be32": 32, "seq_le64": 64, "seq_be64": 64}
FRAME_KINDS = {"payload", "text", "json", "binary", "hex", *SEQ_FRAMES}
COMPRESSIONS = {"none", "zlib", "gzip"}
MATCHES = {"prefix", "exact"}
ACCESS = {"public", "authenticated", "staff", "group"}
SLUG = re.compile(r"[a-z0-9_-]{1,40}")
NAME_MAX = 200
HISTORY_MAX, HISTORY_AGE_MAX, LAST_VALUES_MAX = 1_000_000, 31_536_000, 1000

# The envelope a browser receives.
ENVELOPE_REQUIRED = {"type", "feed", "topic", "seq", "zmq_topic", "ts", "data"}
ENVELOPE_OPTIONAL = {"encoding", "parts", "upstream_seq"}
JUPYTER_DATA = {"header", "parent_header", "metadata", "content", "buffers"}
HEX = re.compile(r"(?:[0-9a-f]{2})*")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate key in {keys}"
    return dict(pairs)


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_no_duplicate_keys)


def only_feed(path: Path) -> dict[str, Any]:
    return load(path)["feeds"][0]


FEEDS = {only_feed(path)["slug"]: only_feed(path) for path in EXAMPLES}


def whole(value: object, most: int) -> bool:
    """A JSON count from 0 to most (not a boolean, not a float)."""
    return type(value) is int and 0 <= value <= most


def fenced_blocks(path: Path) -> list[tuple[str, str, int]]:
    """(info string, text, line number) of each fenced code block."""
    blocks: list[tuple[str, str, int]] = []
    info: str | None = None
    body: list[str] = []
    start = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            if info is None:
                info, start, body = stripped[3:].strip(), number, []
            else:
                blocks.append((info, "\n".join(body), start))
                info = None
        elif info is not None:
            body.append(line)
    assert info is None, f"{path.name}: the block opened on line {start} is never closed"
    return blocks


def json_blocks() -> list[tuple[Any, int]]:
    """(value, line) of every ```json block of the page."""
    found = []
    for info, text, line in fenced_blocks(PAGE):
        if info.split()[:1] != ["json"]:
            continue
        try:
            found.append((json.loads(text, object_pairs_hook=_no_duplicate_keys), line))
        except ValueError as exc:
            pytest.fail(f"publishers.md:{line}: not one JSON document: {exc}")
    return found


def envelopes() -> list[tuple[dict[str, Any], int]]:
    return [
        (value, line)
        for value, line in json_blocks()
        if isinstance(value, dict) and value.get("type") == "message"
    ]


# The files


def test_there_is_one_file_per_publisher() -> None:
    assert {path.name for path in EXAMPLES} == EXPECTED_FILES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_each_file_is_one_feed_written_to_the_contract(path: Path) -> None:
    document = load(path)
    assert set(document) == {"feeds"}
    assert isinstance(document["feeds"], list) and len(document["feeds"]) == 1
    feed = document["feeds"][0]
    assert set(feed) <= FEED_KEYS, f"keys outside the contract: {set(feed) - FEED_KEYS}"
    assert SLUG.fullmatch(feed["slug"]), feed["slug"]
    assert path.stem == feed["slug"], "a file is named after its feed"
    assert isinstance(feed["name"], str) and 0 < len(feed["name"]) <= NAME_MAX
    endpoints = feed["endpoints"]
    assert isinstance(endpoints, list) and endpoints and len(set(endpoints)) == len(endpoints)
    assert all(isinstance(e, str) and "://" in e for e in endpoints)
    assert feed.get("bind") is False, "each of these publishers binds; the gateway connects"
    assert feed.get("enabled", True) is True
    framing = feed.get("framing", "multipart")
    assert framing in FRAMINGS
    assert feed.get("payload", "json") in PAYLOADS
    assert feed.get("compression", "none") in COMPRESSIONS
    size = feed.get("max_message_size", 1048576)
    assert isinstance(size, int) and not isinstance(size, bool) and size > 0
    frames = feed.get("frames", ["payload"])
    assert isinstance(frames, list) and frames and set(frames) <= FRAME_KINDS
    assert sum(kind in SEQ_FRAMES for kind in frames) <= 1
    if "frames" in feed:
        assert framing == "multipart", "frames describes multipart messages"
    if "separator" in feed:
        assert framing == "prefix", "separator belongs to prefix framing"
        assert isinstance(feed["separator"], str) and feed["separator"]
    if "jupyter_connection_file" in feed:
        assert framing == "jupyter"
        assert isinstance(feed["jupyter_connection_file"], str)

    topics = feed["topics"]
    assert topics, "a feed without topics delivers nothing"
    slugs = [topic["slug"] for topic in topics]
    assert len(slugs) == len(set(slugs)), "topic slugs repeat"
    for topic in topics:
        assert set(topic) <= TOPIC_KEYS, f"keys outside the contract: {set(topic) - TOPIC_KEYS}"
        assert SLUG.fullmatch(topic["slug"]), topic["slug"]
        assert isinstance(topic["name"], str) and 0 < len(topic["name"]) <= NAME_MAX
        assert isinstance(topic.get("prefix", ""), str)
        assert topic.get("match", "prefix") in MATCHES
        access = topic.get("access", "public")
        assert access in ACCESS
        groups = topic.get("groups", [])
        assert isinstance(groups, list) and all(isinstance(g, str) and g for g in groups)
        if access == "group":
            assert groups, f"{topic['slug']}: group access without a group"
        if framing == "raw":
            assert topic.get("prefix", "") == "", "raw framing has no topic to match"
        history = topic.get("history")  # null: the server's HISTORY_SIZE
        assert history is None or whole(history, HISTORY_MAX), history
        assert whole(topic.get("history_age", 0), HISTORY_AGE_MAX)
        last_values = topic.get("last_values", 0)
        assert whole(last_values, LAST_VALUES_MAX)
        assert history is None or last_values <= history, "more last values than history"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_schema_accepts_each_file_as_written(path: Path) -> None:
    document = load(path)
    checked = schema.validate(document)
    assert len(checked["feeds"]) == 1
    feed, written = checked["feeds"][0], document["feeds"][0]
    for key, value in written.items():
        if key != "topics":
            assert feed.get(key) == value, f"the schema changed or dropped {key!r}"
    assert [t["slug"] for t in feed["topics"]] == [t["slug"] for t in written["topics"]]
    for topic, topic_written in zip(feed["topics"], written["topics"], strict=True):
        for key, value in topic_written.items():
            assert topic.get(key) == value, f"{topic['slug']}: the schema changed {key!r}"


def test_sensitive_feeds_are_not_public() -> None:
    for slug in ("jupyter-iopub", "misp", "pupil"):
        assert all(t["access"] != "public" for t in FEEDS[slug]["topics"]), slug
    misp = FEEDS["misp"]["topics"]
    assert any(t["access"] == "group" and "misp-readers" in t["groups"] for t in misp)


def test_bitcoin_core_numbers_each_message_with_a_little_endian_uint32() -> None:
    bitcoin = FEEDS["bitcoin-core"]
    assert (bitcoin["framing"], bitcoin["frames"], bitcoin["payload"]) == (
        "multipart",
        ["payload", "seq_le32"],
        "hex",
    )
    prefixes = {t["prefix"] for t in bitcoin["topics"]}
    assert prefixes == {"hashblock", "hashtx", "rawblock", "rawtx", "sequence"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_each_file_imports_and_exports_as_the_schema_reads_it(db: None, path: Path) -> None:
    out = io.StringIO()
    call_command("zmq_feeds", "import", str(path), stdout=out)
    written = only_feed(path)
    assert out.getvalue().startswith(f"Imported 1 feed, {len(written['topics'])} topic")
    feed = Feed.objects.get(slug=written["slug"])
    assert sorted(feed.topics.values_list("slug", flat=True)) == sorted(
        t["slug"] for t in written["topics"]
    )
    exported = io.StringIO()
    call_command("zmq_feeds", "export", stdout=exported)
    expected = schema.validate(load(path))["feeds"][0]
    expected["topics"] = sorted(expected["topics"], key=lambda t: t["slug"])
    assert json.loads(exported.getvalue())["feeds"] == [expected]


# The page


def test_every_file_is_named_on_the_page_and_the_readme_links_it() -> None:
    text = PAGE.read_text(encoding="utf-8")
    for path in EXAMPLES:
        assert f"examples/feeds/{path.name}" in text, f"publishers.md does not name {path.name}"
    assert "docs/publishers.md" in README.read_text(encoding="utf-8")


def test_every_json_block_of_the_page_parses() -> None:
    assert len(json_blocks()) >= len(EXAMPLES)


def test_every_feed_has_an_envelope_on_the_page() -> None:
    shown = {envelope["feed"] for envelope, _ in envelopes()}
    assert shown == set(FEEDS), f"no envelope for {set(FEEDS) - shown}"


def _matches(feed: dict[str, Any], topic: dict[str, Any], zmq_topic: str) -> bool:
    """Whether the topic takes a message with this zmq_topic, as the contract says."""
    framing = feed.get("framing", "multipart")
    prefix = topic.get("prefix", "").encode()
    received = zmq_topic.encode()
    if framing == "raw":
        return received == b"" and prefix == b""
    if topic.get("match", "prefix") == "exact":
        return received == prefix
    if framing == "prefix":  # compared with the whole frame: topic, separator, payload
        start = received + feed.get("separator", " ").encode()
        return start.startswith(prefix) if len(prefix) <= len(start) else prefix.startswith(start)
    return received.startswith(prefix)


def _is_base64(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        base64.b64decode(value, validate=True)
    except binascii.Error:
        return False
    return True


def _check_encoded(kind: str, value: object, where: str) -> None:
    if kind == "binary":
        assert _is_base64(value), f"{where}: not base64"
    elif kind == "hex":
        assert isinstance(value, str) and HEX.fullmatch(value), f"{where}: not lowercase hex"
    elif kind == "text":
        assert isinstance(value, str), f"{where}: not a string"


@pytest.mark.parametrize(
    ("envelope", "line"), envelopes(), ids=[f"line{line}" for _, line in envelopes()]
)
def test_each_envelope_is_one_the_contract_allows_for_its_feed(
    envelope: dict[str, Any], line: int
) -> None:
    where = f"publishers.md:{line}"
    keys = set(envelope)
    assert keys >= ENVELOPE_REQUIRED, f"{where}: missing {ENVELOPE_REQUIRED - keys}"
    assert keys <= ENVELOPE_REQUIRED | ENVELOPE_OPTIONAL, f"{where}: unknown keys"
    seq, ts = envelope["seq"], envelope["ts"]
    assert isinstance(seq, int) and not isinstance(seq, bool) and seq >= 1, where
    assert isinstance(ts, (int, float)) and not isinstance(ts, bool), where
    assert isinstance(envelope["zmq_topic"], str), where

    assert envelope["feed"] in FEEDS, f"{where}: no example feed {envelope['feed']!r}"
    feed = FEEDS[envelope["feed"]]
    topics = {t["slug"]: t for t in feed["topics"]}
    assert envelope["topic"] in topics, f"{where}: no topic {envelope['topic']!r}"
    topic = topics[envelope["topic"]]
    assert _matches(feed, topic, envelope["zmq_topic"]), f"{where}: the topic would not take it"

    framing, payload = feed.get("framing", "multipart"), feed.get("payload", "json")
    data = envelope["data"]
    if framing == "jupyter":
        assert isinstance(data, dict) and set(data) == JUPYTER_DATA, where
        assert isinstance(data["buffers"], list), where
        assert all(_is_base64(b) for b in data["buffers"]), where
        assert "encoding" not in envelope, where
    elif payload in {"binary", "hex"}:
        assert envelope.get("encoding") == {"binary": "base64", "hex": "hex"}[payload], where
        _check_encoded(payload, data, f"{where}: data")
    else:
        assert "encoding" not in envelope, f"{where}: encoding only for binary and hex"
        _check_encoded(payload, data, f"{where}: data")

    frames = feed.get("frames", ["payload"])
    part_kinds = [kind for kind in frames[1:] if kind not in SEQ_FRAMES]
    if "parts" in envelope:
        parts = envelope["parts"]
        assert framing == "multipart" and isinstance(parts, list) and parts, where
        for index, part in enumerate(parts):
            kind = part_kinds[index] if index < len(part_kinds) else "binary"
            _check_encoded(kind, part, f"{where}: parts[{index}]")
    seq_kinds = [kind for kind in frames if kind in SEQ_FRAMES]
    if seq_kinds:
        upstream = envelope.get("upstream_seq")
        assert isinstance(upstream, int) and not isinstance(upstream, bool), where
        assert 0 <= upstream < 2 ** SEQ_FRAMES[seq_kinds[0]], where
    else:
        assert "upstream_seq" not in envelope, f"{where}: this feed has no sequence frame"


# The page's envelopes, made real: wire message → the feed's router → the same envelope

MAX_FRAME = 1024 * 1024  # MAX_FRAME_SIZE's default
JUPYTER_KEY = b"a0436f6c-1916-498b-8eb9-e81ab9368e84"


def _bytes_of(kind: str, value: Any, payload: str) -> bytes:
    """The frame a publisher sent for a value decoded as ``kind``."""
    if kind == "payload":
        kind = payload
    if kind == "binary":
        return base64.b64decode(value)
    if kind == "hex":
        return bytes.fromhex(value)
    if kind == "text":
        return value.encode()
    if kind == "msgpack":
        return msgpack.packb(value, use_bin_type=True)
    return json.dumps(value).encode()


def _compressed(data: bytes, compression: str) -> bytes:
    if compression == "zlib":
        return zlib.compress(data)
    if compression == "gzip":
        return gzip.compress(data)
    return data


def wire(feed: dict[str, Any], envelope: dict[str, Any]) -> list[bytes]:
    """The ZeroMQ message that the feed's publisher sent for this envelope."""
    framing, payload = feed.get("framing", "multipart"), feed.get("payload", "json")
    topic, data = envelope["zmq_topic"].encode(), envelope["data"]
    if framing == "jupyter":
        parts = [json.dumps(data[n]).encode() for n in ("header", "parent_header", "metadata")]
        parts.append(json.dumps(data["content"]).encode())
        signature = hmac.new(JUPYTER_KEY, b"".join(parts), hashlib.sha256).hexdigest().encode()
        buffers = [base64.b64decode(b) for b in data["buffers"]]
        return [topic, b"<IDS|MSG>", signature, *parts, *buffers]
    body = _compressed(_bytes_of("payload", data, payload), feed.get("compression", "none"))
    if framing == "raw":
        return [body]
    if framing == "prefix":
        return [topic + feed.get("separator", " ").encode() + body]
    frames, parts = [topic, body], list(envelope.get("parts", []))
    for kind in feed.get("frames", ["payload"])[1:]:
        if kind in SEQ_FRAMES:
            size = SEQ_FRAMES[kind] // 8
            order = "little" if kind.startswith("seq_le") else "big"
            frames.append(envelope["upstream_seq"].to_bytes(size, order))
        elif parts:
            frames.append(_bytes_of(kind, parts.pop(0), payload))
        else:
            break
    return frames + [base64.b64decode(part) for part in parts]


def router_for(slug: str, seqs: dict[str, Numbering] | None = None) -> Router:
    """The router of the example feed ``slug``, imported into the test database."""
    call_command("zmq_feeds", "import", str(EXAMPLES_DIR / f"{slug}.json"), stdout=io.StringIO())
    feed = load_catalog().feed(slug)
    assert feed is not None
    router = Router(feed, MAX_FRAME)
    key = JUPYTER_KEY if feed.framing == "jupyter" else b""
    router.configure(feed, seqs or {}, key, "hmac-sha256" if key else "")
    return router


def routed_envelopes(router: Router, frames: list[bytes], ts: float) -> dict[str, dict]:
    """Topic slug → the one envelope a message was routed to it as."""
    routed = router.route([frames], ts)
    assert not routed.dropped, routed.examples
    found = {}
    for batch in routed.topics:
        assert len(batch.envelopes) == 1
        found[batch.route.topic] = json.loads(batch.envelopes[0])
    return found


@pytest.mark.parametrize(
    ("envelope", "line"), envelopes(), ids=[f"line{line}" for _, line in envelopes()]
)
def test_each_envelope_is_what_the_feed_makes_of_its_wire_message(
    db: None, envelope: dict[str, Any], line: int
) -> None:
    feed = FEEDS[envelope["feed"]]
    key = topic_key(envelope["feed"], envelope["topic"])
    router = router_for(envelope["feed"], {key: Numbering("e", envelope["seq"] - 1)})
    found = routed_envelopes(router, wire(feed, envelope), envelope["ts"])
    assert envelope["topic"] in found, f"publishers.md:{line}: routed to {sorted(found)} only"
    assert found[envelope["topic"]] == envelope, f"publishers.md:{line}"


ROUTING = [  # (feed, ZeroMQ message, the topics that take it)
    ("misp", [b"misp_json {}"], {"published-events", "all"}),
    ("misp", [b"misp_json_object {}"], {"objects", "all"}),
    ("misp", [b"misp_json_object_reference {}"], {"object-references", "all"}),
    ("misp", [b"misp_json_self {}"], {"status", "all"}),
    ("monero", [b"json-minimal-chain_main:{}"], {"chain-minimal"}),
    ("monero", [b"json-full-txpool_add:[]"], {"txpool-full"}),
    ("seed-2011", [b"10001 42"], {"topic-10001", "all"}),
    ("seed-2011", [b"100010 5"], {"all"}),
    ("seed-2011", [b"9999 -17"], {"all"}),
    ("bitcoin-core", [b"rawtx", b"\x01\x02", bytes(4)], {"rawtx"}),
    ("pupil", [b"gaze.3d.01.", msgpack.packb({"confidence": 1.0})], {"gaze"}),
    ("pupil", [b"notify.recording.started", msgpack.packb({})], {"notifications"}),
    ("eddn", [zlib.compress(b'{"$schemaRef": "x"}')], {"all"}),
]


@pytest.mark.parametrize(
    ("slug", "frames", "topics"), ROUTING, ids=[f"{s}:{f[0][:28]!r}" for s, f, _ in ROUTING]
)
def test_each_topic_takes_what_its_name_says(
    db: None, slug: str, frames: list[bytes], topics: set[str]
) -> None:
    assert set(routed_envelopes(router_for(slug), frames, 1764230000.0)) == topics


def test_bitcoin_core_counts_a_jump_in_one_topic_as_lost_and_a_restart_as_none(db: None) -> None:
    router = router_for("bitcoin-core")

    def block(seq: int) -> list[bytes]:
        return [b"hashblock", bytes(32), seq.to_bytes(4, "little")]

    def tx(seq: int) -> list[bytes]:
        return [b"hashtx", bytes(32), seq.to_bytes(4, "little")]

    assert router.route([block(7), tx(100), block(8), tx(101)], 1.0).upstream_lost == 0
    assert router.route([block(11)], 2.0).upstream_lost == 2  # 9 and 10 never came
    assert router.route([block(0)], 3.0).upstream_lost == 0  # bitcoind started again
    short = router.route([[b"hashblock", bytes(32), b"\x01\x00"]], 4.0)
    assert short.dropped == {"bad_frames": 1}


def test_jupyter_messages_with_a_bad_signature_are_dropped(db: None) -> None:
    router = router_for("jupyter-iopub")
    envelope = next(e for e, _ in envelopes() if e["feed"] == "jupyter-iopub")
    frames = wire(FEEDS["jupyter-iopub"], envelope)
    frames[2] = b"0" * 64
    routed = router.route([frames], 1.0)
    assert routed.dropped == {"bad_signature": 1} and not routed.topics
