"""The router (sans I/O): ZeroMQ messages in, numbered envelopes and frames per topic out."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from zmqfeed.core.catalog import FeedConfig, TopicConfig
from zmqfeed.core.continuity import Numbering
from zmqfeed.core.router import Router, subscriptions

LIMIT = 2048


def feed(*topics: TopicConfig, framing: str = "multipart", max_size: int = 1 << 20) -> FeedConfig:
    return FeedConfig(
        "f", "F", ("tcp://127.0.0.1:1",), framing=framing, max_message_size=max_size, topics=topics
    )


FEED = feed(
    TopicConfig("a", "A", "a"), TopicConfig("ab", "AB", "ab"), TopicConfig("all", "All", "")
)


def router(config: FeedConfig = FEED, seqs: dict[str, Numbering] | None = None) -> Router:
    r = Router(config, LIMIT)
    r.configure(config, seqs or {})
    return r


def messages(routed, topic: str) -> list[dict]:
    [batch] = [t for t in routed.topics if t.route.topic == topic] or [None]
    if batch is None:
        return []
    out = []
    for frame in batch.frames:
        obj = orjson.loads(frame.data)
        out.extend(obj.get("messages", [obj]))
    return out


def test_a_message_goes_to_every_topic_it_starts_with_each_with_its_own_seq():
    routed = router().route([[b"abc", b"1"], [b"b", b"2"], [b"a", b"3"]], 1.5)
    assert [(m["zmq_topic"], m["seq"], m["data"]) for m in messages(routed, "a")] == [
        ("abc", 1, 1),
        ("a", 2, 3),
    ]
    assert [m["seq"] for m in messages(routed, "ab")] == [1]
    assert [m["seq"] for m in messages(routed, "all")] == [1, 2, 3]
    assert messages(routed, "all")[0] == {
        "type": "message",
        "feed": "f",
        "topic": "all",
        "seq": 1,
        "zmq_topic": "abc",
        "ts": 1.5,
        "data": 1,
    }


def test_numbering_goes_on_across_batches_and_from_the_given_seqs():
    r = router(seqs={"f/a": Numbering("e1", 41)})
    r.route([[b"a", b"1"]], 0.0)
    routed = r.route([[b"a", b"2"]], 0.0)
    assert [m["seq"] for m in messages(routed, "a")] == [43]
    assert r.seqs["f/a"] == ("e1", 43)
    [batch] = [t for t in routed.topics if t.route.topic == "a"]
    assert {frame.epoch for frame in batch.frames} == {"e1"}


def test_a_topic_with_no_numbering_starts_at_zero_in_a_new_epoch_of_its_own():
    first, second = router(), router()
    assert first.seqs["f/a"].seq == 0 and first.seqs["f/a"].epoch
    # A process started again is a new epoch: its seqs are not the old ones.
    assert first.seqs["f/a"].epoch != second.seqs["f/a"].epoch
    assert ":" not in first.seqs["f/a"].epoch  # SSE ids are epoch:seq


def test_reconfiguring_keeps_the_seqs_of_the_topics_that_stay():
    r = router()
    r.route([[b"a", b"1"]] * 3, 0.0)
    changed = feed(TopicConfig("a", "A", "a"), TopicConfig("new", "N", "n"))
    assert r.unnumbered(changed) == ["f/new"]
    epoch = r.seqs["f/a"].epoch
    r.configure(changed, {"f/new": Numbering("e2", 7)})
    assert r.seqs == {"f/a": (epoch, 3), "f/new": ("e2", 7)}
    routed = r.route([[b"a", b"1"], [b"n", b"1"], [b"ab", b"1"]], 0.0)
    assert [m["seq"] for m in messages(routed, "a")] == [4, 5]
    assert [m["seq"] for m in messages(routed, "new")] == [8]


def test_what_cannot_be_carried_is_dropped_by_reason_and_the_rest_goes_on():
    r = router(feed(TopicConfig("a", "A", "a"), max_size=50))
    routed = r.route([[b"a", b"{"], [b"a"], [b"a", b"1" * 60], [b"a", b"2"], [b"b", b"3"]], 0.0)
    assert routed.dropped == {"invalid_json": 1, "too_large": 1, "unrouted": 1}
    assert set(routed.examples) == set(routed.dropped)  # each reason with its own example
    assert "JSON" in routed.examples["invalid_json"] and "limit" in routed.examples["too_large"]
    assert "'b'" in routed.examples["unrouted"]
    # A topic-only message is a message with no data.
    assert [(m["seq"], m["data"]) for m in messages(routed, "a")] == [(1, None), (2, 2)]


def test_an_envelope_no_frame_can_carry_is_dropped_as_too_large():
    routed = router().route([[b"a", b'"' + b"x" * LIMIT + b'"'], [b"a", b"1"]], 0.0)
    assert routed.dropped == {"too_large": 1}
    assert [m["seq"] for m in messages(routed, "a")] == [1]


def test_the_history_gets_each_topics_envelopes_with_their_first_seq():
    routed = router(seqs={"f/a": Numbering("e1", 10)}).route([[b"a", b"1"], [b"a", b"2"]], 5.0)
    kept = routed.history()["f/a"]
    assert (kept.epoch, kept.first, kept.last, kept.ts) == ("e1", 11, 12, 5.0)
    assert [orjson.loads(e)["seq"] for e in kept.envelopes] == [11, 12]


def test_socket_filters_are_the_prefixes_or_everything():
    assert subscriptions(feed(TopicConfig("a", "A", "a"), TopicConfig("b", "B", "bb"))) == {
        b"a",
        b"bb",
    }
    assert subscriptions(FEED) == {b""}  # a topic with an empty prefix takes everything
    assert subscriptions(feed(TopicConfig("a", "A", "a"), framing="raw")) == {b""}
    assert subscriptions(feed()) == set()


zmq_messages = st.lists(
    st.tuples(
        st.sampled_from([b"a", b"ab", b"abc", b"b", b"", b"\xff"]),
        st.one_of(
            st.integers(0, 10**6).map(lambda i: b"%d" % i),
            st.just(b"{bad"),
            st.binary(max_size=300),
        ),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(zmq_messages, max_size=4))
def test_any_batches_number_every_topic_without_holes_in_frames_within_the_limit(batches):
    r = router()
    seen: dict[str, list[int]] = {"a": [], "ab": [], "all": []}
    for batch in batches:
        routed = r.route([list(m) for m in batch], 0.0)
        valid = [t for t, p in batch if _is_json(p)]
        for topic, prefix in (("a", b"a"), ("ab", b"ab"), ("all", b"")):
            got = messages(routed, topic)
            assert [m["zmq_topic"].encode("utf-8", "surrogateescape") for m in got] == [
                t.decode("utf-8", "backslashreplace").encode("utf-8", "surrogateescape")
                for t in valid
                if t.startswith(prefix)
            ]
            seen[topic].extend(m["seq"] for m in got)
        for t in routed.topics:
            assert all(f.size <= LIMIT for f in t.frames)
            assert [q for f in t.frames for q in range(f.first, f.last + 1)] == list(
                range(t.first, t.first + len(t.envelopes))
            )
        unrouted = sum(1 for t, p in batch if _is_json(p) and not t.startswith(b""))
        assert sum(routed.dropped.values()) == len(batch) - len(valid) + unrouted
    for topic, numbers in seen.items():
        assert numbers == list(range(1, len(numbers) + 1)), topic


def _is_json(payload: bytes) -> bool:
    try:
        orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    return True


# Real publishers: the matching rule, exact topics, publisher sequence numbers


def test_prefix_framing_matches_the_whole_frame_as_a_sub_filter_does():
    seed = feed(
        TopicConfig("one", "One", "1 "),  # the ZeroMQ idiom: topic 1, not 10
        TopicConfig("ones", "Ones", "1"),  # 1, 10, 11, …
        TopicConfig("exact", "Exact", "10", match="exact"),
        framing="prefix",
    )
    r = router(seed)
    routed = r.route([[b"1 5"], [b"10 6"], [b"11 7"], [b"2 8"]], 0.0)
    assert [m["data"] for m in messages(routed, "one")] == [5]
    assert [m["data"] for m in messages(routed, "ones")] == [5, 6, 7]
    assert [(m["zmq_topic"], m["data"]) for m in messages(routed, "exact")] == [("10", 6)]
    assert routed.dropped == {"unrouted": 1}
    assert subscriptions(seed) == {b"1 ", b"1", b"10 "}


def test_exact_topics_of_a_multipart_feed():
    exact = feed(TopicConfig("t", "T", "tick", match="exact"), TopicConfig("p", "P", "tick."))
    routed = router(exact).route([[b"tick", b"1"], [b"ticker", b"2"], [b"tick.x", b"3"]], 0.0)
    assert [m["data"] for m in messages(routed, "t")] == [1]
    assert [m["data"] for m in messages(routed, "p")] == [3]
    assert routed.dropped == {"unrouted": 1}  # the SUB filter "tick" let "ticker" in
    assert subscriptions(exact) == {b"tick", b"tick."}


def test_a_jump_in_the_publishers_numbers_is_counted_per_topic():
    bitcoin = FeedConfig(
        "btc",
        "B",
        ("tcp://127.0.0.1:28332",),
        payload="hex",
        frames=("payload", "seq_le32"),
        topics=(TopicConfig("all", "All", ""),),
    )
    r = router(bitcoin)

    def msg(topic: bytes, seq: int) -> list[bytes]:
        return [topic, b"\x01" * 32, seq.to_bytes(4, "little")]

    first = r.route([msg(b"hashblock", 10), msg(b"hashtx", 500), msg(b"hashblock", 11)], 0.0)
    assert first.upstream_lost == 0
    assert [m["upstream_seq"] for m in messages(first, "all")] == [10, 500, 11]
    later = r.route([msg(b"hashblock", 15), msg(b"hashtx", 501), msg(b"hashblock", 3)], 0.0)
    assert later.upstream_lost == 3  # 12, 13, 14; a restart (3) is not a loss


def test_raw_feeds_take_everything_into_their_empty_prefix_topics():
    raw = feed(TopicConfig("all", "All", ""), framing="raw")
    assert subscriptions(raw) == {b""}
    assert [m["zmq_topic"] for m in messages(router(raw).route([[b"7"]], 0.0), "all")] == [""]
