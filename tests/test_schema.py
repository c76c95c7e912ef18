"""The configuration document: what is accepted, what is refused and by which path."""

from __future__ import annotations

import copy
import json
import re
import string
from collections.abc import Callable
from typing import Any

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zmqfeed import schema
from zmqfeed.core import framing
from zmqfeed.core.catalog import Catalog, FeedConfig, TopicConfig
from zmqfeed.core.vocabulary import HISTORY_AGE_MAX, HISTORY_MAX, LAST_VALUES_MAX, SLUG_MAX
from zmqfeed.schema import SchemaError, export, validate

BASE: dict[str, Any] = {
    "feeds": [
        {
            "slug": "prices",
            "name": "Prices",
            "endpoints": ["tcp://127.0.0.1:5556"],
            "bind": False,
            "framing": "multipart",
            "payload": "json",
            "frames": ["payload"],
            "separator": " ",
            "compression": "none",
            "jupyter_connection_file": "",
            "curve_publishers": [],
            "publish_endpoints": ["tcp://127.0.0.1:5560"],
            "publish_socket": "push",
            "publish_bind": False,
            "enabled": True,
            "max_message_size": 1048576,
            "topics": [
                {
                    "slug": "eur",
                    "name": "EUR",
                    "prefix": "EUR",
                    "match": "prefix",
                    "access": "public",
                    "publish_access": "authenticated",
                    "groups": [],
                    "history": 100,
                    "history_age": 3600,
                    "last_values": 1,
                }
            ],
        },
        {
            "slug": "logs",
            "name": "Logs",
            "endpoints": ["tcp://*:5557", "ipc:///tmp/zmqfeed-logs.sock"],
            "bind": True,
            "framing": "prefix",
            "payload": "text",
            "frames": ["payload"],
            "separator": " ",
            "compression": "none",
            "jupyter_connection_file": "",
            "curve_publishers": [],
            "publish_endpoints": [],
            "publish_socket": "pub",
            "publish_bind": False,
            "enabled": False,
            "max_message_size": 65536,
            "topics": [
                {
                    "slug": "all",
                    "name": "All",
                    "prefix": "",
                    "match": "prefix",
                    "access": "staff",
                    "publish_access": "nobody",
                    "groups": [],
                    "history": 0,
                    "history_age": 0,
                    "last_values": 0,
                },
                {
                    "slug": "ops",
                    "name": "Ops",
                    "prefix": "ops.",
                    "match": "prefix",
                    "access": "group",
                    "publish_access": "group",
                    "groups": ["ops", "sre"],
                    "history": None,
                    "history_age": 0,
                    "last_values": 5,
                },
            ],
        },
    ]
}


def test_a_complete_document_comes_back_unchanged() -> None:
    assert validate(copy.deepcopy(BASE)) == BASE


def test_optional_keys_get_the_model_defaults() -> None:
    doc = {
        "feeds": [
            {
                "slug": "f",
                "name": "F",
                "endpoints": [" tcp://127.0.0.1:1 "],
                "topics": [{"slug": "t", "name": "T", "groups": ["b", "a", "b"]}],
            }
        ]
    }
    assert validate(doc) == {
        "feeds": [
            {
                "slug": "f",
                "name": "F",
                "endpoints": ["tcp://127.0.0.1:1"],
                "bind": False,
                "framing": "multipart",
                "payload": "json",
                "frames": ["payload"],
                "separator": " ",
                "compression": "none",
                "jupyter_connection_file": "",
                "curve_publishers": [],
                "publish_endpoints": [],
                "publish_socket": "pub",
                "publish_bind": False,
                "enabled": True,
                "max_message_size": 1048576,
                "topics": [
                    {
                        "slug": "t",
                        "name": "T",
                        "prefix": "",
                        "match": "prefix",
                        "access": "public",
                        "publish_access": "nobody",
                        "groups": ["a", "b"],
                        "history": None,
                        "history_age": 0,
                        "last_values": 0,
                    }
                ],
            }
        ]
    }
    assert validate({"feeds": []}) == {"feeds": []}


def _set(path: str, value: object) -> Callable[[dict], None]:
    """A mutation of BASE: set the value at a dotted path (integers index lists)."""

    def mutate(doc: dict) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        for part in parents:
            doc = doc[part]
        doc[last] = value

    return mutate


def _delete(path: str) -> Callable[[dict], None]:
    def mutate(doc: dict) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        for part in parents:
            doc = doc[part]
        del doc[last]

    return mutate


BAD = [
    (_set("feeds.1.topics.0.access", "admins"),
     "feeds[1].topics[0].access: must be one of public, authenticated, staff, group, not 'admins'"),
    (_set("feeds.0.framing", "json"),
     "feeds[0].framing: must be one of multipart, prefix, raw, jupyter, not 'json'"),
    (_set("feeds.0.payload", None),
     "feeds[0].payload: must be one of text, json, binary, hex, msgpack, not None"),
    (_set("feeds", {}), "feeds: must be a list, not an object"),
    (_set("feeds.0", "prices"), "feeds[0]: must be an object, not a string"),
    (_set("feeds.0.colour", "red"), "feeds[0].colour: unknown key; the keys are slug, name, "
     "endpoints, bind, framing, payload, frames, separator, compression, "
     "jupyter_connection_file, curve_publishers, publish_endpoints, publish_socket, "
     "publish_bind, enabled, max_message_size, topics"),
    (_set("feeds.1.topics.1.feed", "logs"), "feeds[1].topics[1].feed: unknown key; the keys "
     "are slug, name, prefix, match, access, publish_access, groups, history, history_age, "
     "last_values"),
    (_set("version", 2), "document.version: unknown key; the keys are feeds"),
    (_set("feeds.0.frames", ["seq_le32"]),
     "feeds[0].frames: frame 1 is the message's data: a sequence number can only follow it"),
    (_set("feeds.0.frames", ["payload", "seq_le32", "seq_be64"]),
     "feeds[0].frames: at most one frame can be the publisher's sequence number"),
    (_set("feeds.0.frames", ["payload", "nope"]),
     "feeds[0].frames[1]: must be one of payload, text, json, binary, hex, seq_le32, seq_be32, "
     "seq_le64, seq_be64, not 'nope'"),
    (_set("feeds.0.frames", []), 'feeds[0].frames: must name at least frame 1, the data '
     '(e.g. ["payload"])'),
    (_set("feeds.1.separator", ""), "feeds[1].separator: must not be empty (the default is one "
     "space)"),
    (_set("feeds.0.compression", "lz4"),
     "feeds[0].compression: must be one of none, zlib, gzip, not 'lz4'"),
    (_set("feeds.0.jupyter_connection_file", "/run/kernel.json"),
     "feeds[0].jupyter_connection_file: is read only with framing 'jupyter': leave it empty"),
    (_set("feeds.0.framing", "raw"), "feeds[0].topics[0].prefix: a raw feed's messages have no "
     "topic, so this prefix would match nothing: leave it empty (or use multipart or prefix "
     "framing)"),
    (_set("feeds.0.topics.0.match", "glob"),
     "feeds[0].topics[0].match: must be one of prefix, exact, not 'glob'"),
    (_delete("feeds"), "document.feeds: is required"),
    (_delete("feeds.0.endpoints"), "feeds[0].endpoints: is required"),
    (_delete("feeds.1.topics.0.name"), "feeds[1].topics[0].name: is required"),
    (_set("feeds.0.slug", "pri ces"),
     "feeds[0].slug: 'pri ces' is not a slug (letters, digits, '-' and '_' only)"),
    (_set("feeds.0.slug", "prix-€"),
     "feeds[0].slug: 'prix-€' is not a slug (letters, digits, '-' and '_' only)"),
    (_set("feeds.0.slug", "a" * 41), "feeds[0].slug: must be at most 40 characters, not 41"),
    (_set("feeds.0.slug", ""), "feeds[0].slug: must not be empty"),
    (_set("feeds.0.slug", 7), "feeds[0].slug: must be a string, not a number"),
    (_set("feeds.1.slug", "prices"), "feeds[1].slug: 'prices' is already the slug of feeds[0]"),
    (_set("feeds.1.topics.1.slug", "all"),
     "feeds[1].topics[1].slug: 'all' is already the slug of feeds[1].topics[0]"),
    (_set("feeds.0.name", "  "), "feeds[0].name: must not be empty"),
    (_set("feeds.0.name", "x" * 201), "feeds[0].name: must be at most 200 characters, not 201"),
    (_set("feeds.0.topics.0.prefix", "E" * 256),
     "feeds[0].topics[0].prefix: must be at most 255 characters, not 256"),
    (_set("feeds.0.topics.0.prefix", "EUR\x00"),
     "feeds[0].topics[0].prefix: must be UTF-8 text without NUL characters"),
    (_set("feeds.0.topics.0.name", "\ud800"),
     "feeds[0].topics[0].name: must be UTF-8 text without NUL characters"),
    (_set("feeds.0.bind", "false"), "feeds[0].bind: must be true or false, not a string"),
    (_set("feeds.0.enabled", 1), "feeds[0].enabled: must be true or false, not a number"),
    (_set("feeds.0.max_message_size", 0),
     "feeds[0].max_message_size: must be a whole number of bytes from 1 to 2147483647"),
    (_set("feeds.0.max_message_size", 2**31),
     "feeds[0].max_message_size: must be a whole number of bytes from 1 to 2147483647"),
    (_set("feeds.0.max_message_size", 1.5),
     "feeds[0].max_message_size: must be a whole number of bytes from 1 to 2147483647"),
    (_set("feeds.0.max_message_size", True),
     "feeds[0].max_message_size: must be a whole number of bytes from 1 to 2147483647"),
    (_set("feeds.0.topics.0.history", -1), "feeds[0].topics[0].history: must be null (the "
     "server's HISTORY_SIZE) or a whole number of messages from 0 to 1000000"),
    (_set("feeds.0.topics.0.history", 1_000_001), "feeds[0].topics[0].history: must be null "
     "(the server's HISTORY_SIZE) or a whole number of messages from 0 to 1000000"),
    (_set("feeds.0.topics.0.history", "100"), "feeds[0].topics[0].history: must be null (the "
     "server's HISTORY_SIZE) or a whole number of messages from 0 to 1000000"),
    (_set("feeds.0.topics.0.history", True), "feeds[0].topics[0].history: must be null (the "
     "server's HISTORY_SIZE) or a whole number of messages from 0 to 1000000"),
    (_set("feeds.0.topics.0.history", 10.0), "feeds[0].topics[0].history: must be null (the "
     "server's HISTORY_SIZE) or a whole number of messages from 0 to 1000000"),
    (_set("feeds.0.topics.0.history_age", -1),
     "feeds[0].topics[0].history_age: must be a whole number of seconds from 0 to 31536000"),
    (_set("feeds.0.topics.0.history_age", 31_536_001),
     "feeds[0].topics[0].history_age: must be a whole number of seconds from 0 to 31536000"),
    (_set("feeds.0.topics.0.history_age", None),
     "feeds[0].topics[0].history_age: must be a whole number of seconds from 0 to 31536000"),
    (_set("feeds.0.topics.0.history_age", False),
     "feeds[0].topics[0].history_age: must be a whole number of seconds from 0 to 31536000"),
    (_set("feeds.0.topics.0.last_values", -1),
     "feeds[0].topics[0].last_values: must be a whole number of messages from 0 to 1000"),
    (_set("feeds.1.topics.1.last_values", 1001),
     "feeds[1].topics[1].last_values: must be a whole number of messages from 0 to 1000"),
    (_set("feeds.0.topics.0.last_values", None),
     "feeds[0].topics[0].last_values: must be a whole number of messages from 0 to 1000"),
    (_set("feeds.0.topics.0.last_values", True),
     "feeds[0].topics[0].last_values: must be a whole number of messages from 0 to 1000"),
    (_set("feeds.0.topics.0.last_values", 101),
     "feeds[0].topics[0].last_values: last_values 101 is more than the history of 100 "
     "messages kept"),
    (_set("feeds.1.topics.0.last_values", 1),
     "feeds[1].topics[0].last_values: last_values 1 is more than the history of 0 messages "
     "kept"),
    (_set("feeds.0.topics", None), "feeds[0].topics: must be a list, not null"),
    (_set("feeds.1.topics.1.groups", []),
     'feeds[1].topics[1].groups: access "group" needs at least one group'),
    (_set("feeds.1.topics.1.groups", "ops"),
     "feeds[1].topics[1].groups: must be a list, not a string"),
    (_set("feeds.1.topics.1.groups", ["ops", 3]),
     "feeds[1].topics[1].groups[1]: must be a string, not a number"),
    (_set("feeds.1.topics.1.groups", ["g" * 151]),
     "feeds[1].topics[1].groups[0]: must be at most 150 characters, not 151"),
    (_set("feeds.0.endpoints", []), "feeds[0].endpoints: must list at least one endpoint"),
    (_set("feeds.0.endpoints", "tcp://127.0.0.1:5556"),
     "feeds[0].endpoints: must be a list, not a string"),
    (_set("feeds.0.endpoints", ["tcp://127.0.0.1:5556", 5556]),
     "feeds[0].endpoints[1]: must be a string, not a number"),
    (_set("feeds.1.endpoints", ["tcp://*:5557", "udp://*:5558"]),
     "feeds[1].endpoints[1]: 'udp://*:5558': scheme must be one of tcp, ipc, epgm, pgm, norm, "
     "not 'udp'"),
    (_set("feeds.0.endpoints", ["tcp://127.0.0.1:5556", "tcp://127.0.0.1:5556 "]),
     "feeds[0].endpoints[1]: 'tcp://127.0.0.1:5556' is listed twice"),
    (_set("feeds.0.endpoints", ["tcp://*:5556"]),
     "feeds[0].endpoints[0]: 'tcp://*:5556': * is for binding; to connect, give the "
     "publisher's host and port (or turn on bind)"),
    # Two-way publishing
    (_set("feeds.0.publish_endpoints", "tcp://127.0.0.1:5560"),
     "feeds[0].publish_endpoints: must be a list, not a string"),
    (_set("feeds.0.publish_endpoints", None),
     "feeds[0].publish_endpoints: must be a list, not null"),
    (_set("feeds.0.publish_endpoints", ["tcp://127.0.0.1:5560", 5560]),
     "feeds[0].publish_endpoints[1]: must be a string, not a number"),
    (_set("feeds.0.publish_endpoints", ["udp://h:1"]),
     "feeds[0].publish_endpoints[0]: 'udp://h:1': scheme must be one of tcp, ipc, epgm, pgm, "
     "norm, not 'udp'"),
    (_set("feeds.0.publish_endpoints", ["tcp://feeds.example.com"]),
     "feeds[0].publish_endpoints[0]: 'tcp://feeds.example.com': expected HOST:PORT after the "
     "scheme"),
    (_set("feeds.0.publish_endpoints", ["ipc:///tmp/p.sock", " ipc:///tmp/p.sock"]),
     "feeds[0].publish_endpoints[1]: 'ipc:///tmp/p.sock' is listed twice"),
    (_set("feeds.0.publish_endpoints", ["tcp://*:5560"]),
     "feeds[0].publish_endpoints[0]: 'tcp://*:5560': * is for binding; to connect, give the "
     "receiver's host and port (or turn on publish_bind)"),
    (_set("feeds.1.publish_endpoints", ["tcp://127.0.0.1:*"]),  # the feed's own bind is no help
     "feeds[1].publish_endpoints[0]: 'tcp://127.0.0.1:*': * is for binding; to connect, give "
     "the receiver's host and port (or turn on publish_bind)"),
    (_set("feeds.0.publish_socket", "rep"),
     "feeds[0].publish_socket: must be one of pub, push, not 'rep'"),
    (_set("feeds.0.publish_socket", None),
     "feeds[0].publish_socket: must be one of pub, push, not None"),
    (_set("feeds.0.publish_bind", "false"),
     "feeds[0].publish_bind: must be true or false, not a string"),
    (_set("feeds.0.publish_bind", 0), "feeds[0].publish_bind: must be true or false, not a number"),
    (_set("feeds.0.topics.0.publish_access", "admins"),
     "feeds[0].topics[0].publish_access: must be one of nobody, public, authenticated, staff, "
     "group, not 'admins'"),
    (_set("feeds.0.topics.0.publish_access", None),
     "feeds[0].topics[0].publish_access: must be one of nobody, public, authenticated, staff, "
     "group, not None"),
    (_set("feeds.0.topics.0.publish_access", "group"),
     'feeds[0].topics[0].groups: publish_access "group" needs at least one group'),
    (_set("feeds.0.framing", "jupyter"),
     "feeds[0].topics[0].publish_access: a Jupyter kernel signs its messages, so nothing can "
     "be published to a 'jupyter' feed: leave publish_access 'nobody'"),
]  # fmt: skip


@pytest.mark.parametrize(("mutate", "message"), BAD)
def test_a_bad_field_is_named_by_its_path(mutate: Callable[[dict], None], message: str) -> None:
    doc = copy.deepcopy(BASE)
    mutate(doc)
    with pytest.raises(SchemaError) as caught:
        validate(doc)
    assert str(caught.value) == message
    assert f"{caught.value.path}: {caught.value.message}" == message


@pytest.mark.parametrize("document", [None, [], "feeds", 3])
def test_the_document_must_be_an_object(document: object) -> None:
    with pytest.raises(SchemaError, match=r"^document: must be an object, not "):
        validate(document)


def test_the_same_topic_slug_in_two_feeds_is_fine() -> None:
    doc = copy.deepcopy(BASE)
    doc["feeds"][1]["topics"][0]["slug"] = "eur"
    assert validate(doc)["feeds"][1]["topics"][0]["slug"] == "eur"


def test_a_wildcard_is_fine_for_a_feed_that_binds() -> None:
    doc = copy.deepcopy(BASE)
    doc["feeds"][0].update(bind=True, endpoints=["tcp://*:5556", "tcp://127.0.0.1:*"])
    assert validate(doc)["feeds"][0]["endpoints"] == ["tcp://*:5556", "tcp://127.0.0.1:*"]


def test_a_wildcard_is_fine_for_a_publish_socket_that_binds() -> None:
    doc = copy.deepcopy(BASE)
    doc["feeds"][0].update(publish_bind=True, publish_endpoints=["tcp://*:5560 "])
    feed = validate(doc)["feeds"][0]
    assert (feed["publish_endpoints"], feed["publish_bind"]) == (["tcp://*:5560"], True)
    assert feed["bind"] is False  # each socket has its own bind


@pytest.mark.parametrize("publish_access", schema.PUBLISH_ACCESS)
def test_publish_access_without_publish_endpoints_is_valid(publish_access: str) -> None:
    """Not an error here: zmqfeed.W003 warns that nobody can publish to it yet."""
    doc = copy.deepcopy(BASE)
    doc["feeds"][1]["topics"][1]["publish_access"] = publish_access  # logs/ops: has groups
    assert doc["feeds"][1]["publish_endpoints"] == []
    assert validate(doc)["feeds"][1]["topics"][1]["publish_access"] == publish_access


def test_a_jupyter_feed_is_valid_while_nobody_may_publish_to_it() -> None:
    doc = copy.deepcopy(BASE)
    doc["feeds"][0]["framing"] = "jupyter"
    doc["feeds"][0]["topics"][0]["publish_access"] = "nobody"
    assert validate(doc)["feeds"][0]["framing"] == "jupyter"
    doc["feeds"][0]["topics"].append({"slug": "usd", "name": "USD", "publish_access": "staff"})
    with pytest.raises(SchemaError) as caught:
        validate(doc)
    assert caught.value.path == "feeds[0].topics[1].publish_access"


def test_a_slug_of_exactly_the_limit_is_fine() -> None:
    doc = copy.deepcopy(BASE)
    doc["feeds"][0]["slug"] = "a" * SLUG_MAX
    assert validate(doc)["feeds"][0]["slug"] == "a" * SLUG_MAX


@pytest.mark.parametrize(
    ("history", "history_age", "last_values"),
    [
        (None, 0, 0),
        (0, 0, 0),
        (1, 1, 1),  # last_values may be the whole history
        (HISTORY_MAX, HISTORY_AGE_MAX, LAST_VALUES_MAX),
        (None, 0, LAST_VALUES_MAX),  # null: the server's HISTORY_SIZE, applied at runtime
        (5000, 60, 1),  # over the default HISTORY_SIZE: allowed here, capped at runtime
    ],
)
def test_history_fields_at_their_limits_are_fine(
    history: int | None, history_age: int, last_values: int
) -> None:
    doc = copy.deepcopy(BASE)
    doc["feeds"][0]["topics"][0].update(
        history=history, history_age=history_age, last_values=last_values
    )
    topic = validate(doc)["feeds"][0]["topics"][0]
    assert (topic["history"], topic["history_age"], topic["last_values"]) == (
        history,
        history_age,
        last_values,
    )


@pytest.mark.parametrize(
    ("history", "last_values", "problem"),
    [
        (None, 1000, None),
        (10, 10, None),
        (0, 0, None),
        (0, 1, "last_values 1 is more than the history of 0 messages kept"),
        (1, 2, "last_values 2 is more than the history of 1 message kept"),
        (10, 11, "last_values 11 is more than the history of 10 messages kept"),
    ],
)
def test_last_values_problem(history: int | None, last_values: int, problem: str | None) -> None:
    assert schema.last_values_problem(history, last_values) == problem


def test_a_transport_this_libzmq_lacks_names_the_remedy() -> None:
    """Whichever libzmq runs the tests: norm:// is refused with the remedy, or accepted."""
    doc = copy.deepcopy(BASE)
    doc["feeds"][0]["endpoints"] = ["tcp://127.0.0.1:5556", "norm://239.192.1.1:5555"]
    if zmq.has("norm"):
        assert validate(doc)["feeds"][0]["endpoints"][1] == "norm://239.192.1.1:5555"
        return
    with pytest.raises(SchemaError) as caught:
        validate(doc)
    assert caught.value.path == "feeds[0].endpoints[1]"
    assert "norm:// is not available" in caught.value.message
    assert "make multicast" in caught.value.message


def test_export_sorts_and_writes_every_key() -> None:
    catalog = Catalog(
        (
            FeedConfig(
                "zeta",
                "Z",
                ("tcp://127.0.0.1:2", "tcp://127.0.0.1:1"),
                publish_endpoints=("tcp://*:4", "ipc:///tmp/z"),
                publish_socket="push",
                publish_bind=True,
                topics=(
                    TopicConfig("b", "B"),
                    TopicConfig(
                        "a",
                        "A",
                        "x",
                        "group",
                        frozenset("qp"),
                        publish_access="group",
                        history=50,
                        history_age=600,
                        last_values=1,
                    ),
                ),
            ),
            FeedConfig("alpha", "A", ("ipc:///tmp/a",), True, "raw", "binary", False, 10),
        )
    )
    assert export(catalog) == {
        "feeds": [
            {
                "slug": "alpha",
                "name": "A",
                "endpoints": ["ipc:///tmp/a"],
                "bind": True,
                "framing": "raw",
                "payload": "binary",
                "frames": ["payload"],
                "separator": " ",
                "compression": "none",
                "jupyter_connection_file": "",
                "curve_publishers": [],
                "publish_endpoints": [],
                "publish_socket": "pub",
                "publish_bind": False,
                "enabled": False,
                "max_message_size": 10,
                "topics": [],
            },
            {
                "slug": "zeta",
                "name": "Z",
                "endpoints": ["tcp://127.0.0.1:2", "tcp://127.0.0.1:1"],  # order kept
                "bind": False,
                "framing": "multipart",
                "payload": "json",
                "frames": ["payload"],
                "separator": " ",
                "compression": "none",
                "jupyter_connection_file": "",
                "curve_publishers": [],
                "publish_endpoints": ["tcp://*:4", "ipc:///tmp/z"],  # order kept
                "publish_socket": "push",
                "publish_bind": True,
                "enabled": True,
                "max_message_size": 1048576,
                "topics": [
                    {
                        "slug": "a",
                        "name": "A",
                        "prefix": "x",
                        "match": "prefix",
                        "access": "group",
                        "publish_access": "group",
                        "groups": ["p", "q"],
                        "history": 50,
                        "history_age": 600,
                        "last_values": 1,
                    },
                    {
                        "slug": "b",
                        "name": "B",
                        "prefix": "",
                        "match": "prefix",
                        "access": "public",
                        "publish_access": "nobody",
                        "groups": [],
                        "history": None,
                        "history_age": 0,
                        "last_values": 0,
                    },
                ],
            },
        ]
    }


# Valid documents, for the round-trip properties.
TEXT = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
slugs = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=SLUG_MAX)
feed_slugs = slugs.filter(lambda slug: slug.lower() not in schema.RESERVED_FEED_SLUGS)
names = st.text(TEXT, min_size=1, max_size=30).filter(str.strip)
group_names = st.lists(names, max_size=3)


@st.composite
def topics(draw: st.DrawFn) -> dict[str, Any]:
    access = draw(st.sampled_from(schema.ACCESS))
    publish_access = draw(st.sampled_from(schema.PUBLISH_ACCESS))
    groups = draw(group_names)
    if "group" in (access, publish_access) and not groups:
        groups = ["readers"]
    history = draw(st.none() | st.integers(0, schema.HISTORY_MAX))
    most = schema.LAST_VALUES_MAX if history is None else min(history, schema.LAST_VALUES_MAX)
    return {
        "slug": draw(slugs),
        "name": draw(names),
        "prefix": draw(st.text(TEXT, max_size=30)),
        "match": draw(st.sampled_from(schema.MATCHES)),
        "access": access,
        "publish_access": publish_access,
        "groups": sorted(set(groups)),
        "history": history,
        "history_age": draw(st.integers(0, schema.HISTORY_AGE_MAX)),
        "last_values": draw(st.integers(0, most)),
    }


# Real CURVE public keys (Z85 of 32 bytes), as zmq.curve_keypair() makes them.
CURVE_A = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
CURVE_B = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
CURVE_LISTS = [[], ["*"], [CURVE_A], [CURVE_B, CURVE_A]]


@st.composite
def feeds(draw: st.DrawFn) -> dict[str, Any]:
    bind = draw(st.booleans())
    host = st.sampled_from(["*", "127.0.0.1"] if bind else ["127.0.0.1", "feeds.example.com"])
    tcp = st.builds("tcp://{}:{}".format, host, st.integers(1, 65535))
    ipc = st.builds("ipc:///tmp/{}.sock".format, slugs)
    publish_bind = draw(st.booleans())
    publish_host = st.sampled_from(["*", "127.0.0.1"] if publish_bind else ["127.0.0.1"])
    publish_tcp = st.builds("tcp://{}:{}".format, publish_host, st.integers(1, 65535))
    kind = framing.FRAMINGS
    chosen = draw(st.sampled_from(kind))
    data_kinds = [k for k in framing.FRAME_KINDS if k not in schema.SEQ_KINDS]
    frames = [draw(st.sampled_from(data_kinds))]
    frames += draw(st.lists(st.sampled_from(data_kinds), max_size=2))
    if draw(st.booleans()):
        frames.append(draw(st.sampled_from(schema.SEQ_KINDS)))
    chosen_topics = draw(st.lists(topics(), max_size=3, unique_by=lambda t: t["slug"]))
    if chosen == "raw":  # a raw feed's topics have no prefix
        chosen_topics = [{**t, "prefix": ""} for t in chosen_topics]
    if chosen == "jupyter":  # nor can a jupyter feed's be published to
        chosen_topics = [{**t, "publish_access": "nobody"} for t in chosen_topics]
    return {
        "slug": draw(feed_slugs),
        "name": draw(names),
        "endpoints": draw(st.lists(tcp | ipc, min_size=1, max_size=3, unique=True)),
        "bind": bind,
        "framing": chosen,
        "payload": draw(st.sampled_from(framing.PAYLOADS)),
        "frames": frames,
        "separator": draw(st.sampled_from([" ", ":", "|", " :: "])),
        "compression": draw(st.sampled_from(framing.COMPRESSIONS)),
        "jupyter_connection_file": "/run/k.json" if chosen == "jupyter" else "",
        "curve_publishers": draw(st.sampled_from(CURVE_LISTS)),
        "publish_endpoints": draw(st.lists(publish_tcp | ipc, max_size=2, unique=True)),
        "publish_socket": draw(st.sampled_from(schema.PUBLISH_SOCKETS)),
        "publish_bind": publish_bind,
        "enabled": draw(st.booleans()),
        "max_message_size": draw(st.integers(1, schema.MAX_MESSAGE_SIZE_MAX)),
        "topics": chosen_topics,
    }


documents = st.builds(
    lambda fs: {"feeds": fs}, st.lists(feeds(), max_size=3, unique_by=lambda f: f["slug"])
)


def as_catalog(document: dict[str, Any]) -> Catalog:
    """What load_catalog() would read back after an import of the document."""
    return Catalog(
        tuple(
            FeedConfig(
                **{
                    k: v
                    for k, v in f.items()
                    if k
                    not in (
                        "endpoints",
                        "topics",
                        "frames",
                        "curve_publishers",
                        "publish_endpoints",
                    )
                },
                endpoints=tuple(f["endpoints"]),
                publish_endpoints=tuple(f["publish_endpoints"]),
                curve_publishers=tuple(f["curve_publishers"]),
                frames=tuple(f["frames"]),
                topics=tuple(
                    TopicConfig(**{**t, "groups": frozenset(t["groups"])}) for t in f["topics"]
                ),
            )
            for f in document["feeds"]
        )
    )


def canonical(document: dict[str, Any]) -> dict[str, Any]:
    return {
        "feeds": [
            {**f, "topics": sorted(f["topics"], key=lambda t: t["slug"])}
            for f in sorted(document["feeds"], key=lambda f: f["slug"])
        ]
    }


@given(documents)
@settings(suppress_health_check=[HealthCheck.too_slow])  # data generation, on a busy machine
def test_valid_documents_pass_unchanged_through_json(document: dict[str, Any]) -> None:
    assert validate(json.loads(json.dumps(document))) == document


@given(documents)
@settings(suppress_health_check=[HealthCheck.too_slow])  # data generation, on a busy machine
def test_export_of_an_imported_document_is_the_document_sorted(document: dict[str, Any]) -> None:
    exported = export(as_catalog(validate(document)))
    assert exported == canonical(document)
    assert validate(exported) == exported
    assert export(as_catalog(validate(exported))) == exported


def test_every_problem_is_reported_in_the_documents_order() -> None:
    """One pass finds them all: several fields of a feed, a topic that is not an object, a
    missing key (said once, not again as a wrong type), each bad endpoint of a list."""
    doc = copy.deepcopy(BASE)
    feed = doc["feeds"][0]
    feed["bind"] = "no"  # its endpoints are then checked without the wildcard rule
    feed["endpoints"] = ["tcp://*:5556", "udp://x", "tcp://a:1", "tcp://a:1"]
    feed["payload"] = "xml"
    feed["topics"].append("eur2")
    del doc["feeds"][1]["name"]
    doc["feeds"][1]["surprise"] = 1
    with pytest.raises(schema.SchemaErrors) as caught:
        validate(doc)
    assert [(e.path, e.message.split(" ")[0]) for e in caught.value.errors] == [
        ("feeds[0].bind", "must"),
        ("feeds[0].endpoints[1]", "'udp://x':"),
        ("feeds[0].endpoints[3]", "'tcp://a:1'"),
        ("feeds[0].payload", "must"),
        ("feeds[0].topics[1]", "must"),
        ("feeds[1].surprise", "unknown"),
        ("feeds[1].name", "is"),
    ]
    assert str(caught.value).splitlines()[0] == "feeds[0].bind: must be true or false, not a string"
    assert isinstance(caught.value, SchemaError)  # callers that catch one catch them all
    assert caught.value.path == "feeds[0].bind"


def test_a_single_problem_is_a_plain_schema_error() -> None:
    doc = copy.deepcopy(BASE)
    doc["feeds"][0]["payload"] = "xml"
    with pytest.raises(SchemaError) as caught:
        validate(doc)
    assert type(caught.value) is SchemaError


@pytest.mark.parametrize("slug", [*schema.RESERVED_FEED_SLUGS, "Metrics"])
def test_a_feed_cannot_take_the_slug_of_one_of_zmqfeeds_pages(slug: str) -> None:
    doc = copy.deepcopy(BASE)
    doc["feeds"][0]["slug"] = slug
    with pytest.raises(SchemaError) as caught:
        validate(doc)
    assert caught.value.path == "feeds[0].slug"
    assert caught.value.message.startswith(f"{slug!r} is the address of one of zmqfeed's own")
    assert "reserved: healthz, logout, metrics, sse, status, token" in caught.value.message
    doc["feeds"][0]["topics"][0]["slug"] = slug  # a topic has no page of its own: fine
    doc["feeds"][0]["slug"] = f"{slug}-feed"
    assert validate(doc)["feeds"][0]["slug"] == f"{slug}-feed"


def test_the_reserved_slugs_are_zmqfeeds_own_paths() -> None:
    """Every fixed first segment of zmqfeed/urls.py is reserved, and "status" besides."""
    from zmqfeed import urls

    routes = {str(p.pattern).split("/")[0] for p in urls.urlpatterns}
    # A fixed segment that is no slug (status.json) can never be a feed's address.
    fixed = {r for r in routes if r and not r.startswith("<") and re.fullmatch(r"[-\w]+", r)}
    assert fixed <= set(schema.RESERVED_FEED_SLUGS), fixed - set(schema.RESERVED_FEED_SLUGS)
    assert set(schema.RESERVED_FEED_SLUGS) - fixed <= {"status"}
