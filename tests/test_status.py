"""The status page, status.json and the admin's state column, from processes' snapshots.

Here the snapshots are put where a reporter would put them (embedded mode: this process's
memory); tests/test_status_live.py runs the real thing: daphne, publishers, zmq_subscribe.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from zmqfeed import status
from zmqfeed.core import feedstate
from zmqfeed.core.catalog import Catalog, FeedConfig, TopicConfig
from zmqfeed.core.status import ACTIVE, STANDBY, overview
from zmqfeed.models import Feed, Topic

pytestmark = pytest.mark.django_db


def report(state: str, role: str = ACTIVE, **fields) -> dict:
    return {
        "state": state,
        "detail": fields.pop("detail", ""),
        "rate": 0.0,
        "received": 0,
        "series": [0] * feedstate.SPAN,
        "age": None,
        "peers": 0,
        "drops": {},
        "role": role,
        **fields,
    }


def snapshot(process: str, feeds: dict, subscriptions: dict | None = None, at: float = 0.0):
    return {
        "process": process,
        "kind": "server, subscriber",
        "at": at or time.time(),
        "feeds": feeds,
        "subscriptions": subscriptions or {},
    }


@pytest.fixture
def reported() -> Iterator[dict]:
    """This process's snapshots (embedded mode), as a reporter keeps them."""
    saved = dict(status._local)
    status._local.clear()
    yield status._local
    status._local.clear()
    status._local.update(saved)


def make_feed(slug: str, *topics: str, enabled: bool = True, **fields) -> Feed:
    feed = Feed.objects.create(
        slug=slug,
        name=slug.title(),
        endpoints=fields.pop("endpoints", ["tcp://127.0.0.1:5556"]),
        enabled=enabled,
        **fields,
    )
    for topic in topics:
        Topic.objects.create(feed=feed, slug=topic, name=f"Topic {topic}", access="public")
    return feed


# Merging (pure)


def catalog(*feeds: FeedConfig) -> Catalog:
    return Catalog(tuple(feeds))


def feed(slug: str, *topics: str, enabled: bool = True) -> FeedConfig:
    return FeedConfig(
        slug,
        slug.title(),
        ("tcp://127.0.0.1:1",),
        enabled=enabled,
        topics=tuple(TopicConfig(t, t.title()) for t in topics),
    )


def test_the_active_report_wins_and_subscriptions_add_up_over_processes() -> None:
    now = 1000.0
    snaps = [
        snapshot("a:1", {"f": report("receiving", STANDBY, age=1.0)}, {"f/x": 2}, at=now - 0.5),
        snapshot("b:2", {"f": report("silent", age=20.0)}, {"f/x": 3, "f/y": 1}, at=now - 2),
        snapshot("c:3", {}, {"f/x": 4}, at=now),
    ]
    body = overview(catalog(feed("f", "x", "y")), snaps, now)
    [row] = body["feeds"]
    assert row["state"] == "silent" and row["process"] == "b:2" and row["role"] == ACTIVE
    assert row["age"] == 22.0  # aged by the snapshot's own age
    assert row["standbys"] == 1
    assert [(t["slug"], t["subscribers"]) for t in row["topics"]] == [("x", 9), ("y", 1)]
    assert row["subscribers"] == 10
    assert [p["process"] for p in body["processes"]] == ["a:1", "b:2", "c:3"]


def test_feeds_nobody_reports_disabled_ones_and_those_without_topics() -> None:
    body = overview(
        catalog(feed("quiet", "x"), feed("off", "x", enabled=False), feed("bare")),
        [],
        0.0,
        unread="nobody reads it",
    )
    states = {row["slug"]: (row["state"], row["detail"]) for row in body["feeds"]}
    assert states == {
        "quiet": ("error", "nobody reads it"),
        "off": ("disabled", "disabled: nothing reads it"),
        "bare": ("error", "no topics: the feed is not read"),
    }


# The page and its JSON


def test_staff_see_the_status_page_and_its_link_in_the_bar(client) -> None:
    client.force_login(User.objects.create_user("sam", is_staff=True))
    response = client.get(reverse("zmqfeed:status"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="zf-status"' in html and reverse("zmqfeed:status_json") in html
    assert "zmqfeed/status.js" in html
    home = client.get(reverse("zmqfeed:feed_list")).content.decode()
    assert f'<a class="zf-status-link" href="{reverse("zmqfeed:status")}">status</a>' in home


def test_others_get_no_status(client) -> None:
    page, data = reverse("zmqfeed:status"), reverse("zmqfeed:status_json")
    response = client.get(page)  # anonymous: to the login page, and back
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('admin:login')}?next={page}"
    assert client.get(data).status_code == 403
    client.force_login(User.objects.create_user("ann"))
    assert client.get(page).status_code == 403
    assert client.get(data).status_code == 403
    home = client.get(reverse("zmqfeed:feed_list")).content.decode()
    assert "zf-status-link" not in home


def test_status_json_has_every_feed_with_its_reported_state(client, reported) -> None:
    make_feed("live", "all")
    make_feed("bare")
    make_feed("off", "all", enabled=False)
    reported["r"] = snapshot(
        "host:1",
        {"live": report("receiving", rate=12.5, age=0.2, drops={"unrouted": {"total": 3}})},
        {"live/all": 2},
    )
    client.force_login(User.objects.create_user("sam", is_staff=True))
    response = client.get(reverse("zmqfeed:status_json"))
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    body = response.json()
    assert body["mode"] == "embedded" and body["leases"] is False
    assert body["silent_after"] == 10.0
    rows = {row["slug"]: row for row in body["feeds"]}
    assert rows["live"]["state"] == "receiving" and rows["live"]["rate"] == 12.5
    assert rows["live"]["topics"][0]["subscribers"] == 2
    assert rows["live"]["url"] == reverse("zmqfeed:feed_detail", args=["live"])
    assert rows["live"]["drops"] == {"unrouted": {"total": 3}}
    assert rows["bare"]["state"] == "error" and rows["bare"]["url"] is None
    assert rows["off"]["state"] == "disabled"
    assert [p["process"] for p in body["processes"]] == ["host:1"]


# The admin's feed list


def test_the_admin_feed_list_shows_state_rate_and_the_live_page(admin_client, reported) -> None:
    make_feed("live", "all")
    make_feed("broken", "all", bind=True, endpoints=["tcp://192.0.2.1:5555"])
    make_feed("bare")
    reported["r"] = snapshot(
        "host:1",
        {
            "live": report("receiving", rate=42.0),
            "broken": report(
                "error",
                detail="tcp://192.0.2.1:5555: cannot bind: Cannot assign requested address",
            ),
        },
    )
    html = admin_client.get(reverse("admin:zmqfeed_feed_changelist")).content.decode()
    assert '<strong style="color: #1a7f37">receiving</strong>' in html
    assert ">42.0<" in html
    assert "cannot bind: Cannot assign requested address" in html
    assert "no topics: the feed is not read" in html
    assert f'<a href="{reverse("zmqfeed:feed_detail", args=["live"])}">live page</a>' in html
    assert reverse("zmqfeed:feed_detail", args=["bare"]) not in html  # nothing to see live
