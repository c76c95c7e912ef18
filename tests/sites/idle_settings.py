"""The demo's settings with a one-second IDLE_TIMEOUT (tests/test_node_caps.py)."""

from project.settings import *  # noqa: F403

ZMQFEED = {"IDLE_TIMEOUT": 1.0}
