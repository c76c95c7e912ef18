"""The demo's settings with frames of up to 16 MiB (tests/test_large_messages.py).

``ZMQFEED_TEST_LIFT_SEND_LIMIT=0`` turns the send_limit adapter off, so that daphne's own
--websocket-max-message-size decides what it may send.
"""

import os

from project.settings import *  # noqa: F403

ZMQFEED = {
    "MAX_FRAME_SIZE": 16 * 1024 * 1024,
    "LIFT_SEND_LIMIT": os.environ.get("ZMQFEED_TEST_LIFT_SEND_LIMIT", "1") == "1",
}
