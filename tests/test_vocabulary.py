"""Models, schema, catalog, admin and command all say what zmqfeed/core/vocabulary.py says.

Each test compares one consumer with the vocabulary, so a limit, choice, key or default that
drifts (or a second copy that someone writes beside it) fails here and names the place.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.validators import MaxValueValidator, MinValueValidator

from zmqfeed import admin, models, schema
from zmqfeed.core import framing
from zmqfeed.core import vocabulary as vocab
from zmqfeed.core.access import Reader, can_publish, can_read
from zmqfeed.core.catalog import Catalog, FeedConfig, TopicConfig
from zmqfeed.management.commands import zmq_feeds
from zmqfeed.schema import SchemaError, validate

PACKAGE = Path(models.__file__).resolve().parent
VOCABULARY = Path(vocab.__file__).resolve()
CHOICES = {
    "framing": vocab.FRAMING_CHOICES,
    "payload": vocab.PAYLOAD_CHOICES,
    "access": vocab.ACCESS_CHOICES,
    "publish_access": vocab.PUBLISH_ACCESS_CHOICES,
    "publish_socket": vocab.PUBLISH_SOCKET_CHOICES,
}
TOPIC_CHOICES = ("access", "publish_access")  # the others are a feed's
MINIMAL_FEED = {"slug": "f", "name": "F", "endpoints": ["tcp://127.0.0.1:5556"]}
MINIMAL_TOPIC = {"slug": "t", "name": "T"}


def field(model: type, name: str) -> Any:
    return model._meta.get_field(name)


# The vocabulary itself.


def test_the_vocabulary_is_consistent() -> None:
    assert tuple(v for v, _ in vocab.FRAMING_CHOICES) == vocab.FRAMINGS
    assert tuple(v for v, _ in vocab.PAYLOAD_CHOICES) == vocab.PAYLOADS
    assert tuple(v for v, _ in vocab.ACCESS_CHOICES) == vocab.ACCESS
    assert tuple(v for v, _ in vocab.PUBLISH_ACCESS_CHOICES) == vocab.PUBLISH_ACCESS
    assert tuple(v for v, _ in vocab.PUBLISH_SOCKET_CHOICES) == vocab.PUBLISH_SOCKETS
    # Publish access is read access with "nobody" in front, the default.
    assert (vocab.ACCESS_NOBODY, *vocab.ACCESS) == vocab.PUBLISH_ACCESS
    for choices in CHOICES.values():
        values = [value for value, _ in choices]
        assert len(set(values)) == len(values)
        assert all(len(value) <= vocab.CHOICE_MAX for value in values)
        assert all(label.strip() for _, label in choices)
    # Every key is either required or has a default, never both.
    for keys, required, defaults in (
        (vocab.FEED_KEYS, vocab.FEED_REQUIRED, vocab.FEED_DEFAULTS),
        (vocab.TOPIC_KEYS, vocab.TOPIC_REQUIRED, vocab.TOPIC_DEFAULTS),
    ):
        assert set(required).isdisjoint(defaults)
        assert sorted(keys) == sorted([*required, *defaults])
    assert vocab.FEED_DEFAULTS["framing"] in vocab.FRAMINGS
    assert vocab.FEED_DEFAULTS["payload"] in vocab.PAYLOADS
    assert vocab.TOPIC_DEFAULTS["access"] in vocab.ACCESS
    assert vocab.TOPIC_DEFAULTS["publish_access"] == vocab.ACCESS_NOBODY
    assert vocab.FEED_DEFAULTS["publish_socket"] in vocab.PUBLISH_SOCKETS
    assert vocab.FEED_DEFAULTS["publish_endpoints"] == []
    assert (
        vocab.MAX_MESSAGE_SIZE_MIN
        <= vocab.FEED_DEFAULTS["max_message_size"]
        <= vocab.MAX_MESSAGE_SIZE_MAX
    )
    with pytest.raises(TypeError):
        vocab.FEED_DEFAULTS["bind"] = True  # type: ignore[index]


def test_the_vocabulary_is_pure() -> None:
    """Only the standard library: the schema and the core import it without Django."""
    tree = ast.parse(VOCABULARY.read_text(encoding="utf-8"))
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert imported <= {"__future__", "collections", "types", "typing"}, imported


# The models.


def test_model_limits_are_the_vocabulary() -> None:
    for model in (models.Feed, models.Topic):
        assert field(model, "slug").max_length == vocab.SLUG_MAX
        assert field(model, "name").max_length == vocab.NAME_MAX
    assert field(models.Topic, "prefix").max_length == vocab.PREFIX_MAX
    assert field(Group, "name").max_length == vocab.GROUP_NAME_MAX  # the schema checks for auth
    assert models.SLUG_MAX == vocab.SLUG_MAX
    size = field(models.Feed, "max_message_size")
    minimum = [v.limit_value for v in size.validators if isinstance(v, MinValueValidator)]
    assert minimum == [vocab.MAX_MESSAGE_SIZE_MIN]
    for name, limit in (
        ("history", vocab.HISTORY_MAX),
        ("history_age", vocab.HISTORY_AGE_MAX),
        ("last_values", vocab.LAST_VALUES_MAX),
    ):
        column = field(models.Topic, name)
        maximum = [v.limit_value for v in column.validators if isinstance(v, MaxValueValidator)]
        assert maximum == [limit], name
    assert field(models.Topic, "history").null  # None: the server's HISTORY_SIZE


def test_model_choices_and_labels_are_the_vocabulary() -> None:
    enums = {
        "framing": models.Framing,
        "payload": models.Payload,
        "access": models.Access,
        "publish_access": models.PublishAccess,
        "publish_socket": models.PublishSocket,
    }
    for name, choices in CHOICES.items():
        column = field(models.Topic if name in TOPIC_CHOICES else models.Feed, name)
        assert [tuple(c) for c in column.choices] == list(choices), name
        assert column.max_length == vocab.CHOICE_MAX, name
        assert [tuple(c) for c in enums[name].choices] == list(choices), name
    assert models.Access.GROUP == vocab.ACCESS_GROUP
    assert models.Framing.MULTIPART.label == dict(vocab.FRAMING_CHOICES)["multipart"]


def test_model_fields_are_the_keys_with_their_defaults() -> None:
    for model, keys, defaults in (
        (models.Feed, vocab.FEED_KEYS, vocab.FEED_DEFAULTS),
        (models.Topic, vocab.TOPIC_KEYS, vocab.TOPIC_DEFAULTS),
    ):
        for key in keys:
            column = field(model, key)  # raises FieldDoesNotExist for a key the model lacks
            if key not in defaults:
                continue
            if column.is_relation:  # a feed's topics, a topic's groups: none to begin with
                assert defaults[key] == [], key
            else:
                assert column.get_default() == defaults[key], f"{model.__name__}.{key}"


# The schema, by what it does rather than by its names alone.


def test_the_schema_fills_in_the_vocabulary_defaults() -> None:
    document = validate({"feeds": [{**MINIMAL_FEED, "topics": [MINIMAL_TOPIC]}]})
    feed = document["feeds"][0]
    assert list(feed) == list(vocab.FEED_KEYS)
    assert list(feed["topics"][0]) == list(vocab.TOPIC_KEYS)
    for key, value in vocab.FEED_DEFAULTS.items():
        if key != "topics":
            assert feed[key] == value, key
    for key, value in vocab.TOPIC_DEFAULTS.items():
        assert feed["topics"][0][key] == value, key
    assert validate({"feeds": [MINIMAL_FEED]})["feeds"][0]["topics"] == []
    assert vocab.FEED_DEFAULTS["topics"] == [] and vocab.TOPIC_DEFAULTS["groups"] == []


@pytest.mark.parametrize(
    ("path", "key", "required"),
    [
        *[("feed", key, key in vocab.FEED_REQUIRED) for key in vocab.FEED_KEYS],
        *[("topic", key, key in vocab.TOPIC_REQUIRED) for key in vocab.TOPIC_KEYS],
    ],
)
def test_the_schema_requires_what_the_vocabulary_requires(
    path: str, key: str, required: bool
) -> None:
    feed = {**MINIMAL_FEED, "topics": [dict(MINIMAL_TOPIC)]}
    target = feed if path == "feed" else feed["topics"][0]
    target.pop(key, None)
    if required:
        with pytest.raises(SchemaError, match="is required"):
            validate({"feeds": [feed]})
    else:
        validate({"feeds": [feed]})


@pytest.mark.parametrize(
    ("key", "limit"),
    [("slug", vocab.SLUG_MAX), ("name", vocab.NAME_MAX), ("prefix", vocab.PREFIX_MAX)],
)
def test_the_schema_applies_the_vocabulary_lengths(key: str, limit: int) -> None:
    def doc(length: int) -> dict[str, Any]:
        topic = {**MINIMAL_TOPIC, key: "a" * length}
        return {"feeds": [{**MINIMAL_FEED, "topics": [topic]}]}

    validate(doc(limit))
    with pytest.raises(SchemaError, match=f"at most {limit} characters"):
        validate(doc(limit + 1))
    group = {**MINIMAL_TOPIC, "access": "group", "groups": ["g" * vocab.GROUP_NAME_MAX]}
    validate({"feeds": [{**MINIMAL_FEED, "topics": [group]}]})
    group["groups"] = ["g" * (vocab.GROUP_NAME_MAX + 1)]
    with pytest.raises(SchemaError, match=f"at most {vocab.GROUP_NAME_MAX}"):
        validate({"feeds": [{**MINIMAL_FEED, "topics": [group]}]})


@pytest.mark.parametrize(("key", "values"), [(k, [v for v, _ in c]) for k, c in CHOICES.items()])
def test_the_schema_accepts_exactly_the_vocabulary_choices(key: str, values: list[str]) -> None:
    def doc(value: str) -> dict[str, Any]:
        feed: dict[str, Any] = copy.deepcopy({**MINIMAL_FEED, "topics": [MINIMAL_TOPIC]})
        target = feed["topics"][0] if key in TOPIC_CHOICES else feed
        target[key] = value
        if value == vocab.ACCESS_GROUP:
            target["groups"] = ["g"]
        return {"feeds": [feed]}

    for value in values:
        validate(doc(value))
    with pytest.raises(SchemaError, match="must be one of " + ", ".join(values)):
        validate(doc("nonesuch"))


def test_message_size_bounds_are_the_vocabulary() -> None:
    def doc(size: int) -> dict[str, Any]:
        return {"feeds": [{**MINIMAL_FEED, "max_message_size": size}]}

    validate(doc(vocab.MAX_MESSAGE_SIZE_MIN))
    validate(doc(vocab.MAX_MESSAGE_SIZE_MAX))
    for size in (vocab.MAX_MESSAGE_SIZE_MIN - 1, vocab.MAX_MESSAGE_SIZE_MAX + 1):
        with pytest.raises(SchemaError, match="whole number of bytes"):
            validate(doc(size))


def test_schema_names_are_the_vocabulary_objects() -> None:
    """Kept for the importers of schema.SLUG_MAX and friends: the same objects, not copies."""
    for name in ("SLUG_MAX", "ACCESS", "FRAMINGS", "PAYLOADS", "FEED_KEYS", "TOPIC_KEYS"):
        assert getattr(schema, name) is getattr(vocab, name), name
    assert schema.FEED_DEFAULTS is vocab.FEED_DEFAULTS
    assert schema.TOPIC_DEFAULTS is vocab.TOPIC_DEFAULTS


# The catalog, the decoders and access.


def test_catalog_fields_are_the_keys_and_defaults() -> None:
    for config, keys, defaults in (
        (FeedConfig, vocab.FEED_KEYS, vocab.FEED_DEFAULTS),
        (TopicConfig, vocab.TOPIC_KEYS, vocab.TOPIC_DEFAULTS),
    ):
        fields = {f.name: f for f in dataclasses.fields(config)}
        assert list(fields) == list(keys), config.__name__
        for key, value in defaults.items():
            default = fields[key].default
            if isinstance(default, (tuple, frozenset)):  # the catalog's form of an empty list
                assert list(default) == value, key
            else:
                assert default == value, f"{config.__name__}.{key}"


def test_a_default_catalog_exports_as_a_minimal_document_validates() -> None:
    """The catalog's defaults, exported, are the schema's defaults."""
    minimal = {"feeds": [{**MINIMAL_FEED, "topics": [MINIMAL_TOPIC]}]}
    catalog = Catalog(
        (FeedConfig("f", "F", ("tcp://127.0.0.1:5556",), topics=(TopicConfig("t", "T"),)),)
    )
    assert schema.export(catalog) == validate(minimal)


def test_the_decoders_know_every_framing_and_payload() -> None:
    assert framing.FRAMINGS is vocab.FRAMINGS
    assert framing.PAYLOADS is vocab.PAYLOADS
    assert set(framing.FRAGMENTS) == set(vocab.PAYLOADS)
    for name in vocab.FRAMINGS:
        for kind in vocab.PAYLOADS:
            framing.Decoder(name, kind, vocab.MAX_MESSAGE_SIZE_DEFAULT)


def test_access_decides_every_access_value() -> None:
    """A value can_read does not handle is closed to all but superusers: each must open."""
    member = Reader(authenticated=True, staff=True, groups=frozenset({"g"}))
    for value in vocab.ACCESS:
        topic = TopicConfig("t", "T", access=value, groups=frozenset({"g"}))
        assert can_read(topic, member), value
    assert not can_read(TopicConfig("t", "T", access="nonesuch"), member)
    for value in vocab.PUBLISH_ACCESS:  # and each publish access but nobody
        topic = TopicConfig("t", "T", publish_access=value, groups=frozenset({"g"}))
        assert can_publish(topic, member) == (value != vocab.ACCESS_NOBODY), value


# The admin and the command.


def test_admin_forms_use_the_keys() -> None:
    assert admin.FeedForm._meta.fields == tuple(k for k in vocab.FEED_KEYS if k != "topics")
    assert admin.TopicForm._meta.fields == ("feed", *vocab.TOPIC_KEYS)
    assert admin.TopicInline.fields == vocab.TOPIC_KEYS
    form = admin.TopicForm()
    assert list(form.fields["access"].choices) == list(vocab.ACCESS_CHOICES)
    assert list(form.fields["publish_access"].choices) == list(vocab.PUBLISH_ACCESS_CHOICES)
    feed_form = admin.FeedForm()
    assert list(feed_form.fields["publish_socket"].choices) == list(vocab.PUBLISH_SOCKET_CHOICES)


def test_zmq_feeds_assigns_every_plain_key() -> None:
    assert {"slug", "topics", *zmq_feeds.FEED_FIELDS} == set(vocab.FEED_KEYS)
    assert {"slug", "groups", *zmq_feeds.TOPIC_FIELDS} == set(vocab.TOPIC_KEYS)


# No second copy anywhere else in the package.


def _literal(node: ast.AST | None) -> bool:
    """A value written out (1024 * 1024, a tuple or dict of constants), not taken from a name."""
    if node is None:
        return False
    literal = (ast.Constant, ast.Tuple, ast.List, ast.Set, ast.Dict, ast.BinOp, ast.UnaryOp)
    return all(
        isinstance(n, (*literal, ast.operator, ast.unaryop, ast.expr_context))
        for n in ast.walk(node)
    )


def _copies(tree: ast.AST) -> list[tuple[int, str]]:
    names = {n for n in dir(vocab) if n.isupper()}
    lists = {
        frozenset(getattr(vocab, n)): n
        for n in (
            "FRAMINGS",
            "PAYLOADS",
            "ACCESS",
            "PUBLISH_ACCESS",
            "PUBLISH_SOCKETS",
            "FEED_KEYS",
            "TOPIC_KEYS",
        )
    }
    labels = {label for choices in CHOICES.values() for _, label in choices if " " in label}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and _literal(node.value):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in names:
                    found.append((node.lineno, f"{target.id} assigned a literal"))
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)) and node.elts:
            if all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
                values = frozenset(e.value for e in node.elts)  # type: ignore[attr-defined]
                if values in lists:
                    found.append((node.lineno, f"a copy of {lists[values]}"))
        elif isinstance(node, ast.Constant) and node.value in labels:
            found.append((node.lineno, f"the label {node.value!r}"))
    return found


def test_no_module_keeps_its_own_copy() -> None:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == VOCABULARY or "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        problems += [f"{path.relative_to(PACKAGE)}:{line}: {what}" for line, what in _copies(tree)]
    assert not problems, "use zmqfeed.core.vocabulary:\n" + "\n".join(problems)


def test_the_copy_finder_finds_copies() -> None:
    source = (
        'SLUG_MAX = 40\nX = ("raw", "prefix", "jupyter", "multipart")\nY = "any logged-in user"\n'
        "MAX_MESSAGE_SIZE_DEFAULT: int = 1024 * 1024\nTOPIC_DEFAULTS = {'prefix': ''}\n"
        "NAME_MAX = vocabulary.NAME_MAX\n"
    )
    assert sorted(what for _, what in _copies(ast.parse(source))) == [
        "MAX_MESSAGE_SIZE_DEFAULT assigned a literal",
        "SLUG_MAX assigned a literal",
        "TOPIC_DEFAULTS assigned a literal",
        "a copy of FRAMINGS",
        "the label 'any logged-in user'",
    ]
