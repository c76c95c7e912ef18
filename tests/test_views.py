"""Pages and probes via Django's test client: who sees which feed, and the probe formats."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse
from prometheus_client import CONTENT_TYPE_LATEST

from zmqfeed.models import Feed, Topic

from .conftest import PYTHON, ROOT, free_port

pytestmark = pytest.mark.django_db


def make_feed(slug: str, *topics: tuple[str, str], enabled: bool = True, name: str = "") -> Feed:
    feed = Feed.objects.create(
        slug=slug, name=name or slug.title(), endpoints=["tcp://127.0.0.1:5556"], enabled=enabled
    )
    for topic_slug, access in topics:
        Topic.objects.create(feed=feed, slug=topic_slug, name=f"Topic {topic_slug}", access=access)
    return feed


@pytest.fixture
def feeds() -> None:
    make_feed("prices", ("eur", "public"), ("secret", "staff"))
    make_feed("internal", ("ops", "staff"))
    make_feed("members", ("club", "authenticated"))
    make_feed("team", ("red", "group"))
    Topic.objects.get(slug="red").groups.add(Group.objects.create(name="red-team"))
    make_feed("off", ("all", "public"), enabled=False)


def listed(client) -> str:
    response = client.get(reverse("zmqfeed:feed_list"))
    assert response.status_code == 200
    return response.content.decode()


def test_anonymous_list_shows_public_feeds_only(client, feeds):
    page = listed(client)
    assert reverse("zmqfeed:feed_detail", args=["prices"]) in page
    assert "Topic eur" in page
    assert "Topic secret" not in page  # staff-only topic of a public feed
    for hidden in ("internal", "members", "team", "off"):
        assert reverse("zmqfeed:feed_detail", args=[hidden]) not in page


def test_staff_list_shows_staff_topics_but_not_other_groups(client, feeds):
    client.force_login(User.objects.create_user("boss", is_staff=True))
    page = listed(client)
    assert "Topic secret" in page
    for shown in ("prices", "internal", "members"):
        assert reverse("zmqfeed:feed_detail", args=[shown]) in page
    assert reverse("zmqfeed:feed_detail", args=["team"]) not in page
    assert reverse("zmqfeed:feed_detail", args=["off"]) not in page


def test_group_member_sees_group_feed(client, feeds):
    user = User.objects.create_user("ann")
    user.groups.add(Group.objects.get(name="red-team"))
    client.force_login(user)
    page = listed(client)
    assert reverse("zmqfeed:feed_detail", args=["team"]) in page
    assert reverse("zmqfeed:feed_detail", args=["members"]) in page
    assert reverse("zmqfeed:feed_detail", args=["internal"]) not in page


def test_empty_list_says_so_and_offers_the_login_page(client):
    page = listed(client)
    assert "No feeds to show" in page
    assert f'href="{reverse("admin:login")}?next=/zmqfeed/"' in page  # the demo's LOGIN_URL


@pytest.mark.parametrize("login_url", ["accounts:login", "/accounts/login/"])
def test_login_link_falls_back_to_the_admin_when_the_site_has_no_such_page(
    client, settings, login_url
):
    settings.LOGIN_URL = login_url  # a URL name, or Django's default path, the site lacks
    page = listed(client)
    assert f'href="{reverse("admin:login")}?next=/zmqfeed/"' in page


def test_detail_lists_readable_topics_and_loads_the_client(client, feeds):
    response = client.get(reverse("zmqfeed:feed_detail", args=["prices"]))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-feed="prices"' in page
    assert 'data-topic="eur"' in page
    assert 'data-topic="secret"' not in page
    assert "zmqfeed/zmqfeed.js" in page and "zmqfeed/live.js" in page


@pytest.mark.parametrize("slug", ["nope", "off", "internal", "members", "team"])
def test_detail_404_for_missing_disabled_or_unreadable_feed(client, feeds, slug):
    assert client.get(reverse("zmqfeed:feed_detail", args=[slug])).status_code == 404


def test_detail_for_staff_shows_staff_topic(client, feeds):
    client.force_login(User.objects.create_user("boss", is_staff=True))
    page = client.get(reverse("zmqfeed:feed_detail", args=["prices"])).content.decode()
    assert 'data-topic="secret"' in page
    assert client.get(reverse("zmqfeed:feed_detail", args=["internal"])).status_code == 200


def test_names_are_escaped(client):
    make_feed("xss", ("t", "public"), name="<script>alert(1)</script>")
    for url in (reverse("zmqfeed:feed_list"), reverse("zmqfeed:feed_detail", args=["xss"])):
        page = client.get(url).content.decode()
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_pages_refuse_post(client, feeds):
    assert client.post(reverse("zmqfeed:feed_list")).status_code == 405


def test_metrics_is_prometheus_text(client):
    response = client.get(reverse("zmqfeed:metrics"))
    assert response.status_code == 200
    assert response["Content-Type"] == CONTENT_TYPE_LATEST
    body = response.content.decode()
    assert "# TYPE python_info gauge" in body
    assert "# TYPE zmqfeed_connections gauge" in body


def test_metrics_are_for_loopback_internal_ips_and_staff(client, admin_client, settings):
    url = reverse("zmqfeed:metrics")
    assert client.get(url, REMOTE_ADDR="203.0.113.7").status_code == 403
    assert admin_client.get(url, REMOTE_ADDR="203.0.113.7").status_code == 200
    settings.INTERNAL_IPS = ["203.0.113.7"]
    assert client.get(url, REMOTE_ADDR="203.0.113.7").status_code == 200


def test_healthz_ok(client):
    response = client.get(reverse("zmqfeed:healthz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_healthz_503_when_the_database_is_down():
    """A PostgreSQL URL on a port where nothing listens: a real refused connection."""
    code = (
        "import django, json; django.setup()\n"
        "from django.test import Client\n"
        "r = Client().get('/zmqfeed/healthz')\n"
        "print(json.dumps({'status': r.status_code, 'body': r.json()}))\n"
    )
    env = {
        **os.environ,
        "DJANGO_DEBUG": "1",
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "DATABASE_URL": f"postgres://nobody:nothing@127.0.0.1:{free_port()}/nowhere",
    }
    out = subprocess.run(
        [PYTHON, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == 503
    assert result["body"]["status"] == "error"
    assert result["body"]["reason"].startswith("database: OperationalError")
