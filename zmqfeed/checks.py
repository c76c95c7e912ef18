"""System checks: misconfiguration is reported by `manage.py check`, not by a traceback."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, router, transaction

from . import conf, history
from .core.vocabulary import (
    ACCESS_AUTHENTICATED,
    ACCESS_GROUP,
    ACCESS_NOBODY,
    ACCESS_PUBLIC,
    ACCESS_STAFF,
)
from .daphne import guard, send_limit
from .endpoints import MULTICAST, MULTICAST_REMEDY, parse_endpoint, transport_available
from .layers import layer_is_in_memory
from .models import Feed, Topic

POSITIVE_NUMBERS = (
    "RELOAD_INTERVAL",
    "CLIENT_RATE",
    "LOG_INTERVAL",
    "SLOW_CLIENT_GRACE",
    "PUBLISH_RATE",
    "PUBLISH_TIMEOUT",
    "SILENT_AFTER",
)
NON_NEGATIVE_NUMBERS = {  # and what 0 means
    "CONNECT_RATE": "0: no cap",
    "IDLE_TIMEOUT": "0: idle connections are never closed",
    "LEASE_TTL": "0: no leases, one subscriber per feed",
}
COUNTS = (  # whole numbers of at least 1
    "MAX_BATCH",
    "MAX_FRAME_SIZE",
    "HISTORY_SIZE",  # 0 allowed: seqs, but no replay
    "MAX_SUBSCRIPTIONS",
    "MAX_CLIENT_FRAME",
    "MAX_CLIENT_BACKLOG",
    "CLIENT_BURST",
    "PUBLISH_BURST",
    "RCVHWM",
    "MULTICAST_RATE",
    "MAX_BACKLOG_TOTAL",  # 0 allowed, as for those below: no cap
    "MAX_CONNECTIONS",
    "MAX_CONNECTIONS_PER_USER",
    "MAX_CONNECTIONS_PER_IP",
    "CONNECT_BURST",
)
ZERO_ALLOWED = {
    "HISTORY_SIZE",
    "MAX_BACKLOG_TOTAL",
    "MAX_CONNECTIONS",
    "MAX_CONNECTIONS_PER_USER",
    "MAX_CONNECTIONS_PER_IP",
    "CONNECT_BURST",
}
BOOLEANS = ("EAGER_WRITES", "LIFT_SEND_LIMIT", "PREFRAMED_SENDS", "LEAN_CONNECTIONS")
# daphne's --websocket-max-message-size when not given (daphne/cli.py, its runserver too).
DAPHNE_MAX_MESSAGE_SIZE = 1024 * 1024


def _default(key: str) -> str:
    return f"remove it for the default, {conf.DEFAULTS[key]!r}"


def _number(value: object, kinds: type | tuple[type, ...]) -> bool:
    """An int or float that is not a bool (True is an int to isinstance, not a count)."""
    return isinstance(value, kinds) and not isinstance(value, bool)


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    user = getattr(settings, "ZMQFEED", {}) or {}
    if not isinstance(user, dict):
        return [
            Error(
                "settings.ZMQFEED must be a dict.",
                hint="Write ZMQFEED = {} with the keys to change, e.g. "
                '{"HISTORY_SIZE": 500} (docs/configuration.md).',
                id="zmqfeed.E001",
            )
        ]
    unknown = sorted(set(user) - set(conf.DEFAULTS))
    if unknown:
        errors.append(
            Error(
                f"Unknown ZMQFEED setting(s): {', '.join(unknown)}.",
                hint=f"Known settings: {', '.join(sorted(conf.DEFAULTS))}.",
                id="zmqfeed.E002",
            )
        )
    values = conf.get()
    for key in POSITIVE_NUMBERS:
        if not _number(values[key], (int, float)) or values[key] <= 0:
            errors.append(
                Error(
                    f"ZMQFEED[{key!r}] must be a positive number, not {values[key]!r}.",
                    hint=f"Set a number above 0, or {_default(key)}.",
                    id="zmqfeed.E003",
                )
            )
    for key, what in NON_NEGATIVE_NUMBERS.items():
        if not _number(values[key], (int, float)) or values[key] < 0:
            errors.append(
                Error(
                    f"ZMQFEED[{key!r}] must be a number of at least 0 ({what}), "
                    f"not {values[key]!r}.",
                    hint=f"Set a number of at least 0, or {_default(key)}.",
                    id="zmqfeed.E003",
                )
            )
    for key in COUNTS:
        least = 0 if key in ZERO_ALLOWED else 1
        if not _number(values[key], int) or values[key] < least:
            errors.append(
                Error(
                    f"ZMQFEED[{key!r}] must be a whole number of at least {least}, "
                    f"not {values[key]!r}.",
                    hint=f"Set a whole number of at least {least}, or {_default(key)}.",
                    id="zmqfeed.E003",
                )
            )
    if (
        values["RELOAD_INTERVAL"]
        and isinstance(values["RELOAD_INTERVAL"], (int, float))
        and (values["RELOAD_INTERVAL"] > 5)
    ):
        errors.append(
            Warning(
                "ZMQFEED['RELOAD_INTERVAL'] is over 5 s: configuration changes will take longer "
                "than 5 s to apply.",
                hint=f"Set it to 5 or less, or {_default('RELOAD_INTERVAL')}.",
                id="zmqfeed.W001",
            )
        )
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    if "default" not in layers:
        errors.append(
            Error(
                "zmqfeed needs a channel layer: CHANNEL_LAYERS['default'] is not set.",
                hint="Use zmqfeed.layers.InMemoryChannelLayer for one process, "
                "channels_redis for several (README: Scaled mode).",
                id="zmqfeed.E004",
            )
        )
    for key in BOOLEANS:
        if not isinstance(values[key], bool):
            errors.append(
                Error(
                    f"ZMQFEED[{key!r}] must be True or False, not {values[key]!r}.",
                    hint=f"Set True or False, or {_default(key)}.",
                    id="zmqfeed.E003",
                )
            )
    if values["EMBEDDED"] not in (None, True, False):
        errors.append(
            Error(
                f"ZMQFEED['EMBEDDED'] must be None, True or False, not {values['EMBEDDED']!r}.",
                hint="None runs the subscriber inside the server when the channel layer is "
                "in-memory; True or False decide it yourself.",
                id="zmqfeed.E005",
            )
        )
    elif values["EMBEDDED"] is False and layer_is_in_memory():
        errors.append(
            Error(
                "ZMQFEED['EMBEDDED'] is False, but CHANNEL_LAYERS['default'] is in-memory: a "
                "separate `manage.py zmq_subscribe` process can never reach the server's "
                "clients, so no message would arrive.",
                hint="Remove EMBEDDED (None runs the subscriber inside the server with an "
                "in-memory layer), or give the processes a shared layer, "
                "channels_redis.pubsub.RedisPubSubChannelLayer (README: Scaled mode).",
                id="zmqfeed.E009",
            )
        )
    errors += _check_history()
    errors += _check_send_limit(values)
    errors += _check_curve(values)
    errors += _check_daphne_app()
    return errors


def _check_daphne_app() -> list[CheckMessage]:
    """W004: `runserver` must be daphne's, or zmqfeed's WebSockets are a 404 in development.

    Django takes a command from the first app in INSTALLED_APPS that has it, and
    django.contrib.staticfiles has a (WSGI) runserver of its own.
    """
    names = [config.name for config in apps.get_app_configs()]
    silence = (
        'If another ASGI server (uvicorn, hypercorn) serves the site, add "zmqfeed.W004" '
        "to SILENCED_SYSTEM_CHECKS."
    )
    if "daphne" not in names:
        return [
            Warning(
                '"daphne" is not in INSTALLED_APPS: `manage.py runserver` serves no '
                "WebSockets, so zmqfeed's pages stay at connecting.",
                hint='Put "daphne" first in INSTALLED_APPS (pip install daphne). ' + silence,
                id="zmqfeed.W004",
            )
        ]
    staticfiles = "django.contrib.staticfiles"
    if staticfiles in names and names.index(staticfiles) < names.index("daphne"):
        return [
            Warning(
                f'"daphne" comes after "{staticfiles}" in INSTALLED_APPS, so '
                "`manage.py runserver` is staticfiles' (WSGI): it serves no WebSockets.",
                hint=f'Move "daphne" before "{staticfiles}", best first in INSTALLED_APPS.',
                id="zmqfeed.W004",
            )
        ]
    return []


def _check_send_limit(values: dict[str, Any]) -> list[CheckMessage]:
    """W002: frames over daphne's message limit would be lost, and nothing lifts it.

    A Warning: this process cannot see the command line of the daphne that will serve;
    DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE (which daphne's runserver reads) says what it is given.
    """
    max_frame = values["MAX_FRAME_SIZE"]
    limit = getattr(settings, "DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE", None)
    source = "DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE"
    if limit is None:
        limit, source = DAPHNE_MAX_MESSAGE_SIZE, "daphne's default"
    if not (_number(max_frame, int) and _number(limit, int)) or not 0 < limit < max_frame:
        return []  # 0: daphne sets no limit
    if guard.version_of("daphne") is None:
        return []  # another ASGI server: autobahn's limit does not apply
    if values["LIFT_SEND_LIMIT"] is True:
        off = send_limit.problems()
        if not off:
            return []
        why = f"the send_limit adapter cannot lift it here ({'; '.join(off)})"
        instead = ""
    else:
        why = "ZMQFEED['LIFT_SEND_LIMIT'] is off"
        instead = ", or set LIFT_SEND_LIMIT back to True (the default)"
    return [
        Warning(
            f"ZMQFEED['MAX_FRAME_SIZE'] ({max_frame} bytes) is over daphne's WebSocket "
            f"message limit ({limit} bytes, {source}), which autobahn applies to what daphne "
            f"sends, and {why}: frames over {limit} bytes would be lost.",
            hint=f"Run daphne with --websocket-max-message-size {max_frame} and set "
            f"DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE = {max_frame} (runserver uses it; this check "
            f"reads it), or lower MAX_FRAME_SIZE to {limit}{instead}.",
            id="zmqfeed.W002",
        )
    ]


def _check_history() -> list[CheckMessage]:
    """E006: HISTORY_BACKEND names no history class; E007: the chosen one gets no Redis URL."""
    try:
        cls = history.backend_class(history.backend_path())
    except ImproperlyConfigured as exc:
        return [
            Error(
                f"ZMQFEED['HISTORY_BACKEND'] {exc}.",
                hint=f"Use None (memory with an in-memory channel layer, else Redis), "
                f'"{history.MEMORY}", "{history.REDIS}", or the dotted path of a class '
                "of your own with latest, append and replay (docs/configuration.md).",
                id="zmqfeed.E006",
            )
        ]
    try:
        history.backend_arguments(cls)
    except ImproperlyConfigured as exc:
        return [
            Error(
                f"The history store {exc}.",
                hint='Set ZMQFEED["REDIS_URL"], e.g. "redis://127.0.0.1:6379/0", or give '
                'CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] as Redis URLs; or set '
                f'ZMQFEED["HISTORY_BACKEND"] = "{history.MEMORY}" for a single process.',
                id="zmqfeed.E007",
            )
        ]
    return []


def _check_curve(values: dict[str, Any]) -> list[CheckMessage]:
    """E008: CURVE_SECRET_FILE is set but unusable, or this libzmq lacks CURVE.

    The database is not read here: a feed with curve_publishers while the setting is unset
    is logged by the subscriber, which does not open that feed.
    """
    from . import curve  # an I/O shell: this check reads a file, never the database

    path = values["CURVE_SECRET_FILE"]
    if path is None:
        return []
    problem = None if curve.available() else "this libzmq has no CURVE (zmq.has('curve'))"
    problem = problem or curve.key_file_problem(path)
    if problem is None:
        return []
    return [
        Error(
            f"{problem}: feeds with curve_publishers cannot open.",
            hint="Create a key pair with zmq.auth.create_certificates(directory, 'gateway') "
            "and set CURVE_SECRET_FILE to the .key_secret file (README: Security), or "
            "remove the setting; libzmq needs libsodium for CURVE (pyzmq's wheels have it).",
            id="zmqfeed.E008",
        )
    ]


@register(Tags.security)
def check_origins(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W005: a WebSocket route of the site's own that nothing checks the Origin of.

    A browser sends the site's cookies with a WebSocket opened by any page, so a consumer
    that trusts the session must refuse other origins (cross-site WebSocket hijacking).
    zmqfeed's consumer checks it itself; a site's own routes need Channels' validator.
    The stack is read from ASGI_APPLICATION; one that does not import is reported when the
    server loads it, not here.
    """
    from channels.routing import get_default_application

    try:
        application = get_default_application()
    except Exception:  # unset, or fails to import: nothing to read
        return []
    routes = unguarded_routes(application)
    if not routes:
        return []
    listed = ", ".join(repr(route) for route in routes)
    return [
        Warning(
            f"WebSocket route(s) {listed} of ASGI_APPLICATION accept any Origin: nothing in "
            "the stack checks it, so any web page can open them with a user's cookies.",
            hint='Wrap the "websocket" application in channels.security.websocket.'
            "AllowedHostsOriginValidator(...), or the routes in OriginValidator(..., "
            "[origins]). zmqfeed's own routes check the Origin themselves "
            "(ZMQFEED['ALLOWED_ORIGINS'], else ALLOWED_HOSTS). If middleware of your own "
            'checks it, add "zmqfeed.W005" to SILENCED_SYSTEM_CHECKS.',
            id="zmqfeed.W005",
        )
    ]


def unguarded_routes(app: Any, guarded: bool = False, prefix: str = "") -> list[str]:
    """The WebSocket routes of an ASGI stack that no Origin check stands in front of.

    Walks Channels' ProtocolTypeRouter ("websocket"), middleware (``inner``,
    ``application``), OriginValidator and URLRouter down to consumers. zmqfeed's
    FeedConsumer checks the Origin itself. An application it cannot see into is not
    reported: it may check the Origin in ways this cannot tell.
    """
    from channels.routing import ProtocolTypeRouter, URLRouter
    from channels.security.websocket import OriginValidator

    from .consumer import FeedConsumer

    if isinstance(app, ProtocolTypeRouter):
        inner = app.application_mapping.get("websocket")
        return [] if inner is None else unguarded_routes(inner, guarded, prefix)
    if isinstance(app, OriginValidator):
        return unguarded_routes(app.application, True, prefix)
    if isinstance(app, URLRouter):
        found: list[str] = []
        for route in app.routes:
            found += unguarded_routes(route.callback, guarded, prefix + str(route.pattern))
        return found
    consumer = getattr(app, "consumer_class", None)
    if isinstance(consumer, type):
        if guarded or issubclass(consumer, FeedConsumer):
            return []
        return [prefix or consumer.__name__]
    for name in ("inner", "application", "app"):
        inner = getattr(app, name, None)
        if inner is not None:
            return unguarded_routes(inner, guarded, prefix)
    return []


def _read(using: str, query: Any) -> list[Any] | None:
    """Rows of a database check, or None before ``migrate`` (no tables to read yet)."""
    try:
        with transaction.atomic(using=using):  # a failed query must not spoil a transaction
            return list(query)
    except DatabaseError:
        return None


@register(Tags.database)
def check_publishing(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    """W003: a topic open to publishing whose feed has no publish endpoints.

    The only check that reads the database, so it runs as Django's database checks do: with
    ``manage.py check --database default`` and before ``migrate``, never on a plain
    ``check`` (which must pass before there is a database). Tables not migrated yet hold no
    topic to warn about.
    """
    using = router.db_for_read(Topic)
    if not databases or using not in databases:
        return []
    topics = _read(
        using,
        Topic.objects.using(using)
        .exclude(publish_access=ACCESS_NOBODY)
        .select_related("feed")
        .order_by("feed__slug", "slug"),
    )
    return [
        Warning(
            f"Publish access is {topic.publish_access!r}, but feed {topic.feed.slug!r} has no "
            "publish endpoints: nobody can publish to this topic yet.",
            hint=f"Set the publish endpoints of feed {topic.feed.slug!r} (publish_endpoints; "
            "in the admin under Publishing), or set the topic's publish access to "
            f"{ACCESS_NOBODY!r}.",
            obj=topic,
            id="zmqfeed.W003",
        )
        for topic in topics or ()
        if not topic.feed.publish_endpoints
    ]


# Access values that only a logged-in user passes.
NEEDS_LOGIN = {ACCESS_AUTHENTICATED, ACCESS_STAFF, ACCESS_GROUP}


@register(Tags.database)
def check_feeds(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    """W006: an enabled feed with no topics; W007: multicast this libzmq lacks; W008: a
    topic that needs a login on a site whose login link leads nowhere.

    Database checks, run as W003 is (``check --database default``, ``migrate``).
    """
    using = router.db_for_read(Feed)
    if not databases or using not in databases:
        return []
    feeds = _read(
        using,
        Feed.objects.using(using).filter(enabled=True).prefetch_related("topics").order_by("slug"),
    )
    if not feeds:
        return []
    errors: list[CheckMessage] = []
    for feed in feeds:
        if not feed.topics.all():
            errors.append(
                Warning(
                    f"Feed {feed.slug!r} is enabled but has no topics: nobody can subscribe "
                    "to it, and what it receives is counted as unrouted.",
                    hint=f"Add a topic to feed {feed.slug!r} (an empty prefix takes every "
                    "message), or disable the feed.",
                    obj=feed,
                    id="zmqfeed.W006",
                )
            )
        errors += _multicast_problems(feed)
    errors += _login_problems(feeds)
    return errors


def _multicast_problems(feed: Feed) -> list[CheckMessage]:
    """A feed saved where libzmq had PGM/NORM (or written to the database directly)."""
    found = []
    for endpoint in feed.endpoints or ():
        try:
            scheme = parse_endpoint(endpoint).scheme
        except ValueError:
            continue  # the admin and import refuse it; the subscriber logs it
        if scheme in MULTICAST and not transport_available(scheme):
            found.append(
                Warning(
                    f"Feed {feed.slug!r} is enabled with {endpoint!r}, but {scheme}:// is not "
                    "available here: the subscriber cannot open the feed.",
                    hint=f"{MULTICAST_REMEDY[0].upper()}{MULTICAST_REMEDY[1:]} See "
                    f"docs/multicast.md; or change the endpoints of feed {feed.slug!r}, or "
                    "disable it.",
                    obj=feed,
                    id="zmqfeed.W007",
                )
            )
    return found


def _login_problems(feeds: list[Feed]) -> list[CheckMessage]:
    """The login link the pages show (views.login_url) must lead to a login these users
    can use: the admin's, the fallback, takes staff accounts only."""
    from . import views

    if views.site_login_url() is not None:
        return []
    needs: dict[str, set[str]] = {}  # access value -> "feed/topic" that need it
    for feed in feeds:
        for topic in feed.topics.all():
            for access in {topic.access, topic.publish_access} & NEEDS_LOGIN:
                needs.setdefault(access, set()).add(f"{feed.slug}/{topic.slug}")
    fallback = views.login_url()  # the admin's login, if it is mounted
    if fallback is not None:
        needs.pop(ACCESS_STAFF, None)  # staff can log in there
    topics = sorted(set().union(*needs.values())) if needs else []
    if not topics:
        return []
    shown = ", ".join(topics[:5]) + (f" and {len(topics) - 5} more" if len(topics) > 5 else "")
    if fallback:
        where = f"the pages link to the admin's login ({fallback}), which takes staff only"
        who = "users who are not staff"
    else:
        where = "the admin is not mounted either, so the pages show no log-in link"
        who = "users"
    return [
        Warning(
            f"settings.LOGIN_URL ({settings.LOGIN_URL!r}) leads nowhere on this site and "
            f"{where}: {who} cannot log in to read or publish {shown}.",
            hint="Set LOGIN_URL to the URL name or path of a login page the site serves, e.g. "
            'path("accounts/", include("django.contrib.auth.urls")) in urls.py and '
            f'LOGIN_URL = "login"; or make those topics {ACCESS_PUBLIC!r}.',
            id="zmqfeed.W008",
        )
    ]
