"""The caps that hold a server process up (pure), and the slow-client memory supervisor."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from zmqfeed.core.admission import Admission, Caps, over_cap
from zmqfeed.node import CALM_TICK, TICK, BacklogSupervisor


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_caps_per_node_user_and_address_and_release():
    a = Admission(Caps(connections=3, per_user=2, per_ip=2))
    assert a.admit("ann", "1.1.1.1") is None
    assert a.admit("ann", "2.2.2.2") is None
    assert a.admit("ann", "3.3.3.3") == "user"
    assert a.admit(None, "1.1.1.1") is None  # anonymous: no per-user cap
    assert a.admit("bob", "1.1.1.1") == "node"
    a.release("ann", "2.2.2.2")
    assert a.admit("bob", "1.1.1.1") == "ip"
    assert a.admit("bob", "4.4.4.4") is None
    assert a.total == 3


def test_attempts_per_second_are_capped_with_a_burst():
    clock = Clock()
    a = Admission(Caps(connections=0, per_user=0, rate=2.0, burst=3), clock=clock)
    assert [a.admit(None, None) for _ in range(4)] == [None, None, None, "rate"]
    clock.now += 1.0
    assert [a.admit(None, None) for _ in range(3)] == [None, None, "rate"]


def test_zero_means_no_cap():
    a = Admission(Caps(connections=0, per_user=0, per_ip=0))
    assert all(a.admit("ann", "1.1.1.1") is None for _ in range(1000))


@given(st.lists(st.tuples(st.booleans(), st.sampled_from("abc"), st.sampled_from("xy"))))
def test_counts_never_go_past_the_caps_and_return_to_zero(steps):
    a = Admission(Caps(connections=4, per_user=2, per_ip=3))
    held = []
    for connect, user, ip in steps:
        if connect:
            if a.admit(user, ip) is None:
                held.append((user, ip))
        elif held:
            a.release(*held.pop(0))
        assert a.total == len(held) <= 4
        assert all(n <= 2 for n in a.users.values()) and all(n <= 3 for n in a.ips.values())
    for user, ip in held:
        a.release(user, ip)
    assert (a.total, a.users, a.ips) == (0, {}, {})


def test_over_cap_sheds_those_holding_the_most_until_under():
    assert over_cap({"a": 10, "b": 50, "c": 30}, 100) == set()
    assert over_cap({"a": 10, "b": 50, "c": 60}, 100) == {"c"}
    assert over_cap({"a": 40, "b": 50, "c": 60}, 60) == {"c", "b"}
    assert over_cap({"a": 40}, 0) == set()  # 0: no cap


class Holder:
    def __init__(self, size: int) -> None:
        self.size, self.over_cap, self.closed, self.held = size, False, False, 0

    def queued(self) -> int:
        return self.size

    async def close_slow(self) -> None:
        self.closed = True


def test_the_supervisor_sheds_then_closes_who_stays_over_the_cap():
    clock = Clock()
    clock.now = 100.0
    sup = BacklogSupervisor(cap=100, grace=3 * TICK, clock=clock)
    fast, slow = Holder(1), Holder(500)
    sup.holders = {fast: 0.0, slow: 0.0}
    assert sup.tick() == [] and slow.over_cap and not fast.over_cap
    clock.now += 2 * TICK
    assert sup.tick() == []
    clock.now += TICK
    assert sup.tick() == [slow]  # over the cap for the grace time, in wall time
    slow.size = 0
    sup.holders[slow] = 0.0
    assert sup.tick() == [] and not slow.over_cap  # caught up: no longer shed


def test_at_each_delivery_a_client_over_its_fair_share_is_shed_while_over_the_cap():
    sup = BacklogSupervisor(cap=100, grace=10.0)
    fast, slow, slower = Holder(0), Holder(0), Holder(0)
    sup.holders = {fast: 0.0, slow: 0.0, slower: 0.0}
    assert not sup.shed(slow, 60) and sup.total == 60  # under the cap: nothing shed
    assert sup.shed(slower, 70)  # 130 > 100, and 70 is over the fair share (100 / 3)
    assert not sup.shed(fast, 5)  # a client holding little is never shed
    assert sup.shed(slow, 60)
    assert not sup.shed(slower, 0) and sup.total == 65  # it caught up: the total follows
    assert not sup.shed(slow, 60)
    off = BacklogSupervisor(cap=0, grace=1.0)
    assert not off.shed(Holder(0), 1 << 40)  # no cap: never


def test_the_supervisor_sums_often_only_once_the_holders_near_the_cap():
    sup = BacklogSupervisor(cap=100, grace=10.0)
    fast, slow = Holder(1), Holder(30)
    sup.holders = {fast: 0.0, slow: 0.0}
    assert sup.interval() == CALM_TICK  # nothing summed yet: every buffer read once a second
    sup.tick()
    assert sup.total == 31 and sup.interval() == TICK < CALM_TICK
    slow.size = 10
    assert sup.shed(slow, 10) is False and sup.interval() == CALM_TICK  # the running total
