"""Feeds (ZeroMQ sources) and topics (the unit of subscription and access)."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.core.validators import MinValueValidator
from django.db import models

from .core.catalog import Catalog, FeedConfig, TopicConfig
from .endpoints import validate_endpoints

SLUG_MAX = 40  # keeps "zmqfeed.<feed>.<topic>" inside Channels' 100-character group names


class Framing(models.TextChoices):
    MULTIPART = "multipart", "multipart (topic frame, payload frame)"
    PREFIX = "prefix", "prefix (one frame: topic, space, payload)"
    RAW = "raw", "raw (one frame, no topic)"


class Payload(models.TextChoices):
    TEXT = "text", "text (UTF-8)"
    JSON = "json", "JSON"
    BINARY = "binary", "binary (base64 to clients)"


class Access(models.TextChoices):
    PUBLIC = "public", "public (anyone)"
    AUTHENTICATED = "authenticated", "any logged-in user"
    STAFF = "staff", "staff"
    GROUP = "group", "members of the groups below"


class Feed(models.Model):
    slug = models.SlugField(max_length=SLUG_MAX, unique=True)
    name = models.CharField(max_length=200)
    endpoints = models.JSONField(
        default=list,
        validators=[validate_endpoints],
        help_text="ZeroMQ endpoints, e.g. tcp://127.0.0.1:5556, ipc:///run/feed.sock, "
        "epgm://eth0;239.192.1.1:5555.",
    )
    bind = models.BooleanField(
        default=False,
        help_text="Off: the gateway connects to the publishers. "
        "On: the gateway binds and publishers connect to it.",
    )
    framing = models.CharField(max_length=16, choices=Framing.choices, default=Framing.MULTIPART)
    payload = models.CharField(max_length=16, choices=Payload.choices, default=Payload.JSON)
    enabled = models.BooleanField(default=True)
    max_message_size = models.PositiveIntegerField(
        default=1024 * 1024,
        validators=[MinValueValidator(1)],
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
    slug = models.SlugField(max_length=SLUG_MAX)
    name = models.CharField(max_length=200)
    prefix = models.CharField(
        max_length=255,
        blank=True,
        help_text="ZeroMQ topic prefix (UTF-8). Empty matches every message of the feed.",
    )
    access = models.CharField(max_length=16, choices=Access.choices, default=Access.PUBLIC)
    groups = models.ManyToManyField(
        Group, blank=True, related_name="zmqfeed_topics", help_text="For access “group”."
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
                access=t.access,
                groups=frozenset(g.name for g in t.groups.all()),
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
                enabled=feed.enabled,
                max_message_size=feed.max_message_size,
                topics=topics,
            )
        )
    return Catalog(tuple(feeds))
