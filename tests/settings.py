"""Settings for `pytest`: the demo site's, in development mode as `make test` runs them.

The demo settings refuse to start without DJANGO_SECRET_KEY unless DJANGO_DEBUG is on; set
here (and inherited by the servers the tests start), plain `pytest` works from a fresh venv.
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "1")

from project.settings import *  # noqa: F403
