"""The feeds and topics as immutable values, loaded in one go from the database.

Subscribers and consumers work from a catalog, never from the ORM, so that the hot path
does no I/O; a watcher (:mod:`zmqfeed.watch`) swaps in a new catalog when the admin changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .vocabulary import FEED_DEFAULTS, TOPIC_DEFAULTS

GROUP_PREFIX = "zmqfeed."


def group_name(feed: str, topic: str) -> str:
    return f"{GROUP_PREFIX}{feed}.{topic}"


def group_topic(group: str) -> tuple[str, str] | None:
    """(feed, topic) of a group :func:`group_name` made (slugs have no dots), else None."""
    if not group.startswith(GROUP_PREFIX):
        return None
    feed, dot, topic = group[len(GROUP_PREFIX) :].partition(".")
    return (feed, topic) if dot and feed and topic and "." not in topic else None


@dataclass(frozen=True)
class TopicConfig:
    slug: str
    name: str
    prefix: str = TOPIC_DEFAULTS["prefix"]
    # Keyword-only (after the positional fields in __init__), but in the vocabulary's order.
    match: str = field(default=TOPIC_DEFAULTS["match"], kw_only=True)
    access: str = TOPIC_DEFAULTS["access"]
    publish_access: str = field(default=TOPIC_DEFAULTS["publish_access"], kw_only=True)
    groups: frozenset[str] = frozenset()  # TOPIC_DEFAULTS["groups"], as a set
    # Replay and last values: None is the server's HISTORY_SIZE (which also caps it).
    history: int | None = field(default=TOPIC_DEFAULTS["history"], kw_only=True)
    history_age: int = field(default=TOPIC_DEFAULTS["history_age"], kw_only=True)  # s; 0: none
    last_values: int = field(default=TOPIC_DEFAULTS["last_values"], kw_only=True)

    @property
    def prefix_bytes(self) -> bytes:
        return self.prefix.encode()


@dataclass(frozen=True)
class FeedConfig:
    slug: str
    name: str
    endpoints: tuple[str, ...]
    bind: bool = FEED_DEFAULTS["bind"]
    framing: str = FEED_DEFAULTS["framing"]
    payload: str = FEED_DEFAULTS["payload"]
    # How real publishers' frames are read; keyword-only, but in the vocabulary's order.
    frames: tuple[str, ...] = field(default=tuple(FEED_DEFAULTS["frames"]), kw_only=True)
    separator: str = field(default=FEED_DEFAULTS["separator"], kw_only=True)
    compression: str = field(default=FEED_DEFAULTS["compression"], kw_only=True)
    jupyter_connection_file: str = field(
        default=FEED_DEFAULTS["jupyter_connection_file"], kw_only=True
    )
    # Trusted publishers' CURVE public keys (Z85), or ("*",); empty: no CURVE.
    curve_publishers: tuple[str, ...] = field(default=(), kw_only=True)
    # The outbound socket for what clients publish; no endpoints: publishing is off.
    publish_endpoints: tuple[str, ...] = field(default=(), kw_only=True)
    publish_socket: str = field(default=FEED_DEFAULTS["publish_socket"], kw_only=True)
    publish_bind: bool = field(default=FEED_DEFAULTS["publish_bind"], kw_only=True)
    enabled: bool = FEED_DEFAULTS["enabled"]
    max_message_size: int = FEED_DEFAULTS["max_message_size"]
    topics: tuple[TopicConfig, ...] = ()  # FEED_DEFAULTS["topics"], as a tuple

    def socket_settings(self) -> tuple:
        """What a change to requires a new socket (topics are re-applied in place)."""
        return (self.endpoints, self.bind, self.framing, self.curve_publishers)

    def publish_settings(self) -> tuple:
        """What a change to requires a new outbound socket."""
        return (
            self.publish_endpoints,
            self.publish_socket,
            self.publish_bind,
            self.curve_publishers,
        )

    def topic(self, slug: str) -> TopicConfig | None:
        for topic in self.topics:
            if topic.slug == slug:
                return topic
        return None


@dataclass(frozen=True)
class Catalog:
    feeds: tuple[FeedConfig, ...] = ()
    _index: dict = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({f.slug: f for f in self.feeds})

    def feed(self, slug: str) -> FeedConfig | None:
        return self._index.get(slug)

    def topic(self, feed: str, topic: str) -> TopicConfig | None:
        f = self._index.get(feed)
        return f.topic(topic) if f else None
