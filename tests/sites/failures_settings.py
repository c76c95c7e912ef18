"""The demo's settings with quick configuration reloads and, from the environment, a small
receive high-water mark (tests/test_failures.py).

``ZMQFEED_TEST_RCVHWM``: the SUB sockets' RCVHWM (default: zmqfeed's own).
"""

import os

from project.settings import *  # noqa: F403

ZMQFEED = {"RELOAD_INTERVAL": 0.5}
if os.environ.get("ZMQFEED_TEST_RCVHWM"):
    ZMQFEED["RCVHWM"] = int(os.environ["ZMQFEED_TEST_RCVHWM"])
