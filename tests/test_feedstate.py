"""A feed's state from its socket's monitor events and messages, on a clock the test moves."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from zmqfeed.core import feedstate as fs
from zmqfeed.core.feedstate import FeedState, Series

N = 10.0  # silent_after
EP = "tcp://127.0.0.1:5556"
EP2 = "tcp://127.0.0.1:5557"


def bound(*endpoints: str) -> FeedState:
    return FeedState(endpoints or (EP,), bind=True, silent_after=N, opened=100.0)


def connecting(*endpoints: str) -> FeedState:
    return FeedState(endpoints or (EP,), bind=False, silent_after=N, opened=100.0)


# Examples: what an operator sees


def test_a_bound_feed_goes_bound_connected_receiving_silent() -> None:
    feed = bound()
    feed.event(fs.LISTENING, EP, 15, 100.0)
    assert feed.state(101.0) == (fs.BOUND, "no publisher connected yet")
    feed.event(fs.ACCEPTED, EP, 21, 102.0)
    assert feed.state(103.0) == (fs.CONNECTED, "1 publisher connected")
    feed.received(5, 104.0)
    assert feed.state(104.5)[0] == fs.RECEIVING
    assert feed.state(113.9)[0] == fs.RECEIVING
    assert feed.state(114.0) == (fs.SILENT, "no message for 10 s")


def test_a_bound_feed_nobody_publishes_to_turns_silent() -> None:
    feed = bound()
    feed.event(fs.LISTENING, EP, 15, 100.0)
    assert feed.state(109.9)[0] == fs.BOUND
    assert feed.state(110.0) == (fs.SILENT, "no message yet for 10 s")
    # A publisher that connects later is a fresh chance: connected, not silent at once.
    feed.event(fs.ACCEPTED, EP, 21, 120.0)
    assert feed.state(121.0)[0] == fs.CONNECTED


def test_a_failed_bind_is_an_error_with_its_text_for_as_long_as_the_socket_lives() -> None:
    feed = bound("tcp://192.0.2.1:5555")
    feed.failed("tcp://192.0.2.1:5555", "cannot bind: Cannot assign requested address")
    feed.event(fs.BIND_FAILED, "192.0.2.1:5555", 99, 100.0)
    state, detail = feed.state(100.1)
    assert state == fs.ERROR
    assert "tcp://192.0.2.1:5555: cannot bind: Cannot assign requested address" in detail
    assert feed.state(10_000.0)[0] == fs.ERROR


def test_one_failed_bind_of_two_is_an_error_although_the_other_listens() -> None:
    feed = bound(EP, "tcp://192.0.2.1:5555")
    feed.failed("tcp://192.0.2.1:5555", "cannot bind: Cannot assign requested address")
    feed.event(fs.BIND_FAILED, "192.0.2.1:5555", 99, 100.0)
    feed.event(fs.LISTENING, EP, 15, 100.0)
    feed.received(1, 101.0)
    assert feed.state(101.0)[0] == fs.ERROR


def test_a_bind_retried_until_it_listens_is_no_error() -> None:
    feed = bound()
    for _ in range(3):  # the port of the feed's previous socket, let go a moment later
        feed.event(fs.BIND_FAILED, "127.0.0.1:5556", 98, 100.0)
    assert feed.state(100.0)[0] == fs.ERROR
    feed.event(fs.LISTENING, EP, 15, 100.03)
    assert feed.state(100.1)[0] == fs.BOUND


def test_a_connect_to_nobody_is_silent_then_an_error_that_says_so() -> None:
    feed = connecting()
    assert feed.state(100.0) == (fs.SILENT, f"connecting to {EP}")
    for t in range(1, 12):
        feed.event(fs.CONNECT_RETRIED, EP, 150, 100.0 + t * 0.9)
    assert feed.state(109.9)[0] == fs.SILENT
    state, detail = feed.state(110.0)
    assert state == fs.ERROR
    assert detail == f"{EP}: publisher not reached for 10 s (connection retried 11 times)"


def test_a_connected_feed_whose_publisher_goes_away() -> None:
    feed = connecting()
    feed.event(fs.EVENT_CONNECTED, EP, 21, 100.1)
    assert feed.state(100.2)[0] == fs.CONNECTED
    feed.received(10, 101.0)
    feed.event(fs.DISCONNECTED, EP, 21, 102.0)
    feed.event(fs.CONNECT_RETRIED, EP, 120, 102.2)
    assert feed.state(110.9)[0] == fs.RECEIVING  # what arrived is still recent
    assert feed.state(111.0)[0] == fs.SILENT  # nothing for 10 s, the peer gone for 9
    state, detail = feed.state(112.0)
    assert state == fs.ERROR
    assert detail.startswith(f"{EP}: publisher lost for 10 s (connection retried 1 time)")
    # It comes back: the error is over at once.
    feed.event(fs.EVENT_CONNECTED, EP, 22, 130.0)
    assert feed.state(130.1)[0] == fs.CONNECTED
    feed.received(1, 131.0)
    assert feed.state(131.0)[0] == fs.RECEIVING


def test_a_publisher_that_stops_sending_but_stays_connected_is_silent() -> None:
    feed = connecting()
    feed.event(fs.EVENT_CONNECTED, EP, 21, 100.0)
    feed.received(3, 105.0)
    assert feed.state(114.9)[0] == fs.RECEIVING
    assert feed.state(115.0) == (fs.SILENT, "no message for 10 s")


def test_one_publisher_of_two_unreached_is_an_error_naming_it() -> None:
    feed = connecting(EP, EP2)
    feed.event(fs.EVENT_CONNECTED, EP, 21, 100.0)
    feed.received(1, 100.5)
    feed.event(fs.CONNECT_RETRIED, EP2, 100, 100.5)
    feed.received(1, 110.5)
    state, detail = feed.state(111.0)
    assert state == fs.ERROR
    assert detail.startswith(f"{EP2}: publisher not reached")
    assert EP not in detail.replace(EP2, "")


def test_a_failed_curve_handshake_says_why_the_publisher_is_not_reached() -> None:
    feed = connecting()
    feed.event(fs.EVENT_CONNECTED, EP, 21, 100.0)
    feed.event(fs.HANDSHAKE_FAILED_AUTH, EP, 0, 100.0)
    feed.event(fs.DISCONNECTED, EP, 21, 100.0)
    state, detail = feed.state(111.0)
    assert state == fs.ERROR
    assert "handshake failed (authentication: CURVE keys)" in detail


def test_a_feed_without_endpoints_is_an_error() -> None:
    feed = FeedState((), bind=False, silent_after=N, opened=0.0)
    assert feed.state(0.0) == (fs.ERROR, "no endpoint")


def test_the_snapshot_has_rate_series_age_and_drops_by_reason() -> None:
    feed = connecting()
    feed.event(fs.EVENT_CONNECTED, EP, 21, 100.0)
    for second in range(100, 110):
        feed.received(20, second + 0.5)
    feed.dropped("unrouted", 3, 105.5)
    feed.dropped("too_large", 1, 106.5)
    snap = feed.snapshot(110.25)
    assert snap["state"] == fs.RECEIVING
    assert snap["rate"] == 20.0
    assert snap["received"] == 200
    assert snap["series"][-10:] == [20] * 10 and len(snap["series"]) == fs.SPAN
    assert snap["age"] == 0.75
    assert snap["peers"] == 1
    assert list(snap["drops"]) == ["too_large", "unrouted"]
    assert snap["drops"]["unrouted"]["total"] == 3
    assert snap["drops"]["unrouted"]["series"][-5:] == [3, 0, 0, 0, 0]
    assert snap["drops"]["too_large"]["rate"] == 0.2


def test_gauge_values_set_one_state_and_clear_the_others() -> None:
    assert dict(fs.gauge_values(fs.SILENT)) == {
        fs.CONNECTED: 0,
        fs.BOUND: 0,
        fs.RECEIVING: 0,
        fs.SILENT: 1,
        fs.ERROR: 0,
    }


# Series


def test_a_steady_rate_is_that_rate_and_a_pause_longer_than_the_span_is_all_zeros() -> None:
    series = Series(0.0)
    for tick in range(1000):  # 100 per second for 10 s
        series.add(1, tick / 100)
    assert series.rate(10.0) == 100.0
    assert series.counts(10.0)[-10:] == [100] * 10
    assert series.counts(500.0) == [0] * fs.SPAN
    assert series.total == 1000


# Properties

OPS = st.one_of(
    st.tuples(st.just("wait"), st.floats(min_value=0, max_value=15)),
    st.tuples(st.just("msg"), st.integers(min_value=1, max_value=100)),
    st.tuples(st.just("drop"), st.sampled_from(["unrouted", "too_large", "bad_json"])),
    st.tuples(
        st.just("event"),
        st.tuples(
            st.sampled_from(
                [
                    fs.LISTENING,
                    fs.BIND_FAILED,
                    fs.ACCEPTED,
                    fs.EVENT_CONNECTED,
                    fs.CONNECT_RETRIED,
                    fs.DISCONNECTED,
                    fs.CLOSED,
                    fs.HANDSHAKE_SUCCEEDED,
                    fs.HANDSHAKE_FAILED_AUTH,
                    "connect_delayed",
                ]
            ),
            st.sampled_from([EP, EP2]),
            st.integers(min_value=10, max_value=13),
        ),
    ),
    st.tuples(st.just("fail"), st.sampled_from([EP, EP2])),
)


@given(st.booleans(), st.lists(OPS, max_size=60))
def test_the_state_follows_its_rules_whatever_the_events(bind: bool, ops: list) -> None:
    now = 1000.0
    feed = FeedState((EP, EP2), bind=bind, silent_after=N, opened=now)
    last_message = None
    last_up = now  # opened, then each bind or connection: a fresh chance of messages
    failed = False
    received = 0
    for op, arg in ops:
        if op == "wait":
            now += arg
        elif op == "msg":
            feed.received(arg, now)
            last_message, received = now, received + arg
        elif op == "drop":
            feed.dropped(arg, 1, now)
        elif op == "event":
            kind, endpoint, fd = arg
            feed.event(kind, endpoint, fd, now)
            if kind in (fs.LISTENING, fs.ACCEPTED, fs.EVENT_CONNECTED):
                last_up = now
        else:
            feed.failed(arg, "cannot attach")
            failed = True
        state, detail = feed.state(now)
        assert state in fs.STATES
        if failed:
            assert state == fs.ERROR and "cannot attach" in detail
        if state == fs.RECEIVING:
            assert last_message is not None and now - last_message < N
        elif state != fs.ERROR and last_message is not None:
            assert now - last_message >= N  # not receiving: nothing recent arrived
        if state != fs.ERROR and now - max(last_up, last_message or last_up) >= N:
            assert state == fs.SILENT  # nothing for N seconds, although it could receive
        if state == fs.BOUND:
            assert bind
        if state == fs.ERROR:
            assert detail
        snap = feed.snapshot(now)
        assert snap["received"] == received
        assert len(snap["series"]) == fs.SPAN
        assert sum(snap["series"]) <= received
        assert snap["rate"] * fs.WINDOW == sum(snap["series"][-fs.WINDOW :])
        assert snap["age"] is None if last_message is None else snap["age"] == now - last_message


@given(
    st.lists(
        st.tuples(st.floats(min_value=0, max_value=3), st.integers(min_value=0, max_value=50)),
        max_size=100,
    )
)
def test_a_series_keeps_the_last_span_of_whole_seconds(steps: list) -> None:
    now = 50.0
    series = Series(now)
    added: list[tuple[float, int]] = []
    for pause, count in steps:
        now += pause
        series.add(count, now)
        added.append((now, count))
    counts = series.counts(now)
    assert len(counts) == fs.SPAN
    current = int(now)
    for back, value in enumerate(reversed(counts), start=1):
        second = current - back
        assert value == sum(c for t, c in added if int(t) == second)
    assert series.total == sum(c for _, c in added)
