"""The demo's settings for the zmqfeed systems under test, without the per-process cap on
connections: its default (10,000) would refuse the 10,000-connection scenario's first
connection over it (a warm-up retry, a late close), and a cap is not what is measured.
CONNECT_RATE and MAX_CONNECTIONS_PER_IP are off by default; anonymous clients have no
per-user cap."""

from project.settings import *  # noqa: F403

ZMQFEED = {**ZMQFEED, "MAX_CONNECTIONS": 0}  # noqa: F405
