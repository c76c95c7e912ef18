"""The demo's settings with small per-process caps (tests/test_node_caps.py)."""

from project.settings import *  # noqa: F403

ZMQFEED = {
    "MAX_CONNECTIONS": 4,
    "MAX_CONNECTIONS_PER_USER": 2,
    "MAX_BACKLOG_TOTAL": 2 * 1024 * 1024,  # under one connection's MAX_CLIENT_BACKLOG (4 MiB)
    "SLOW_CLIENT_GRACE": 1.0,
}
