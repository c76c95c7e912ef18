"""Feeds and topics to and from JSON (docs/configuration.md), for version control."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from zmqfeed import schema
from zmqfeed.core.vocabulary import FEED_KEYS, TOPIC_KEYS
from zmqfeed.models import Feed, Topic, load_catalog

# What is assigned to a row: every key but the one it is found by (slug) and the related rows
# (a feed's topics, a topic's groups), which apply() writes on their own.
FEED_FIELDS = tuple(key for key in FEED_KEYS if key not in {"slug", "topics"})
TOPIC_FIELDS = tuple(key for key in TOPIC_KEYS if key not in {"slug", "groups"})


@dataclass
class Summary:
    feeds: int = 0
    topics: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    pruned: int = 0
    new_groups: list[str] = field(default_factory=list)

    def count(self, changed: bool) -> None:
        if changed:
            self.updated += 1
        else:
            self.unchanged += 1

    def __str__(self) -> str:
        text = (
            f"{self.feeds} feed{'s' * (self.feeds != 1)}, "
            f"{self.topics} topic{'s' * (self.topics != 1)}: {self.created} created, "
            f"{self.updated} updated, {self.unchanged} unchanged, {self.pruned} pruned"
        )
        if self.new_groups:
            text += f"; new (empty) groups: {', '.join(self.new_groups)}"
        return text


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    for key in keys:
        if keys.count(key) > 1:
            raise ValueError(f"the key {key!r} appears twice in one object")
    return dict(pairs)


def _assign(obj: Any, values: dict[str, Any]) -> bool:
    """Save only what differs, so that an unchanged row keeps its timestamps."""
    changed = [name for name, value in values.items() if getattr(obj, name) != value]
    for name in changed:
        setattr(obj, name, values[name])
    if changed:
        obj.save()
    return bool(changed)


def apply(document: dict[str, Any], *, prune: bool) -> Summary:
    """Write a validated document: upsert feeds by slug and topics by (feed, slug).

    Only rows that differ are saved. Groups named in the file that do not exist are created
    empty, so they grant nothing until someone is added to them.
    """
    summary = Summary(feeds=len(document["feeds"]))
    names = sorted({g for f in document["feeds"] for t in f["topics"] for g in t["groups"]})
    groups = {g.name: g for g in Group.objects.filter(name__in=names)}
    for name in names:
        if name not in groups:
            groups[name] = Group.objects.create(name=name)
            summary.new_groups.append(name)
    existing = {
        f.slug: f for f in Feed.objects.filter(slug__in=[f["slug"] for f in document["feeds"]])
    }
    for data in document["feeds"]:
        values = {name: data[name] for name in FEED_FIELDS}
        feed = existing.get(data["slug"])
        if feed is None:
            feed = Feed.objects.create(slug=data["slug"], **values)
            summary.created += 1
        else:
            summary.count(_assign(feed, values))
        topics = {t.slug: t for t in feed.topics.prefetch_related("groups")}
        for item in data["topics"]:
            summary.topics += 1
            values = {name: item[name] for name in TOPIC_FIELDS}
            topic = topics.get(item["slug"])
            if topic is None:
                topic = Topic.objects.create(feed=feed, slug=item["slug"], **values)
                topic.groups.set([groups[g] for g in item["groups"]])
                summary.created += 1
                continue
            changed = _assign(topic, values)
            if {g.name for g in topic.groups.all()} != set(item["groups"]):
                topic.groups.set([groups[g] for g in item["groups"]])
                changed = True
            summary.count(changed)
        if prune:
            keep = [item["slug"] for item in data["topics"]]
            summary.pruned += feed.topics.exclude(slug__in=keep).delete()[1].get("zmqfeed.Topic", 0)
    if prune:
        _, deleted = Feed.objects.exclude(slug__in=[f["slug"] for f in document["feeds"]]).delete()
        summary.pruned += deleted.get("zmqfeed.Feed", 0) + deleted.get("zmqfeed.Topic", 0)
    return summary


class Command(BaseCommand):
    help = (
        "Feeds and topics as JSON (docs/configuration.md). `import FILE.json` upserts feeds "
        "by slug and topics by (feed, slug), all or nothing: a file with any error changes "
        "nothing, and every error is listed with its field's path. Groups named in the file "
        "that do not exist "
        "are created empty (they grant nothing until users are added). "
        "`export [FILE.json]` writes every feed."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="import|export")
        load = actions.add_parser("import", help="Create or update feeds and topics from a file.")
        load.add_argument("file", metavar="FILE.json", help='the document; "-" reads stdin')
        load.add_argument(
            "--prune",
            action="store_true",
            help="Also delete feeds not in the file, and topics of the file's feeds not in it.",
        )
        load.add_argument(
            "--dry-run",
            action="store_true",
            help="Check the file and report what would change, changing nothing.",
        )
        dump = actions.add_parser("export", help="Write every feed and topic as JSON.")
        dump.add_argument(
            "file", nargs="?", default="-", metavar="FILE.json", help="default: stdout"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "import":
            self.import_(
                options["file"],
                options.get("stdin", sys.stdin),
                prune=options["prune"],
                dry_run=options["dry_run"],
            )
        else:
            self.export(options["file"])

    def import_(self, path: str, stdin: Any, *, prune: bool, dry_run: bool) -> None:
        label = "stdin" if path == "-" else path
        try:
            text = stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"{label}: cannot read: {exc}") from None
        try:
            raw = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
        except ValueError as exc:
            raise CommandError(f"{label}: not a JSON document: {exc}") from None
        try:
            document = schema.validate(raw)
        except schema.SchemaErrors as exc:
            lines = "".join(f"\n  {error}" for error in exc.errors)
            raise CommandError(
                f"{label}: {len(exc.errors)} problems, so nothing was changed:{lines}"
            ) from None
        except schema.SchemaError as exc:
            raise CommandError(f"{label}: {exc} (nothing was changed)") from None
        with transaction.atomic():
            summary = apply(document, prune=prune)
            if dry_run:
                transaction.set_rollback(True)
        prefix = "Dry run, nothing changed: " if dry_run else "Imported "
        self.stdout.write(self.style.SUCCESS(f"{prefix}{summary}"))

    def export(self, path: str) -> None:
        document = schema.export(load_catalog())
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        if path == "-":
            self.stdout.write(text, ending="")
            return
        try:
            Path(path).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"{path}: cannot write: {exc}") from None
        feeds = document["feeds"]
        topics = sum(len(f["topics"]) for f in feeds)
        self.stdout.write(f"Exported {len(feeds)} feeds, {topics} topics to {path}")
