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
# Feed slugs that zmqfeed's own pages take: zmqfeed/urls.py matches them before a feed's
# page, <slug:feed>/, so a feed of that name could never be opened.
RESERVED_FEED_SLUGS: Final = ("healthz", "logout", "metrics", "sse", "status", "token")
NAME_MAX: Final = 200
PREFIX_MAX: Final = 255
GROUP_NAME_MAX: Final = 150  # django.contrib.auth's Group.name
CHOICE_MAX: Final = 16  # the columns that hold a framing, payload or access value
MAX_MESSAGE_SIZE_MIN: Final = 1  # bytes
MAX_MESSAGE_SIZE_DEFAULT: Final = 1024 * 1024  # bytes
MAX_MESSAGE_SIZE_MAX: Final = 2**31 - 1  # PositiveIntegerField's portable upper bound
SEPARATOR_MAX: Final = 16  # bytes between topic and payload in `prefix` framing
FRAMES_MAX: Final = 32  # entries of a multipart feed's `frames` list
PATH_MAX: Final = 500  # a Jupyter connection file's path
CURVE_KEYS_MAX: Final = 256  # entries of a feed's `curve_publishers` list
CURVE_KEY_LENGTH: Final = 40  # characters of a CURVE public key in Z85 (32 bytes)
CURVE_ANY: Final = "*"  # `curve_publishers: ["*"]`: any CURVE key (encryption only)
# A topic's own history; null `history` is the server's HISTORY_SIZE, which also caps it.
HISTORY_MAX: Final = 1_000_000  # messages a topic's `history` may ask for
HISTORY_AGE_MAX: Final = 31_536_000  # seconds (a year) of `history_age`; 0: no age limit
LAST_VALUES_MAX: Final = 1000  # messages a new subscriber gets without `since`

# How a feed's ZeroMQ frames carry topic and payload.
FRAMING_MULTIPART: Final = "multipart"
FRAMING_PREFIX: Final = "prefix"
FRAMING_RAW: Final = "raw"
FRAMING_JUPYTER: Final = "jupyter"
FRAMING_CHOICES: Final = (
    (FRAMING_MULTIPART, "multipart (topic frame, payload frame, further frames)"),
    (FRAMING_PREFIX, "prefix (one frame: topic, separator, payload)"),
    (FRAMING_RAW, "raw (one frame, no topic)"),
    (FRAMING_JUPYTER, "jupyter (the Jupyter kernel wire protocol, signed)"),
)

# What a payload is, and so how it reaches clients.
PAYLOAD_TEXT: Final = "text"
PAYLOAD_JSON: Final = "json"
PAYLOAD_BINARY: Final = "binary"
PAYLOAD_HEX: Final = "hex"
PAYLOAD_MSGPACK: Final = "msgpack"
PAYLOAD_CHOICES: Final = (
    (PAYLOAD_TEXT, "text (UTF-8)"),
    (PAYLOAD_JSON, "JSON"),
    (PAYLOAD_BINARY, "binary (base64 to clients)"),
    (PAYLOAD_HEX, "hex (lowercase hex string to clients)"),
    (PAYLOAD_MSGPACK, "msgpack (decoded to JSON)"),
)

# What the frames after the topic carry, in a multipart feed's `frames` list: frame 1 is
# the message's `data`, later ones its `parts`; a sequence number becomes `upstream_seq`.
FRAME_PAYLOAD: Final = "payload"  # decoded as the feed's `payload` says
SEQ_KINDS: Final = ("seq_le32", "seq_be32", "seq_le64", "seq_be64")
FRAME_KINDS: Final = (
    FRAME_PAYLOAD,
    PAYLOAD_TEXT,
    PAYLOAD_JSON,
    PAYLOAD_BINARY,
    PAYLOAD_HEX,
    *SEQ_KINDS,
)

# What is undone before the payload is decoded.
COMPRESSION_NONE: Final = "none"
COMPRESSION_ZLIB: Final = "zlib"
COMPRESSION_GZIP: Final = "gzip"
COMPRESSION_CHOICES: Final = (
    (COMPRESSION_NONE, "none"),
    (COMPRESSION_ZLIB, "zlib"),
    (COMPRESSION_GZIP, "gzip"),
)

# How a topic's prefix is compared with a message's topic.
MATCH_PREFIX: Final = "prefix"
MATCH_EXACT: Final = "exact"
MATCH_CHOICES: Final = (
    (MATCH_PREFIX, "prefix (the topic starts with it, as a ZeroMQ SUB filter)"),
    (MATCH_EXACT, "exact (the topic is it)"),
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

# Who may publish to a topic (two-way): nobody by default, else as `access` decides reading.
ACCESS_NOBODY: Final = "nobody"
PUBLISH_ACCESS_CHOICES: Final = ((ACCESS_NOBODY, "nobody (publishing is off)"), *ACCESS_CHOICES)

# A feed's outbound socket, for what clients publish.
PUBLISH_PUB: Final = "pub"
PUBLISH_PUSH: Final = "push"
PUBLISH_SOCKET_CHOICES: Final = (
    (PUBLISH_PUB, "pub (every ZeroMQ subscriber of the topic gets it)"),
    (PUBLISH_PUSH, "push (one connected peer takes it, in turn)"),
)
SUBTOPIC_MAX: Final = 255  # bytes a `publish` may add to the topic's prefix

FRAMINGS: Final = tuple(value for value, _ in FRAMING_CHOICES)
PAYLOADS: Final = tuple(value for value, _ in PAYLOAD_CHOICES)
COMPRESSIONS: Final = tuple(value for value, _ in COMPRESSION_CHOICES)
MATCHES: Final = tuple(value for value, _ in MATCH_CHOICES)
ACCESS: Final = tuple(value for value, _ in ACCESS_CHOICES)
PUBLISH_ACCESS: Final = tuple(value for value, _ in PUBLISH_ACCESS_CHOICES)
PUBLISH_SOCKETS: Final = tuple(value for value, _ in PUBLISH_SOCKET_CHOICES)

# The keys of a feed and of a topic, in the order export writes them.
FEED_KEYS: Final = (
    "slug",
    "name",
    "endpoints",
    "bind",
    "framing",
    "payload",
    "frames",
    "separator",
    "compression",
    "jupyter_connection_file",
    "curve_publishers",
    "publish_endpoints",
    "publish_socket",
    "publish_bind",
    "enabled",
    "max_message_size",
    "topics",
)
TOPIC_KEYS: Final = (
    "slug",
    "name",
    "prefix",
    "match",
    "access",
    "publish_access",
    "groups",
    "history",
    "history_age",
    "last_values",
)
FEED_REQUIRED: Final = ("slug", "name", "endpoints")
TOPIC_REQUIRED: Final = ("slug", "name")

# The value of every key that may be left out. Read-only: the schema merges these under a
# document and builds new lists for topics and groups, so the empty lists are never changed.
FEED_DEFAULTS: Final[Mapping[str, Any]] = MappingProxyType(
    {
        "bind": False,
        "framing": FRAMING_MULTIPART,
        "payload": PAYLOAD_JSON,
        "frames": [FRAME_PAYLOAD],
        "separator": " ",
        "compression": COMPRESSION_NONE,
        "jupyter_connection_file": "",
        "curve_publishers": [],
        "publish_endpoints": [],  # none: clients cannot publish to the feed
        "publish_socket": PUBLISH_PUB,
        "publish_bind": False,
        "enabled": True,
        "max_message_size": MAX_MESSAGE_SIZE_DEFAULT,
        "topics": [],
    }
)
TOPIC_DEFAULTS: Final[Mapping[str, Any]] = MappingProxyType(
    {
        "prefix": "",
        "match": MATCH_PREFIX,
        "access": ACCESS_PUBLIC,
        "publish_access": ACCESS_NOBODY,
        "groups": [],
        "history": None,  # the server's HISTORY_SIZE
        "history_age": 0,  # no age limit
        "last_values": 0,  # none on subscribe without `since`
    }
)
