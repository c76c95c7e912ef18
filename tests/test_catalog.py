"""The catalog: immutable feeds and topics, looked up without the ORM, loaded in one go."""

from __future__ import annotations

import dataclasses

import pytest
from django.contrib.auth.models import Group

from zmqfeed.core.catalog import Catalog, FeedConfig, TopicConfig, group_name
from zmqfeed.models import Feed, Topic, load_catalog

EUR = TopicConfig("eur", "EUR", prefix="EUR", groups=frozenset({"traders"}), access="group")
USD = TopicConfig("usd", "USD", prefix="USD")
PRICES = FeedConfig("prices", "Prices", ("tcp://127.0.0.1:5556",), topics=(EUR, USD))
LOGS = FeedConfig("logs", "Logs", ("tcp://*:5557",), bind=True, framing="prefix", payload="text")
CATALOG = Catalog((PRICES, LOGS))


def test_feeds_and_topics_are_found_by_slug() -> None:
    assert CATALOG.feed("prices") is PRICES
    assert CATALOG.feed("logs") is LOGS
    assert CATALOG.topic("prices", "eur") is EUR
    assert CATALOG.topic("prices", "usd") is USD
    assert PRICES.topic("usd") is USD


@pytest.mark.parametrize(("feed", "topic"), [("nope", "eur"), ("prices", "nope"), ("logs", "eur")])
def test_missing_feeds_and_topics_are_none(feed: str, topic: str) -> None:
    assert CATALOG.topic(feed, topic) is None


def test_an_empty_catalog_has_nothing() -> None:
    assert Catalog().feeds == ()
    assert Catalog().feed("prices") is None
    assert Catalog().topic("prices", "eur") is None


def test_catalogs_with_the_same_feeds_are_equal() -> None:
    assert Catalog((PRICES, LOGS)) == CATALOG
    assert Catalog((PRICES,)) != CATALOG
    changed = dataclasses.replace(USD, access="staff")
    assert Catalog((dataclasses.replace(PRICES, topics=(EUR, changed)), LOGS)) != CATALOG


def test_configs_are_immutable_and_hashable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRICES.name = "changed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        EUR.prefix = "GBP"  # type: ignore[misc]
    assert len({EUR, USD, dataclasses.replace(EUR)}) == 2
    assert hash(PRICES) == hash(dataclasses.replace(PRICES))


def test_a_catalog_derived_with_replace_is_independent() -> None:
    original = Catalog((PRICES,))
    derived = dataclasses.replace(original, feeds=(LOGS,))
    assert derived.feed("logs") is LOGS
    assert derived.feed("prices") is None
    assert original.feed("logs") is None


def test_prefix_bytes_are_utf8() -> None:
    assert TopicConfig("t", "T", prefix="café").prefix_bytes == "café".encode()
    assert TopicConfig("t", "T").prefix_bytes == b""


def test_group_name() -> None:
    assert group_name("prices", "eur") == "zmqfeed.prices.eur"
    assert group_name("prices", "eur") != group_name("prices", "usd")
    assert group_name("a", "b") != group_name("b", "a")


def test_longest_slugs_make_a_valid_channels_group_name() -> None:
    from channels.layers import BaseChannelLayer

    from zmqfeed.core.vocabulary import SLUG_MAX

    name = group_name("f" * SLUG_MAX, "t" * SLUG_MAX)
    assert BaseChannelLayer().require_valid_group_name(name)


def test_socket_settings_change_only_with_the_socket() -> None:
    same = [
        dataclasses.replace(PRICES, name="Renamed"),
        dataclasses.replace(PRICES, topics=()),
        dataclasses.replace(PRICES, payload="text"),
        dataclasses.replace(PRICES, max_message_size=10),
    ]
    for feed in same:
        assert feed.socket_settings() == PRICES.socket_settings(), feed
    other = [
        dataclasses.replace(PRICES, endpoints=("tcp://127.0.0.1:5557",)),
        dataclasses.replace(PRICES, endpoints=(*PRICES.endpoints, "ipc:///tmp/x")),
        dataclasses.replace(PRICES, bind=True),
        dataclasses.replace(PRICES, framing="raw"),
    ]
    for feed in other:
        assert feed.socket_settings() != PRICES.socket_settings(), feed


# load_catalog from the database


def test_an_empty_database_loads_an_empty_catalog(db) -> None:
    assert load_catalog() == Catalog()


def test_load_catalog_reads_feeds_topics_and_groups(db, django_assert_max_num_queries) -> None:
    traders, desk = Group.objects.create(name="traders"), Group.objects.create(name="desk")
    prices = Feed.objects.create(
        slug="prices",
        name="Prices",
        endpoints=["tcp://127.0.0.1:5556", "tcp://127.0.0.1:5558"],
        max_message_size=2048,
    )
    logs = Feed.objects.create(
        slug="logs",
        name="Logs",
        endpoints=["tcp://*:5557"],
        bind=True,
        framing="prefix",
        payload="text",
        enabled=False,
    )
    Feed.objects.create(slug="empty", name="Empty", endpoints=[])
    Topic.objects.create(
        feed=prices,
        slug="usd",
        name="USD",
        prefix="USD",
        access="staff",
        history=20,
        history_age=900,
        last_values=1,
    )
    eur = Topic.objects.create(feed=prices, slug="eur", name="EUR", prefix="EUR", access="group")
    eur.groups.add(traders, desk)
    Topic.objects.create(feed=logs, slug="all", name="All")

    with django_assert_max_num_queries(4):
        catalog = load_catalog()

    assert [f.slug for f in catalog.feeds] == ["empty", "logs", "prices"]
    assert catalog.feed("prices") == FeedConfig(
        slug="prices",
        name="Prices",
        endpoints=("tcp://127.0.0.1:5556", "tcp://127.0.0.1:5558"),
        bind=False,
        framing="multipart",
        payload="json",
        enabled=True,
        max_message_size=2048,
        topics=(
            TopicConfig("eur", "EUR", "EUR", "group", frozenset({"traders", "desk"})),
            TopicConfig(
                "usd",
                "USD",
                "USD",
                "staff",
                frozenset(),
                history=20,
                history_age=900,
                last_values=1,
            ),
        ),
    )
    assert catalog.feed("logs") == FeedConfig(
        slug="logs",
        name="Logs",
        endpoints=("tcp://*:5557",),
        bind=True,
        framing="prefix",
        payload="text",
        enabled=False,
        max_message_size=1024 * 1024,
        topics=(TopicConfig("all", "All", "", "public", frozenset()),),
    )
    assert catalog.feed("empty").topics == ()
    assert catalog.feed("empty").endpoints == ()
    assert catalog.topic("prices", "eur").groups == frozenset({"traders", "desk"})
    # Left out: the server's HISTORY_SIZE (None), no age limit, no last values.
    eur_config = catalog.topic("prices", "eur")
    assert (eur_config.history, eur_config.history_age, eur_config.last_values) == (None, 0, 0)


def test_load_catalog_sees_changes(db) -> None:
    feed = Feed.objects.create(slug="f", name="F", endpoints=["tcp://127.0.0.1:1"])
    topic = Topic.objects.create(feed=feed, slug="t", name="T")
    before = load_catalog()
    topic.access = "authenticated"
    topic.last_values = 1
    topic.save()
    after = load_catalog()
    assert before.topic("f", "t").access == "public"
    assert after.topic("f", "t").access == "authenticated"
    assert (before.topic("f", "t").last_values, after.topic("f", "t").last_values) == (0, 1)
    assert before != after
    assert load_catalog() == after
