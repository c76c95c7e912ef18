"""`manage.py zmq_feeds import|export` against a real test database."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import transaction
from hypothesis import HealthCheck, given, settings

from zmqfeed.models import Feed, Topic

from .test_schema import BASE, documents

DEMO = Path(__file__).resolve().parent.parent / "project" / "demo_feeds.json"

pytestmark = pytest.mark.django_db


def run(*args: str, stdin: str | None = None) -> str:
    out = io.StringIO()
    extra: dict[str, Any] = {"stdin": io.StringIO(stdin)} if stdin is not None else {}
    call_command("zmq_feeds", *args, stdout=out, **extra)
    return out.getvalue()


def load(doc: dict[str, Any], *args: str) -> str:
    return run("import", "-", *args, stdin=json.dumps(doc))


def exported() -> dict[str, Any]:
    return json.loads(run("export"))


def test_the_demo_file_imports_and_exports_byte_for_byte() -> None:
    assert run("import", str(DEMO)).strip() == (
        "Imported 1 feed, 2 topics: 3 created, 0 updated, 0 unchanged, 0 pruned"
    )
    feed = Feed.objects.get(slug="demo")
    assert feed.endpoints == ["tcp://127.0.0.1:5556"] and not feed.bind
    assert (feed.framing, feed.payload) == ("multipart", "json")
    topics = {t.slug: (t.prefix, t.access) for t in feed.topics.all()}
    assert topics == {"all": ("demo", "public"), "staff": ("demo", "staff")}
    assert run("export") == DEMO.read_text()


def test_import_creates_then_reports_unchanged_without_touching_rows() -> None:
    assert load(BASE).strip() == (
        "Imported 2 feeds, 3 topics: 5 created, 0 updated, 0 unchanged, 0 pruned; "
        "new (empty) groups: ops, sre"
    )
    stamps = dict(Feed.objects.values_list("slug", "updated"))
    assert load(BASE).strip() == (
        "Imported 2 feeds, 3 topics: 0 created, 0 updated, 5 unchanged, 0 pruned"
    )
    assert dict(Feed.objects.values_list("slug", "updated")) == stamps


def test_import_upserts_by_slug() -> None:
    load(BASE)
    first_ids = dict(Feed.objects.values_list("slug", "id"))
    doc = copy.deepcopy(BASE)
    doc["feeds"][0]["name"] = "Prices (EU)"
    doc["feeds"][0]["endpoints"].append("tcp://127.0.0.1:5557")
    doc["feeds"][0]["topics"].append(
        {"slug": "usd", "name": "USD", "prefix": "USD", "access": "authenticated", "groups": []}
    )
    doc["feeds"][1]["topics"][1]["groups"] = ["sre"]  # only the groups change
    del doc["feeds"][1]["topics"][0]  # kept: no --prune
    assert load(doc).strip() == (
        "Imported 2 feeds, 3 topics: 1 created, 2 updated, 2 unchanged, 0 pruned"
    )
    assert dict(Feed.objects.values_list("slug", "id")) == first_ids
    prices = Feed.objects.get(slug="prices")
    assert prices.name == "Prices (EU)"
    assert prices.endpoints == ["tcp://127.0.0.1:5556", "tcp://127.0.0.1:5557"]
    assert prices.topics.get(slug="usd").access == "authenticated"
    ops = Topic.objects.get(feed__slug="logs", slug="ops")
    assert list(ops.groups.values_list("name", flat=True)) == ["sre"]
    assert Topic.objects.filter(feed__slug="logs", slug="all").exists()
    assert Group.objects.filter(name="ops").exists()  # groups are never deleted


def test_prune_deletes_what_the_file_does_not_name() -> None:
    load(BASE)
    other = copy.deepcopy(BASE["feeds"][0])
    other["slug"] = "other"
    load({"feeds": [other]})
    doc = copy.deepcopy(BASE)
    del doc["feeds"][1]["topics"][0]
    # Pruned: feed "other" and its topic, topic logs/all.
    assert load(doc, "--prune").strip() == (
        "Imported 2 feeds, 2 topics: 0 created, 0 updated, 4 unchanged, 3 pruned"
    )
    assert sorted(Feed.objects.values_list("slug", flat=True)) == ["logs", "prices"]
    assert sorted(Topic.objects.values_list("feed__slug", "slug")) == [
        ("logs", "ops"),
        ("prices", "eur"),
    ]
    assert load({"feeds": []}, "--prune").strip() == (
        "Imported 0 feeds, 0 topics: 0 created, 0 updated, 0 unchanged, 4 pruned"
    )
    assert not Feed.objects.exists() and not Topic.objects.exists()


def test_missing_groups_are_created_empty_and_named() -> None:
    Group.objects.create(name="ops")
    out = load(BASE)
    assert out.strip().endswith("; new (empty) groups: sre")
    assert not Group.objects.get(name="sre").user_set.exists()
    assert sorted(Group.objects.values_list("name", flat=True)) == ["ops", "sre"]


def test_a_file_with_one_bad_topic_changes_nothing() -> None:
    load(BASE)
    before = exported()
    doc = copy.deepcopy(BASE)
    doc["feeds"][0]["name"] = "Renamed"  # a good change before the bad field
    doc["feeds"].append({"slug": "new", "name": "New", "endpoints": ["tcp://127.0.0.1:6000"]})
    doc["feeds"][1]["topics"][0]["access"] = "everyone"
    doc["feeds"][1]["topics"][1]["groups"] = ["brand-new-group"]
    with pytest.raises(CommandError) as caught:
        load(doc, "--prune")
    assert str(caught.value) == (
        "stdin: feeds[1].topics[0].access: must be one of public, authenticated, staff, group, "
        "not 'everyone' (nothing was changed)"
    )
    assert exported() == before
    assert not Group.objects.filter(name="brand-new-group").exists()


def test_an_error_while_writing_rolls_everything_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """All or nothing also when the database itself fails half-way (here: a topic save)."""
    load(BASE)
    before = exported()
    doc = copy.deepcopy(BASE)
    doc["feeds"][0]["name"] = "Renamed"
    doc["feeds"][1]["topics"][1]["prefix"] = "changed"

    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(Topic, "save", fail)
    with pytest.raises(RuntimeError):
        load(doc)
    monkeypatch.undo()
    assert exported() == before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "stdin: not a JSON document: Expecting property name enclosed in double quotes"),
        ('{"feeds": [], "feeds": []}', "stdin: not a JSON document: the key 'feeds' appears twice"),
        ("[]", "stdin: document: must be an object, not a list (nothing was changed)"),
    ],
)
def test_unreadable_documents_are_refused(text: str, message: str) -> None:
    with pytest.raises(CommandError) as caught:
        run("import", "-", stdin=text)
    assert str(caught.value).startswith(message)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"nope\.json: cannot read: .*No such file"):
        run("import", str(tmp_path / "nope.json"))


def test_dry_run_reports_and_changes_nothing() -> None:
    out = load(BASE, "--dry-run")
    assert out.strip() == (
        "Dry run, nothing changed: 2 feeds, 3 topics: 5 created, 0 updated, 0 unchanged, "
        "0 pruned; new (empty) groups: ops, sre"
    )
    assert not Feed.objects.exists() and not Group.objects.exists()


def test_export_to_a_file_then_import_then_export_is_identical(tmp_path: Path) -> None:
    load(BASE)
    Feed.objects.create(slug="aaa", name="First by slug", endpoints=["ipc:///tmp/aaa"])
    path = tmp_path / "feeds.json"
    assert run("export", str(path)).strip() == f"Exported 3 feeds, 3 topics to {path}"
    first = path.read_text()
    assert [f["slug"] for f in json.loads(first)["feeds"]] == ["aaa", "logs", "prices"]
    load({"feeds": []}, "--prune")
    assert run("export") == '{\n  "feeds": []\n}\n'
    run("import", str(path))
    assert run("export") == first
    assert exported() == json.loads(first)


def test_history_fields_round_trip_and_count_as_changes() -> None:
    load(BASE)
    eur = Topic.objects.get(slug="eur")
    assert (eur.history, eur.history_age, eur.last_values) == (100, 3600, 1)
    ops = Topic.objects.get(slug="ops")
    assert (ops.history, ops.history_age, ops.last_values) == (None, 0, 5)
    topics = {t["slug"]: t for f in exported()["feeds"] for t in f["topics"]}
    assert {
        slug: (t["history"], t["history_age"], t["last_values"]) for slug, t in topics.items()
    } == {
        "eur": (100, 3600, 1),
        "all": (0, 0, 0),
        "ops": (None, 0, 5),
    }
    doc = copy.deepcopy(BASE)
    doc["feeds"][0]["topics"][0].update(history=None, history_age=0)  # back to the defaults
    del doc["feeds"][1]["topics"][1]["last_values"]  # left out: the default, 0
    assert load(doc).strip() == (
        "Imported 2 feeds, 3 topics: 0 created, 2 updated, 3 unchanged, 0 pruned"
    )
    eur.refresh_from_db()
    ops.refresh_from_db()
    assert (eur.history, eur.history_age, eur.last_values) == (None, 0, 1)
    assert ops.last_values == 0
    assert '"history": null' in run("export")


def test_a_history_rule_broken_in_a_file_changes_nothing() -> None:
    load(BASE)
    before = exported()
    doc = copy.deepcopy(BASE)
    doc["feeds"][0]["topics"][0]["last_values"] = 101
    with pytest.raises(CommandError) as caught:
        load(doc)
    assert str(caught.value) == (
        "stdin: feeds[0].topics[0].last_values: last_values 101 is more than the history of "
        "100 messages kept (nothing was changed)"
    )
    assert exported() == before


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(documents)
def test_any_valid_document_round_trips_through_the_database(document: dict[str, Any]) -> None:
    with transaction.atomic():
        load(document, "--prune")
        first = run("export")
        assert json.loads(first)["feeds"] == sorted(
            (
                {**f, "topics": sorted(f["topics"], key=lambda t: t["slug"])}
                for f in document["feeds"]
            ),
            key=lambda f: f["slug"],
        )
        run("import", "-", "--prune", stdin=first)
        assert run("export") == first
        transaction.set_rollback(True)


def test_publish_fields_are_written_to_the_rows_and_exported() -> None:
    load(BASE)
    prices = Feed.objects.get(slug="prices")
    assert prices.publish_endpoints == ["tcp://127.0.0.1:5560"]
    assert (prices.publish_socket, prices.publish_bind) == ("push", False)
    access = dict(Topic.objects.values_list("slug", "publish_access"))
    assert access == {"eur": "authenticated", "all": "nobody", "ops": "group"}
    feeds = {f["slug"]: f for f in exported()["feeds"]}
    assert {
        slug: (f["publish_endpoints"], f["publish_socket"], f["publish_bind"])
        for slug, f in feeds.items()
    } == {"prices": (["tcp://127.0.0.1:5560"], "push", False), "logs": ([], "pub", False)}
    assert feeds["logs"]["topics"][1]["publish_access"] == "group"

    doc = copy.deepcopy(BASE)
    doc["feeds"][0].update(publish_endpoints=["tcp://*:5561"], publish_bind=True)
    doc["feeds"][0]["topics"][0]["publish_access"] = "nobody"
    assert load(doc).strip() == (
        "Imported 2 feeds, 3 topics: 0 created, 2 updated, 3 unchanged, 0 pruned"
    )
    prices.refresh_from_db()
    assert (prices.publish_endpoints, prices.publish_bind) == (["tcp://*:5561"], True)
    assert Topic.objects.get(slug="eur").publish_access == "nobody"
    del doc["feeds"][0]["publish_endpoints"]  # left out: the default, none
    load(doc)
    prices.refresh_from_db()
    assert prices.publish_endpoints == []


def test_publish_access_on_a_jupyter_feed_changes_nothing() -> None:
    load(BASE)
    before = exported()
    doc = copy.deepcopy(BASE)
    doc["feeds"][1]["framing"] = "jupyter"
    doc["feeds"][1]["topics"][1]["publish_access"] = "staff"
    with pytest.raises(CommandError) as caught:
        load(doc)
    assert str(caught.value) == (
        "stdin: feeds[1].topics[1].publish_access: a Jupyter kernel signs its messages, so "
        "nothing can be published to a 'jupyter' feed: leave publish_access 'nobody' "
        "(nothing was changed)"
    )
    assert exported() == before


def test_every_error_of_a_file_is_reported_and_nothing_is_imported(tmp_path: Path) -> None:
    """Three problems in three places: a feed field, a topic field, a rule across topics."""
    doc = copy.deepcopy(BASE)
    doc["feeds"][0]["endpoints"] = ["tcp://127.0.0.1:5556", "tcp://nowhere"]
    doc["feeds"][0]["topics"][0]["access"] = "everyone"
    doc["feeds"].append(
        {
            "slug": "second",
            "name": "Second",
            "endpoints": ["tcp://127.0.0.1:6000"],
            "topics": [{"slug": "a", "name": "A"}, {"slug": "a", "name": "Again"}],
        }
    )
    path = tmp_path / "feeds.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(CommandError) as caught:
        run("import", str(path))
    lines = str(caught.value).splitlines()
    assert lines[0] == f"{path}: 3 problems, so nothing was changed:"
    assert [line.split(":", 1)[0].strip() for line in lines[1:]] == [
        "feeds[0].endpoints[1]",
        "feeds[0].topics[0].access",
        "feeds[2].topics[1].slug",
    ], lines
    assert "not 'everyone'" in lines[2]
    assert "'a' is already the slug of feeds[2].topics[0]" in lines[3]
    assert not Feed.objects.exists() and not Topic.objects.exists()
    assert not Group.objects.exists()
