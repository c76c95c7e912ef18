"""The demo's settings with a publish rate per connection that the publish benchmark's
closed-loop clients do not reach, so that the figure is the gateway's, not the limit's."""

from project.settings import *  # noqa: F403

ZMQFEED = {"PUBLISH_RATE": 10_000.0, "PUBLISH_BURST": 10_000}
