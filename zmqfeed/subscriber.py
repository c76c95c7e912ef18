"""The subscriber: ZeroMQ SUB sockets in, one frame per topic and batch out to Channels groups.

A thin I/O shell around :class:`zmqfeed.core.router.Router`, which decodes, matches, numbers
and frames. Each feed has its own task and socket; each time it is readable the socket is
drained without waiting, so the batch grows with the load and is flushed the moment the
socket is empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections import deque
from collections.abc import Iterable
from itertools import chain
from typing import Any

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from . import conf, curve, metrics, status
from .core import feedstate
from .core.catalog import Catalog, FeedConfig
from .core.continuity import Kept, Numbering, new_epoch
from .core.rates import LogThrottle
from .core.router import UNROUTED, Routed, Router
from .core.status import ACTIVE, STANDBY
from .core.vocabulary import FRAMING_JUPYTER
from .endpoints import MULTICAST, MULTICAST_REMEDY, parse_endpoint, transport_available
from .history import Fence, Fenced, History
from .lease import Leases
from .outbound import Outlet
from .preflight import start_problem
from .watch import CatalogWatcher

log = logging.getLogger("zmqfeed.subscriber")

WAKE_INTERVAL_MS = 100
WATCHED_BATCHES = 10_000  # what a standby remembers of the batches it saw, to count a switch
# Socket monitor events by libzmq's number, under the names the feed state knows them by.
MONITOR_EVENTS = {
    int(getattr(zmq, f"EVENT_{name.upper()}")): name
    for name in (
        feedstate.LISTENING,
        feedstate.BIND_FAILED,
        feedstate.ACCEPTED,
        feedstate.ACCEPT_FAILED,
        feedstate.EVENT_CONNECTED,
        feedstate.CONNECT_RETRIED,
        feedstate.DISCONNECTED,
        feedstate.CLOSED,
        feedstate.HANDSHAKE_SUCCEEDED,
        *feedstate.HANDSHAKE_FAILURES,
    )
}
# A publisher that does not speak CURVE to a CURVE feed (counted as curve's not_curve).
NOT_CURVE = {feedstate.HANDSHAKE_FAILED_PROTOCOL, feedstate.HANDSHAKE_FAILED_NO_DETAIL}


def continued(kept: Numbering | None, known: Numbering | None) -> Numbering | None:
    """Where a topic's numbering goes on: from the history, or from what this process
    remembers when the history has lost it (a Redis that came back empty must not start
    the numbering again); None: a new epoch."""
    if kept is None or (known is not None and known.epoch == kept.epoch and known.seq > kept.seq):
        return known
    return kept


def file_stamp(path: str) -> tuple[int, int] | None:
    """What changes when a file is written again (a kernel restarted with a new key)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def read_connection_key(path: str) -> tuple[bytes, str]:
    """The signing key and scheme of a Jupyter kernel's connection file (never logged)."""
    with open(path, encoding="utf-8") as file:
        info = json.load(file)
    key = info.get("key", "")
    if not isinstance(key, str):
        raise ValueError(f"{path}: 'key' is not a string")
    return key.encode(), str(info.get("signature_scheme") or "hmac-sha256")


class FeedReader:
    def __init__(
        self,
        feed: FeedConfig,
        layer,
        history: History,
        ctx: zmq.asyncio.Context,
        throttle: LogThrottle,
        known_seqs: dict[str, Numbering] | None = None,
        standby: bool = False,
    ) -> None:
        self.feed = feed
        # A standby reads the socket (a connected feed) and routes, but writes and sends
        # nothing, until it holds the feed's lease: :meth:`take_over`.
        self.standby = standby
        self.fence: Fence | None = None
        # Two events: a take-over that fails must wake the loop (`_ready`: no take-over is
        # writing) but not open a bound feed's socket (`_promoted`: it numbers the feed).
        self._promoted = asyncio.Event()
        self._ready = asyncio.Event()
        self._ready.set()
        if not standby:
            self._promoted.set()
        self.renewed = 0.0  # loop time the lease was last renewed
        # (receive time, messages per topic key) of each batch seen while standing by.
        self._watched: deque[tuple[float, dict[str, int]]] = deque(maxlen=WATCHED_BATCHES)
        self.known_seqs = known_seqs if known_seqs is not None else {}
        self.layer = layer
        self.history = history
        self.ctx = ctx
        self.throttle = throttle
        self.max_batch = conf.get()["MAX_BATCH"]
        self.router = Router(feed, conf.get()["MAX_FRAME_SIZE"])
        self.sock: zmq.asyncio.Socket | None = None
        # What the socket is doing (None: not opened, a bound standby), from its monitor.
        self.machine: feedstate.FeedState | None = None
        self.monitor: zmq.asyncio.Socket | None = None
        self.filters: set[bytes] = set()
        self.task: asyncio.Task | None = None
        self.received = metrics.RECEIVED.labels(feed.slug)
        self.received_bytes = metrics.RECEIVED_BYTES.labels(feed.slug)
        self.unrouted = metrics.UNROUTED.labels(feed.slug)
        self.upstream_lost = metrics.UPSTREAM_LOST.labels(feed.slug)
        self.batches = metrics.BATCHES.labels(feed.slug)
        self.routed: dict[str, Any] = {}  # topic key → its ROUTED counter
        self.key_stamp: tuple[int, int] | None = None  # of the Jupyter connection file read
        # The feed's outbound socket for what clients publish: its numberer's alone.
        self.outlet: Outlet | None = None
        self._owning = False  # the outlet follows the feed's publish settings

    # Configuration

    async def configure(self, feed: FeedConfig) -> None:
        """Apply topic changes in place (the socket stays; filters and routes follow).

        If the history cannot be read (Redis away), nothing changes and this raises.
        """
        seqs = {}
        for key in self.router.unnumbered(feed):
            numbering = continued(await self.history.latest(key), self.known_seqs.get(key))
            if numbering is not None:
                seqs[key] = numbering
        signing_key, scheme, stamp = b"", "", None
        if feed.framing == FRAMING_JUPYTER and feed.jupyter_connection_file:
            # Unreadable: this raises, and the feed waits for the next reload rather than
            # take messages it cannot verify.
            path = feed.jupyter_connection_file
            stamp = await asyncio.to_thread(file_stamp, path)
            signing_key, scheme = await asyncio.to_thread(read_connection_key, path)
        new = set(self.router.unnumbered(feed))
        self.router.configure(feed, seqs, signing_key, scheme)
        if not self.standby:
            # Where each new topic's numbering stands, before its first message: a client
            # that subscribes now is given the epoch its `since` will belong to.
            await self.history.append(
                {
                    key: Kept(route.epoch, route.seq + 1, [], time.time(), route.history)
                    for key, route in self.router.routes.items()
                    if key in new
                },
                self.fence,
            )
        self.key_stamp = stamp
        self.feed = feed
        self.routed = {
            key: metrics.ROUTED.labels(route.feed, route.topic)
            for key, route in self.router.routes.items()
        }
        if self.sock is not None:
            self._apply_filters(self.sock)
        if self._owning:
            await self._set_outlet()

    async def _own(self) -> None:
        """Once this process numbers the feed, it owns the outbound socket too."""
        await self._promoted.wait()
        self._owning = True
        await self._set_outlet()

    async def _set_outlet(self) -> None:
        """The outbound socket as the feed's publish settings say."""
        if self.outlet is not None:
            if self.outlet.feed.publish_settings() == self.feed.publish_settings():
                return
            await self.outlet.stop()
            self.outlet = None
        if self.feed.publish_endpoints:
            self.outlet = Outlet(self.feed, self.layer, self.ctx, self.throttle)
            self.outlet.start()

    async def key_file_changed(self) -> bool:
        """Whether the Jupyter connection file was written since its key was read."""
        path = self.feed.jupyter_connection_file
        if self.feed.framing != FRAMING_JUPYTER or not path:
            return False
        return await asyncio.to_thread(file_stamp, path) != self.key_stamp

    def _apply_filters(self, sock: zmq.Socket) -> None:
        wanted = self.router.filters
        for prefix in self.filters - wanted:
            sock.unsubscribe(prefix)
        for prefix in wanted - self.filters:
            sock.subscribe(prefix)
        self.filters = wanted

    def open(self) -> int:
        """Create the socket (on the running loop) and attach every usable endpoint."""
        settings = conf.get()
        sock = self.ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, settings["RCVHWM"])
        # PGM sizes its receive window from the receiver's own rate: match the publisher's.
        sock.setsockopt(zmq.RATE, settings["MULTICAST_RATE"])
        self.sock = sock
        # Before any bind or connect, so that the first events are seen too.
        self.monitor = sock.get_monitor_socket()
        machine = self.machine = feedstate.FeedState(
            self.feed.endpoints, self.feed.bind, settings["SILENT_AFTER"], time.monotonic()
        )
        attached = 0
        publishers = self.feed.curve_publishers
        if publishers and not curve.gate(self.ctx).secure(sock, self.feed.slug, publishers):
            for endpoint in self.feed.endpoints:  # logged; never attached without CURVE
                machine.failed(endpoint, "not opened: CURVE has no key pair (see the log)")
            return attached
        for endpoint in self.feed.endpoints:
            try:
                scheme = parse_endpoint(endpoint).scheme
            except ValueError as exc:
                log.error("feed %s: %s", self.feed.slug, exc)
                machine.failed(endpoint, str(exc))
                continue
            if not transport_available(scheme):
                log.error(
                    "feed %s: %s is not available: %s", self.feed.slug, endpoint, MULTICAST_REMEDY
                )
                machine.failed(endpoint, f"{scheme} is not available in this libzmq")
                continue
            problem = start_problem(endpoint) if scheme in MULTICAST else None
            if problem:
                log.error("feed %s: skipping %s: %s", self.feed.slug, endpoint, problem)
                machine.failed(endpoint, problem)
                continue
            for retry in range(20, -1, -1):  # EADDRINUSE: 20 retries, at most 0.2 s
                try:
                    (sock.bind if self.feed.bind else sock.connect)(endpoint)
                    attached += 1
                except zmq.ZMQError as exc:
                    if self.feed.bind and exc.errno == zmq.EADDRINUSE and retry:
                        # This feed's previous socket (just closed, on a change of its socket
                        # settings) may still hold the port: libzmq lets go of it in its own
                        # threads, within milliseconds.
                        time.sleep(0.01)
                        continue
                    verb = "bind" if self.feed.bind else "connect"
                    log.error("feed %s: cannot %s %s: %s", self.feed.slug, verb, endpoint, exc)
                    machine.failed(endpoint, f"cannot {verb}: {zmq.strerror(exc.errno or 0)}")
                break
        self._apply_filters(sock)
        return attached

    # The hot path

    async def take_over(self, token: int, lease: str) -> None:
        """This process now holds the feed's lease: number on from the history, leaving out
        (as a gap clients will see) the messages this standby saw arrive after the last
        batch its predecessor wrote, which nobody numbered."""
        keys = list(self.router.routes)
        stamps = await self.history.stamps(keys)
        heads = {key: await self.history.latest(key) for key in keys}
        # From here to the switch nothing awaits: every batch read until now is counted, and
        # every later one numbered (once the new numbering is written: `_ready`).
        now = time.time()
        kept: dict[str, Kept] = {}
        skipped = 0
        for key, route in self.router.routes.items():
            numbering = continued(heads[key], self.known_seqs.get(key))
            epoch, seq = numbering or Numbering(new_epoch(), 0)
            since = stamps.get(key)
            missed = 0
            if since is not None:
                missed = sum(counts.get(key, 0) for ts, counts in self._watched if ts > since)
            route.epoch, route.seq = epoch, seq + missed
            skipped += missed
            # A first seq past the history's latest: what was kept before no longer follows.
            kept[key] = Kept(epoch, route.seq + 1, [], now, route.history)
        watched, self._watched = self._watched, deque(maxlen=WATCHED_BATCHES)
        fence = (lease, token)
        self.standby, self.fence = False, fence
        self._ready.clear()
        try:
            await self.history.append(kept, fence)
        except BaseException:
            # Not taken over after all (Redis away, the lease gone): stand by as before.
            self.standby, self.fence, self._watched = True, None, watched
            raise
        finally:
            self._ready.set()
        self._promoted.set()
        metrics.TAKEOVERS.labels(self.feed.slug).inc()
        if skipped:
            metrics.SWITCHOVER_LOST.labels(self.feed.slug).inc(skipped)
        log.warning(
            "feed %s: took over as its subscriber (lease token %d); %d message(s) that arrived "
            "during the switch-over were numbered by nobody and are reported as a gap",
            self.feed.slug,
            token,
            skipped,
        )

    def _watch(self, batch: list[list[bytes]]) -> None:
        """Standing by: route to know which topics each message would reach, and remember
        it, so that a take-over can count what the active subscriber did not number."""
        routed = self.router.route(batch, time.time())
        if self.machine is not None:
            self.machine.received(len(batch), time.monotonic())
        self._watched.append((routed.ts, {t.route.key: len(t.envelopes) for t in routed.topics}))

    async def run(self) -> None:
        owning = asyncio.ensure_future(self._own())
        try:
            await self._read()
        finally:
            owning.cancel()
            self._owning = False
            if self.outlet is not None:
                await self.outlet.stop()
                self.outlet = None

    async def _read(self) -> None:
        if self.feed.bind:
            # Two processes cannot bind one address: a bound feed's standby waits unbound.
            await self._promoted.wait()
        attached = self.open()
        metrics.FEEDS.inc()
        log.info(
            "feed %s: %s %d of %d endpoint(s), %s/%s",
            self.feed.slug,
            "bound" if self.feed.bind else "connected",
            attached,
            len(self.feed.endpoints),
            self.feed.framing,
            self.feed.payload,
        )
        sock = self.sock
        assert sock is not None
        watching = asyncio.ensure_future(self._watch_monitor())
        drain: zmq.Socket = zmq.Socket.shadow(sock.underlying)
        # Frame.more is cheaper than recv_multipart's RCVMORE getsockopt per frame.
        recv, noblock, max_batch = drain.recv, int(zmq.NOBLOCK), self.max_batch
        try:
            while True:
                # A bounded wait, then a drain: a wake-up that libzmq's edge-triggered FD
                # misses costs at most WAKE_INTERVAL, not a queue that overflows RCVHWM.
                if not await sock.poll(WAKE_INTERVAL_MS):
                    continue
                batch: list[list[bytes]] = []
                append = batch.append
                try:
                    while len(batch) < max_batch:
                        frame = recv(noblock, False)
                        frames = [frame.bytes]
                        while frame.more:
                            frame = recv(noblock, False)
                            frames.append(frame.bytes)
                        append(frames)
                except zmq.Again:
                    if not batch:
                        continue
                if not self._ready.is_set():
                    await self._ready.wait()
                if self.standby:
                    self._watch(batch)
                    continue
                await self.deliver(batch)
                # A socket that is never empty and a layer that never suspends (in memory)
                # would keep this loop from ever yielding: let the clients' writes run.
                await asyncio.sleep(0)
        finally:
            watching.cancel()
            metrics.FEEDS.dec()
            self.close()

    def close(self) -> None:
        """Close the socket and its monitor (what :meth:`open` made)."""
        if self.sock is not None:
            # The monitor first: closing the monitor's PAIR right after a socket that still
            # monitors made the next socket bound on the same port deaf (libzmq 4.3.5).
            with contextlib.suppress(zmq.ZMQError):
                self.sock.disable_monitor()
            self.sock.close(linger=0)
            self.sock = None
        if self.monitor is not None:
            self.monitor.close(linger=0)
            self.monitor = None

    async def _watch_monitor(self) -> None:
        """The socket's monitor events into the feed state, as they come (a few per
        connection, none per message)."""
        monitor, machine = self.monitor, self.machine
        assert monitor is not None and machine is not None
        events: zmq.Socket = zmq.Socket.shadow(monitor.underlying)
        curve_feed = bool(self.feed.curve_publishers)
        while True:
            if not await monitor.poll(1000):
                continue
            while True:
                try:
                    frames = events.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                event = parse_monitor_message(frames)
                kind = MONITOR_EVENTS.get(int(event["event"]))
                if kind is None:
                    continue
                endpoint = event["endpoint"].decode("utf-8", "replace")
                machine.event(kind, endpoint, int(event["value"]), time.monotonic())
                if curve_feed and kind in NOT_CURVE:
                    self.curve_refused(endpoint)

    def curve_refused(self, endpoint: str) -> None:
        curve.gate(self.ctx).refused(
            self.feed.slug, "not_curve", f"a handshake on {endpoint} failed"
        )

    def status(self, now: float) -> dict[str, Any]:
        """This feed's entry in the process's status snapshot."""
        return status.feed_report(self.machine, STANDBY if self.standby else ACTIVE, now)

    async def deliver(self, batch: list[list[bytes]]) -> None:
        routed = self.router.route(batch, time.time())
        self.received.inc(len(batch))
        self.received_bytes.inc(sum(map(len, chain.from_iterable(batch))))  # in C, per batch
        if self.machine is not None:
            self.machine.received(len(batch), time.monotonic())
        if routed.dropped:
            self._count_drops(routed.dropped, routed.examples)
        if routed.upstream_lost:
            self.upstream_lost.inc(routed.upstream_lost)
            total = self.throttle.ready((self.feed.slug, "upstream"), routed.upstream_lost)
            if total is not None:
                log.warning(
                    "feed %s: the publishers' sequence numbers skipped %d message(s) "
                    "(lost before they reached the gateway)",
                    self.feed.slug,
                    total,
                )
        if routed.topics:
            await self._send(routed)

    async def _send(self, routed: Routed) -> None:
        # History first, then the groups: a client that subscribes meanwhile either finds a
        # message in the history or receives it from the group, never neither. A holder that
        # lost its lease is refused here (Fenced), before it sends anything.
        await self.history.append(routed.history(), self.fence)
        sends = []
        count = 0
        for topic in routed.topics:
            group = topic.route.group
            self.routed[topic.route.key].inc(len(topic.envelopes))
            count += len(topic.frames)
            if len(topic.frames) == 1:
                sends.append(self.layer.group_send(group, topic.frames[0].event(group)))
            else:
                sends.append(self._send_in_order(group, topic.frames))
        self.batches.inc(count)
        if len(sends) == 1:
            await sends[0]
        else:
            await asyncio.gather(*sends)

    async def _send_in_order(self, group: str, frames: list) -> None:
        for frame in frames:
            await self.layer.group_send(group, frame.event(group))

    def _count_drops(self, dropped: dict[str, int], examples: dict[str, str]) -> None:
        now = time.monotonic()
        for kind, count in dropped.items():
            if kind == UNROUTED:  # not malformed: what the SUB filter let in, no topic took
                self.unrouted.inc(count)
            else:
                metrics.DROPPED.labels(self.feed.slug, kind).inc(count)
            if self.machine is not None:
                self.machine.dropped(kind, count, now)
            total = self.throttle.ready((self.feed.slug, kind), count)
            if total is not None:
                log.warning(
                    "feed %s: dropped %d message(s) (%s), e.g. %s",
                    self.feed.slug,
                    total,
                    kind,
                    examples[kind],
                )


class Subscriber:
    """Runs one FeedReader per enabled feed and follows the catalog as it changes."""

    def __init__(
        self,
        layer,
        history: History,
        watcher: CatalogWatcher,
        only: Iterable[str] | None = None,
        leases: Leases | None = None,
    ) -> None:
        self.layer = layer
        # With leases, several processes may run for the same feeds: each feed is numbered
        # by the one holding its lease, the others stand by (README: "A standby subscriber").
        self.leases = leases
        self.ttl = conf.get()["LEASE_TTL"]
        self.history = history
        self.watcher = watcher
        self.only = set(only) if only else None
        self.ctx = zmq.asyncio.Context()
        self.curve = curve.gate(self.ctx)  # its CURVE authenticator, started on first use
        self.readers: dict[str, FeedReader] = {}
        # Of readers gone, so that new ones go on from there.
        self.known_seqs: dict[str, Numbering] = {}
        self.throttle = LogThrottle(conf.get()["LOG_INTERVAL"])
        self._changed = asyncio.Event()
        # Why a wanted feed has no reader now (it failed to start, or its reader failed):
        # the status page shows it as an error until the next reload starts it.
        self.problems: dict[str, str] = {}

    def wanted(self, catalog: Catalog) -> dict[str, FeedConfig]:
        return {
            f.slug: f
            for f in catalog.feeds
            if f.enabled and f.topics and (self.only is None or f.slug in self.only)
        }

    async def apply(self, catalog: Catalog) -> None:
        wanted = self.wanted(catalog)
        for slug in set(self.problems) - set(wanted):
            del self.problems[slug]
        for slug in list(self.readers):
            reader = self.readers[slug]
            feed = wanted.get(slug)
            if feed is None or feed.socket_settings() != reader.feed.socket_settings():
                await self._stop(slug, "removed or disabled" if feed is None else "reconfigured")
        for slug, feed in wanted.items():
            try:
                await self._start_or_update(slug, feed)
            except Exception as exc:  # e.g. Redis away: try again at the next reload
                if slug not in self.readers:
                    self.problems[slug] = f"cannot start: {exc}"
                if self.throttle.ready(("apply", slug)) is not None:
                    log.warning("feed %s: cannot start or update it yet: %s", slug, exc)
            else:
                self.problems.pop(slug, None)

    async def _start_or_update(self, slug: str, feed: FeedConfig) -> None:
        reader = self.readers.get(slug)
        if reader is None:
            reader = FeedReader(
                feed,
                self.layer,
                self.history,
                self.ctx,
                self.throttle,
                self.known_seqs,
                standby=self.leases is not None,
            )
            await reader.configure(feed)
            reader.task = asyncio.ensure_future(self._guard(reader))
            self.readers[slug] = reader
        elif feed != reader.feed:
            await reader.configure(feed)
            log.info("feed %s: topics updated", slug)
        elif await reader.key_file_changed():
            await reader.configure(feed)
            log.info("feed %s: the Jupyter connection file changed; its key is read again", slug)

    def _remember(self, reader: FeedReader) -> None:
        if not reader.standby:  # a standby's router counts, it does not number
            self.known_seqs.update(reader.router.seqs)

    async def _guard(self, reader: FeedReader) -> None:
        try:
            await reader.run()
        except asyncio.CancelledError:
            raise
        except Fenced:
            # Paused or cut off past the lease, and another process took over: its numbers
            # are the feed's now; this one stands by again (at the next reload).
            slug = reader.feed.slug
            log.warning("feed %s: lost its lease to another subscriber; standing by", slug)
            self.readers.pop(slug, None)
            metrics.LEASE_HELD.labels(slug).set(0)
        except Exception as exc:
            log.exception(
                "feed %s: reader failed; it restarts at the next reload", reader.feed.slug
            )
            self.problems[reader.feed.slug] = f"reader failed: {type(exc).__name__}: {exc}"
            self._remember(reader)
            self.readers.pop(reader.feed.slug, None)

    async def _stop(self, slug: str, why: str) -> None:
        reader = self.readers.pop(slug)
        if reader.task is not None:
            reader.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader.task
        self._remember(reader)
        if reader.fence is not None and self.leases is not None:
            metrics.LEASE_HELD.labels(slug).set(0)
            with contextlib.suppress(Exception):  # else it runs out by itself
                await self.leases.release(slug, reader.fence[1])
        log.info("feed %s: stopped (%s)", slug, why)

    # Leases (several subscribers for the same feeds)

    async def _tend_leases(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._tend(loop.time())
            await asyncio.sleep(self.ttl / 3)

    async def _tend(self, now: float) -> None:
        """Renew the leases held; try to take those that nobody holds."""
        assert self.leases is not None
        for slug, reader in list(self.readers.items()):
            lost = False
            try:
                if reader.fence is None:
                    token = await self.leases.acquire(slug)
                    if token is not None:
                        await reader.take_over(token, self.leases.key(slug))
                        reader.renewed = now
                        metrics.LEASE_HELD.labels(slug).set(1)
                elif await self.leases.renew(slug, reader.fence[1]):
                    reader.renewed = now
                else:
                    lost = True
            except Exception as exc:  # Redis away: hold on while the lease would still run
                if self.throttle.ready(("lease", slug)) is not None:
                    log.warning("feed %s: cannot reach Redis for its lease: %s", slug, exc)
                lost = reader.fence is not None and now - reader.renewed >= self.ttl
            if lost and slug in self.readers:
                # Stand by: the next reload makes it a standby reader again.
                await self._stop(slug, "lost its lease: it ran out or was taken; standing by")

    def _on_change(self, catalog: Catalog) -> None:
        self._changed.set()

    def feed_status(self, now: float) -> dict[str, dict[str, Any]]:
        """Each feed this process reads or wants to: its entry in the status snapshot."""
        found = {slug: reader.status(now) for slug, reader in self.readers.items()}
        # With leases another process may read the feed well: its report comes first.
        role = ACTIVE if self.leases is None else STANDBY
        for slug, problem in self.problems.items():
            if slug not in found:
                found[slug] = status.feed_report(None, role, now, problem)
        return found

    async def run(self) -> None:
        catalog = await self.watcher.get()
        self.watcher.listen(self._on_change)
        tending: asyncio.Task | None = None
        reporter = status.reporter()
        reporter.add(self, feeds=True)
        try:
            await self.apply(catalog)
            if self.only:
                missing = self.only - {f.slug for f in catalog.feeds}
                if missing:
                    log.warning("no feed named %s (yet)", ", ".join(sorted(missing)))
            interval = self.watcher.interval
            if self.leases is not None:
                tending = asyncio.ensure_future(self._tend_leases())
            while True:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), interval)
                self._changed.clear()
                # A reader that failed comes back here, as does a changed catalog.
                await self.apply(self.watcher.catalog or catalog)
        finally:
            reporter.discard(self)
            if tending is not None:
                tending.cancel()
            self.watcher.unlisten(self._on_change)
            for slug in list(self.readers):
                await self._stop(slug, "shutting down")
            await curve.stop(self.ctx)
            self.ctx.term()
