"""The demo's settings with a two-second SILENT_AFTER and quick reloads (tests/test_status_live.py,
tests/test_browser_status.py): a feed that stops publishing turns silent within seconds."""

from project.settings import *  # noqa: F403

ZMQFEED = {"SILENT_AFTER": 2.0, "RELOAD_INTERVAL": 0.5}
