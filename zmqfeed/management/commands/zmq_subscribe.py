"""`manage.py zmq_subscribe`: the subscriber as its own process (scaled mode)."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Read the enabled feeds' ZeroMQ sockets and push each message to the Channels groups "
        "of its topics. Follows changes to feeds and topics without restart. Needs a channel "
        "layer shared between processes (channels_redis)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--feed",
            action="append",
            metavar="SLUG",
            help="only this feed (repeat for several); default: every enabled feed",
        )
        parser.add_argument(
            "--metrics-port",
            type=int,
            metavar="PORT",
            help="serve Prometheus metrics of this process on PORT",
        )
        parser.add_argument(
            "--metrics-addr",
            default="127.0.0.1",
            metavar="ADDR",
            help="address for --metrics-port (default 127.0.0.1; 0.0.0.0 in a container)",
        )

    def handle(
        self, *args, feed=None, metrics_port=None, metrics_addr="127.0.0.1", **options
    ) -> None:
        layer = get_channel_layer()
        if layer is None or isinstance(layer, InMemoryChannelLayer):
            raise CommandError(
                "zmq_subscribe needs a channel layer that other processes can read, and this "
                "site uses Channels' in-memory layer, which lives inside one process: messages "
                "would reach no server. Either set REDIS_URL (the demo site then uses "
                "channels_redis) or point CHANNEL_LAYERS at channels_redis; or run no separate "
                "subscriber at all: with the in-memory layer the ASGI server runs it itself "
                "(embedded mode)."
            )
        if metrics_port:
            from prometheus_client import start_http_server

            start_http_server(metrics_port, addr=metrics_addr)
        asyncio.run(self._main(layer, feed))

    async def _main(self, layer, only) -> None:
        from zmqfeed.history import get_history
        from zmqfeed.subscriber import Subscriber
        from zmqfeed.watch import get_watcher

        watcher = get_watcher()
        history = get_history()
        subscriber = Subscriber(layer, history, watcher, only, self._leases())
        task = asyncio.ensure_future(subscriber.run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        self.stdout.write("zmq_subscribe: running (Ctrl-C to stop)")
        with contextlib.suppress(asyncio.CancelledError):
            await task
        watcher.stop()
        self.stdout.write("zmq_subscribe: stopped")

    @staticmethod
    def _leases():
        """Leases in the history's Redis, so that standbys can run beside this process."""
        from zmqfeed import conf, lease

        where = lease.url()
        return lease.Leases(where, conf.get()["LEASE_TTL"]) if where else None
