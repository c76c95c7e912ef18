"""The words and limits of feeds and topics, written once.

The models, the admin, the configuration document (:mod:`zmqfeed.schema`), the catalog
and the decoders all describe the same feeds and topics; each reads the facts here rather
than keeping a copy that could drift. Pure: the schema must run without the ORM, and the
models build their choices and limits from it (changing a label, length or default here
changes the migration state, so ``makemigrations --check`` catches it).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

# Limits, in characters unless said otherwise.
SLUG_MAX: Final = 40  # keeps "zmqfeed.<feed>.<topic>" inside Channels' 100-character group names
NAME_MAX: Final = 200
PREFIX_MAX: Final = 255
GROUP_NAME_MAX: Final = 150  # django.contrib.auth's Group.name
CHOICE_MAX: Final = 16  # the columns that hold a framing, payload or access value
MAX_MESSAGE_SIZE_MIN: Final = 1  # bytes
MAX_MESSAGE_SIZE_DEFAULT: Final = 1024 * 1024  # bytes
MAX_MESSAGE_SIZE_MAX: Final = 2**31 - 1  # PositiveIntegerField's portable upper bound

# How a feed's ZeroMQ frames carry topic and payload.
FRAMING_MULTIPART: Final = "multipart"
FRAMING_PREFIX: Final = "prefix"
FRAMING_RAW: Final = "raw"
FRAMING_CHOICES: Final = (
    (FRAMING_MULTIPART, "multipart (topic frame, payload frame)"),
    (FRAMING_PREFIX, "prefix (one frame: topic, space, payload)"),
    (FRAMING_RAW, "raw (one frame, no topic)"),
)

# What a payload is, and so how it reaches clients.
PAYLOAD_TEXT: Final = "text"
PAYLOAD_JSON: Final = "json"
PAYLOAD_BINARY: Final = "binary"
PAYLOAD_CHOICES: Final = (
    (PAYLOAD_TEXT, "text (UTF-8)"),
    (PAYLOAD_JSON, "JSON"),
    (PAYLOAD_BINARY, "binary (base64 to clients)"),
)

# Who may read a topic (decided in zmqfeed.core.access).
ACCESS_PUBLIC: Final = "public"
ACCESS_AUTHENTICATED: Final = "authenticated"
ACCESS_STAFF: Final = "staff"
ACCESS_GROUP: Final = "group"  # members of the topic's groups
ACCESS_CHOICES: Final = (
    (ACCESS_PUBLIC, "public (anyone)"),
    (ACCESS_AUTHENTICATED, "any logged-in user"),
    (ACCESS_STAFF, "staff"),
    (ACCESS_GROUP, "members of the groups below"),
)

FRAMINGS: Final = tuple(value for value, _ in FRAMING_CHOICES)
PAYLOADS: Final = tuple(value for value, _ in PAYLOAD_CHOICES)
ACCESS: Final = tuple(value for value, _ in ACCESS_CHOICES)

# The keys of a feed and of a topic, in the order export writes them.
FEED_KEYS: Final = (
    "slug",
    "name",
    "endpoints",
    "bind",
    "framing",
    "payload",
    "enabled",
    "max_message_size",
    "topics",
)
TOPIC_KEYS: Final = ("slug", "name", "prefix", "access", "groups")
FEED_REQUIRED: Final = ("slug", "name", "endpoints")
TOPIC_REQUIRED: Final = ("slug", "name")

# The value of every key that may be left out. Read-only: the schema merges these under a
# document and builds new lists for topics and groups, so the empty lists are never changed.
FEED_DEFAULTS: Final[Mapping[str, Any]] = MappingProxyType(
    {
        "bind": False,
        "framing": FRAMING_MULTIPART,
        "payload": PAYLOAD_JSON,
        "enabled": True,
        "max_message_size": MAX_MESSAGE_SIZE_DEFAULT,
        "topics": [],
    }
)
TOPIC_DEFAULTS: Final[Mapping[str, Any]] = MappingProxyType(
    {"prefix": "", "access": ACCESS_PUBLIC, "groups": []}
)
