"""Prometheus metrics, updated per batch rather than per message to stay off the hot path.

Hot paths keep the ``.labels()`` child of each series they bump (one dict lookup per batch
and topic at most, never per client). The daphne adapters' series are collected by
:mod:`zmqfeed.daphne.metrics`. docs/grafana/zmqfeed.json charts them.
"""

from prometheus_client import Counter, Gauge, Histogram

RECEIVED = Counter("zmqfeed_received_messages", "ZeroMQ messages read", ["feed"])
RECEIVED_BYTES = Counter(
    "zmqfeed_received_bytes", "Bytes of the ZeroMQ messages read, all frames", ["feed"]
)
DROPPED = Counter(
    "zmqfeed_dropped_messages",
    "ZeroMQ messages dropped as malformed or too large, by reason",
    ["feed", "reason"],
)
UNROUTED = Counter(
    "zmqfeed_unrouted_messages",
    "ZeroMQ messages no topic of the feed takes (the SUB filter let them in)",
    ["feed"],
)
UPSTREAM_LOST = Counter(
    "zmqfeed_upstream_lost_messages",
    "Messages the publishers numbered (upstream_seq) that never reached the feed",
    ["feed"],
)
ROUTED = Counter("zmqfeed_routed_messages", "Messages routed to a topic", ["feed", "topic"])
BATCHES = Counter("zmqfeed_batches", "Frames sent to topic groups", ["feed"])
FEEDS = Gauge("zmqfeed_feeds_running", "Feeds with an open SUB socket in this process")
FEED_STATE = Gauge(
    "zmqfeed_feed_state",
    "1 for the feed's current state in this process (connected, bound, receiving, silent, "
    "error), 0 for the others",
    ["feed", "state"],
)
SUBSCRIPTIONS = Gauge(
    "zmqfeed_subscriptions", "Subscriptions held by this process's clients", ["feed", "topic"]
)
CONNECTIONS = Gauge("zmqfeed_connections", "Open WebSocket connections in this process")
SSE_STREAMS = Gauge("zmqfeed_sse_streams", "Open Server-Sent Events streams in this process")
CLIENT_ERRORS = Counter("zmqfeed_client_errors", "Error replies to clients", ["code"])
GAPS = Counter("zmqfeed_gaps", "Gaps reported to clients", ["reason"])
SHED = Counter(
    "zmqfeed_shed_messages",
    "Messages not sent to a slow client, by reason: client_backlog (its unsent data over "
    "MAX_CLIENT_BACKLOG) or process_backlog (this process's over MAX_BACKLOG_TOTAL)",
    ["feed", "topic", "reason"],
)
DELIVERED = Counter(
    "zmqfeed_delivered_messages",
    "Messages handed to this process's clients: each frame's messages times its recipients "
    "(those then shed for a slow client included)",
    ["feed", "topic"],
)
SENT_BYTES = Counter(
    "zmqfeed_sent_bytes",
    "Bytes of the frames handed to this process's clients, times their recipients",
    ["feed", "topic"],
)
LAG = Histogram(
    "zmqfeed_fanout_lag_seconds",
    "Seconds from a message's arrival at the subscriber to its fan-out in this process, "
    "sampled once per frame (the frame's oldest message)",
    ["feed"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
REFUSED = Counter(
    "zmqfeed_refused_connections",
    "WebSocket connections refused by a cap (node, user, ip, rate): closed with 4013",
    ["reason"],
)
OVER_CAP = Counter(
    "zmqfeed_over_backlog_total_sheds",
    "Times a client was shed because the process held over MAX_BACKLOG_TOTAL unsent",
)
SLOW_CLOSED = Counter(
    "zmqfeed_slow_clients_closed",
    "Clients closed (4008) for holding the most unsent data for SLOW_CLIENT_GRACE seconds",
)
IDLE_CLOSED = Counter(
    "zmqfeed_idle_clients_closed",
    "Clients closed (4408) for sending nothing and holding no subscription for IDLE_TIMEOUT",
)
LEASE_HELD = Gauge(
    "zmqfeed_lease_held",
    "1 while this subscriber process holds the feed's lease (numbers it), else 0",
    ["feed"],
)
TAKEOVERS = Counter(
    "zmqfeed_takeovers", "Times this subscriber process took a feed over from another", ["feed"]
)
SWITCHOVER_LOST = Counter(
    "zmqfeed_switchover_lost_messages",
    "Messages that arrived while a feed changed subscriber and were numbered by nobody "
    "(clients get a gap)",
    ["feed"],
)
PUBLISHES = Counter(
    "zmqfeed_publishes",
    "Client publishes by outcome: published, or the error code they were refused with",
    ["feed", "topic", "outcome"],
)
PUBLISH_EXPIRED = Counter(
    "zmqfeed_publish_expired",
    "Publishes the feed's subscriber process took after their deadline, refused",
    ["feed"],
)
