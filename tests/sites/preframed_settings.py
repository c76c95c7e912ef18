"""The demo's settings with preframed sends on or off (tests/test_preframed.py).

``ZMQFEED_TEST_PREFRAMED=0`` turns the preframed adapter off: frames take daphne's path.
"""

import os

from project.settings import *  # noqa: F403

ZMQFEED = {"PREFRAMED_SENDS": os.environ.get("ZMQFEED_TEST_PREFRAMED", "1") == "1"}
