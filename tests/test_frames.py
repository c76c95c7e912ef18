"""Frames of messages (pure): built, merged, trimmed by offset, and parsed as clients do."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zmqfeed.core.protocol import (
    FRAME_EVENT,
    Frame,
    coalesce,
    frames,
    merge,
    message_head,
    message_tail,
)

LIMIT = 1024 * 1024

# Data that looks like an envelope must not confuse trimming: frames are cut by offset.
TRICKY = b'{"type":"message","feed":"f","topic":"a","seq":%d,"zmq_topic":"z"}'


def envelope(topic: str, seq: int, data: bytes | None = None) -> bytes:
    return (
        message_head("f", topic) + b"%d" % seq + message_tail(b'"z"', b"1.0", data or b"%d" % seq)
    )


def frame(topic: str, first: int, last: int) -> Frame:
    return Frame.of("f", topic, first, [envelope(topic, s) for s in range(first, last + 1)])


def seqs(frame: Frame) -> list[int]:
    obj = orjson.loads(frame.data)
    messages = obj["messages"] if obj["type"] == "batch" else [obj]
    return [m["seq"] for m in messages]


def test_one_envelope_is_its_own_frame_and_several_a_batch():
    one = frame("a", 3, 3)
    assert orjson.loads(one.data)["type"] == "message"
    assert (one.first, one.last) == (3, 3)
    many = frame("a", 3, 5)
    assert orjson.loads(many.data)["type"] == "batch"
    assert seqs(many) == [3, 4, 5] and (many.first, many.last) == (3, 5)
    assert many.text == many.data.decode() and many.text is many.text  # decoded once


@given(
    st.lists(st.binary(max_size=20).map(lambda b: orjson.dumps(b.hex())), min_size=1, max_size=8)
)
def test_envelopes_come_back_as_they_went_in(datas):
    envelopes = [envelope("a", i + 1, d) for i, d in enumerate(datas)]
    assert Frame.of("f", "a", 1, envelopes).envelopes() == envelopes


def test_an_event_carries_the_frame_through_the_channel_layer():
    original = frame("a", 1, 4)
    event = original.event("zmqfeed.f.a")
    assert event["type"] == FRAME_EVENT and event["group"] == "zmqfeed.f.a"
    assert all(isinstance(v, (str, bytes, int)) for v in event.values())  # msgpack, shallow copy
    back = Frame.from_event(event)
    assert (back.feed, back.topic, back.first, back.last) == ("f", "a", 1, 4)
    assert back.data == original.data and back.envelopes() == original.envelopes()


@pytest.mark.parametrize(("seq", "expected"), [(0, [1, 2, 3, 4]), (2, [3, 4]), (3, [4]), (4, None)])
def test_after_keeps_the_messages_past_a_seq(seq, expected):
    kept = frame("a", 1, 4).after(seq)
    assert (kept and seqs(kept)) == expected if expected else kept is None
    if kept:
        assert kept.first == expected[0]


def test_after_cuts_by_offset_even_when_data_looks_like_an_envelope():
    envelopes = [envelope("a", 1, TRICKY % 2), envelope("a", 2, TRICKY % 3), envelope("a", 3)]
    kept = Frame.of("f", "a", 1, envelopes).after(1)
    assert kept is not None and kept.envelopes() == envelopes[1:]
    assert seqs(kept) == [2, 3]


def test_frames_are_cut_to_the_limit():
    envelopes = [envelope("a", s) for s in range(1, 11)]
    cut = frames("f", "a", 1, envelopes, 3 * len(envelopes[0]) + 40)
    assert len(cut) > 1
    assert [s for f in cut for s in seqs(f)] == list(range(1, 11))
    assert all(f.size <= 3 * len(envelopes[0]) + 40 for f in cut)


def test_consecutive_frames_of_a_group_become_one_batch():
    [(group, merged)] = coalesce(
        [("a", frame("a", 1, 1)), ("a", frame("a", 2, 4)), ("a", frame("a", 5, 5))], LIMIT
    )
    assert group == "a" and (merged.first, merged.last) == (1, 5)
    assert seqs(merged) == [1, 2, 3, 4, 5]
    assert [m["data"] for m in orjson.loads(merged.data)["messages"]] == [1, 2, 3, 4, 5]


def test_a_gap_is_not_merged_over():
    out = coalesce([("a", frame("a", 1, 2)), ("a", frame("a", 5, 6))], LIMIT)
    assert [(f.first, f.last) for _, f in out] == [(1, 2), (5, 6)]


def test_groups_are_merged_separately():
    pending = [
        ("a", frame("a", 1, 1)),
        ("b", frame("b", 7, 7)),
        ("a", frame("a", 2, 2)),
        ("b", frame("b", 8, 9)),
    ]
    assert {g: seqs(f) for g, f in coalesce(pending, LIMIT)} == {"a": [1, 2], "b": [7, 8, 9]}


@given(
    st.lists(st.tuples(st.sampled_from("abc"), st.integers(1, 3), st.booleans()), max_size=30),
    st.integers(60, 2000),
)
def test_every_message_survives_once_in_order_within_the_limit(spec, limit):
    next_seq = {"a": 1, "b": 1, "c": 1}
    pending = []
    for group, size, skip in spec:
        first = next_seq[group] + (2 if skip else 0)
        pending.append((group, frame(group, first, first + size - 1)))
        next_seq[group] = first + size
    out = coalesce(pending, limit)
    for _, f in out:
        assert f.size <= max(limit, *(p.size for _, p in pending if p.first == f.first))
        assert seqs(f) == list(range(f.first, f.last + 1))
        assert [orjson.loads(e)["seq"] for e in f.envelopes()] == seqs(f)  # offsets stay true
    for group in "abc":
        before = [s for g, f in pending if g == group for s in seqs(f)]
        after = [s for g, f in out if g == group for s in seqs(f)]
        assert after == before


@given(st.lists(st.integers(1, 4), min_size=1, max_size=6), st.integers(0, 25))
def test_merged_then_trimmed_is_what_was_after(sizes, cut):
    run, first = [], 1
    for size in sizes:
        run.append(frame("a", first, first + size - 1))
        first += size
    merged = merge(run)
    assert merged.envelopes() == [e for f in run for e in f.envelopes()]
    kept = merged.after(cut)
    expected = [s for s in range(1, first) if s > cut]
    assert (seqs(kept) if kept else []) == expected


def test_frames_are_not_merged_past_the_limit():
    pending = [("a", frame("a", 1, 3)), ("a", frame("a", 4, 6)), ("a", frame("a", 7, 9))]
    two = pending[0][1].size + pending[1][1].size  # room for two merged, not three
    out = coalesce(pending, two)
    assert [(f.first, f.last) for _, f in out] == [(1, 6), (7, 9)]
    assert out[0][1].size <= two
