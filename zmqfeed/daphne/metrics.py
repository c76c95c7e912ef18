"""The daphne adapters on /metrics, read when scraped: their hot paths only bump a plain int."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import active, eager_writes


class DaphneAdapters(Collector):
    """The daphne adapters' state, read when scraped: their hot paths only bump a plain int."""

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "zmqfeed_eager_writes",
            "Writes sent whole to the socket at once rather than on the reactor's next turn",
            value=eager_writes.writes,
        )
        gauge = GaugeMetricFamily(
            "zmqfeed_daphne_adapter_active",
            "1 if the daphne adapter works in this process, 0 if off (not daphne, or guarded)",
            labels=["adapter"],
        )
        for adapter, on in active().items():
            gauge.add_metric([adapter], 1.0 if on else 0.0)
        yield gauge

    def describe(self) -> Iterator[Metric]:
        return self.collect()


REGISTRY.register(DaphneAdapters())  # once: this module is imported once
