"""`publish` in the client session (sans I/O): who may, how fast, what the feed can carry,
and the frames handed to the shell; the wire bytes themselves are test_encoding's."""

from __future__ import annotations

import base64

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zmqfeed.core.access import ANONYMOUS, Reader
from zmqfeed.core.catalog import Catalog, FeedConfig, TopicConfig
from zmqfeed.core.session import ClientSession, Limits, Publish, Send

OUT = ("tcp://127.0.0.1:2",)
CATALOG = Catalog(
    (
        FeedConfig(
            "f",
            "F",
            ("tcp://127.0.0.1:1",),
            publish_endpoints=OUT,
            max_message_size=100,
            topics=(
                TopicConfig("cmd", "Commands", "cmd.", publish_access="public"),
                TopicConfig("users", "U", "u", publish_access="authenticated"),
                TopicConfig("ops", "O", "o", publish_access="staff", access="staff"),
                TopicConfig("team", "T", "t", publish_access="group", groups=frozenset({"g"})),
                TopicConfig("read", "R", "r"),  # publish_access nobody
                TopicConfig("one", "E", "exact", match="exact", publish_access="public"),
                # Write-only: nobody reads it here, anyone may send commands to it.
                TopicConfig("wo", "W", "w", access="staff", publish_access="public"),
            ),
        ),
        FeedConfig(
            "noout",
            "No outbound socket",
            ("tcp://127.0.0.1:3",),
            topics=(TopicConfig("a", "A", "a", publish_access="public"),),
        ),
        FeedConfig(
            "log",
            "Text, prefix framing",
            ("tcp://127.0.0.1:4",),
            framing="prefix",
            payload="text",
            publish_endpoints=OUT,
            topics=(TopicConfig("line", "L", "log", publish_access="public"),),
        ),
        FeedConfig(
            "bin",
            "Binary",
            ("tcp://127.0.0.1:5",),
            payload="binary",
            publish_endpoints=OUT,
            topics=(TopicConfig("b", "B", "b", publish_access="public"),),
        ),
    )
)
USER = Reader(authenticated=True)
STAFF = Reader(authenticated=True, staff=True)
SUPERUSER = Reader(authenticated=True, superuser=True)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def session(reader: Reader = ANONYMOUS, **limits) -> ClientSession:
    limits = {"rate": 1000.0, "burst": 1000, **limits}
    return ClientSession(reader, Limits(**limits), clock=Clock())


def publish(s: ClientSession, feed: str = "f", topic: str = "cmd", data=None, **more) -> list:
    frame = {"type": "publish", "feed": feed, "topic": topic, "data": data, "id": 5, **more}
    s.receive(CATALOG, orjson.dumps(frame).decode())
    return s.actions_to_do()


def refused(actions: list) -> str | None:
    errors = [orjson.loads(a.text) for a in actions if isinstance(a, Send)]
    if not errors:
        return None
    [error] = errors
    assert error["type"] == "error" and error["id"] == 5
    return error["code"]


def test_a_publish_is_framed_as_the_feed_reads_it():
    [action] = publish(session(), data={"go": 1}, subtopic="start")
    assert action == Publish("f", "cmd", b"cmd.start", (b"cmd.start", b'{"go":1}'), 5)
    assert action.size == len(b"cmd.start") + len(b'{"go":1}')
    [action] = publish(session(), "log", "line", "hello there")
    assert action.frames == (b"log hello there",)
    [action] = publish(session(), "bin", "b", base64.b64encode(b"\x00\xff").decode())
    assert action.frames == (b"b", b"\x00\xff")


@pytest.mark.parametrize(
    ("reader", "topic", "code"),
    [
        (ANONYMOUS, "cmd", None),
        (ANONYMOUS, "users", "forbidden"),  # anonymous on an authenticated topic
        (USER, "users", None),
        (USER, "ops", "forbidden"),
        (STAFF, "ops", None),
        (USER, "team", "forbidden"),
        (Reader(authenticated=True, groups=frozenset({"g"})), "team", None),
        (SUPERUSER, "team", None),
        (SUPERUSER, "read", "forbidden"),  # nobody is nobody, superusers too
        (ANONYMOUS, "read", "forbidden"),
        (ANONYMOUS, "wo", None),  # publishing does not need reading
        (ANONYMOUS, "nope", "not_found"),
    ],
)
def test_who_may_publish(reader, topic, code):
    actions = publish(session(reader), topic=topic, data=1)
    assert refused(actions) == code
    if code is None:
        assert [type(a) for a in actions] == [Publish]


def test_refusals_of_a_topic_are_publishes_too_for_the_audit():
    actions = publish(session(), topic="read", data=1)
    assert [a.refused for a in actions if isinstance(a, Publish)] == ["forbidden"]
    # An unknown topic is the client's name, not a topic: counted as an error only.
    assert not [a for a in publish(session(), topic="nope", data=1) if isinstance(a, Publish)]


def test_a_feed_without_publish_endpoints_refuses():
    assert refused(publish(session(), "noout", "a", data=1)) == "forbidden"


def test_publishes_are_rate_limited_per_connection_and_the_connection_stays():
    s = session(publish_rate=1.0, publish_burst=3)
    codes = [refused(publish(s, data=n)) for n in range(5)]
    assert codes == [None, None, None, "rate_limited", "rate_limited"]
    assert not s.closed
    s._clock.now += 1.0  # type: ignore[attr-defined]
    assert refused(publish(s, data=9)) is None


@pytest.mark.parametrize(
    ("feed", "topic", "data", "more", "code"),
    [
        ("f", "cmd", "x" * 200, {}, "too_large"),  # over the feed's max_message_size
        ("log", "line", {"a": 1}, {}, "bad_request"),  # a text feed carries strings
        ("bin", "b", "not base64!", {}, "bad_request"),
        ("f", "one", 1, {"subtopic": "x"}, "bad_request"),  # an exact topic
        ("log", "line", "hi", {"subtopic": "a b"}, "bad_request"),  # the separator
        ("f", "cmd", 1, {"subtopic": 3}, "bad_request"),
        ("f", "cmd", 1, {"subtopic": "é" * 200}, "bad_request"),  # over 255 bytes
    ],
)
def test_what_the_feed_cannot_carry_is_refused(feed, topic, data, more, code):
    s = session()
    assert refused(publish(s, feed, topic, data, **more)) == code
    assert not s.closed
    assert refused(publish(s, "f", "cmd", 1)) is None  # and the next one goes


def test_the_outcome_is_answered_with_the_id():
    s = session()
    [action] = publish(s, data=1)
    s.published(action)
    [reply] = s.actions_to_do()
    assert orjson.loads(reply.text) == {"type": "published", "feed": "f", "topic": "cmd", "id": 5}
    s.published(action, "unavailable", "no subscriber process took it")
    [reply] = s.actions_to_do()
    assert reply.error == "unavailable"
    assert orjson.loads(reply.text)["detail"] == "no subscriber process took it"


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=8,
    )
)
def test_any_json_a_client_sends_reaches_a_json_feed_as_sent(data):
    actions = publish(session(), data=data)
    if refused(actions) == "too_large":
        return
    [action] = actions
    assert orjson.loads(action.frames[1]) == data
