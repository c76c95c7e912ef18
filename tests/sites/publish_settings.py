"""The demo's settings with a low publish rate: 3 at once, then 2 a second (test_publish.py)."""

from project.settings import *  # noqa: F403

ZMQFEED = {"PUBLISH_RATE": 2.0, "PUBLISH_BURST": 3}
