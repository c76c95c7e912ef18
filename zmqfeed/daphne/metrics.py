"""The daphne adapters on /metrics, read when scraped: their hot paths only bump a plain int."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import active, eager_writes, lean, preframed, send_limit


class DaphneAdapters(Collector):
    """The daphne adapters' state, read when scraped: their hot paths only bump a plain int."""

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "zmqfeed_eager_writes",
            "Writes sent whole to the socket at once rather than on the reactor's next turn",
            value=eager_writes.writes,
        )
        yield CounterMetricFamily(
            "zmqfeed_preframed_writes",
            "Frames written to a WebSocket as their shared wire bytes, past daphne's send path",
            value=preframed.writes,
        )
        gauge = GaugeMetricFamily(
            "zmqfeed_daphne_adapter_active",
            "1 if the daphne adapter works in this process, 0 if off (not daphne, or guarded)",
            labels=["adapter"],
        )
        for adapter, on in active().items():
            gauge.add_metric([adapter], 1.0 if on else 0.0)
        yield gauge
        yield CounterMetricFamily(
            "zmqfeed_daphne_released_http_channels",
            "HTTP channels and requests let go once their connection became a WebSocket "
            "(the lean adapter)",
            value=lean.released,
        )
        yield GaugeMetricFamily(
            "zmqfeed_daphne_send_limit_lifted",
            "1 if daphne's WebSocket sends may reach MAX_FRAME_SIZE whatever its "
            "--websocket-max-message-size (the send_limit adapter), 0 if not",
            value=1.0 if send_limit.active() else 0.0,
        )
        yield CounterMetricFamily(
            "zmqfeed_daphne_send_limit_short_connections",
            "WebSocket connections whose daphne would refuse to send a frame of MAX_FRAME_SIZE "
            "(--websocket-max-message-size lower, send_limit off): frames over it are lost",
            value=send_limit.short_connections,
        )
        yield CounterMetricFamily(
            "zmqfeed_daphne_send_limit_lifted_connections",
            "WebSocket connections whose sends were let up to MAX_FRAME_SIZE, over daphne's "
            "--websocket-max-message-size (the send_limit adapter)",
            value=send_limit.lifted_connections,
        )

    def describe(self) -> Iterator[Metric]:
        return self.collect()


REGISTRY.register(DaphneAdapters())  # once: this module is imported once
