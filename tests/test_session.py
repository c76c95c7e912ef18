"""The client session (sans I/O): requests and frames in, actions out, without a server."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zmqfeed.core import continuity
from zmqfeed.core.access import ANONYMOUS, Reader
from zmqfeed.core.catalog import Catalog, FeedConfig, TopicConfig
from zmqfeed.core.protocol import Frame, merge, message_head, message_tail
from zmqfeed.core.session import (
    CLOSE_FLOOD,
    CLOSE_FORBIDDEN,
    CLOSE_IDLE,
    CLOSE_NOT_FOUND,
    CLOSE_TOO_LARGE,
    OVER_TOTAL,
    SHED_PROCESS,
    ClientSession,
    Close,
    Join,
    Leave,
    Limits,
    Replay,
    Send,
    Shed,
)

CATALOG = Catalog(
    (
        FeedConfig(
            "f",
            "F",
            ("tcp://127.0.0.1:1",),
            topics=(
                TopicConfig("a", "A", "a"),
                TopicConfig("b", "B", "b"),
                TopicConfig("staff", "S", "s", access="staff"),
            ),
        ),
    )
)
LIMITS = Limits(max_backlog=100, max_frame=4096, rate=10.0, burst=5, max_subscriptions=2)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def session(reader: Reader = ANONYMOUS, limits: Limits = LIMITS) -> ClientSession:
    return ClientSession(reader, limits, clock=Clock())


def envelope(topic: str, seq: int) -> bytes:
    return message_head("f", topic) + b"%d" % seq + message_tail(b'"z"', b"1.0", b"%d" % seq)


def frame(topic: str, first: int, last: int) -> Frame:
    return Frame.of("f", topic, first, [envelope(topic, s) for s in range(first, last + 1)])


def sent(actions) -> list[dict]:
    return [orjson.loads(a.text) for a in actions if isinstance(a, Send)]


def request(s: ClientSession, **frame) -> list:
    s.receive(CATALOG, orjson.dumps(frame).decode())
    return s.actions_to_do()


def subscribe(s: ClientSession, topic: str = "a", since: int | None = None, latest: int = 0):
    actions = request(s, type="subscribe", feed="f", topic=topic, since=since, id=7)
    [join] = actions
    assert join == Join("f", topic, f"zmqfeed.f.{topic}", since, None, 0, 0)
    s.joined("f", topic, Replay(latest, [], latest + 1))
    return sent(s.actions_to_do())


# Requests


def test_ping_is_answered_with_its_id():
    assert sent(request(session(), type="ping", id="x")) == [{"type": "pong", "id": "x"}]


def test_subscribe_joins_then_answers_subscribed_with_the_latest_seq():
    assert subscribe(session(), latest=41) == [
        {"type": "subscribed", "feed": "f", "topic": "a", "seq": 41, "epoch": "", "id": 7}
    ]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "subscribe", "feed": "f", "topic": "nope"}, "not_found"),
        ({"type": "subscribe", "feed": "nope", "topic": "a"}, "not_found"),
        ({"type": "subscribe", "feed": "f", "topic": "staff"}, "forbidden"),
        ({"type": "publish", "feed": "f", "topic": "a", "data": 1}, "forbidden"),
        ({"type": "nonsense"}, "bad_request"),
    ],
)
def test_refused_requests_get_an_error_and_nothing_else(frame, code):
    s = session()
    actions = request(s, **frame, id=3)
    assert [a.error for a in actions if isinstance(a, Send)] == [code]
    assert sent(actions)[0]["id"] == 3 and not s.closed


def test_staff_may_read_a_staff_topic():
    s = session(Reader(authenticated=True, staff=True))
    assert isinstance(request(s, type="subscribe", feed="f", topic="staff")[0], Join)


def test_subscriptions_are_limited():
    s = session()
    subscribe(s, "a")
    subscribe(s, "b")
    s.receive(CATALOG, '{"type":"subscribe","feed":"f","topic":"staff"}')
    s2 = session(Reader(authenticated=True, staff=True), LIMITS)
    subscribe(s2, "a")
    subscribe(s2, "b")
    [error] = request(s2, type="subscribe", feed="f", topic="staff")
    assert error.error == "too_many_subscriptions"


def test_unsubscribe_leaves_the_group_and_says_so():
    s = session()
    subscribe(s)
    actions = request(s, type="unsubscribe", feed="f", topic="a", id=1)
    assert actions[0] == Leave("zmqfeed.f.a")
    assert sent(actions) == [{"type": "unsubscribed", "feed": "f", "topic": "a", "id": 1}]
    assert s.deliver(frame("a", 1, 1)) is None


def test_binary_frames_are_refused():
    s = session()
    s.receive(CATALOG, None, b"\x00")
    assert [a.error for a in s.actions_to_do()] == ["bad_request"]


def test_an_oversize_frame_is_refused_and_closes():
    s = session(limits=Limits(max_client_frame=10))
    s.receive(CATALOG, '{"type":"ping", "pad": "xxxxxxxx"}')
    error, close = s.actions_to_do()
    assert error.error == "too_large" and close == Close(CLOSE_TOO_LARGE)
    s.receive(CATALOG, '{"type":"ping"}')
    assert s.actions_to_do() == []  # closed: nothing more


def test_a_flood_is_slowed_then_closed():
    clock = Clock()
    s = ClientSession(Reader(), Limits(rate=1.0, burst=2), clock=clock)
    codes = []
    for _ in range(6):
        s.receive(CATALOG, '{"type":"ping"}')
        for action in s.actions_to_do():
            codes.append(
                action.code if isinstance(action, Close) else orjson.loads(action.text)["type"]
            )
    assert codes == ["pong", "pong", "error", "error", CLOSE_FLOOD]


def test_the_bucket_refills_with_time():
    clock = Clock()
    s = ClientSession(Reader(), Limits(rate=1.0, burst=1), clock=clock)
    for _ in range(3):
        s.receive(CATALOG, '{"type":"ping"}')
        assert [orjson.loads(a.text)["type"] for a in s.actions_to_do()] == ["pong"]
        clock.now += 1.0


# Per-topic URLs


@pytest.mark.parametrize(("topic", "code"), [("nope", CLOSE_NOT_FOUND), ("staff", CLOSE_FORBIDDEN)])
def test_a_per_topic_url_closes_when_it_may_not_be_read(topic, code):
    s = session()
    s.open(CATALOG, ("f", topic))
    assert s.actions_to_do() == [Close(code)] and s.closed


def test_a_per_topic_url_subscribes_on_open():
    s = session()
    s.open(CATALOG, ("f", "a"))
    assert s.actions_to_do() == [Join("f", "a", "zmqfeed.f.a", None)]


# Access that follows the catalog


def test_a_topic_made_staff_only_is_taken_away_with_an_error():
    s = session()
    subscribe(s, "a")
    subscribe(s, "b")
    feed = CATALOG.feeds[0]
    changed = Catalog(
        (
            FeedConfig(
                "f",
                "F",
                feed.endpoints,
                topics=(TopicConfig("a", "A", "a", access="staff"), feed.topics[1]),
            ),
        )
    )
    s.revalidate(changed)
    actions = s.actions_to_do()
    assert actions[0] == Leave("zmqfeed.f.a")
    assert sent(actions) == [
        {
            "type": "error",
            "code": "forbidden",
            "detail": "access changed",
            "feed": "f",
            "topic": "a",
        },
        {"type": "unsubscribed", "feed": "f", "topic": "a"},
    ]
    assert s.deliver(frame("a", 1, 1)) is None and s.deliver(frame("b", 1, 1)) is not None


def test_a_per_topic_url_closes_when_its_topic_goes():
    s = session()
    s.open(CATALOG, ("f", "a"))
    s.actions_to_do()
    s.joined("f", "a", Replay(0, [], 1))
    s.actions_to_do()
    s.revalidate(Catalog())
    assert s.actions_to_do() == [Close(CLOSE_NOT_FOUND)]


def test_a_failed_join_leaves_nothing_behind():
    s = session()
    request(s, type="subscribe", feed="f", topic="a")
    s.join_failed("f", "a")
    assert s.actions_to_do() == [Leave("zmqfeed.f.a")]
    assert s.subs == {} and s.deliver(frame("a", 1, 1)) is None


def test_closing_leaves_every_group():
    s = session()
    subscribe(s, "a")
    subscribe(s, "b")
    assert s.closing() == [Leave("zmqfeed.f.a"), Leave("zmqfeed.f.b")]


# Frames


def test_subscribed_and_the_replay_come_before_frames_that_arrived_meanwhile():
    s = session()
    request(s, type="subscribe", feed="f", topic="a", since=2)
    assert s.deliver(frame("a", 6, 6)) is None  # held while the join is answered
    s.joined("f", "a", Replay(5, [envelope("a", 3), envelope("a", 4), envelope("a", 5)], 3))
    out = sent(s.actions_to_do())
    assert out[0]["type"] == "subscribed"
    assert [m["seq"] for m in out[1]["messages"]] == [3, 4, 5]
    assert out[2]["seq"] == 6


def test_a_frame_that_overlaps_the_replay_is_trimmed():
    s = session()
    request(s, type="subscribe", feed="f", topic="a", since=0)
    s.deliver(frame("a", 2, 4))  # held: 2 is in the replay too
    s.joined("f", "a", Replay(2, [envelope("a", 1), envelope("a", 2)], 1))
    out = sent(s.actions_to_do())
    assert [m["seq"] for m in out[1]["messages"]] == [1, 2]
    assert [m["seq"] for m in out[2]["messages"]] == [3, 4]


def test_what_the_history_no_longer_has_is_a_gap():
    s = session()
    request(s, type="subscribe", feed="f", topic="a", since=1)
    s.joined("f", "a", Replay(10, [envelope("a", 9), envelope("a", 10)], 9))
    out = sent(s.actions_to_do())
    assert out[1] == {
        "type": "gap",
        "feed": "f",
        "topic": "a",
        "from_seq": 2,
        "to_seq": 8,
        "reason": "history",
    }


def test_a_client_the_process_sheds_is_counted_as_such():
    s = session()
    subscribe(s)
    assert s.deliver(frame("a", 1, 2), queued=OVER_TOTAL) is None
    assert s.actions_to_do() == [Shed("f", "a", 2, SHED_PROCESS)]


def test_a_slow_reader_is_shed_then_told():
    s = session()
    subscribe(s)
    assert s.deliver(frame("a", 1, 1)) is not None
    assert s.deliver(frame("a", 2, 3), queued=1000) is None
    assert s.actions_to_do() == [Shed("f", "a", 2)]
    # The gap is queued first, so the frame queues behind it rather than going out now.
    assert s.deliver(frame("a", 4, 4)) is None
    gap, message = s.actions_to_do()
    assert gap.gap == "slow_consumer"
    assert (orjson.loads(gap.text)["from_seq"], orjson.loads(gap.text)["to_seq"]) == (2, 3)
    assert orjson.loads(message.text)["seq"] == 4


def test_the_hot_path_sends_the_frame_as_it_came():
    s = session()
    subscribe(s)
    f = frame("a", 1, 3)
    assert s.deliver(f) is f.text and not s.outbox


# Any interleaving


def client_view(texts: list[str], topic: str = "a") -> list[tuple]:
    """What a client makes of its frames: ("subscribed", seq), ("msg", seq), ("gap", a, b)."""
    view: list[tuple] = []
    for text in texts:
        obj = orjson.loads(text)
        kind = obj["type"]
        if kind == "subscribed":
            view.append(("subscribed", obj["seq"]))
        elif kind == "gap":
            view.append(("gap", obj["from_seq"], obj["to_seq"]))
        elif kind in ("message", "batch"):
            for m in obj.get("messages", [obj]):
                assert m["topic"] == topic
                view.append(("msg", m["seq"]))
    return view


steps = st.lists(
    st.one_of(
        st.tuples(st.just("publish"), st.integers(1, 4)),  # into the history and the queue
        st.tuples(st.just("deliver"), st.booleans()),  # the queue, merged; slow reader?
        st.tuples(st.just("join")),  # the shell's join and replay complete
    ),
    max_size=30,
)


@settings(max_examples=400, deadline=None)
@given(
    before=st.integers(0, 12),
    since=st.one_of(st.none(), st.integers(0, 14)),
    epoch=st.sampled_from([None, "e", "old"]),
    history=st.integers(0, 6),
    steps=steps,
)
def test_every_seq_once_or_in_a_gap_and_subscribed_first(before, since, epoch, history, steps):
    """Messages published before, during and after a subscribe with or without `since`
    (of this epoch "e", of an old one, or with no epoch), queued and merged as a busy
    server process merges them, with a slow reader at times: the client sees `subscribed`
    first, then every seq after where its replay starts once, in order, or inside a gap;
    `recovered` says whether that start was its `since` with nothing missing."""
    published: list[bytes] = [envelope("a", q) for q in range(1, before + 1)]
    queue: list[Frame] = []
    s = session()
    request(s, type="subscribe", feed="f", topic="a", since=since, epoch=epoch)
    texts: list[str] = []
    joined = False
    recoverable = False

    def take_sends() -> None:
        texts.extend(a.text for a in s.actions_to_do() if isinstance(a, Send))

    def deliver(slow: bool) -> None:
        if queue:
            text = s.deliver(merge(queue), queued=1000 if slow else 0)
            queue.clear()
            take_sends()
            if text is not None:
                texts.append(text)

    def epoch_frame(first: int, last: int) -> Frame:
        return Frame.of("f", "a", first, published[first - 1 : last], epoch="e")

    for step in steps:
        if step[0] == "publish":
            first = len(published) + 1
            published.extend(envelope("a", q) for q in range(first, first + step[1]))
            queue.append(epoch_frame(first, first + step[1] - 1))
        elif step[0] == "deliver":
            deliver(step[1])
        elif not joined:
            joined = True
            latest = len(published)
            kept = published[max(0, latest - history) :]
            begin = continuity.start(since, epoch, "e", latest)
            kept = kept[max(0, len(kept) - (latest - begin)) :]
            s.joined("f", "a", Replay(latest, kept, latest - len(kept) + 1, "e"))
            take_sends()
            recoverable = (
                since is not None
                and epoch != "old"
                and since <= latest
                and latest - since <= min(history, latest)
            )
    if not joined:
        return
    first = len(published) + 1
    published.append(envelope("a", first))
    queue.append(epoch_frame(first, first))
    deliver(False)  # a last frame read in time reports whatever was shed before it

    view = client_view(texts)
    assert view[0][0] == "subscribed"
    subscribed = orjson.loads(texts[0])
    assert subscribed["epoch"] == "e"
    assert subscribed.get("recovered") == (None if since is None else recoverable)
    latest = view[0][1]
    start = continuity.start(since, epoch, "e", latest) + 1
    covered = []
    for item in view[1:]:
        assert item[0] != "subscribed"
        covered.extend([item[1]] if item[0] == "msg" else range(item[1], item[2] + 1))
    assert covered == list(range(start, len(published) + 1))


def test_a_numbering_that_starts_again_while_subscribed_is_told_and_followed():
    """A new epoch arrives live (a wiped Redis, a subscriber with no history): the client
    gets `subscribed` with `recovered: false` and the new epoch, then the new seqs."""
    s = session()
    request(s, type="subscribe", feed="f", topic="a")
    s.joined("f", "a", Replay(5, [], 6, "old"))
    s.actions_to_do()
    assert s.deliver(Frame.of("f", "a", 6, [envelope("a", 6)], epoch="old")) is not None
    assert s.deliver(Frame.of("f", "a", 1, [envelope("a", 1)], epoch="new")) is None
    reset, message = sent(s.actions_to_do())
    assert reset == {
        "type": "subscribed",
        "feed": "f",
        "topic": "a",
        "seq": 0,
        "epoch": "new",
        "recovered": False,
    }
    assert message["seq"] == 1
    # And from then on, the fast path again.
    assert s.deliver(Frame.of("f", "a", 2, [envelope("a", 2)], epoch="new")) is not None


requests = st.lists(
    st.one_of(
        st.just({"type": "ping"}),
        st.builds(
            lambda kind, topic: {"type": kind, "feed": "f", "topic": topic},
            st.sampled_from(["subscribe", "unsubscribe"]),
            st.sampled_from(["a", "b", "staff", "nope"]),
        ),
        st.just({"type": "publish", "feed": "f", "topic": "a", "data": 1}),
        st.just({"type": "bogus"}),
    ),
    max_size=20,
)


@settings(max_examples=200, deadline=None)
@given(requests)
def test_every_request_is_answered_once_in_order(frames):
    """Any sequence of requests (joins done at once): one reply each, in the order asked."""
    s = ClientSession(ANONYMOUS, Limits(max_subscriptions=1), clock=Clock())
    replies = []
    for number, frame in enumerate(frames):
        s.receive(CATALOG, orjson.dumps({**frame, "id": number}).decode())
        for action in s.actions_to_do():
            if isinstance(action, Join):
                s.joined(action.feed, action.topic, Replay(0, [], 1))
                replies.extend(orjson.loads(a.text)["id"] for a in s.actions_to_do())
            elif isinstance(action, Send):
                replies.append(orjson.loads(action.text)["id"])
    assert replies == list(range(len(frames)))


def test_a_session_that_sends_and_subscribes_nothing_expires() -> None:
    clock = Clock()
    s = ClientSession(ANONYMOUS, Limits(idle_timeout=10.0), clock=clock)
    clock.now = 9.5
    assert not s.expire()
    s.receive(CATALOG, '{"type": "ping"}')  # a frame counts as activity
    s.actions_to_do()
    clock.now = 19.0
    assert not s.expire()
    clock.now = 19.5
    assert s.expire()
    error, close = s.actions_to_do()
    assert isinstance(error, Send) and error.error == "idle"
    assert close == Close(CLOSE_IDLE) and s.closed
    assert not s.expire()  # once


def test_a_subscribed_session_never_idles_and_losing_the_last_topic_restarts_the_clock() -> None:
    clock = Clock()
    s = ClientSession(ANONYMOUS, Limits(idle_timeout=10.0), clock=clock)
    s.receive(CATALOG, '{"type": "subscribe", "feed": "f", "topic": "a"}')
    s.joined("f", "a", Replay(0, [], 1))
    clock.now = 1000.0
    assert not s.expire()
    without_a = Catalog((FeedConfig("f", "F", ("tcp://127.0.0.1:1",)),))
    s.revalidate(without_a)
    assert not s.subs
    clock.now = 1009.0
    assert not s.expire()
    clock.now = 1010.0
    assert s.expire()


def test_idle_timeout_zero_never_expires() -> None:
    clock = Clock()
    s = ClientSession(ANONYMOUS, Limits(idle_timeout=0), clock=clock)
    clock.now = 1e9
    assert not s.expire()


def test_what_each_connection_holds_has_no_instance_dict():
    """Thousands of idle connections each hold a session, its subscriptions and limits: with
    slots none of them carries a dict, and the outbox is a list (an empty deque costs a
    64-slot block)."""
    s = session()
    s.open(CATALOG, ("f", "a"))
    [sub] = s.subs.values()
    for obj in (s, sub, s.limits, s._bucket):
        assert not hasattr(obj, "__dict__"), type(obj).__name__
    assert type(s.outbox) is list


def test_connections_share_one_limits(settings):
    from zmqfeed import conf

    assert conf.limits() is conf.limits()
    settings.ZMQFEED = {"MAX_SUBSCRIPTIONS": 7}
    assert conf.limits().max_subscriptions == 7
