"""Container health check of a web process: GET /zmqfeed/healthz on its own daphne.

The slim image has no curl, and Django answers 400 to a Host header that is not in
ALLOWED_HOSTS, so the request names one of the allowed hosts rather than 127.0.0.1.
Usage: python docker/healthcheck.py [URL]; exit status 0 when healthy.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8000/zmqfeed/healthz"
DEFAULT_ALLOWED_HOSTS = "127.0.0.1,localhost,[::1]"  # project/settings.py's default


def host_header(allowed_hosts: str) -> str:
    """A Host value that DJANGO_ALLOWED_HOSTS (comma-separated) accepts."""
    for entry in allowed_hosts.split(","):
        entry = entry.strip()
        if entry and entry != "*":
            return entry.lstrip(".")  # ".example.com" allows example.com itself
    return "localhost"  # only "*" (or nothing): any name will do


def check(url: str, allowed_hosts: str, timeout: float = 4.0) -> str | None:
    """None when the endpoint answers 200, else what went wrong."""
    request = urllib.request.Request(url, headers={"Host": host_header(allowed_hosts)})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if response.status == 200:
                return None
            return f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        body = " ".join(exc.read(500).decode(errors="replace").split())
        return f"HTTP {exc.code}: {body[:200]}"
    except OSError as exc:
        return str(exc)


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_URL
    problem = check(url, os.environ.get("DJANGO_ALLOWED_HOSTS", DEFAULT_ALLOWED_HOSTS))
    if problem:
        print(f"unhealthy: {url}: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
