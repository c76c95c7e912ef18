"""docs/grafana/zmqfeed.json charts only series the app registers, under the names Prometheus
scrapes (a counter's ``_total``, a histogram's ``_bucket``, ``_sum`` and ``_count``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

import zmqfeed.daphne.metrics  # registers the daphne adapters' series
import zmqfeed.metrics  # noqa: F401 (registers the app's series)

DASHBOARD = Path(__file__).resolve().parent.parent / "docs" / "grafana" / "zmqfeed.json"

SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count", ""),
    "info": ("_info",),
}
# What a PromQL expression names besides metrics.
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "topk", "bottomk", "by", "without", "on", "ignoring",
    "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "rate", "irate", "increase", "delta", "idelta", "histogram_quantile", "label_values",
    "clamp_min", "clamp_max", "abs", "time", "vector", "scalar", "sort", "sort_desc",
    "max_over_time", "min_over_time", "avg_over_time", "changes", "resets", "absent",
}  # fmt: skip


def registered() -> set[str]:
    """Every series name the app's collectors expose, as scraped."""
    names = set()
    for family in REGISTRY.collect():
        if family.name.startswith("zmqfeed_"):
            names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names in a PromQL expression: what is left once strings, label matchers,
    ranges, grouping clauses, functions, keywords and numbers are taken out."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    words = re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", re.sub(r"\$\w+", " ", expr))
    return {w for w in words if w not in PROMQL_WORDS}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels(doc: dict) -> list[dict]:
    found = []
    for panel in doc["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # a collapsed row holds its panels
    return [p for p in found if p["type"] != "row"]


def test_the_expression_reader_finds_metric_names():
    expr = (
        "histogram_quantile(0.99, sum by (feed, le) (rate(zmqfeed_fanout_lag_seconds_bucket"
        '{feed=~"$feed"}[$__rate_interval]))) / ignoring(x) zmqfeed_connections > 0.5'
    )
    assert metric_names(expr) == {"zmqfeed_fanout_lag_seconds_bucket", "zmqfeed_connections"}


@pytest.mark.parametrize("panel", panels(dashboard()), ids=lambda p: p["title"])
def test_every_panel_charts_registered_series(panel):
    names = registered()
    exprs = [t["expr"] for t in panel["targets"]]
    assert exprs, "a panel with no query"
    for expr in exprs:
        used = metric_names(expr)
        assert used, f"no metric in {expr!r}"
        unknown = used - names
        assert not unknown, f"{panel['title']!r} uses {sorted(unknown)}: the app has no such series"


def test_the_dashboard_imports_and_covers_what_operators_watch():
    doc = dashboard()
    # Grafana's import asks for the data source named in __inputs.
    assert [i["name"] for i in doc["__inputs"]] == ["DS_PROMETHEUS"]
    for panel in panels(doc):
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    used = set().union(*(metric_names(t["expr"]) for p in panels(doc) for t in p["targets"]))
    for name in (
        "zmqfeed_received_messages_total",
        "zmqfeed_delivered_messages_total",
        "zmqfeed_dropped_messages_total",
        "zmqfeed_shed_messages_total",
        "zmqfeed_connections",
        "zmqfeed_subscriptions",
        "zmqfeed_feed_state",
        "zmqfeed_fanout_lag_seconds_bucket",
        "zmqfeed_upstream_lost_messages_total",
    ):
        assert name in used, f"no panel charts {name}"
