"""System checks: every id is raised by the settings that should raise it, with a hint.

Run directly and through Django's registry (run_checks, `manage.py check`), so that a check
that stops being registered, or returns nothing, turns these red.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import zmq
from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator, OriginValidator
from django.core.checks import ERROR, WARNING, CheckMessage, run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.urls import path

from tests.conftest import ROOT
from tests.settings import INSTALLED_APPS
from zmqfeed import checks, conf
from zmqfeed.daphne import send_limit
from zmqfeed.models import Feed, Topic
from zmqfeed.routing import websocket_application, websocket_urlpatterns

MIB = 1024 * 1024
STATICFILES = "django.contrib.staticfiles"
WITHOUT_DAPHNE = [app for app in INSTALLED_APPS if app != "daphne"]
DAPHNE_LAST = [*WITHOUT_DAPHNE, "daphne"]
MEMORY_LAYER = {"default": {"BACKEND": "zmqfeed.layers.InMemoryChannelLayer"}}
REDIS_LAYER = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer"}}

# (id, settings to apply, what the message names, what the hint says to do)
CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("zmqfeed.E001", {"ZMQFEED": ["HISTORY_SIZE"]}, "must be a dict", "ZMQFEED = {}"),
    ("zmqfeed.E002", {"ZMQFEED": {"HISTORY_SZE": 10}}, "HISTORY_SZE", "HISTORY_SIZE"),
    ("zmqfeed.E003", {"ZMQFEED": {"RELOAD_INTERVAL": 0}}, "RELOAD_INTERVAL", "default, 2.0"),
    ("zmqfeed.E003", {"ZMQFEED": {"CLIENT_RATE": -1.0}}, "CLIENT_RATE", "above 0"),
    ("zmqfeed.E003", {"ZMQFEED": {"LOG_INTERVAL": "1"}}, "LOG_INTERVAL", "default, 1.0"),
    ("zmqfeed.E003", {"ZMQFEED": {"LEASE_TTL": -1}}, "LEASE_TTL", "default, 3.0"),
    ("zmqfeed.E003", {"ZMQFEED": {"IDLE_TIMEOUT": "60"}}, "IDLE_TIMEOUT", "at least 0"),
    ("zmqfeed.E003", {"ZMQFEED": {"MAX_BATCH": 0}}, "MAX_BATCH", "at least 1"),
    ("zmqfeed.E003", {"ZMQFEED": {"MAX_FRAME_SIZE": 1.5}}, "MAX_FRAME_SIZE", "at least 1"),
    ("zmqfeed.E003", {"ZMQFEED": {"HISTORY_SIZE": -1}}, "HISTORY_SIZE", "at least 0"),
    ("zmqfeed.E003", {"ZMQFEED": {"MAX_SUBSCRIPTIONS": True}}, "MAX_SUBSCRIPTIONS", "default"),
    ("zmqfeed.E003", {"ZMQFEED": {"MAX_CLIENT_FRAME": None}}, "MAX_CLIENT_FRAME", "65536"),
    ("zmqfeed.E003", {"ZMQFEED": {"MAX_CLIENT_BACKLOG": "4M"}}, "MAX_CLIENT_BACKLOG", "4194304"),
    ("zmqfeed.E003", {"ZMQFEED": {"CLIENT_BURST": 0}}, "CLIENT_BURST", "default, 200"),
    ("zmqfeed.E003", {"ZMQFEED": {"RCVHWM": -5}}, "RCVHWM", "default, 100000"),
    ("zmqfeed.E003", {"ZMQFEED": {"MULTICAST_RATE": 0}}, "MULTICAST_RATE", "default, 100000"),
    ("zmqfeed.E003", {"ZMQFEED": {"EAGER_WRITES": "yes"}}, "EAGER_WRITES", "True or False"),
    ("zmqfeed.E003", {"ZMQFEED": {"PREFRAMED_SENDS": 1}}, "PREFRAMED_SENDS", "True or False"),
    ("zmqfeed.E004", {"CHANNEL_LAYERS": {}}, "CHANNEL_LAYERS['default']", "InMemoryChannelLayer"),
    ("zmqfeed.E005", {"ZMQFEED": {"EMBEDDED": "auto"}}, "EMBEDDED", "None"),
    (
        "zmqfeed.E009",
        {"ZMQFEED": {"EMBEDDED": False}},
        "a separate `manage.py zmq_subscribe` process can never reach",
        "channels_redis.pubsub.RedisPubSubChannelLayer",
    ),
    (
        "zmqfeed.W004",
        {"INSTALLED_APPS": WITHOUT_DAPHNE},
        '"daphne" is not in INSTALLED_APPS',
        'Put "daphne" first in INSTALLED_APPS',
    ),
    (
        "zmqfeed.W004",
        {"INSTALLED_APPS": DAPHNE_LAST},
        f'"daphne" comes after "{STATICFILES}"',
        f'Move "daphne" before "{STATICFILES}"',
    ),
    (
        "zmqfeed.E006",
        {"ZMQFEED": {"HISTORY_BACKEND": "zmqfeed.history.Nope"}},
        "does not import",
        "zmqfeed.history.RedisHistory",
    ),
    (
        "zmqfeed.E006",
        {"ZMQFEED": {"HISTORY_BACKEND": "zmqfeed.history.redis_url"}},
        "is not a class",
        "latest, append and replay",
    ),
    ("zmqfeed.E007", {"CHANNEL_LAYERS": REDIS_LAYER}, "needs a Redis URL", "REDIS_URL"),
    (
        "zmqfeed.E008",
        {"ZMQFEED": {"CURVE_SECRET_FILE": "/nonexistent/gateway.key_secret"}},
        "CURVE_SECRET_FILE",
        "zmq.auth.create_certificates",
    ),
    ("zmqfeed.W001", {"ZMQFEED": {"RELOAD_INTERVAL": 6}}, "over 5 s", "5 or less"),
    ("zmqfeed.E003", {"ZMQFEED": {"LIFT_SEND_LIMIT": "no"}}, "LIFT_SEND_LIMIT", "True or False"),
    (
        "zmqfeed.W002",
        {"ZMQFEED": {"MAX_FRAME_SIZE": 2 * MIB, "LIFT_SEND_LIMIT": False}},
        "over daphne's WebSocket message limit (1048576 bytes, daphne's default)",
        "--websocket-max-message-size 2097152",
    ),
    (
        "zmqfeed.W002",
        {
            "ZMQFEED": {"MAX_FRAME_SIZE": 16 * MIB, "LIFT_SEND_LIMIT": False},
            "DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE": 8 * MIB,
        },
        "(8388608 bytes, DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE)",
        "lower MAX_FRAME_SIZE to 8388608",
    ),
]
IDS = [f"{case[0]}:{case[2]}" for case in CASES]
# Ids of the checks that read the database: tested with rows, below.
DATABASE_IDS = {"zmqfeed.W003", "zmqfeed.W006", "zmqfeed.W007", "zmqfeed.W008"}
ASGI_IDS = {"zmqfeed.W005"}  # read ASGI_APPLICATION: tested with stacks, below


def ours(messages: list[CheckMessage]) -> list[CheckMessage]:
    return [m for m in messages if str(m.id).startswith("zmqfeed.")]


def apply(settings: Any, changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        setattr(settings, name, value)


@pytest.mark.parametrize(("check_id", "changes", "named", "hint"), CASES, ids=IDS)
def test_each_check_fires_with_a_hint(
    settings: Any, check_id: str, changes: dict[str, Any], named: str, hint: str
) -> None:
    apply(settings, changes)
    found = ours(checks.check_settings())
    assert [m.id for m in found] == [check_id], [str(m) for m in found]
    message = found[0]
    assert named in message.msg
    assert message.hint and hint in message.hint, message.hint
    assert message.level == (WARNING if check_id.startswith("zmqfeed.W") else ERROR)


@pytest.mark.parametrize(("check_id", "changes", "named", "hint"), CASES, ids=IDS)
def test_each_check_is_registered_with_django(
    settings: Any, check_id: str, changes: dict[str, Any], named: str, hint: str
) -> None:
    """Through the registry, as `manage.py check` runs it: an unregistered check fails here."""
    apply(settings, changes)
    found = ours(run_checks())
    assert [m.id for m in found] == [check_id], [str(m) for m in found]
    with pytest.raises(SystemCheckError) as caught:
        call_command("check", fail_level="WARNING")
    assert check_id in str(caught.value) and hint in str(caught.value)


def test_every_id_in_checks_py_has_a_case() -> None:
    source = Path(checks.__file__).read_text(encoding="utf-8")
    assert set(re.findall(r'"(zmqfeed\.[EW]\d{3})"', source)) == {
        *(case[0] for case in CASES),
        *DATABASE_IDS,
        *ASGI_IDS,
    }


def test_the_boundaries_pass(settings: Any) -> None:
    """The smallest allowed values, a memory history with a Redis layer, a Redis URL."""
    settings.ZMQFEED = {
        "RELOAD_INTERVAL": 5,
        "HISTORY_SIZE": 0,
        "MAX_BATCH": 1,
        "CLIENT_RATE": 0.5,
        "EMBEDDED": False,
        "EAGER_WRITES": False,
        "PREFRAMED_SENDS": False,
        "HISTORY_BACKEND": "zmqfeed.history.MemoryHistory",
    }
    settings.CHANNEL_LAYERS = REDIS_LAYER
    assert ours(run_checks()) == []
    settings.ZMQFEED = {"REDIS_URL": "redis://127.0.0.1:6379/0"}
    assert ours(run_checks()) == []


def test_frames_over_daphnes_limit_pass_where_lifted_or_allowed(settings: Any, monkeypatch) -> None:
    """W002 only when daphne's limit is under MAX_FRAME_SIZE and nothing lifts it for sends."""
    settings.ZMQFEED = {"MAX_FRAME_SIZE": 16 * MIB}  # the send_limit adapter lifts it
    assert ours(run_checks()) == []
    settings.ZMQFEED = {"MAX_FRAME_SIZE": 16 * MIB, "LIFT_SEND_LIMIT": False}
    for allowed in (16 * MIB, 0):  # as large; no limit at all
        settings.DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE = allowed
        assert ours(run_checks()) == []
    del settings.DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE
    settings.ZMQFEED = {"MAX_FRAME_SIZE": 16 * MIB}
    off = "autobahn 27.1.1 is outside the tested range >=22.4,<27"
    monkeypatch.setattr(send_limit, "problems", lambda: [off])
    [warning] = ours(run_checks())
    assert warning.id == "zmqfeed.W002" and f"cannot lift it here ({off})" in warning.msg


def test_several_problems_are_all_reported(settings: Any) -> None:
    settings.ZMQFEED = {"NOPE": 1, "MAX_BATCH": 0, "RCVHWM": 0, "EMBEDDED": 1.5}
    settings.CHANNEL_LAYERS = {}
    ids = [m.id for m in ours(run_checks())]
    assert ids == ["zmqfeed.E002", "zmqfeed.E003", "zmqfeed.E003", "zmqfeed.E004", "zmqfeed.E005"]


def test_the_test_settings_are_the_demos_and_pass(settings: Any) -> None:
    assert settings.ZMQFEED == {}
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == MEMORY_LAYER["default"]["BACKEND"]
    assert ours(run_checks()) == []
    call_command("check", fail_level="WARNING")
    assert set(conf.get()) == set(conf.DEFAULTS)


@pytest.mark.parametrize("redis_layer", [None, "pubsub", "core"])
def test_the_demo_settings_pass_manage_py_check(redis_layer: str | None) -> None:
    """project/settings.py as `make demo` and scaled mode load it, in a fresh process."""
    env = {**os.environ, "DJANGO_DEBUG": "1", "DJANGO_SETTINGS_MODULE": "project.settings"}
    env.pop("REDIS_URL", None)
    if redis_layer:
        env.update(REDIS_URL="redis://127.0.0.1:6379/0", ZMQFEED_REDIS_LAYER=redis_layer)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


# Checks that read the database


def publishing_feeds() -> tuple[Feed, Feed]:
    """Feed a has no publish endpoints, b has one; each has a topic open to publishing."""
    a = Feed.objects.create(slug="a", name="A", endpoints=["tcp://127.0.0.1:5556"])
    b = Feed.objects.create(
        slug="b", name="B", endpoints=["tcp://127.0.0.1:5557"], publish_endpoints=["ipc:///tmp/b"]
    )
    Topic.objects.create(feed=a, slug="closed", name="Closed")  # publish access nobody
    Topic.objects.create(feed=a, slug="open", name="Open", publish_access="staff")
    Topic.objects.create(feed=b, slug="open", name="Open", publish_access="public")
    return a, b


@pytest.mark.django_db
def test_publish_access_without_publish_endpoints_warns_with_a_hint() -> None:
    a, _ = publishing_feeds()
    [warning] = ours(checks.check_publishing(databases=["default"]))
    assert (warning.id, warning.level) == ("zmqfeed.W003", WARNING)
    assert warning.obj == Topic.objects.get(feed=a, slug="open")
    assert warning.msg == (
        "Publish access is 'staff', but feed 'a' has no publish endpoints: nobody can publish "
        "to this topic yet."
    )
    assert warning.hint and "Set the publish endpoints of feed 'a'" in warning.hint
    assert "set the topic's publish access to 'nobody'" in warning.hint
    assert str(warning).startswith("a/open: (zmqfeed.W003) ")

    Feed.objects.filter(pk=a.pk).update(publish_endpoints=["tcp://127.0.0.1:5560"])
    assert ours(checks.check_publishing(databases=["default"])) == []
    Feed.objects.filter(pk=a.pk).update(publish_endpoints=[])
    Topic.objects.filter(feed=a).update(publish_access="nobody")
    assert ours(checks.check_publishing(databases=["default"])) == []


@pytest.mark.django_db
def test_the_publish_check_runs_when_django_is_given_the_database() -> None:
    """As Django's database checks: `check --database default` and migrate, not plain check."""
    publishing_feeds()
    assert ours(run_checks()) == []
    assert ours(checks.check_publishing()) == []
    assert ours(checks.check_publishing(databases=["other"])) == []
    assert [m.id for m in ours(run_checks(databases=["default"]))] == ["zmqfeed.W003"]
    call_command("check", fail_level="WARNING")
    with pytest.raises(SystemCheckError) as caught:
        call_command("check", "--database", "default", fail_level="WARNING")
    assert "zmqfeed.W003" in str(caught.value) and "publish access to 'nobody'" in str(caught.value)


def test_the_publish_check_says_nothing_before_migrate(tmp_path: Path) -> None:
    """A database without zmqfeed's tables (before the first migrate) has nothing to warn of
    (W003, nor the feed checks, W006-W008)."""
    env = {
        **os.environ,
        "DJANGO_DEBUG": "1",
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
    }
    env.pop("REDIS_URL", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--database", "default", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_daphne_first_or_without_staticfiles_passes(settings: Any) -> None:
    """W004 is about runserver's precedence: without staticfiles, daphne's order is free."""
    assert INSTALLED_APPS.index("daphne") < INSTALLED_APPS.index(STATICFILES)
    assert ours(run_checks()) == []
    settings.INSTALLED_APPS = [app for app in DAPHNE_LAST if app != STATICFILES]
    assert ours(checks.check_settings()) == []


def test_daphne_after_staticfiles_really_loses_runserver(settings: Any) -> None:
    """What W004 warns of: Django takes runserver from the first app that has one."""
    from django.core.management import get_commands

    get_commands.cache_clear()
    try:
        assert get_commands()["runserver"] == "daphne"
        settings.INSTALLED_APPS = DAPHNE_LAST
        get_commands.cache_clear()
        assert get_commands()["runserver"] == STATICFILES
    finally:
        get_commands.cache_clear()


def test_a_shared_layer_or_embedded_passes_with_embedded_set(settings: Any) -> None:
    settings.ZMQFEED = {"EMBEDDED": True}
    assert ours(run_checks()) == []
    settings.ZMQFEED = {"EMBEDDED": False, "REDIS_URL": "redis://127.0.0.1:6379/0"}
    settings.CHANNEL_LAYERS = REDIS_LAYER
    assert ours(run_checks()) == []


# The ASGI stack's Origin checks (W005)


class EchoConsumer(AsyncWebsocketConsumer):
    """A site's own consumer: it trusts the session, and checks no Origin."""


ECHO = path("ws/echo/", EchoConsumer.as_asgi())
NESTED = path("ws/rooms/", URLRouter([path("<str:room>/", EchoConsumer.as_asgi())]))
# ASGI_APPLICATION values for the tests below (this module is importable as tests.test_checks).
UNGUARDED = ProtocolTypeRouter(
    {"websocket": AuthMiddlewareStack(URLRouter([ECHO, NESTED, *websocket_urlpatterns]))}
)
GUARDED = ProtocolTypeRouter(
    {
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter([ECHO, NESTED, *websocket_urlpatterns]))
        )
    }
)
PARTLY_GUARDED = ProtocolTypeRouter(
    {
        "websocket": URLRouter(
            [path("ws/echo/", OriginValidator(EchoConsumer.as_asgi(), ["https://a.test"])), NESTED]
        )
    }
)


def test_a_sites_own_route_without_an_origin_check_warns(settings: Any) -> None:
    settings.ASGI_APPLICATION = "tests.test_checks.UNGUARDED"
    [warning] = ours(run_checks())
    assert (warning.id, warning.level) == ("zmqfeed.W005", WARNING)
    assert "'ws/echo/', 'ws/rooms/<str:room>/' of ASGI_APPLICATION accept any Origin" in (
        warning.msg
    )
    assert "ws/zmqfeed" not in warning.msg  # FeedConsumer checks the Origin itself
    assert warning.hint and "AllowedHostsOriginValidator" in warning.hint
    with pytest.raises(SystemCheckError) as caught:
        call_command("check", "--tag", "security", fail_level="WARNING")
    assert "zmqfeed.W005" in str(caught.value)


def test_routes_behind_an_origin_validator_pass(settings: Any) -> None:
    settings.ASGI_APPLICATION = "tests.test_checks.GUARDED"
    assert ours(run_checks()) == []
    settings.ASGI_APPLICATION = "tests.test_checks.PARTLY_GUARDED"
    assert [m.msg.split(" of ")[0] for m in ours(run_checks())] == [
        "WebSocket route(s) 'ws/rooms/<str:room>/'"
    ]


@pytest.mark.parametrize(
    "application",
    ["project.asgi.application", "tests.sites.own_stack_asgi.application", "nope.asgi.app", None],
)
def test_zmqfeeds_stacks_pass(settings: Any, application: str | None) -> None:
    """The demo's, a site's own stack around zmqfeed's routes; one that does not import."""
    settings.ASGI_APPLICATION = application
    assert ours(checks.check_origins()) == []
    assert checks.unguarded_routes(websocket_application()) == []


def test_othersite_passes_manage_py_check() -> None:
    """The second site: its own echo route beside zmqfeed's, behind Channels' validator."""
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'tests' / 'sites'}{os.pathsep}{ROOT}",
        "DJANGO_SETTINGS_MODULE": "othersite.settings",
    }
    result = subprocess.run(
        [sys.executable, "-m", "django", "check", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


# Feeds in the database (W006, W007, W008)


def database_checks() -> list[CheckMessage]:
    return ours(checks.check_feeds(databases=["default"]))


@pytest.mark.django_db
def test_an_enabled_feed_without_topics_warns_naming_it() -> None:
    feed = Feed.objects.create(slug="empty", name="Empty", endpoints=["tcp://127.0.0.1:5556"])
    [warning] = database_checks()
    assert (warning.id, warning.level, warning.obj) == ("zmqfeed.W006", WARNING, feed)
    assert warning.msg.startswith("Feed 'empty' is enabled but has no topics")
    assert warning.hint and "Add a topic to feed 'empty'" in warning.hint
    assert ours(checks.check_feeds()) == []  # a plain `check` reads no database
    with pytest.raises(SystemCheckError) as caught:
        call_command("check", "--database", "default", fail_level="WARNING")
    assert "zmqfeed.W006" in str(caught.value)

    Topic.objects.create(feed=feed, slug="all", name="All")
    assert database_checks() == []
    Topic.objects.all().delete()
    Feed.objects.update(enabled=False)
    assert database_checks() == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("endpoint", "capability"),
    [("epgm://lo;239.192.1.1:5555", "pgm"), ("norm://239.192.1.1:5555", "norm")],
)
def test_multicast_this_libzmq_lacks_warns(endpoint: str, capability: str) -> None:
    """A feed saved where libzmq had it (the ORM does not validate): warned where it has not."""
    feed = Feed.objects.create(
        slug="mc", name="MC", endpoints=["tcp://127.0.0.1:5556", endpoint, "bad"]
    )
    Topic.objects.create(feed=feed, slug="all", name="All")
    found = database_checks()
    if zmq.has(capability):
        assert found == []
        return
    [warning] = found
    assert (warning.id, warning.level, warning.obj) == ("zmqfeed.W007", WARNING, feed)
    assert f"Feed 'mc' is enabled with {endpoint!r}" in warning.msg
    assert warning.hint and "make multicast" in warning.hint
    assert "docs/multicast.md" in warning.hint
    Feed.objects.update(enabled=False)
    assert database_checks() == []


def login_topics() -> Feed:
    feed = Feed.objects.create(slug="f", name="F", endpoints=["tcp://127.0.0.1:5556"])
    Topic.objects.create(feed=feed, slug="open", name="Open")  # public
    return feed


@pytest.mark.django_db
def test_a_login_url_that_leads_nowhere_warns_when_a_topic_needs_a_login(settings: Any) -> None:
    feed = login_topics()
    settings.LOGIN_URL = "/accounts/login/"  # Django's default: a 404 on the demo site
    assert database_checks() == []  # every topic public
    Topic.objects.create(feed=feed, slug="staff", name="Staff", access="staff")
    assert database_checks() == []  # the admin's login, the pages' fallback, takes staff
    Topic.objects.create(feed=feed, slug="members", name="M", publish_access="authenticated")
    [warning] = database_checks()
    assert (warning.id, warning.level) == ("zmqfeed.W008", WARNING)
    assert warning.msg == (
        "settings.LOGIN_URL ('/accounts/login/') leads nowhere on this site and the pages "
        "link to the admin's login (/admin/login/), which takes staff only: users who are "
        "not staff cannot log in to read or publish f/members."
    )
    assert warning.hint and "Set LOGIN_URL to the URL name or path of a login page" in (
        warning.hint
    )
    with pytest.raises(SystemCheckError) as caught:
        call_command("check", "--database", "default", fail_level="WARNING")
    assert "zmqfeed.W008" in str(caught.value)

    settings.ROOT_URLCONF = "tests.sites.noadmin_urls"  # no admin: staff cannot log in either
    [warning] = database_checks()
    assert "the admin is not mounted either" in warning.msg
    assert "f/members, f/staff." in warning.msg

    for working in ("/zmqfeed/", "zmqfeed:feed_list", "https://sso.example.com/login"):
        settings.LOGIN_URL = working
        assert database_checks() == [], working
    Feed.objects.update(enabled=False)
    settings.LOGIN_URL = "nope:login"
    assert database_checks() == []


def test_every_id_is_in_the_readmes_table() -> None:
    source = Path(checks.__file__).read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("### System checks", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(zmqfeed\.[EW]\d{3})` \|", table, re.MULTILINE))
    assert listed == set(re.findall(r'"(zmqfeed\.[EW]\d{3})"', source))
