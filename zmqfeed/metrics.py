"""Prometheus metrics, updated per batch rather than per message to stay off the hot path.

The daphne adapters' series are collected by :mod:`zmqfeed.daphne.metrics`.
"""

from prometheus_client import Counter, Gauge

RECEIVED = Counter("zmqfeed_received_messages", "ZeroMQ messages read", ["feed"])
DROPPED = Counter("zmqfeed_dropped_messages", "ZeroMQ messages dropped", ["feed", "reason"])
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
    "Messages not sent to a client whose unsent data was over MAX_CLIENT_BACKLOG",
    ["feed", "topic"],
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
