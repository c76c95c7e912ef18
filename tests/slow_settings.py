"""The demo settings with a small MAX_CLIENT_BACKLOG, so that a slow reader shows in seconds."""

from project.settings import *  # noqa: F403
from project.settings import ZMQFEED

ZMQFEED = {**ZMQFEED, "MAX_CLIENT_BACKLOG": 1024 * 1024}
