"""``zmq_publish``: a ZeroMQ PUB producer of stdin lines, followed files or synthetic data.

A demo source and a tool to feed a gateway by hand; also the way log lines from files on many
machines reach a gateway (one ``zmq_publish --follow`` per machine). One socket, used by the
main thread only; what to send and when is decided in :mod:`zmqfeed.producer`.

The socket is an XPUB: it sends exactly like a PUB and also hears subscriptions arrive, so the
start-up pause against the "slow joiner" ends as soon as a subscriber is there.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import zmq
import zmq.auth
from django.core.management.base import BaseCommand, CommandError, CommandParser
from zmq.utils import z85

from zmqfeed import conf
from zmqfeed.core.rates import LogThrottle
from zmqfeed.core.vocabulary import FEED_DEFAULTS, FRAMINGS
from zmqfeed.endpoints import MULTICAST_REMEDY, parse_endpoint, transport_available
from zmqfeed.producer import (
    FileFollower,
    Pacer,
    Synthetic,
    check_line,
    framer,
    join_topic,
    topic_problem,
)

LINGER_MS = 1000  # at exit, queued messages get this long to leave, then are dropped
MIN_TICK = 0.001  # the shortest sleep of --rate: at high rates each tick sends a burst
MAX_LINE = 1 << 20  # longer lines are cut into pieces of this size
# After the first subscription, the rest a SUB sent with it (one per topic prefix) get this long.
SUBSCRIBED_SETTLE = 0.05


class Stop(Exception):
    """SIGINT or SIGTERM arrived while the main thread was waiting."""


class Signals:
    """SIGINT/SIGTERM end the command cleanly.

    The handler only sets a flag, except while the main thread waits (stdin, sleeps), where
    it raises :class:`Stop` to cut the wait short; a send is never interrupted halfway.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.stopped = False
        self._waiting = False
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: object) -> None:
        self.stopped = True
        if self._waiting:
            raise Stop

    @contextmanager
    def waiting(self) -> Iterator[None]:
        if self.stopped:
            raise Stop
        self._waiting = True
        try:
            yield
        finally:
            self._waiting = False

    def sleep(self, seconds: float) -> None:
        with self.waiting():
            time.sleep(seconds)


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        value = kind(text)
        if not value > 0:
            raise ValueError(text)
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def _non_negative(kind: type) -> Any:
    def parse(text: str) -> Any:
        value = kind(text)
        if value < 0:
            raise ValueError(text)
        return value

    parse.__name__ = f"non-negative {kind.__name__}"
    return parse


def _drain(sock: zmq.Socket) -> None:
    """Read the (un)subscription messages an XPUB queues, which would otherwise pile up."""
    try:
        while True:
            sock.recv(zmq.NOBLOCK)
    except zmq.Again:
        pass


class Command(BaseCommand):
    help = (
        "Publish messages on a ZeroMQ PUB socket: lines of stdin (the default), lines appended "
        "to files (--follow, like tail -F) or synthetic data (--rate). One line is one "
        "message; blank lines are skipped. Status and errors go to stderr."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "endpoint",
            help="ZeroMQ endpoint, e.g. tcp://127.0.0.1:5556. Connected to, unless --bind "
            "(with --bind a port of * picks a free one, reported on stderr).",
        )
        parser.add_argument(
            "--bind",
            action="store_true",
            help="Bind the endpoint (subscribers connect here) instead of connecting to it "
            "(a gateway feed with bind=true).",
        )
        parser.add_argument(
            "--topic",
            default="",
            help="ZeroMQ topic of stdin lines; the prefix of --follow and --rate topics, "
            "which are TOPIC.NAME (NAME alone without --topic). Default: empty.",
        )
        source = parser.add_mutually_exclusive_group()
        source.add_argument(
            "--follow",
            nargs="+",
            metavar="FILE",
            help="Publish lines appended to these files, like tail -F: start at their end, "
            "wait for files that do not exist yet, reopen a rotated file, restart a "
            "truncated one. Each file's topic is TOPIC.BASENAME (BASENAME without --topic), "
            "e.g. --topic web1 --follow /var/log/nginx/access.log sends web1.access.log.",
        )
        source.add_argument(
            "--rate",
            type=_positive(float),
            metavar="N",
            help="Publish N synthetic messages per second on TOPIC.sine, TOPIC.counter and "
            "TOPIC.random in turn, each with n (per topic, from 0), value and ts (publish "
            "time, Unix seconds).",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Payloads are JSON: input lines that are not a JSON document are reported "
            "and skipped; synthetic payloads are JSON objects instead of text.",
        )
        parser.add_argument(
            "--framing",
            choices=FRAMINGS,
            default=FEED_DEFAULTS["framing"],
            help="multipart: [topic, payload] (default); prefix: one frame 'topic payload'; "
            "raw: one frame, the payload (no topic).",
        )
        parser.add_argument(
            "--count",
            type=_positive(int),
            metavar="N",
            help="Stop after N messages.",
        )
        parser.add_argument(
            "--size",
            type=_non_negative(int),
            default=0,
            metavar="BYTES",
            help="With --rate: pad each payload to this many bytes.",
        )
        parser.add_argument(
            "--wait",
            type=_non_negative(float),
            default=1.0,
            metavar="SECONDS",
            help="After connecting or binding, wait up to this long for a first subscriber "
            "before the first message (default 1). A PUB socket drops messages for "
            "subscribers whose subscription has not reached it yet (the 'slow joiner'), so "
            "without the wait the first messages are lost even to a subscriber that is "
            "already there. Publishing starts as soon as a subscription arrives.",
        )
        parser.add_argument(
            "--interval",
            type=_positive(float),
            default=0.2,
            metavar="SECONDS",
            help="With --follow: how often the files are checked (default 0.2).",
        )
        parser.add_argument(
            "--hwm",
            type=_positive(int),
            default=100_000,
            metavar="N",
            help="Send high-water mark: messages queued per subscriber before they are dropped "
            "(default 100000).",
        )
        parser.add_argument(
            "--curve-server-key",
            metavar="KEY",
            help="Publish over CURVE to a gateway feed with curve_publishers: the gateway's "
            "public key (Z85, 40 characters; shown on the feed's admin page). Needs "
            "--curve-secret-file.",
        )
        parser.add_argument(
            "--curve-secret-file",
            metavar="FILE",
            help="With --curve-server-key: this publisher's own key pair, a zmq.auth secret "
            "key file (zmq.auth.create_certificates); its public key goes in the feed's "
            "curve_publishers.",
        )

    def say(self, message: str) -> None:
        self.stderr.write(f"zmq_publish: {message}", style_func=str)

    def handle(self, *args: Any, **opts: Any) -> None:
        self.opts = opts
        framing = opts["framing"]
        if opts["size"] and opts["rate"] is None:
            raise CommandError("--size applies to --rate only")
        topics = self._topics(opts)
        if framing == "raw" and opts["topic"]:
            self.say("--framing raw sends no topic frame: --topic is not sent")
        for topic in topics:
            problem = topic_problem(framing, topic)
            if problem:
                raise CommandError(problem)
        curve_keys = self._curve_keys(opts)
        signals = Signals()
        context = zmq.Context()
        sock = context.socket(zmq.XPUB)
        sock.linger = LINGER_MS
        if curve_keys:  # a CURVE client of the gateway, which is the CURVE server
            sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = curve_keys
        sock.sndhwm = opts["hwm"]
        # PGM's default 100 kbit/s carries about 140 small messages/s; the gateway matches this.
        sock.setsockopt(zmq.RATE, conf.get()["MULTICAST_RATE"])
        self.sent = self.invalid = 0
        self.send = framer(framing, sock.send)
        followers: list[FileFollower] = []
        started = time.monotonic()
        try:
            signals.install()
            self._attach(sock, opts["endpoint"], bind=opts["bind"])
            followers += [FileFollower(path, max_line=MAX_LINE) for path in opts["follow"] or ()]
            for follower in followers:
                follower.poll()  # "the end of the file" is where it was at start
            self._settle(sock, signals, opts["wait"])
            started = time.monotonic()
            self.say(f"publishing from {self._source_name(opts)}")
            if followers:
                self._follow(sock, signals, followers, [t.encode() for t in topics])
            elif opts["rate"] is not None:
                self._synthesize(sock, signals)
            else:
                self._stdin(sock, signals, opts["topic"].encode())
        except Stop:
            pass
        finally:
            elapsed = time.monotonic() - started
            for follower in followers:
                follower.close()
            sock.close()  # flushes for up to LINGER_MS
            context.term()
            signals.restore()
        rate = self.sent / elapsed if elapsed > 0 else 0.0
        summary = f"sent {self.sent} messages in {elapsed:.2f} s ({rate:.0f}/s)"
        if self.invalid:
            summary += f"; skipped {self.invalid} invalid lines"
        self.say(summary)

    @staticmethod
    def _curve_keys(opts: dict[str, Any]) -> tuple[bytes, bytes, bytes] | None:
        """(server public, own public, own secret) for CURVE, or None without the flags."""
        server, path = opts["curve_server_key"], opts["curve_secret_file"]
        if not server and not path:
            return None
        if not server or not path:
            raise CommandError("--curve-server-key and --curve-secret-file go together")
        if not zmq.has("curve"):
            raise CommandError("this libzmq has no CURVE")
        try:
            if len(z85.decode(server.encode("ascii"))) != 32:
                raise ValueError
        except Exception:
            raise CommandError(
                f"--curve-server-key {server!r} is not a CURVE public key (40 characters of Z85)"
            ) from None
        try:
            public, secret = zmq.auth.load_certificate(path)
        except Exception as exc:
            raise CommandError(f"--curve-secret-file: cannot read {path}: {exc}") from None
        if not secret:
            raise CommandError(f"--curve-secret-file: {path} has no secret key")
        return server.encode("ascii"), public, secret

    def _topics(self, opts: dict[str, Any]) -> list[str]:
        prefix = opts["topic"]
        if opts["follow"]:
            names = [os.path.basename(path) for path in opts["follow"]]
            if not all(names):
                raise CommandError("--follow takes file names, not directories")
            if len(set(names)) != len(names):
                raise CommandError(
                    "--follow files with the same name would share a topic: run one "
                    "zmq_publish per directory, each with its own --topic"
                )
            return [join_topic(prefix, name) for name in names]
        if opts["rate"] is not None:
            return [join_topic(prefix, name) for name in Synthetic.NAMES]
        return [prefix]

    @staticmethod
    def _source_name(opts: dict[str, Any]) -> str:
        if opts["follow"]:
            return ", ".join(opts["follow"])
        if opts["rate"] is not None:
            return f"synthetic data at {opts['rate']:g}/s"
        return "stdin"

    def _attach(self, sock: zmq.Socket, endpoint: str, *, bind: bool) -> None:
        try:
            parsed = parse_endpoint(endpoint)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if not transport_available(parsed.scheme):
            raise CommandError(f"{parsed.scheme}:// is not available: {MULTICAST_REMEDY}")
        if parsed.scheme == "tcp" and parsed.port is None and not bind:
            raise CommandError(f"{endpoint!r}: a port of * can only be bound (--bind)")
        if parsed.host.startswith("["):
            sock.ipv6 = True
        try:
            if bind:
                sock.bind(endpoint)
                self.say(f"bound {sock.getsockopt_string(zmq.LAST_ENDPOINT)}")
            else:
                sock.connect(endpoint)
                self.say(f"connecting to {endpoint}")
        except zmq.ZMQError as exc:
            verb = "bind" if bind else "connect"
            raise CommandError(f"cannot {verb} {endpoint}: {exc}") from None

    def _settle(self, sock: zmq.Socket, signals: Signals, seconds: float) -> None:
        """Wait up to ``seconds`` for a first subscription (see --wait)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            with signals.waiting():
                subscribed = sock.poll(max(1, int(left * 1000)))
            if subscribed:
                _drain(sock)
                self.say(f"first subscription after {seconds - left:.2f} s")
                signals.sleep(SUBSCRIBED_SETTLE)
                return
        if seconds:
            self.say(f"no subscriber within {seconds:g} s (--wait); publishing anyway")

    def _publish(self, sock: zmq.Socket, topic: bytes, payload: bytes) -> bool:
        """Send one message; False once --count messages have been sent."""
        self.send(topic, payload)
        _drain(sock)
        self.sent += 1
        return self.opts["count"] is None or self.sent < self.opts["count"]

    def _line(self, line: bytes, where: str, throttle: LogThrottle) -> bytes | None:
        try:
            return check_line(line, json=self.opts["json"])
        except ValueError as exc:
            self.invalid += 1
            held = throttle.ready(where)
            if held is not None:
                more = f" (and {held - 1} more since the last report)" if held > 1 else ""
                self.say(f"skipped an invalid line of {where}{more}: {exc}")
            return None

    def _stdin(self, sock: zmq.Socket, signals: Signals, topic: bytes) -> None:
        stream = sys.stdin.buffer
        throttle = LogThrottle(1.0)
        while True:
            with signals.waiting():
                line = stream.readline(MAX_LINE)
            if not line:
                return
            payload = self._line(line, "stdin", throttle)
            if payload is not None and not self._publish(sock, topic, payload):
                return

    def _follow(
        self,
        sock: zmq.Socket,
        signals: Signals,
        followers: list[FileFollower],
        topics: list[bytes],
    ) -> None:
        throttle = LogThrottle(1.0)
        errors: list[str | None] = [None] * len(followers)
        while not signals.stopped:
            for i, (follower, topic) in enumerate(zip(followers, topics, strict=True)):
                for line in follower.poll():
                    payload = self._line(line, follower.path, throttle)
                    if payload is not None and not self._publish(sock, topic, payload):
                        return
                if follower.error != errors[i]:
                    errors[i] = follower.error
                    if follower.error:
                        self.say(f"cannot read {follower.error}; will retry")
            if not any(follower.behind for follower in followers):
                signals.sleep(self.opts["interval"])

    def _synthesize(self, sock: zmq.Socket, signals: Signals) -> None:
        opts = self.opts
        data = Synthetic(opts["topic"], json=opts["json"], size=opts["size"])
        pacer = Pacer(opts["rate"], time.monotonic())
        count = opts["count"]
        send, clock, wall = self.send, time.monotonic, time.time
        while not signals.stopped:
            due = pacer.due(clock())
            if count is not None:
                due = min(due, count - self.sent)
            for _ in range(due):
                send(*data.message(wall()))
            self.sent += due
            _drain(sock)
            if count is not None and self.sent >= count:
                break
            delay = pacer.next_at() - clock()
            if delay > 0:
                signals.sleep(max(delay, MIN_TICK))
        if pacer.skipped:
            self.say(f"{pacer.skipped} messages skipped: the sender fell behind --rate")
