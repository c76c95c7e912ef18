"""Prometheus metrics, updated per batch rather than per message to stay off the hot path."""

from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import daphne

RECEIVED = Counter("zmqfeed_received_messages", "ZeroMQ messages read", ["feed"])
DROPPED = Counter("zmqfeed_dropped_messages", "ZeroMQ messages dropped", ["feed", "reason"])
ROUTED = Counter("zmqfeed_routed_messages", "Messages routed to a topic", ["feed", "topic"])
BATCHES = Counter("zmqfeed_batches", "Frames sent to topic groups", ["feed"])
FEEDS = Gauge("zmqfeed_feeds_running", "Feeds with an open SUB socket in this process")
CONNECTIONS = Gauge("zmqfeed_connections", "Open WebSocket connections in this process")
CLIENT_ERRORS = Counter("zmqfeed_client_errors", "Error replies to clients", ["code"])
GAPS = Counter("zmqfeed_gaps", "Gaps reported to clients", ["reason"])
SHED = Counter(
    "zmqfeed_shed_messages",
    "Messages not sent to a client whose unsent data was over MAX_CLIENT_BACKLOG",
    ["feed", "topic"],
)


class DaphneAdapters(Collector):
    """The daphne adapters' state, read when scraped: their hot paths only bump a plain int."""

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "zmqfeed_eager_writes",
            "Writes sent whole to the socket at once rather than on the reactor's next turn",
            value=daphne.eager_writes.writes,
        )
        gauge = GaugeMetricFamily(
            "zmqfeed_daphne_adapter_active",
            "1 if the daphne adapter works in this process, 0 if off (not daphne, or guarded)",
            labels=["adapter"],
        )
        for adapter, on in daphne.active().items():
            gauge.add_metric([adapter], 1.0 if on else 0.0)
        yield gauge

    def describe(self) -> Iterator[Metric]:
        return self.collect()


REGISTRY.register(DaphneAdapters())
