"""Per-topic sequence numbers and recent messages: in memory and in Redis, the same behaviour."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zmqfeed.core import continuity
from zmqfeed.core.continuity import Kept, Numbering, Replay
from zmqfeed.history import Fenced, MemoryHistory, RedisHistory, get_history

Body = Callable[[Any], Awaitable[Any]]
_prefixes = itertools.count()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def run(request) -> Callable[..., Any]:
    """``run(size, body)``: awaits ``body(history)`` on a fresh history of that kind."""
    if request.param == "memory":
        make = MemoryHistory
    else:
        url = request.getfixturevalue("redis_url")

        def make(size: int) -> RedisHistory:
            # A prefix of its own per history: hypothesis runs many in one database.
            return RedisHistory(url, size, prefix=f"test{next(_prefixes)}")

    def runner(size: int, body: Body) -> Any:
        async def main() -> Any:
            history = make(size)
            try:
                return await body(history)
            finally:
                if isinstance(history, RedisHistory):
                    await history.close()

        return asyncio.run(main())

    return runner


def envs(first: int, last: int, topic: str = "t") -> list[bytes]:
    return [b"%s-%d" % (topic.encode(), seq) for seq in range(first, last + 1)]


def kept(first: int, envelopes: list[bytes], epoch: str = "e", **fields: Any) -> Kept:
    return Kept(epoch, first, envelopes, fields.pop("ts", time.time()), **fields)


def test_a_new_topic_has_no_numbering(run) -> None:
    async def body(h) -> None:
        assert await h.latest("prices/eur") is None
        assert await h.replay("prices/eur", None) == Replay(0, [], 1, "")
        assert await h.replay("prices/eur", 0) == Replay(0, [], 1, "")
        assert await h.replay("prices/eur", 5, "e") == Replay(0, [], 1, "")

    run(10, body)


def test_batches_advance_the_numbering(run) -> None:
    async def body(h) -> None:
        await h.append({"f/a": kept(1, envs(1, 3, "a")), "f/b": kept(1, envs(1, 1, "b"), "x")})
        assert (await h.latest("f/a"), await h.latest("f/b")) == (("e", 3), ("x", 1))
        await h.append({"f/a": kept(4, envs(4, 4, "a"))})
        await h.append({"f/a": kept(5, envs(5, 9, "a"))})
        assert await h.latest("f/a") == Numbering("e", 9)
        assert await h.latest("f/c") is None

    run(10, body)


def test_a_batch_of_no_messages_records_where_the_numbering_stands(run) -> None:
    """What the subscriber writes when it takes a topic up, before its first message."""

    async def body(h) -> None:
        await h.append({"k": kept(8, [], "e7")})
        assert await h.latest("k") == ("e7", 7)
        assert await h.replay("k", None) == Replay(7, [], 8, "e7")

    run(10, body)


def test_replay_without_since_gives_the_last_values_asked_for(run) -> None:
    async def body(h) -> None:
        await h.append({"k": kept(1, envs(1, 5))})
        assert await h.replay("k", None) == Replay(5, [], 6, "e")
        assert await h.replay("k", None, last=2) == Replay(5, envs(4, 5), 4, "e")
        assert await h.replay("k", None, last=50) == Replay(5, envs(1, 5), 1, "e")

    run(10, body)


def test_replay_gives_the_messages_after_since_in_order(run) -> None:
    async def body(h) -> None:
        await h.append({"k": kept(1, envs(1, 3))})
        await h.append({"k": kept(4, envs(4, 6)), "other": kept(1, envs(1, 2, "o"))})
        assert await h.replay("k", 0) == Replay(6, envs(1, 6), 1, "e")
        assert await h.replay("k", 2, "e") == Replay(6, envs(3, 6), 3, "e")
        assert await h.replay("k", 5) == Replay(6, envs(6, 6), 6, "e")
        assert await h.replay("other", 1) == Replay(2, [b"o-2"], 2, "e")
        assert await h.replay("k", 6, "e") == Replay(6, [], 7, "e")

    run(10, body)


def test_a_since_of_another_epoch_or_beyond_the_numbering_gets_all_that_is_kept(run) -> None:
    """Never the new numbering's messages after the old `since`, as if they followed it."""

    async def body(h) -> None:
        await h.append({"k": kept(1, envs(1, 4))})
        assert await h.replay("k", 2, "old") == Replay(4, envs(1, 4), 1, "e")
        assert await h.replay("k", 40) == Replay(4, envs(1, 4), 1, "e")
        assert await h.replay("k", 40, "e") == Replay(4, envs(1, 4), 1, "e")

    run(10, body)


def test_a_new_epoch_starts_the_kept_messages_again(run) -> None:
    async def body(h) -> None:
        await h.append({"k": kept(1, envs(1, 5, "old"), "e1")})
        await h.append({"k": kept(1, envs(1, 2, "new"), "e2")})
        assert await h.latest("k") == ("e2", 2)
        assert await h.replay("k", 0, "e2") == Replay(2, envs(1, 2, "new"), 1, "e2")

    run(10, body)


def test_only_the_last_size_messages_are_kept(run) -> None:
    async def body(h) -> None:
        await h.append({"k": kept(1, envs(1, 4))})
        await h.append({"k": kept(5, envs(5, 7))})
        # seqs 4..7 are kept: since 3 is the oldest `since` that loses nothing.
        assert await h.replay("k", 0) == Replay(7, envs(4, 7), 4, "e")
        assert await h.replay("k", 2) == Replay(7, envs(4, 7), 4, "e")
        assert await h.replay("k", 3) == Replay(7, envs(4, 7), 4, "e")
        assert await h.replay("k", 5) == Replay(7, envs(6, 7), 6, "e")

    run(4, body)


def test_a_topics_own_history_keeps_fewer_and_is_capped_by_the_servers(run) -> None:
    async def body(h) -> None:
        await h.append(
            {
                "two": kept(1, envs(1, 6), history=2),
                "none": kept(1, envs(1, 6), history=0),
                "many": kept(1, envs(1, 6), history=50),
            }
        )
        assert await h.replay("two", 0) == Replay(6, envs(5, 6), 5, "e")
        assert await h.replay("none", 0) == Replay(6, [], 7, "e")
        assert await h.replay("many", 0) == Replay(6, envs(3, 6), 3, "e")  # the server's 4

    run(4, body)


def test_the_age_limit_leaves_older_messages_out_of_a_replay(run) -> None:
    async def body(h) -> None:
        now = time.time()
        await h.append({"k": kept(1, envs(1, 3), ts=now - 100)})
        await h.append({"k": kept(4, envs(4, 5), ts=now)})
        assert await h.replay("k", 0, max_age=10) == Replay(5, envs(4, 5), 4, "e")
        assert await h.replay("k", None, last=5, max_age=10) == Replay(5, envs(4, 5), 4, "e")
        assert await h.replay("k", 0, max_age=1000) == Replay(5, envs(1, 5), 1, "e")

    run(10, body)


def test_a_batch_larger_than_the_history_keeps_its_newest(run) -> None:
    async def body(h) -> None:
        await h.append({"k": kept(1, envs(1, 10))})
        replay = await h.replay("k", 0)
        assert replay == Replay(10, envs(8, 10), 8, "e")
        assert replay.first > 0 + 1

    run(3, body)


def test_a_history_of_size_zero_keeps_seqs_but_no_messages(run) -> None:
    async def body(h) -> None:
        await h.append({"k": kept(1, envs(1, 5))})
        assert await h.latest("k") == ("e", 5)
        assert await h.replay("k", 2) == Replay(5, [], 6, "e")

    run(0, body)


@pytest.mark.redis
def test_redis_history_is_shared_between_clients(redis_url: str) -> None:
    async def main() -> None:
        writer, reader = RedisHistory(redis_url, 10), RedisHistory(redis_url, 10)
        try:
            await writer.append({"f/t": kept(1, envs(1, 3))})
            await writer.close()
            writer = RedisHistory(redis_url, 10)  # a restarted subscriber
            assert await writer.latest("f/t") == ("e", 3)
            await writer.append({"f/t": kept(4, envs(4, 4))})
            assert await reader.replay("f/t", 1, "e") == Replay(4, envs(2, 4), 2, "e")
        finally:
            await writer.close()
            await reader.close()

    asyncio.run(main())


@pytest.mark.redis
def test_a_writer_whose_lease_was_taken_writes_nothing(redis_url: str) -> None:
    """The fence: a subscriber paused past its lease, whose successor took over, is
    refused in the same script that would write, so no number of its reaches a client."""

    async def main() -> None:
        history = RedisHistory(redis_url, 10)
        client = history._redis
        try:
            await client.set("zmqfeed:lease:f", "2")  # the successor's token
            await history.append({"f/t": kept(1, envs(1, 3))}, ("zmqfeed:lease:f", 2))
            with pytest.raises(Fenced):
                await history.append({"f/t": kept(4, envs(4, 9))}, ("zmqfeed:lease:f", 1))
            assert await history.latest("f/t") == ("e", 3)
            assert await history.replay("f/t", 0) == Replay(3, envs(1, 3), 1, "e")
            await client.delete("zmqfeed:lease:f")  # ran out: nobody holds it
            with pytest.raises(Fenced):
                await history.append({"f/t": kept(4, envs(4, 4))}, ("zmqfeed:lease:f", 2))
        finally:
            await history.close()

    asyncio.run(main())


def test_a_batch_that_skips_seqs_drops_what_was_kept_before_the_hole(run) -> None:
    """A switch-over skips seqs: what was kept before them no longer follows on."""

    async def body(h) -> None:
        await h.append({"k": kept(1, envs(1, 3))})
        await h.append({"k": kept(8, [])})  # seqs 4..7 skipped
        await h.append({"k": kept(8, envs(8, 9))})
        assert await h.replay("k", 0) == Replay(9, envs(8, 9), 8, "e")

    run(10, body)


@pytest.mark.redis
def test_redis_keeps_a_batch_as_one_element_and_trims_whole_batches(redis_url: str) -> None:
    """One list node per batch, not per message; at least `keep` messages stay."""

    async def main() -> None:
        history = RedisHistory(redis_url, 5)
        try:
            for first in (1, 4, 7):
                await history.append({"k": kept(first, envs(first, first + 2))})
            assert await history._redis.llen("zmqfeed:batches:k") == 2  # 4..9: 6 >= 5 kept
            assert await history.replay("k", 0) == Replay(9, envs(5, 9), 5, "e")
            # An element that does not read back is skipped: seqs come from the elements
            # themselves, so nothing is misnumbered.
            await history._redis.rpush("zmqfeed:batches:k", b"garbage")
            assert await history.replay("k", 0) == Replay(9, envs(5, 9), 5, "e")
        finally:
            await history.close()

    asyncio.run(main())


# Both against one model, over random runs of appends, renumberings and replays.

STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.sampled_from("ab"), st.integers(1, 6)),
        st.tuples(st.just("renumber"), st.sampled_from("ab"), st.integers(0, 3)),
        st.tuples(
            st.just("replay"),
            st.sampled_from("ab"),
            st.tuples(
                st.none() | st.integers(0, 30),
                st.sampled_from([None, "current", "old"]),
                st.integers(0, 3),
            ),
        ),
    ),
    max_size=25,
)


def model_replay(
    all_envs: list[bytes], size: int, since: int | None, epoch: str | None, current: str, last: int
) -> Replay:
    """``current``: the epoch, or "" for a topic never appended to."""
    latest = len(all_envs)
    kept = all_envs[len(all_envs) - min(size, len(all_envs)) :] if size else []
    wanted = all_envs[continuity.start(since, epoch, current, latest, last) :]
    envelopes = wanted[len(wanted) - min(len(wanted), len(kept)) :]
    return Replay(latest, envelopes, latest - len(envelopes) + 1, current)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.integers(0, 5), STEPS)
def test_behaves_like_the_model(run, size: int, steps: list) -> None:
    async def body(h) -> None:
        sent: dict[str, list[bytes]] = {"a": [], "b": []}
        epochs = {"a": "a0", "b": "b0"}
        known: set[str] = set()  # appended to, so the history has its epoch
        for op, key, arg in steps:
            if op == "append":
                first = len(sent[key]) + 1
                batch = envs(first, first + arg - 1, epochs[key])
                sent[key].extend(batch)
                known.add(key)
                await h.append({key: kept(first, batch, epochs[key])})
            elif op == "renumber":  # the numbering starts again, `arg` messages in
                epochs[key] += "+"
                sent[key] = envs(1, arg, epochs[key])
                known.add(key)
                await h.append({key: kept(1, sent[key], epochs[key])})
            else:
                since, which, last = arg
                epoch = {"current": epochs[key], "old": "gone", None: None}[which]
                current = epochs[key] if key in known else ""
                expected = model_replay(sent[key], size, since, epoch, current, last)
                assert await h.replay(key, since, epoch, last) == expected
        for key, expected_envs in sent.items():
            latest = await h.latest(key)
            assert latest is None or latest == (epochs[key], len(expected_envs))

    run(size, body)


# Which store get_history() builds: ZMQFEED["HISTORY_BACKEND"], or for None the layer's kind.

MEMORY_LAYERS = ["zmqfeed.layers.InMemoryChannelLayer", "channels.layers.InMemoryChannelLayer"]
REDIS_LAYERS = [
    "channels_redis.pubsub.RedisPubSubChannelLayer",
    "channels_redis.core.RedisChannelLayer",
]


class SiteHistory(MemoryHistory):
    """A site's own store: built with whatever get_history passes."""

    def __init__(self, size: int, url: str) -> None:
        super().__init__(size)
        self.url = url


class NotAHistory:
    pass


def layer(backend: str, **config: Any) -> dict[str, Any]:
    return {"default": {"BACKEND": backend, "CONFIG": config}}


def in_a_loop(make: Callable[[], Any]) -> Any:
    """get_history() of a per-loop store needs a running loop; close what it built."""

    async def main() -> Any:
        history = make()
        if isinstance(history, RedisHistory):
            await history.close()
        return history

    return asyncio.run(main())


def redis_address(history: RedisHistory) -> tuple[str, int, int]:
    kwargs = history._redis.connection_pool.connection_kwargs
    return kwargs["host"], kwargs["port"], kwargs.get("db", 0)


@pytest.mark.parametrize("backend", MEMORY_LAYERS)
def test_an_in_memory_layer_keeps_the_history_in_memory(settings, backend: str) -> None:
    settings.CHANNEL_LAYERS = layer(backend)
    settings.ZMQFEED = {"HISTORY_SIZE": 7}
    first = get_history()
    assert type(first) is MemoryHistory and first.size == 7
    assert get_history() is first  # one per process, shared by subscriber and consumers
    assert in_a_loop(get_history) is first  # and not one per loop


@pytest.mark.parametrize("backend", REDIS_LAYERS)
def test_a_redis_layer_keeps_the_history_in_redis(settings, backend: str) -> None:
    settings.CHANNEL_LAYERS = layer(backend, hosts=["redis://10.0.0.9:6390/3"])
    settings.ZMQFEED = {"HISTORY_SIZE": 9}

    async def twice() -> tuple[RedisHistory, RedisHistory]:
        first, second = get_history(), get_history()
        await first.close()
        return first, second

    first, second = asyncio.run(twice())
    assert type(first) is RedisHistory and first.size == 9
    assert second is first  # one per loop
    assert redis_address(first) == ("10.0.0.9", 6390, 3)
    assert in_a_loop(get_history) is not first  # a client belongs to its loop


def test_the_redis_url_setting_wins_over_the_layer_hosts(settings) -> None:
    settings.CHANNEL_LAYERS = layer(REDIS_LAYERS[0], hosts=[("10.0.0.9", 6390)])
    assert redis_address(in_a_loop(get_history)) == ("10.0.0.9", 6390, 0)  # a (host, port) pair
    settings.ZMQFEED = {"REDIS_URL": "redis://10.0.0.8:6391/2"}
    assert redis_address(in_a_loop(get_history)) == ("10.0.0.8", 6391, 2)


def test_a_dotted_path_is_honoured_whatever_the_layer(settings) -> None:
    settings.CHANNEL_LAYERS = layer(REDIS_LAYERS[0], hosts=["redis://10.0.0.9:6390/3"])
    settings.ZMQFEED = {"HISTORY_BACKEND": "zmqfeed.history.MemoryHistory"}
    assert type(get_history()) is MemoryHistory

    settings.CHANNEL_LAYERS = layer(MEMORY_LAYERS[0])
    settings.ZMQFEED = {
        "HISTORY_BACKEND": "zmqfeed.history.RedisHistory",
        "REDIS_URL": "redis://10.0.0.8:6391/2",
    }
    assert redis_address(in_a_loop(get_history)) == ("10.0.0.8", 6391, 2)

    settings.ZMQFEED = {
        "HISTORY_BACKEND": f"{__name__}.SiteHistory",
        "HISTORY_SIZE": 3,
        "REDIS_URL": "redis://10.0.0.8:6391/2",
    }
    site = in_a_loop(get_history)
    assert type(site) is SiteHistory
    assert (site.size, site.url) == (3, "redis://10.0.0.8:6391/2")  # size=, and url= it takes


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("zmqfeed.nonesuch.History", "does not import"),
        ("zmqfeed.history.NoSuchHistory", "does not import"),
        ("nodots", "does not import"),
        ("zmqfeed.history.get_history", "is not a class"),
        (f"{__name__}.NotAHistory", "is not a history: it has no latest, append, replay, stamps"),
        (42, "must be a dotted path"),
    ],
)
def test_a_bad_backend_is_reported_by_the_check(settings, value: object, problem: str) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from zmqfeed.checks import check_settings

    settings.ZMQFEED = {"HISTORY_BACKEND": value}
    errors = [e for e in check_settings() if e.id == "zmqfeed.E006"]
    assert len(errors) == 1, check_settings()
    assert problem in errors[0].msg
    assert "zmqfeed.history.MemoryHistory" in errors[0].hint
    with pytest.raises(ImproperlyConfigured, match=problem):
        get_history()


def test_a_redis_history_without_a_url_is_reported_by_the_check(settings) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from zmqfeed.checks import check_settings

    settings.CHANNEL_LAYERS = layer(REDIS_LAYERS[0])  # no hosts, no REDIS_URL
    errors = [e for e in check_settings() if e.id == "zmqfeed.E007"]
    assert len(errors) == 1 and "REDIS_URL" in errors[0].hint
    with pytest.raises(ImproperlyConfigured, match="needs a Redis URL"):
        in_a_loop(get_history)
    settings.ZMQFEED = {"HISTORY_BACKEND": "zmqfeed.history.MemoryHistory"}
    assert not [e for e in check_settings() if e.id in {"zmqfeed.E006", "zmqfeed.E007"}]


def test_history_does_not_ask_embedded() -> None:
    """The choice is the settings', so history imports neither embedded nor what it imports."""
    import ast
    from pathlib import Path

    import zmqfeed.history

    tree = ast.parse(Path(zmqfeed.history.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported |= {f"{'.' * node.level}{node.module or ''}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
    assert not [name for name in imported if "embedded" in name or "subscriber" in name]
