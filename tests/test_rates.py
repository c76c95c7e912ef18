"""Token bucket for client frames and throttle for log lines, on a clock the test moves."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from zmqfeed.core.rates import LogThrottle, TokenBucket


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def takes(bucket: TokenBucket, n: int) -> list[bool]:
    return [bucket.take() for _ in range(n)]


# TokenBucket


def test_a_full_bucket_allows_a_burst_then_refuses() -> None:
    bucket = TokenBucket(rate=1.0, burst=5, clock=Clock())
    assert takes(bucket, 7) == [True] * 5 + [False] * 2


def test_tokens_come_back_at_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=4.0, burst=2, clock=clock)
    assert takes(bucket, 3) == [True, True, False]
    clock.advance(0.125)  # half a token
    assert bucket.take() is False
    clock.advance(0.125)  # the other half: refused takes lost nothing
    assert takes(bucket, 2) == [True, False]
    clock.advance(0.5)  # two tokens
    assert takes(bucket, 3) == [True, True, False]


def test_a_long_pause_refills_only_up_to_the_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=100.0, burst=3, clock=clock)
    assert takes(bucket, 3) == [True] * 3
    clock.advance(3600)
    assert takes(bucket, 5) == [True] * 3 + [False] * 2


def test_sustained_rate_is_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=50.0, burst=10, clock=clock)
    assert takes(bucket, 10) == [True] * 10
    allowed = 0
    for _ in range(1000):  # 10 s at 100 attempts per second
        clock.advance(0.01)
        allowed += bucket.take()
    assert 495 <= allowed <= 500


def test_fractional_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=0.5, burst=1, clock=clock)
    assert takes(bucket, 2) == [True, False]
    clock.advance(1.5)
    assert bucket.take() is False
    clock.advance(0.5)
    assert bucket.take() is True


@given(
    st.floats(min_value=0.5, max_value=1000),
    st.integers(min_value=1, max_value=50),
    st.lists(
        st.tuples(st.floats(min_value=0, max_value=2), st.integers(min_value=0, max_value=20)),
        max_size=30,
    ),
)
def test_never_more_than_burst_plus_rate_times_elapsed(rate, burst, steps) -> None:
    clock = Clock()
    bucket = TokenBucket(rate, burst, clock)
    allowed, elapsed = 0, 0.0
    for pause, attempts in steps:
        clock.advance(pause)
        elapsed += pause
        results = takes(bucket, attempts)
        # Once one is refused, all that follow at the same instant are refused.
        assert results == sorted(results, reverse=True)
        allowed += sum(results)
        assert allowed <= burst + rate * elapsed + 1e-6
    # Waiting for a full bucket always gives the whole burst back.
    clock.advance(burst / rate + 1)
    assert takes(bucket, burst) == [True] * burst


# LogThrottle


def test_first_event_is_logged_then_held_until_the_interval_passes() -> None:
    clock = Clock()
    throttle = LogThrottle(1.0, clock)
    assert throttle.ready("k") == 1
    clock.advance(0.2)
    assert throttle.ready("k") is None
    clock.advance(0.7)
    assert throttle.ready("k") is None
    clock.advance(0.1)  # exactly one interval after the last report
    assert throttle.ready("k") == 3  # the two held back and this one


def test_counts_add_up_and_reset_after_each_report() -> None:
    clock = Clock()
    throttle = LogThrottle(5.0, clock)
    assert throttle.ready("drops", 10) == 10
    clock.advance(1)
    assert throttle.ready("drops", 4) is None
    clock.advance(1)
    assert throttle.ready("drops", 6) is None
    clock.advance(3)
    assert throttle.ready("drops", 1) == 11
    clock.advance(10)
    assert throttle.ready("drops", 2) == 2


def test_the_interval_runs_from_the_last_report_not_the_last_event() -> None:
    clock = Clock()
    throttle = LogThrottle(1.0, clock)
    assert throttle.ready("k") == 1
    for _ in range(9):  # an event every 0.1 s never resets the window
        clock.advance(0.1)
        assert throttle.ready("k") is None
    clock.advance(0.1)
    assert throttle.ready("k") == 10


def test_keys_are_throttled_independently() -> None:
    clock = Clock()
    throttle = LogThrottle(1.0, clock)
    assert throttle.ready(("prices", "invalid_json")) == 1
    assert throttle.ready(("prices", "too_large")) == 1
    assert throttle.ready(("logs", "invalid_json")) == 1
    assert throttle.ready(("prices", "invalid_json")) is None
    clock.advance(1)
    assert throttle.ready(("prices", "too_large")) == 1
    assert throttle.ready(("prices", "invalid_json")) == 2


@given(
    st.lists(
        st.tuples(st.floats(min_value=0, max_value=3), st.integers(min_value=1, max_value=9)),
        min_size=1,
        max_size=40,
    )
)
def test_every_event_is_reported_once_and_reports_are_spaced(steps) -> None:
    clock = Clock()
    throttle = LogThrottle(1.0, clock)
    reported, last_report = 0, None
    for pause, count in steps:
        clock.advance(pause)
        total = throttle.ready("k", count)
        if total is not None:
            assert last_report is None or clock.now - last_report >= 1.0
            last_report = clock.now
            reported += total
    clock.advance(1.5)  # past the interval, whatever the float sums came to
    reported += throttle.ready("k", 0)  # the held remainder comes out with the next event
    assert reported == sum(count for _, count in steps)
