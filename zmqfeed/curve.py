"""CURVE on ZeroMQ ingest: the gateway's key pair, the ZAP authenticator, refusals counted.

A feed with ``curve_publishers`` makes its SUB socket a CURVE *server*, whether it binds or
connects (the CURVE role is independent of bind/connect): it holds the gateway's long-term
key pair, read from ``ZMQFEED["CURVE_SECRET_FILE"]`` (a :mod:`zmq.auth` secret key file),
and publishers are CURVE clients that know the gateway's public key. Each such socket has
its feed's slug as ZAP domain; one :class:`~zmq.auth.asyncio.AsyncioAuthenticator` per
context answers for every domain from the feed's trusted keys (``["*"]``: any key).

Refusals are counted in ``zmqfeed_curve_refused_total{feed,reason}``: ``untrusted_key``
(a CURVE client whose key the feed does not trust, seen by the ZAP callback) and
``not_curve`` (a publisher that did not speak CURVE, seen by the feed's socket monitor,
which the subscriber reads: a socket has one monitor). The secret
key is never logged, stored or shown; :func:`public_key` gives only the public half.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable

import zmq
import zmq.asyncio
import zmq.auth
from prometheus_client import Counter
from zmq.auth.asyncio import AsyncioAuthenticator

from . import conf
from .core.rates import LogThrottle
from .core.vocabulary import CURVE_ANY

log = logging.getLogger("zmqfeed.curve")

REFUSED = Counter(
    "zmqfeed_curve_refused",
    "Publisher connections a CURVE feed refused (untrusted_key, not_curve)",
    ["feed", "reason"],
)


def available() -> bool:
    return bool(zmq.has("curve"))


def load_keypair(path: str) -> tuple[bytes, bytes]:
    """(public, secret) in Z85 from a ``zmq.auth`` secret key file; ValueError if it is not
    one (OSError if unreadable). The secret is for the socket only: never log it."""
    try:
        public, secret = zmq.auth.load_certificate(path)
    except OSError:
        raise
    except Exception as exc:  # a file that is not a certificate at all
        raise ValueError(f"{path}: not a zmq.auth key file ({exc})") from None
    if not secret:
        raise ValueError(f"{path}: has no secret key (a public key file?)")
    if len(public) != 40 or len(secret) != 40:
        raise ValueError(f"{path}: the keys are not 40 characters of Z85")
    return public, secret


def key_file_problem(path: str | None) -> str | None:
    """What is wrong with the setting CURVE_SECRET_FILE, if anything (for checks)."""
    if not path:
        return "ZMQFEED['CURVE_SECRET_FILE'] is not set"
    try:
        load_keypair(path)
    except OSError as exc:
        return f"ZMQFEED['CURVE_SECRET_FILE'] {path!r} cannot be read: {exc.strerror or exc}"
    except ValueError as exc:
        return f"ZMQFEED['CURVE_SECRET_FILE'] is not a secret key file: {exc}"
    return None


def public_key() -> str | None:
    """The gateway's public key (Z85), or None where no readable key file is configured."""
    path = conf.get()["CURVE_SECRET_FILE"]
    if not path:
        return None
    try:
        return load_keypair(path)[0].decode("ascii")
    except (OSError, ValueError):
        return None


class Gate:
    """The CURVE side of one zmq context: its authenticator and each feed's trusted keys."""

    def __init__(self, ctx: zmq.asyncio.Context) -> None:
        self.ctx = ctx
        self.auth: AsyncioAuthenticator | None = None
        self.trusted: dict[str, frozenset[bytes] | None] = {}  # None: any key
        self.throttle = LogThrottle(conf.get()["LOG_INTERVAL"])

    # The ZAP credentials provider (zmq.auth's configure_curve_callback protocol).
    def callback(self, domain: str, key: bytes) -> bool:
        if domain not in self.trusted:
            return False  # a socket of no CURVE feed of ours
        keys = self.trusted[domain]
        if keys is None or key in keys:
            return True
        self.refused(domain, "untrusted_key", key.decode("ascii", "replace"))
        return False

    def refused(self, feed: str, reason: str, detail: str) -> None:
        REFUSED.labels(feed, reason).inc()
        total = self.throttle.ready((feed, reason))
        if total is not None:
            log.warning(
                "feed %s: refused %d publisher connection(s) (%s), e.g. %s",
                feed,
                total,
                reason,
                detail,
            )

    def secure(self, sock: zmq.asyncio.Socket, slug: str, publishers: Iterable[str]) -> bool:
        """Make ``sock`` a CURVE server for feed ``slug`` before it binds or connects.

        False (logged) when the gateway has no usable key pair: the caller must then leave
        the socket unattached, never fall back to plaintext.
        """
        path = conf.get()["CURVE_SECRET_FILE"]
        if not available():
            log.error("feed %s: needs CURVE, which this libzmq lacks; not opened", slug)
            return False
        if not path:
            log.error(
                "feed %s: needs CURVE (curve_publishers) but ZMQFEED['CURVE_SECRET_FILE'] "
                "is not set; not opened",
                slug,
            )
            return False
        try:
            public, secret = load_keypair(path)
        except (OSError, ValueError) as exc:
            log.error("feed %s: cannot read the CURVE key pair: %s; not opened", slug, exc)
            return False
        keys = tuple(publishers)
        self.trusted[slug] = None if keys == (CURVE_ANY,) else frozenset(k.encode() for k in keys)
        self._start(slug)
        sock.zap_domain = slug.encode()
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_server = True
        return True

    def _start(self, slug: str) -> None:
        if self.auth is None:
            self.auth = AsyncioAuthenticator(self.ctx)
            self.auth.start()
        self.auth.configure_curve_callback(domain=slug, credentials_provider=self)

    def stop(self) -> None:
        if self.auth is not None:
            self.auth.stop()
            self.auth = None


_gates: weakref.WeakKeyDictionary[zmq.Context, Gate] = weakref.WeakKeyDictionary()


def gate(ctx: zmq.asyncio.Context) -> Gate:
    """The context's gate (one authenticator per context), made on first use."""
    found = _gates.get(ctx)
    if found is None:
        found = _gates[ctx] = Gate(ctx)
    return found


async def stop(ctx: zmq.asyncio.Context) -> None:
    """Stop the context's authenticator and monitors, before ``ctx.term()``."""
    found = _gates.pop(ctx, None)
    if found is not None:
        found.stop()
