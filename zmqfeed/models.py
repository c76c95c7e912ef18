"""Feeds (ZeroMQ sources) and topics (the unit of subscription and access)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from .core import vocabulary as vocab
from .core.catalog import Catalog, FeedConfig, TopicConfig
from .endpoints import validate_endpoints

SLUG_MAX = vocab.SLUG_MAX  # re-exported: importers of models.SLUG_MAX keep working


def _choices(name: str, choices: tuple[tuple[str, str], ...]) -> type[models.TextChoices]:
    """TextChoices from the vocabulary's (value, label) pairs, members named VALUE.upper()."""
    members = [(value.upper(), (value, label)) for value, label in choices]
    return models.TextChoices(name, members, module=__name__)


Framing = _choices("Framing", vocab.FRAMING_CHOICES)
Payload = _choices("Payload", vocab.PAYLOAD_CHOICES)
Access = _choices("Access", vocab.ACCESS_CHOICES)
Compression = _choices("Compression", vocab.COMPRESSION_CHOICES)
Match = _choices("Match", vocab.MATCH_CHOICES)
PublishAccess = _choices("PublishAccess", vocab.PUBLISH_ACCESS_CHOICES)
PublishSocket = _choices("PublishSocket", vocab.PUBLISH_SOCKET_CHOICES)


def default_frames() -> list[str]:
    return list(vocab.FEED_DEFAULTS["frames"])


_FEED = vocab.FEED_DEFAULTS
_TOPIC = vocab.TOPIC_DEFAULTS


class Feed(models.Model):
    slug = models.SlugField(max_length=vocab.SLUG_MAX, unique=True)
    name = models.CharField(max_length=vocab.NAME_MAX)
    endpoints = models.JSONField(
        default=list,
        validators=[validate_endpoints],
        help_text="ZeroMQ endpoints, e.g. tcp://127.0.0.1:5556, ipc:///run/feed.sock, "
        "epgm://eth0;239.192.1.1:5555.",
    )
    bind = models.BooleanField(
        default=_FEED["bind"],
        help_text="Off: the gateway connects to the publishers. "
        "On: the gateway binds and publishers connect to it.",
    )
    framing = models.CharField(
        max_length=vocab.CHOICE_MAX, choices=Framing.choices, default=_FEED["framing"]
    )
    payload = models.CharField(
        max_length=vocab.CHOICE_MAX, choices=Payload.choices, default=_FEED["payload"]
    )
    frames = models.JSONField(
        default=default_frames,
        help_text="Multipart: what frame 1, 2, … after the topic carry, e.g. "
        '["payload", "seq_le32"]: payload, text, json, binary, hex, or a publisher '
        "sequence number seq_le32, seq_be32, seq_le64, seq_be64.",
    )
    separator = models.CharField(
        max_length=vocab.SEPARATOR_MAX,
        default=_FEED["separator"],
        help_text="Prefix framing: what stands between topic and payload (one space by default).",
    )
    compression = models.CharField(
        max_length=vocab.CHOICE_MAX,
        choices=Compression.choices,
        default=_FEED["compression"],
        help_text="Undone before the payload is decoded; the decompressed size counts "
        "against the maximum message size.",
    )
    jupyter_connection_file = models.CharField(
        max_length=vocab.PATH_MAX,
        blank=True,
        help_text="Jupyter framing: the kernel's connection file, whose key verifies every "
        "message (read by the subscriber; the key is never stored here). Empty: not verified.",
    )
    curve_publishers = models.JSONField(
        default=list,
        blank=True,
        help_text="CURVE: the trusted publishers' public keys (Z85, 40 characters each), or "
        '["*"] for any key (encryption only). Empty: no CURVE. The gateway\'s own key pair '
        "is read from ZMQFEED['CURVE_SECRET_FILE'], never stored here.",
    )
    publish_endpoints = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_endpoints],
        help_text="Two-way: where what clients publish goes, e.g. tcp://127.0.0.1:5560. "
        "Empty: nobody can publish to this feed (see each topic's publish access).",
    )
    publish_socket = models.CharField(
        max_length=vocab.CHOICE_MAX,
        choices=PublishSocket.choices,
        default=_FEED["publish_socket"],
    )
    publish_bind = models.BooleanField(
        default=_FEED["publish_bind"],
        help_text="Off: the gateway connects its publish socket to these endpoints. "
        "On: it binds them, and the ZeroMQ side connects.",
    )
    enabled = models.BooleanField(default=_FEED["enabled"])
    max_message_size = models.PositiveIntegerField(
        default=_FEED["max_message_size"],
        validators=[MinValueValidator(vocab.MAX_MESSAGE_SIZE_MIN)],
        help_text="Bytes; larger messages are dropped and counted.",
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name or self.slug


class Topic(models.Model):
    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="topics")
    slug = models.SlugField(max_length=vocab.SLUG_MAX)
    name = models.CharField(max_length=vocab.NAME_MAX)
    prefix = models.CharField(
        max_length=vocab.PREFIX_MAX,
        blank=True,  # no default: a CharField's is "", which is TOPIC_DEFAULTS["prefix"]
        help_text="ZeroMQ topic prefix (UTF-8), compared with the topic frame's bytes as a "
        "ZeroMQ SUB filter does (prefix framing: with the whole frame, so '1 ' takes topic 1, "
        "not 10). Empty matches every message of the feed.",
    )
    match = models.CharField(
        max_length=vocab.CHOICE_MAX,
        choices=Match.choices,
        default=_TOPIC["match"],
        help_text="prefix: topics that start with the prefix; exact: the topic itself.",
    )
    access = models.CharField(
        max_length=vocab.CHOICE_MAX, choices=Access.choices, default=_TOPIC["access"]
    )
    publish_access = models.CharField(
        max_length=vocab.CHOICE_MAX,
        choices=PublishAccess.choices,
        default=_TOPIC["publish_access"],
        help_text="Who may publish to the topic through the gateway (the feed needs publish "
        "endpoints).",
    )
    groups = models.ManyToManyField(
        Group,
        blank=True,
        related_name="zmqfeed_topics",
        help_text="For access (and publish access) “group”.",
    )
    history = models.PositiveIntegerField(
        null=True,
        blank=True,  # no default: a nullable field's is None, which is TOPIC_DEFAULTS["history"]
        validators=[MaxValueValidator(vocab.HISTORY_MAX)],
        help_text="Messages kept for replay; empty: the server's HISTORY_SIZE, which also "
        "caps it; 0: none.",
    )
    history_age = models.PositiveIntegerField(
        default=_TOPIC["history_age"],
        validators=[MaxValueValidator(vocab.HISTORY_AGE_MAX)],
        help_text="Seconds a kept message stays replayable; 0: no age limit.",
    )
    last_values = models.PositiveIntegerField(
        default=_TOPIC["last_values"],
        validators=[MaxValueValidator(vocab.LAST_VALUES_MAX)],
        help_text="Latest messages a new subscriber gets on subscribe without since "
        "(1 for a state: a price, a reading); 0: none.",
    )

    class Meta:
        ordering = ["feed__slug", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["feed", "slug"], name="zmqfeed_topic_unique_slug")
        ]

    def __str__(self) -> str:
        return f"{self.feed.slug}/{self.slug}"


def load_catalog() -> Catalog:
    """Read every feed and topic (sync: call through sync_to_async from async code)."""
    feeds = []
    for feed in Feed.objects.prefetch_related("topics__groups").order_by("slug"):
        topics = tuple(
            TopicConfig(
                slug=t.slug,
                name=t.name,
                prefix=t.prefix,
                match=t.match,
                access=t.access,
                publish_access=t.publish_access,
                groups=frozenset(g.name for g in t.groups.all()),
                history=t.history,
                history_age=t.history_age,
                last_values=t.last_values,
            )
            for t in sorted(feed.topics.all(), key=lambda t: t.slug)
        )
        feeds.append(
            FeedConfig(
                slug=feed.slug,
                name=feed.name,
                endpoints=tuple(feed.endpoints or ()),
                bind=feed.bind,
                framing=feed.framing,
                payload=feed.payload,
                frames=tuple(feed.frames or vocab.FEED_DEFAULTS["frames"]),
                separator=feed.separator,
                compression=feed.compression,
                jupyter_connection_file=feed.jupyter_connection_file,
                curve_publishers=tuple(feed.curve_publishers or ()),
                publish_endpoints=tuple(feed.publish_endpoints or ()),
                publish_socket=feed.publish_socket,
                publish_bind=feed.publish_bind,
                enabled=feed.enabled,
                max_message_size=feed.max_message_size,
                topics=topics,
            )
        )
    return Catalog(tuple(feeds))


class TokenGeneration(models.Model):
    """A user's token generation: tokens carry it, and bumping it revokes them all at once."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="zmqfeed_tokens",
    )
    generation = models.PositiveIntegerField(default=0)
    revoked = models.DateTimeField(
        null=True, blank=True, help_text="When tokens were last revoked."
    )

    class Meta:
        verbose_name = "program token generation"

    def __str__(self) -> str:
        return f"{self.user} (generation {self.generation})"

    @classmethod
    def current(cls, user_id: int) -> int:
        found = cls.objects.filter(user_id=user_id).values_list("generation", flat=True).first()
        return found or 0

    @classmethod
    def revoke(cls, user_id: int) -> int:
        """Every token of the user stops working; the new generation."""
        from django.utils import timezone

        row, _ = cls.objects.get_or_create(user_id=user_id)
        cls.objects.filter(pk=row.pk).update(
            generation=models.F("generation") + 1, revoked=timezone.now()
        )
        return cls.current(user_id)
