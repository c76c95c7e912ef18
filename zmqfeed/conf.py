"""One settings dict, ``settings.ZMQFEED``, merged over documented defaults.

Read through :func:`get` so that tests changing settings see fresh values.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from .core.admission import Caps
from .core.session import Limits

_LIMITS = Limits()  # the per-connection limits' defaults are the session's own
_CAPS = Caps()  # and the per-process caps' are the admission's

DEFAULTS: dict[str, Any] = {
    # Run the subscriber inside the ASGI server. None: yes when the channel layer is in-memory.
    "EMBEDDED": None,
    # Seconds between configuration reloads in subscribers and servers (changes apply within 5 s).
    "RELOAD_INTERVAL": 2.0,
    # Most ZeroMQ messages read in one drain before they are sent on as one batch per topic.
    "MAX_BATCH": 1000,
    # Largest frame sent to clients, in bytes. Batches are cut to fit; a message whose envelope
    # alone is larger is dropped (too_large). Under daphne, LIFT_SEND_LIMIT lets frames this
    # large out whatever --websocket-max-message-size (1 MiB, meant for what clients send).
    "MAX_FRAME_SIZE": _LIMITS.max_frame,
    # Under daphne, check WebSocket sends against MAX_FRAME_SIZE, not against daphne's
    # --websocket-max-message-size, which autobahn applies to sends too (send_limit.py).
    # False: keep that option at least MAX_FRAME_SIZE (zmqfeed.W002), or larger frames are lost.
    "LIFT_SEND_LIMIT": True,
    # Messages of history kept per topic for `subscribe` with `since`.
    "HISTORY_SIZE": 1000,
    # Where the per-topic seqs and history live: a dotted path to a class, built with
    # size=HISTORY_SIZE, plus url= (REDIS_URL below) when its constructor takes a `url`.
    # None: "zmqfeed.history.MemoryHistory" when CHANNEL_LAYERS['default'] is an in-memory
    # layer (one process), else "zmqfeed.history.RedisHistory" (shared by every process).
    "HISTORY_BACKEND": None,
    # Redis URL of a history that takes one; None: the default channel layer's first host.
    "REDIS_URL": None,
    # Scaled mode: seconds a zmq_subscribe process holds a feed's lease without renewing it
    # (renewed every third of it); a standby takes over within about 4/3 of it. 0: no leases,
    # so never run two subscribers for one feed.
    "LEASE_TTL": 3.0,
    # Two-way: what one connection may publish per second, with a burst (each publish is a
    # client frame too, within CLIENT_RATE), and how long a publish waits for the subscriber
    # process that owns the feed's outbound socket before it is refused as `unavailable`.
    "PUBLISH_RATE": _LIMITS.publish_rate,
    "PUBLISH_BURST": _LIMITS.publish_burst,
    "PUBLISH_TIMEOUT": 2.0,
    # Per WebSocket connection limits.
    "MAX_SUBSCRIPTIONS": _LIMITS.max_subscriptions,
    "MAX_CLIENT_FRAME": _LIMITS.max_client_frame,
    "CLIENT_RATE": _LIMITS.rate,  # client frames per second, sustained
    "CLIENT_BURST": _LIMITS.burst,  # client frames allowed in a burst
    # Seconds a connection may stay open sending nothing (not even a ping) and holding no
    # subscription, before it is closed with 4408. 0: never.
    "IDLE_TIMEOUT": _LIMITS.idle_timeout,
    # Bytes a connection may have queued unsent (daphne) before its frames are dropped, and
    # reported to it as a `gap`: a slow reader must not grow the server's memory unbounded.
    "MAX_CLIENT_BACKLOG": _LIMITS.max_backlog,
    # What all of a process's connections may hold unsent together (daphne); past it the
    # clients holding the most are shed first (a gap), and closed (4008) if they stay so for
    # SLOW_CLIENT_GRACE seconds. 0: no process-wide cap.
    "MAX_BACKLOG_TOTAL": 256 * 1024 * 1024,
    "SLOW_CLIENT_GRACE": 10.0,
    # Connections per server process, per user, per client address (0: no cap; per IP is
    # off by default because proxies share addresses), and connection attempts per second
    # with a burst (0: no cap). Past one, the connection is closed with 4013 and counted.
    "MAX_CONNECTIONS": _CAPS.connections,
    "MAX_CONNECTIONS_PER_USER": _CAPS.per_user,
    "MAX_CONNECTIONS_PER_IP": _CAPS.per_ip,
    "CONNECT_RATE": _CAPS.rate,
    "CONNECT_BURST": _CAPS.burst,
    # Origins allowed to open WebSockets; None: those of ALLOWED_HOSTS (as Channels does).
    "ALLOWED_ORIGINS": None,
    # Seconds without a message after which a feed counts as "silent" (status page, admin,
    # zmqfeed_feed_state), and that a publisher a feed connects to may stay unreached before
    # the feed counts as "error". Raise it for feeds that publish less often than this.
    "SILENT_AFTER": 10.0,
    # A drop or error of one kind is logged at most once per this many seconds per feed.
    "LOG_INTERVAL": 1.0,
    # Receive high-water mark of SUB sockets (messages queued in libzmq). Keep it high for
    # pgm/epgm feeds: a PGM receiver that falls that far behind aborts the process.
    "RCVHWM": 100_000,
    # Under daphne, send a frame at once when a connection has nothing queued (eager_writes.py).
    "EAGER_WRITES": True,
    # Under daphne, write each frame's ready wire bytes, built once and shared by every
    # client, straight to the connection's transport when nothing else is due (preframed.py).
    "PREFRAMED_SENDS": True,
    # Under daphne, an idle WebSocket shares autobahn's options with the others, lets the
    # HTTP request it was upgraded from go, and its receive queue keeps lists for deques
    # (lean.py): about 9 KB less per connection.
    "LEAN_CONNECTIONS": True,
    # ZMQ_RATE (kbit/s) of SUB sockets; PGM sizes its receive window from it.
    "MULTICAST_RATE": 100_000,
    # The gateway's CURVE key pair: a zmq.auth secret key file (zmq.auth.create_certificates),
    # read by the subscriber for feeds with curve_publishers. None: no CURVE feed can open.
    # Never stored in the database, shown in the admin, exported or logged.
    "CURVE_SECRET_FILE": None,
    # The template zmqfeed's pages extend (through zmqfeed/base.html): a site's own base, with
    # the blocks title, extra_head, content and scripts (breadcrumbs optional).
    "BASE_TEMPLATE": "zmqfeed/layout.html",
}


@cache
def get() -> dict[str, Any]:
    merged = dict(DEFAULTS)
    merged.update(getattr(settings, "ZMQFEED", {}) or {})
    return merged


@cache
def limits() -> Limits:
    """The per-connection limits of the settings: one instance that all connections share."""
    return Limits.from_settings(get())


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting in {"ZMQFEED", "CHANNEL_LAYERS"}:
        get.cache_clear()
        limits.cache_clear()
