"""The Fanout's merging of queued frames (pure), checked against what clients parse."""

import orjson
from hypothesis import given
from hypothesis import strategies as st

from zmqfeed.core.protocol import batch_frame, message_head, message_tail
from zmqfeed.fanout import coalesce

LIMIT = 1024 * 1024


def frame(group: str, first: int, last: int) -> dict:
    envelopes = [
        message_head("f", group) + b"%d" % seq + message_tail(b'"z"', b"1.0", b"%d" % seq)
        for seq in range(first, last + 1)
    ]
    text = batch_frame(envelopes)
    return {
        "type": "zmqfeed.frame",
        "group": group,
        "feed": "f",
        "topic": group,
        "first": first,
        "last": last,
        "text": text.decode(),
        "size": len(text),
    }


def seqs(event: dict) -> list[int]:
    obj = orjson.loads(event["text"])
    messages = obj["messages"] if obj["type"] == "batch" else [obj]
    return [m["seq"] for m in messages]


def test_consecutive_frames_of_a_group_become_one_batch():
    [merged] = coalesce([frame("a", 1, 1), frame("a", 2, 4), frame("a", 5, 5)], LIMIT)
    assert (merged["first"], merged["last"]) == (1, 5)
    assert seqs(merged) == [1, 2, 3, 4, 5]
    assert [m["data"] for m in orjson.loads(merged["text"])["messages"]] == [1, 2, 3, 4, 5]


def test_a_gap_is_not_merged_over():
    out = coalesce([frame("a", 1, 2), frame("a", 5, 6)], LIMIT)
    assert [(e["first"], e["last"]) for e in out] == [(1, 2), (5, 6)]


def test_groups_are_merged_separately():
    out = coalesce([frame("a", 1, 1), frame("b", 7, 7), frame("a", 2, 2), frame("b", 8, 9)], LIMIT)
    assert {e["group"]: seqs(e) for e in out} == {"a": [1, 2], "b": [7, 8, 9]}


@given(
    st.lists(st.tuples(st.sampled_from("abc"), st.integers(1, 3), st.booleans()), max_size=30),
    st.integers(60, 2000),
)
def test_every_message_survives_once_in_order_within_the_limit(spec, limit):
    next_seq = {"a": 1, "b": 1, "c": 1}
    events = []
    for group, size, skip in spec:
        first = next_seq[group] + (2 if skip else 0)
        events.append(frame(group, first, first + size - 1))
        next_seq[group] = first + size
    out = coalesce(events, limit)
    for e in out:
        assert e["size"] == len(e["text"].encode())
        assert e["size"] <= max(limit, *(f["size"] for f in events if f["first"] == e["first"]))
    for group in "abc":
        before = [s for e in events if e["group"] == group for s in seqs(e)]
        after = [s for e in out if e["group"] == group for s in seqs(e)]
        assert after == before
        for e in out:
            assert seqs(e) == list(range(e["first"], e["last"] + 1))


def test_frames_are_not_merged_past_the_limit():
    events = [frame("a", 1, 3), frame("a", 4, 6), frame("a", 7, 9)]
    two = events[0]["size"] + events[1]["size"]  # room for two merged, not three
    out = coalesce(events, two)
    assert [(e["first"], e["last"]) for e in out] == [(1, 6), (7, 9)]
    assert out[0]["size"] == len(out[0]["text"].encode()) <= two


def test_frames_that_do_not_say_their_size_are_left_alone():
    events = [frame("a", 1, 1), frame("a", 2, 2)]
    del events[1]["size"]
    assert coalesce(events, LIMIT) == events
