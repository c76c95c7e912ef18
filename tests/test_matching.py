"""A ZeroMQ topic goes to every configured topic whose prefix it starts with, in config order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from zmqfeed.core.matching import Matcher


def reference(topics: list[tuple[bytes, object]], topic: bytes) -> tuple:
    """The definition, by brute force."""
    return tuple(value for prefix, value in topics if topic.startswith(prefix))


def test_a_topic_matches_every_prefix_it_starts_with_in_configuration_order() -> None:
    matcher = Matcher([(b"EUR.USD", "eurusd"), (b"EUR", "eur"), (b"USD", "usd"), (b"E", "e")])
    assert matcher.match(b"EUR.USD.spot") == ("eurusd", "eur", "e")
    assert matcher.match(b"EUR.GBP") == ("eur", "e")
    assert matcher.match(b"USD") == ("usd",)
    assert matcher.match(b"EU") == ("e",)
    assert matcher.match(b"GBP") == ()
    assert matcher.match(b"") == ()


def test_the_empty_prefix_matches_every_topic() -> None:
    matcher = Matcher([(b"A", "a"), (b"", "all")])
    assert matcher.match(b"") == ("all",)
    assert matcher.match(b"A1") == ("a", "all")
    assert matcher.match(b"\xff\x00") == ("all",)


def test_several_values_may_share_a_prefix() -> None:
    matcher = Matcher([(b"X", 1), (b"", 2), (b"X", 3), (b"XY", 4), (b"X", 5)])
    assert matcher.match(b"XYZ") == (1, 2, 3, 4, 5)
    assert matcher.match(b"X") == (1, 2, 3, 5)
    assert matcher.prefixes == frozenset({b"X", b"", b"XY"})


def test_prefixes_are_bytes_not_text() -> None:
    matcher = Matcher([("café".encode(), "cafe")])
    assert matcher.match("café au lait".encode()) == ("cafe",)
    assert matcher.match(b"caf\xe9") == ()


def test_no_topics_match_nothing() -> None:
    matcher = Matcher(())
    assert matcher.match(b"anything") == ()
    assert matcher.prefixes == frozenset()


def test_topics_may_come_from_a_generator() -> None:
    matcher = Matcher((bytes([c]), c) for c in b"abc")
    assert matcher.match(b"b!") == (ord("b"),)


# Small alphabets so that prefixes and topics overlap often.
PREFIXES = st.binary(max_size=4).map(lambda b: bytes(x % 3 + 97 for x in b))
TOPICS = st.binary(max_size=6).map(lambda b: bytes(x % 3 + 97 for x in b))


@given(st.lists(PREFIXES, max_size=12), st.lists(TOPICS, max_size=10))
def test_matches_brute_force(prefixes: list[bytes], topics: list[bytes]) -> None:
    config = [(prefix, index) for index, prefix in enumerate(prefixes)]
    matcher = Matcher(config)
    assert matcher.prefixes == frozenset(prefixes)
    for topic in topics:
        assert matcher.match(topic) == reference(config, topic)


@given(st.lists(st.binary(max_size=5), max_size=8), st.binary(max_size=8))
def test_matches_brute_force_over_any_bytes(prefixes: list[bytes], topic: bytes) -> None:
    config = [(prefix, f"topic-{index}") for index, prefix in enumerate(prefixes)]
    assert Matcher(config).match(topic) == reference(config, topic)
