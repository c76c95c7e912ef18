"""The configuration document (docs/configuration.md): checked, normalised, exported.

Pure on purpose: ``zmq_feeds import`` validates the whole file here before it touches the
database, so that a bad file changes nothing and every error names its field by its path
(``feeds[1].topics[0].access: must be one of …``), all of them at once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from django.core.validators import slug_re
from zmq.utils import z85

from .core.catalog import Catalog, FeedConfig, TopicConfig
from .core.vocabulary import (
    ACCESS,
    ACCESS_GROUP,
    ACCESS_NOBODY,
    COMPRESSIONS,
    CURVE_ANY,
    CURVE_KEY_LENGTH,
    CURVE_KEYS_MAX,
    FEED_DEFAULTS,
    FEED_KEYS,
    FEED_REQUIRED,
    FRAME_KINDS,
    FRAMES_MAX,
    FRAMING_JUPYTER,
    FRAMING_RAW,
    FRAMINGS,
    GROUP_NAME_MAX,
    HISTORY_AGE_MAX,
    HISTORY_MAX,
    LAST_VALUES_MAX,
    MATCHES,
    MAX_MESSAGE_SIZE_MAX,
    MAX_MESSAGE_SIZE_MIN,
    NAME_MAX,
    PATH_MAX,
    PAYLOADS,
    PREFIX_MAX,
    PUBLISH_ACCESS,
    PUBLISH_SOCKETS,
    RESERVED_FEED_SLUGS,
    SEPARATOR_MAX,
    SEQ_KINDS,
    SLUG_MAX,
    TOPIC_DEFAULTS,
    TOPIC_KEYS,
    TOPIC_REQUIRED,
)
from .endpoints import endpoint_problems, parse_endpoint


class SchemaError(ValueError):
    """A problem found in a document, with the path of the field it concerns."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class SchemaErrors(SchemaError):
    """Every problem found, in the document's order, one per line; ``path`` and
    ``message`` are the first's."""

    def __init__(self, errors: list[SchemaError]) -> None:
        super().__init__(errors[0].path, errors[0].message)
        self.args = ("\n".join(str(error) for error in errors),)
        self.errors = errors


class _Problems:
    """Collects the problems of a document, so that one pass reports them all."""

    def __init__(self) -> None:
        self.errors: list[SchemaError] = []

    def add(self, path: str, problem: str | None) -> None:
        if problem:
            self.errors.append(SchemaError(path, problem))

    def take(self, exc: SchemaError) -> None:
        self.errors.extend(exc.errors if isinstance(exc, SchemaErrors) else [exc])


def _raise_all(errors: list[SchemaError]) -> None:
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise SchemaErrors(errors)


class _Fields:
    """One object of the document, whose fields are checked one by one: a bad field is
    reported and left out of ``values``, and the checks that need it are skipped."""

    def __init__(
        self,
        obj: object,
        path: str,
        required: tuple[str, ...],
        allowed: tuple[str, ...],
        defaults: Mapping[str, Any],
        problems: _Problems,
    ) -> None:
        self.path = path
        self.problems = problems
        self.values: dict[str, Any] = {}
        self.raw: dict[str, Any] = {}
        if not isinstance(obj, dict):
            problems.add(path, f"must be an object, not {_kind(obj)}")
            return
        for key in obj:
            if key not in allowed:
                problems.add(f"{path}.{key}", f"unknown key; the keys are {', '.join(allowed)}")
        for key in required:
            if key not in obj:
                problems.add(f"{path}.{key}", "is required")
        self.raw = {**defaults, **obj}

    def check(self, key: str, check: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        if key not in self.raw:  # a required key, reported missing
            return
        try:
            self.values[key] = check(self.raw[key], f"{self.path}.{key}", *args, **kwargs)
        except SchemaError as exc:
            self.problems.take(exc)

    def has(self, *keys: str) -> bool:
        return all(key in self.values for key in keys)

    def add(self, key: str, problem: str | None) -> None:
        self.problems.add(f"{self.path}.{key}", problem)


def endpoint_list_problems(
    endpoints: list, *, bind: bool | None = None, bind_key: str = "bind", peer: str = "publisher"
) -> list[tuple[int, str]]:
    """(index, problem) for each bad endpoint: syntax, transports this libzmq lacks, repeats
    (a repeated connect doubles every message) and, when ``bind`` is False, wildcards.

    ``bind_key`` and ``peer`` name the switch and the other end in that last message, so
    that it fits the publish socket too (``publish_bind``, the receiver).
    """
    problems: list[tuple[int, str]] = []
    seen: set[str] = set()
    for index, endpoint in enumerate(endpoints):
        found = endpoint_problems([endpoint])
        if found:
            problems.extend((index, problem) for problem in found)
            continue
        endpoint = endpoint.strip()
        parsed = parse_endpoint(endpoint)
        if endpoint in seen:
            problems.append((index, f"{endpoint!r} is listed twice"))
        elif bind is False and parsed.scheme == "tcp" and (parsed.host == "*" or not parsed.port):
            problems.append(
                (
                    index,
                    f"{endpoint!r}: * is for binding; to connect, give the {peer}'s host "
                    f"and port (or turn on {bind_key})",
                )
            )
        seen.add(endpoint)
    return problems


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _string(value: object, path: str, *, max_length: int, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise SchemaError(path, f"must be a string, not {_kind(value)}")
    if not empty and not value.strip():
        raise SchemaError(path, "must not be empty")
    if len(value) > max_length:
        raise SchemaError(path, f"must be at most {max_length} characters, not {len(value)}")
    if "\x00" in value or _unencodable(value):
        raise SchemaError(path, "must be UTF-8 text without NUL characters")
    return value


def _unencodable(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate, which JSON's \uXXXX escapes allow
        return True
    return False


def _slug(value: object, path: str) -> str:
    slug = _string(value, path, max_length=SLUG_MAX)
    if not slug_re.match(slug):
        raise SchemaError(path, f"{slug!r} is not a slug (letters, digits, '-' and '_' only)")
    return slug


def _bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise SchemaError(path, f"must be true or false, not {_kind(value)}")
    return value


def _choice(value: object, path: str, choices: tuple[str, ...]) -> str:
    if value not in choices or not isinstance(value, str):
        raise SchemaError(path, f"must be one of {', '.join(choices)}, not {value!r}")
    return value


def _list(value: object, path: str) -> list:
    if not isinstance(value, list):
        raise SchemaError(path, f"must be a list, not {_kind(value)}")
    return value


def _endpoints(value: object, path: str, *, bind: bool | None, **wording: str) -> list[str]:
    endpoints = _list(value, path)
    if not endpoints:
        raise SchemaError(path, "must list at least one endpoint")
    return _endpoint_list(endpoints, path, bind=bind, **wording)


def _endpoint_list(endpoints: list, path: str, *, bind: bool | None, **wording: str) -> list[str]:
    """Each bad endpoint reported; ``bind`` None (itself bad) skips the wildcard rule."""
    problems = _Problems()
    for index, endpoint in enumerate(endpoints):
        if not isinstance(endpoint, str):
            problems.add(f"{path}[{index}]", f"must be a string, not {_kind(endpoint)}")
    if not problems.errors:
        for index, problem in endpoint_list_problems(endpoints, bind=bind, **wording):
            problems.add(f"{path}[{index}]", problem)
    _raise_all(problems.errors)
    return [endpoint.strip() for endpoint in endpoints]


# How endpoint_list_problems names the switch and the other end of the publish socket.
PUBLISH_WORDING: dict[str, str] = {"bind_key": "publish_bind", "peer": "receiver"}


def _publish_endpoints(value: object, path: str, *, bind: bool | None) -> list[str]:
    """As ``endpoints``, but may be empty: a feed nobody publishes to has none."""
    return _endpoint_list(_list(value, path), path, bind=bind, **PUBLISH_WORDING)


def _whole(value: object, path: str, low: int, high: int, unit: str) -> int:
    """An int from low to high (True is an int to isinstance, not a count)."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise SchemaError(path, f"must be a whole number of {unit} from {low} to {high}")
    return value


def _max_message_size(value: object, path: str) -> int:
    return _whole(value, path, MAX_MESSAGE_SIZE_MIN, MAX_MESSAGE_SIZE_MAX, "bytes")


def _history(value: object, path: str) -> int | None:
    if value is None:  # the server's HISTORY_SIZE
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= HISTORY_MAX:
        raise SchemaError(
            path,
            f"must be null (the server's HISTORY_SIZE) or a whole number of messages "
            f"from 0 to {HISTORY_MAX}",
        )
    return value


def _groups(value: object, path: str) -> list[str]:
    groups = _list(value, path)
    for index, group in enumerate(groups):
        _string(group, f"{path}[{index}]", max_length=GROUP_NAME_MAX)
    return sorted(set(groups))


def feed_slug_problem(slug: str) -> str | None:
    """A feed's page is <slug>/ beside zmqfeed's own pages: those names are taken."""
    if slug.lower() in RESERVED_FEED_SLUGS:
        return (
            f"{slug!r} is the address of one of zmqfeed's own pages, so the feed's page could "
            f"never be reached; these slugs are reserved: {', '.join(RESERVED_FEED_SLUGS)}"
        )
    return None


def frames_problem(frames: list[str]) -> str | None:
    """What is wrong with a valid-kinds ``frames`` list as a whole, if anything."""
    if not frames:
        return 'must name at least frame 1, the data (e.g. ["payload"])'
    if frames[0] in SEQ_KINDS:
        return "frame 1 is the message's data: a sequence number can only follow it"
    if sum(kind in SEQ_KINDS for kind in frames) > 1:
        return "at most one frame can be the publisher's sequence number"
    return None


def separator_problem(separator: str) -> str | None:
    if not separator:
        return "must not be empty (the default is one space)"
    if len(separator.encode()) > SEPARATOR_MAX:
        return f"must be at most {SEPARATOR_MAX} bytes"
    return None


def raw_prefix_problem(framing: str, prefix: str) -> str | None:
    """A raw feed's messages have no topic, so a topic with a prefix would take none."""
    if framing == FRAMING_RAW and prefix:
        return (
            "a raw feed's messages have no topic, so this prefix would match nothing: "
            "leave it empty (or use multipart or prefix framing)"
        )
    return None


def last_values_problem(history: int | None, last_values: int) -> str | None:
    """A new subscriber's last values come from the topic's history: no more than it keeps.

    A null history is the server's HISTORY_SIZE, unknown here (and applied at runtime).
    """
    if history is not None and last_values > history:
        kept = f"{history} message{'s' * (history != 1)}"
        return f"last_values {last_values} is more than the history of {kept} kept"
    return None


def jupyter_publish_problem(framing: str, publish_access: str) -> str | None:
    """A jupyter feed carries a kernel's own signed messages and takes none back (as
    :class:`zmqfeed.core.encoding.Encoder` refuses them): say so when it is configured."""
    if framing == FRAMING_JUPYTER and publish_access != ACCESS_NOBODY:
        return (
            f"a Jupyter kernel signs its messages, so nothing can be published to a "
            f"{FRAMING_JUPYTER!r} feed: leave publish_access {ACCESS_NOBODY!r}"
        )
    return None


def groups_problem(access: str, publish_access: str, groups: Collection[Any]) -> str | None:
    """Access (or publish access) "group" with no group would open the topic to nobody."""
    if groups:
        return None
    for key, value in (("access", access), ("publish_access", publish_access)):
        if value == ACCESS_GROUP:
            return f'{key} "{ACCESS_GROUP}" needs at least one group'
    return None


def connection_file_problem(framing: str, path: str) -> str | None:
    if path and framing != FRAMING_JUPYTER:
        return f"is read only with framing {FRAMING_JUPYTER!r}: leave it empty"
    return None


def curve_key_problem(key: str) -> str | None:
    """What is wrong with one CURVE public key in Z85, if anything."""
    if len(key) != CURVE_KEY_LENGTH:
        return (
            f"{key!r} is not a CURVE public key: Z85 of 32 bytes is {CURVE_KEY_LENGTH} "
            f"characters, not {len(key)}"
        )
    try:
        decoded = z85.decode(key.encode("ascii"))
    except Exception:  # a character outside Z85 (KeyError), a group over 2**32 (struct.error)
        decoded = b""
    if len(decoded) != 32:
        return f"{key!r} is not a CURVE public key: not valid Z85"
    return None


def curve_publishers_problems(keys: list) -> list[tuple[int | None, str]]:
    """(index or None for the whole list, problem) for a ``curve_publishers`` list."""
    if len(keys) > CURVE_KEYS_MAX:
        return [(None, f"must list at most {CURVE_KEYS_MAX} keys")]
    if CURVE_ANY in keys and keys != [CURVE_ANY]:
        return [(None, f'"{CURVE_ANY}" (any key) must be the only entry, as ["{CURVE_ANY}"]')]
    if keys == [CURVE_ANY]:
        return []
    problems: list[tuple[int | None, str]] = []
    seen: set[str] = set()
    for index, key in enumerate(keys):
        if not isinstance(key, str):
            problems.append((index, f"must be a string, not {_kind(key)}"))
            continue
        problem = curve_key_problem(key)
        if problem is None and key in seen:
            problem = f"{key!r} is listed twice"
        if problem:
            problems.append((index, problem))
        seen.add(key)
    return problems


def _curve_publishers(value: object, path: str) -> list[str]:
    keys = _list(value, path)
    _raise_all(
        [
            SchemaError(path if index is None else f"{path}[{index}]", problem)
            for index, problem in curve_publishers_problems(keys)
        ]
    )
    return list(keys)


def _frames(value: object, path: str) -> list[str]:
    frames = _list(value, path)
    if len(frames) > FRAMES_MAX:
        raise SchemaError(path, f"must list at most {FRAMES_MAX} frames")
    for index, kind in enumerate(frames):
        _choice(kind, f"{path}[{index}]", FRAME_KINDS)
    problem = frames_problem(frames)
    if problem:
        raise SchemaError(path, problem)
    return list(frames)


def _separator(value: object, path: str) -> str:
    separator = _string(value, path, max_length=SEPARATOR_MAX, empty=True)
    problem = separator_problem(separator)
    if problem:
        raise SchemaError(path, problem)
    return separator


def _topic(obj: object, path: str, problems: _Problems) -> dict[str, Any]:
    """The topic's valid fields; its problems go to ``problems``."""
    topic = _Fields(obj, path, TOPIC_REQUIRED, TOPIC_KEYS, TOPIC_DEFAULTS, problems)
    topic.check("slug", _slug)
    topic.check("name", _string, max_length=NAME_MAX)
    topic.check("prefix", _string, max_length=PREFIX_MAX, empty=True)
    topic.check("match", _choice, MATCHES)
    topic.check("access", _choice, ACCESS)
    topic.check("publish_access", _choice, PUBLISH_ACCESS)
    topic.check("groups", _groups)
    topic.check("history", _history)
    topic.check("history_age", _whole, 0, HISTORY_AGE_MAX, "seconds")
    topic.check("last_values", _whole, 0, LAST_VALUES_MAX, "messages")
    values = topic.values
    if topic.has("access", "publish_access", "groups"):
        topic.add(
            "groups", groups_problem(values["access"], values["publish_access"], values["groups"])
        )
    if topic.has("history", "last_values"):
        topic.add("last_values", last_values_problem(values["history"], values["last_values"]))
    return values


def _feed(obj: object, path: str, problems: _Problems) -> dict[str, Any]:
    """The feed's valid fields (and its topics'); its problems go to ``problems``."""
    feed = _Fields(obj, path, FEED_REQUIRED, FEED_KEYS, FEED_DEFAULTS, problems)
    feed.check("slug", _slug)
    if feed.has("slug"):
        feed.add("slug", feed_slug_problem(feed.values["slug"]))
    feed.check("name", _string, max_length=NAME_MAX)
    feed.check("bind", _bool)
    feed.check("publish_bind", _bool)
    values = feed.values
    feed.check("endpoints", _endpoints, bind=values.get("bind"))
    feed.check("framing", _choice, FRAMINGS)
    feed.check("payload", _choice, PAYLOADS)
    feed.check("frames", _frames)
    feed.check("separator", _separator)
    feed.check("compression", _choice, COMPRESSIONS)
    feed.check("jupyter_connection_file", _string, max_length=PATH_MAX, empty=True)
    feed.check("curve_publishers", _curve_publishers)
    feed.check("publish_endpoints", _publish_endpoints, bind=values.get("publish_bind"))
    feed.check("publish_socket", _choice, PUBLISH_SOCKETS)
    feed.check("enabled", _bool)
    feed.check("max_message_size", _max_message_size)
    if feed.has("framing", "jupyter_connection_file"):
        feed.add(
            "jupyter_connection_file",
            connection_file_problem(values["framing"], values["jupyter_connection_file"]),
        )
    framing = values.get("framing")
    topics = []
    seen: dict[str, int] = {}
    feed.check("topics", _list)
    for index, item in enumerate(values.get("topics", ())):
        where = f"{path}.topics[{index}]"
        topic = _topic(item, where, problems)
        if framing is not None and "prefix" in topic:
            problems.add(f"{where}.prefix", raw_prefix_problem(framing, topic["prefix"]))
        if framing is not None and "publish_access" in topic:
            problems.add(
                f"{where}.publish_access", jupyter_publish_problem(framing, topic["publish_access"])
            )
        slug = topic.get("slug")
        if slug in seen:
            problems.add(
                f"{where}.slug", f"{slug!r} is already the slug of {path}.topics[{seen[slug]}]"
            )
        elif slug is not None:
            seen[slug] = index
        topics.append(topic)
    values["topics"] = topics
    return {key: values[key] for key in FEED_KEYS if key in values}  # the document's order


def validate(document: object) -> dict[str, Any]:
    """The document with defaults filled in, endpoints stripped and groups sorted.

    Every problem is found before any is raised: one as a :class:`SchemaError`, several
    as :class:`SchemaErrors`, in the document's order. Feeds and topics keep the file's order.
    """
    problems = _Problems()
    checked = _Fields(document, "document", ("feeds",), ("feeds",), {}, problems)
    feeds = []
    seen: dict[str, int] = {}
    if "feeds" in checked.raw:
        try:
            items = _list(checked.raw["feeds"], "feeds")
        except SchemaError as exc:
            problems.take(exc)
            items = []
        for index, item in enumerate(items):
            feed = _feed(item, f"feeds[{index}]", problems)
            slug = feed.get("slug")
            if slug in seen:
                problems.add(
                    f"feeds[{index}].slug", f"{slug!r} is already the slug of feeds[{seen[slug]}]"
                )
            elif slug is not None:
                seen[slug] = index
            feeds.append(feed)
    _raise_all(problems.errors)
    return {"feeds": feeds}


def export(catalog: Catalog) -> dict[str, Any]:
    """A catalog as a document: feeds and topics by slug, groups sorted, every key written.

    ``validate(export(c)) == export(c)``, so export → import → export gives the same file.
    The keys and their order are the vocabulary's; the catalog holds each under its name.
    """
    return {"feeds": [_export_feed(feed) for feed in sorted(catalog.feeds, key=lambda f: f.slug)]}


def _export_feed(feed: FeedConfig) -> dict[str, Any]:
    document = {key: getattr(feed, key) for key in FEED_KEYS}
    document["endpoints"] = list(feed.endpoints)
    document["frames"] = list(feed.frames)
    document["curve_publishers"] = list(feed.curve_publishers)
    document["publish_endpoints"] = list(feed.publish_endpoints)
    document["topics"] = [_export_topic(t) for t in sorted(feed.topics, key=lambda t: t.slug)]
    return document


def _export_topic(topic: TopicConfig) -> dict[str, Any]:
    document = {key: getattr(topic, key) for key in TOPIC_KEYS}
    document["groups"] = sorted(topic.groups)
    return document
