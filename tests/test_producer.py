"""The pure parts of zmq_publish: frames, line checks, synthetic data, pacing, file following."""

from __future__ import annotations

import math
import os

import orjson
import pytest
import zmq
from hypothesis import given
from hypothesis import strategies as st

from zmqfeed.core.framing import split_frames
from zmqfeed.producer import (
    FileFollower,
    Pacer,
    Synthetic,
    check_line,
    framer,
    join_topic,
    topic_problem,
)

# --- framer -------------------------------------------------------------------------------


def sent_frames(framing: str, topic: bytes, payload: bytes) -> list[tuple[bytes, int]]:
    """(frame, flags) as framer hands them to a socket's send."""
    calls: list[tuple[bytes, int]] = []
    framer(framing, lambda frame, flags: calls.append((frame, flags)))(topic, payload)
    return calls


def test_framer_per_framing():
    assert sent_frames("multipart", b"EUR", b"1.05") == [(b"EUR", zmq.SNDMORE), (b"1.05", 0)]
    assert sent_frames("prefix", b"EUR", b"1.05 x") == [(b"EUR 1.05 x", 0)]
    assert sent_frames("raw", b"EUR", b"1.05") == [(b"1.05", 0)]
    with pytest.raises(ValueError, match="unknown framing"):
        framer("json", print)


@given(topic=st.binary().filter(lambda t: b" " not in t), payload=st.binary())
def test_framer_output_reads_back_by_the_subscriber(topic, payload):
    for framing in ("multipart", "prefix", "raw"):
        frames = [frame for frame, _ in sent_frames(framing, topic, payload)]
        expected_topic = b"" if framing == "raw" else topic
        assert split_frames(framing, frames) == (expected_topic, payload)


def test_topic_problem_only_for_spaces_in_prefix_framing():
    assert topic_problem("prefix", "a b") is not None
    assert topic_problem("prefix", "a.b") is None
    assert topic_problem("multipart", "a b") is None


def test_join_topic():
    assert join_topic("web1", "access.log") == "web1.access.log"
    assert join_topic("", "access.log") == "access.log"


# --- check_line ---------------------------------------------------------------------------


def test_check_line_strips_end_of_line_and_skips_blank():
    assert check_line(b"hello world\n", json=False) == b"hello world"
    assert check_line(b"dos\r\n", json=False) == b"dos"
    assert check_line(b"  indented \n", json=False) == b"  indented "
    assert check_line(b"\n", json=False) is None
    assert check_line(b" \t\r\n", json=True) is None


def test_check_line_json():
    assert check_line(b'{"a": [1, 2]}\n', json=True) == b'{"a": [1, 2]}'
    assert check_line(b"123456789012345678901234567890\n", json=True) is not None  # big int
    for bad in (b"{oops}\n", b"NaN\n", b'{"a": 1} x\n', b"\xff\n"):
        with pytest.raises(ValueError, match="not JSON"):
            check_line(bad, json=True)
    assert check_line(b"{oops}\n", json=False) == b"{oops}"


# --- Synthetic ----------------------------------------------------------------------------


def test_synthetic_json_topics_in_turn_with_per_topic_counts():
    data = Synthetic("demo", json=True, seed=1)
    messages = [data.message(1000.0 + i) for i in range(7)]
    assert [t for t, _ in messages] == [b"demo.sine", b"demo.counter", b"demo.random"] * 2 + [
        b"demo.sine"
    ]
    docs = [orjson.loads(p) for _, p in messages]
    assert [d["n"] for d in docs] == [0, 0, 0, 1, 1, 1, 2]
    assert [d["ts"] for d in docs] == [1000.0 + i for i in range(7)]
    assert docs[1]["value"] == 0 and docs[4]["value"] == 1  # counter counts
    assert docs[0]["value"] == pytest.approx(math.sin(2 * math.pi * 1000.0 / 10.0))
    assert all(0 <= d["value"] < 1 for d in (docs[2], docs[5]))
    assert set(docs[0]) == {"n", "value", "ts"}


def test_synthetic_text_and_no_prefix():
    topic, payload = Synthetic(json=False).message(5.25)
    assert topic == b"sine"
    assert payload.startswith(b"n=0 value=") and payload.endswith(b" ts=5.250000")


@pytest.mark.parametrize("json", [True, False])
@pytest.mark.parametrize("size", [200, 1000, 4096])
def test_synthetic_size_pads_exactly(json, size):
    data = Synthetic("demo", json=json, size=size)
    for i in range(6):
        _, payload = data.message(1764230000.123 + i / 7)
        assert len(payload) == size
        if json:
            doc = orjson.loads(payload)
            assert doc["n"] == i // 3 and set(doc["pad"]) == {"x"}


def test_synthetic_size_smaller_than_message_is_no_padding():
    _, payload = Synthetic(json=True, size=10).message(1.0)
    assert set(orjson.loads(payload)) == {"n", "value", "ts"}


# --- Pacer --------------------------------------------------------------------------------


def test_pacer_first_message_at_start_then_on_schedule():
    pacer = Pacer(10, start=100.0)
    assert pacer.due(100.0) == 1
    assert pacer.due(100.05) == 0
    assert pacer.next_at() == pytest.approx(100.1)
    assert pacer.due(100.1) == 1
    assert pacer.due(100.35) == 2


@pytest.mark.parametrize("rate", [7, 1000, 100_000, 250_000])
def test_pacer_bursts_per_tick_add_up_to_the_rate(rate):
    pacer = Pacer(rate, start=0.0)
    now, sent, ticks = 0.0, 0, 0
    while now < 2.0:
        sent += pacer.due(now)
        ticks += 1
        now = max(pacer.next_at(), now + 0.001)  # what the command sleeps: at least a tick
    assert sent == pytest.approx(rate * 2, abs=1)
    assert ticks <= 2001  # bursts, not one wake-up per message
    assert pacer.skipped == 0


def test_pacer_skips_backlog_beyond_max_lag_after_a_stall():
    pacer = Pacer(1000, start=0.0, max_lag=0.5)
    assert pacer.due(0.0) == 1
    assert pacer.due(10.0) == 500  # a 10 s stall: half a second of catch-up, no more
    assert pacer.skipped == 10_000 - 500
    assert pacer.due(10.0) == 0
    assert pacer.next_at() == pytest.approx(10.001)


def test_pacer_rejects_non_positive_rate():
    with pytest.raises(ValueError):
        Pacer(0, start=0.0)


# --- FileFollower -------------------------------------------------------------------------


def append(path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "app.log"
    path.write_bytes(b"old line 1\nold line 2\n")
    follower = FileFollower(path)
    yield path, follower
    follower.close()


def test_follower_starts_at_end_and_reads_appended_lines(log):
    path, follower = log
    assert follower.poll() == []
    assert follower.poll() == []
    append(path, b"one\ntwo\r\n")
    assert follower.poll() == [b"one", b"two"]
    assert follower.poll() == []


def test_follower_holds_a_partial_line_until_it_ends(log):
    path, follower = log
    follower.poll()
    append(path, b"par")
    assert follower.poll() == []
    append(path, b"tial\nnext")
    assert follower.poll() == [b"partial"]
    append(path, b"\n")
    assert follower.poll() == [b"next"]


def test_follower_waits_for_a_missing_file_and_reads_it_from_the_start(tmp_path):
    path = tmp_path / "later.log"
    follower = FileFollower(path)
    assert follower.poll() == []
    path.write_bytes(b"first\n")
    assert follower.poll() == [b"first"]
    follower.close()


def test_follower_restarts_a_truncated_file(log):
    path, follower = log
    follower.poll()
    append(path, b"before\n")
    assert follower.poll() == [b"before"]
    with open(path, "r+b") as f:  # copytruncate-style: same inode, size to 0, then writes
        f.truncate(0)
    append(path, b"after\n")
    assert follower.poll() == [b"after"]
    append(path, b"more\n")
    assert follower.poll() == [b"more"]


def test_follower_reads_the_old_file_to_its_end_on_rotation(log):
    path, follower = log
    follower.poll()
    append(path, b"last of old\nunterminated")
    os.rename(path, str(path) + ".1")
    path.write_bytes(b"first of new\n")
    assert follower.poll() == [b"last of old", b"unterminated", b"first of new"]
    append(str(path) + ".1", b"late write to the old file\n")  # lost, as with tail -F
    append(path, b"second of new\n")
    assert follower.poll() == [b"second of new"]


def test_follower_survives_removal_and_recreation(log):
    path, follower = log
    follower.poll()
    append(path, b"bye\n")
    os.remove(path)
    assert follower.poll() == [b"bye"]
    assert follower.poll() == []
    path.write_bytes(b"hello again\n")
    assert follower.poll() == [b"hello again"]


def test_follower_cuts_overlong_lines(tmp_path):
    path = tmp_path / "binary.dat"
    path.write_bytes(b"")
    follower = FileFollower(path, max_line=10)
    follower.poll()
    append(path, b"x" * 25)
    assert follower.poll() == [b"x" * 10, b"x" * 10]
    append(path, b"\n" + b"y" * 12 + b"\n")
    assert follower.poll() == [b"x" * 5, b"y" * 10, b"yy"]
    follower.close()


def test_follower_reads_a_big_backlog_in_bounded_polls(tmp_path):
    path = tmp_path / "big.log"
    follower = FileFollower(path, max_read=1 << 16)
    follower.poll()
    line = b"z" * 99 + b"\n"
    path.write_bytes(line * 5000)  # 500 kB
    polls, lines = 0, []
    while True:
        got = follower.poll()
        polls += 1
        lines += got
        if not follower.behind:
            break
    assert lines == [line[:-1]] * 5000
    assert polls >= 7
    follower.close()


def test_follower_reports_an_unreadable_path_and_recovers(tmp_path):
    path = tmp_path / "app.log"
    path.mkdir()  # there, but not a readable file (works as root too, unlike chmod)
    follower = FileFollower(path)
    assert follower.poll() == []
    assert "directory" in follower.error
    path.rmdir()
    path.write_bytes(b"a file now\n")
    assert follower.poll() == [b"a file now"]
    assert follower.error is None
    follower.close()
