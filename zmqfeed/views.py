"""Pages (feed list, live page, status) and probes (metrics, health) of zmqfeed.

The pages only decide what this user may see; live data reaches the browser over the
WebSocket through ``static/zmqfeed/zmqfeed.js``, never through these views. The status
page, for staff, polls ``status.json``: the processes' own snapshots (:mod:`zmqfeed.status`).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.views import LogoutView
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    QueryDict,
)
from django.shortcuts import render, resolve_url
from django.urls import NoReverseMatch, Resolver404, resolve, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

import zmqfeed.daphne.metrics
import zmqfeed.metrics  # noqa: F401  (registers the gateway's series in the default registry)

from . import conf
from .core import feedstate
from .core.access import Reader, can_publish, can_read
from .core.catalog import FeedConfig, TopicConfig
from .core.status import DISABLED
from .models import load_catalog

MAX_ROWS = 200  # messages kept on the live page; older rows leave the DOM


def _readable(feed: FeedConfig, reader: Reader) -> list[TopicConfig]:
    return [t for t in feed.topics if can_read(t, reader)]


def _publishable(feed: FeedConfig, reader: Reader) -> list[TopicConfig]:
    """Topics this user may publish to, readable or not; none when the feed has no outlet."""
    if not feed.publish_endpoints:
        return []
    return [t for t in feed.topics if can_publish(t, reader)]


def _reversed(*names: str) -> str | None:
    """The first of these URL names this site has, or None."""
    for name in names:
        try:
            return reverse(name)
        except NoReverseMatch:
            continue
    return None


def site_login_url() -> str | None:
    """settings.LOGIN_URL if it leads somewhere: a URL name this site has, a path it serves,
    or another host's page; else None.

    Django's default LOGIN_URL, /accounts/login/, is a 404 on a site that never mounted
    django.contrib.auth.urls: no link is better than a link to nowhere.
    """
    try:
        url = resolve_url(settings.LOGIN_URL)
    except NoReverseMatch:  # a URL name this site does not have
        return None
    if url and url.startswith("/") and not url.startswith("//"):
        try:
            resolve(url.split("?", 1)[0])
        except Resolver404:
            return None
    return url or None


def login_url() -> str | None:
    """The site's login page if it is there, else the admin's, else none."""
    return site_login_url() or _reversed("admin:login")


def navigation(request: HttpRequest) -> dict[str, Any]:
    """What zmqfeed's pages need around them: base template, log-in/out and admin links.

    Also usable as a context processor (``zmqfeed.views.navigation``) for a site's own pages.
    """
    staff = _staff(request)
    return {
        "zmqfeed_base_template": conf.get()["BASE_TEMPLATE"],
        "login_url": login_url(),
        "zmqfeed_logout_url": _reversed("logout", "zmqfeed:logout"),
        "zmqfeed_admin_url": _reversed("admin:index") if staff else None,
        "zmqfeed_status_url": _reversed("zmqfeed:status") if staff else None,
    }


def _staff(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff)


# Log out (POST, with CSRF) for sites without a logout view of their own: the admin's sends
# users who are not staff back to the admin index, still logged in. Returns to ?next=.
logout = LogoutView.as_view()


def _page(request: HttpRequest, template: str, context: dict) -> HttpResponse:
    return render(request, template, {**navigation(request), **context})


@require_safe
def feed_list(request: HttpRequest) -> HttpResponse:
    """The enabled feeds in which this user may read at least one topic."""
    reader = Reader.load(request.user)
    feeds = []
    for feed in load_catalog().feeds:
        topics = _readable(feed, reader) if feed.enabled else []
        if topics:
            feeds.append({"feed": feed, "topics": topics})
    return _page(request, "zmqfeed/feed_list.html", {"feeds": feeds})


@require_safe
def feed_detail(request: HttpRequest, feed: str) -> HttpResponse:
    """The live page; a feed this user cannot read is indistinguishable from a missing one."""
    config = load_catalog().feed(feed)
    reader = Reader.load(request.user)
    topics = _readable(config, reader) if config and config.enabled else []
    if not topics:
        raise Http404("No such feed.")
    assert config is not None
    return _page(
        request,
        "zmqfeed/feed_detail.html",
        {
            "feed": config,
            "topics": topics,
            "publishable": _publishable(config, reader),
            "max_rows": MAX_ROWS,
            # how long a topic saved a moment ago may take to reach the server (live.js)
            "reload_interval": conf.get()["RELOAD_INTERVAL"],
        },
    )


@require_safe
@never_cache
def status_page(request: HttpRequest) -> HttpResponse:
    """Every feed's state, rate, drops and subscribers, live (staff only, as the admin).

    Anonymous users are sent to log in (when the site has a login page); others get 403.
    """
    if not _staff(request):
        login = login_url()
        if login and not request.user.is_authenticated:
            query = QueryDict(mutable=True)
            query["next"] = request.get_full_path()
            return HttpResponseRedirect(f"{login}?{query.urlencode(safe='/')}")
        raise PermissionDenied("the status page is for staff")
    return _page(
        request,
        "zmqfeed/status.html",
        {"silent_after": conf.get()["SILENT_AFTER"], "states": STATE_MEANINGS},
    )


# What each state on the status page means (its legend; README: The status page).
STATE_MEANINGS = (
    (feedstate.RECEIVING, "a message arrived within the last SILENT_AFTER seconds"),
    (feedstate.CONNECTED, "a publisher is connected; nothing has arrived yet"),
    (feedstate.BOUND, "listening; no publisher has connected yet"),
    (
        feedstate.SILENT,
        "nothing arrives and no fault is known: no message for SILENT_AFTER seconds, "
        "or a connect on its way to its publisher",
    ),
    (
        feedstate.ERROR,
        "not set up as configured: a bind or connect that failed, a publisher not reached "
        "for SILENT_AFTER seconds, no topics, or no process reads the feed",
    ),
    (DISABLED, "switched off in the admin"),
)


@require_safe
@never_cache
def status_json(request: HttpRequest) -> JsonResponse:
    """What the status page shows, for its script (staff only)."""
    if not _staff(request):
        return JsonResponse({"error": "the status is for staff"}, status=403)
    from . import status

    body = status.overview()
    for feed in body["feeds"]:
        live = feed["enabled"] and feed["topics"]
        feed["url"] = reverse("zmqfeed:feed_detail", args=[feed["slug"]]) if live else None
    return JsonResponse(body)


@require_safe
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition of this process's counters (the default registry).

    Metrics name every topic, staff-only ones included: only loopback, INTERNAL_IPS and
    staff users may read them.
    """
    address = request.META.get("REMOTE_ADDR", "")
    local = address in ("127.0.0.1", "::1") or address in settings.INTERNAL_IPS
    if not (local or request.user.is_staff):
        raise PermissionDenied("metrics are for loopback, INTERNAL_IPS and staff")
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


@require_safe
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers: 200 when the database answers, 503 with the reason if not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any database failure makes the process unhealthy
        return JsonResponse(
            {"status": "error", "reason": f"database: {type(exc).__name__}: {exc}"}, status=503
        )
    body: dict[str, Any] = {"status": "ok"}
    if request.user.is_staff:  # who runs where is for operators, not for the world
        body["subscribers"] = _holders()
    return JsonResponse(body)


def _holders() -> dict[str, Any] | str:
    """Per enabled feed, the zmq_subscribe process holding its lease (scaled mode)."""
    from . import lease
    from .models import Feed

    slugs = list(Feed.objects.filter(enabled=True).order_by("slug").values_list("slug", flat=True))
    try:
        held = lease.holders(slugs)
    except Exception as exc:  # Redis away: healthz reports it, the process stays healthy
        return f"unknown: Redis: {type(exc).__name__}: {exc}"
    if held is None:
        return "embedded: this server process reads every feed"
    return {slug: holder.as_dict() if holder else None for slug, holder in held.items()}


@never_cache
@require_POST
def token(request: HttpRequest) -> HttpResponse:
    """A token for the logged-in user's programs (POST, so CSRF-protected as any form)."""
    from . import tokens
    from .models import TokenGeneration

    if not request.user.is_authenticated:
        return JsonResponse({"error": "log in first"}, status=403)
    try:
        ttl = int(request.POST.get("ttl") or tokens.DEFAULT_TTL)
        value = tokens.issue(request.user.pk, TokenGeneration.current(request.user.pk), ttl)
    except ValueError:
        return JsonResponse({"error": f"ttl: 1 to {tokens.MAX_TTL} seconds"}, status=400)
    return JsonResponse({"token": value, "expires": tokens.read(value).expires})
