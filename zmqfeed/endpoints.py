"""ZeroMQ endpoint syntax, checked before a socket ever sees it.

libzmq's own errors ("Invalid argument") do not say which part is wrong, so the admin
form, the import and the subscriber all go through :func:`parse_endpoint`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError

SCHEMES = ("tcp", "ipc", "epgm", "pgm", "norm")
MULTICAST = ("epgm", "pgm", "norm")
MULTICAST_REMEDY = (
    "this pyzmq's libzmq was built without it; PyPI's pyzmq wheels have no multicast. "
    "Run `make multicast` (pyzmq built against Debian's libzmq3-dev) or use tcp://."
)

_HOST = re.compile(r"^(\*|[A-Za-z0-9]([A-Za-z0-9\-.]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])$")


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    address: str
    host: str = ""
    port: int | None = None  # None: "*" (any port, bind only) or not applicable


def _port(text: str, endpoint: str, *, allow_wildcard: bool) -> int | None:
    if text == "*" and allow_wildcard:
        return None
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{endpoint!r}: port must be a number from 1 to 65535, not {text!r}")
    return int(text)


def _split_host_port(rest: str, endpoint: str) -> tuple[str, str]:
    host, sep, port = rest.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{endpoint!r}: expected HOST:PORT after the scheme")
    return host, port


def parse_endpoint(endpoint: str) -> Endpoint:
    """Parse one endpoint or raise ValueError with a message that names the bad part."""
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise ValueError("an endpoint must be a non-empty string")
    endpoint = endpoint.strip()
    scheme, sep, rest = endpoint.partition("://")
    if not sep:
        raise ValueError(f"{endpoint!r}: expected SCHEME://ADDRESS, e.g. tcp://127.0.0.1:5556")
    if scheme not in SCHEMES:
        raise ValueError(
            f"{endpoint!r}: scheme must be one of {', '.join(SCHEMES)}, not {scheme!r}"
        )
    if not rest:
        raise ValueError(f"{endpoint!r}: the address after {scheme}:// is empty")
    if scheme == "ipc":
        if any(c.isspace() for c in rest) or len(rest) > 107:
            raise ValueError(f"{endpoint!r}: an ipc path has no spaces and at most 107 characters")
        return Endpoint(scheme, rest)
    if scheme == "tcp":
        # tcp://[source;]host:port — the source part is rare; check the destination.
        dest = rest.rpartition(";")[2]
        host, port = _split_host_port(dest, endpoint)
        if not _HOST.match(host):
            raise ValueError(f"{endpoint!r}: {host!r} is not a host name, IP address or *")
        return Endpoint(scheme, rest, host, _port(port, endpoint, allow_wildcard=True))
    # Multicast: [interface;]group:port (norm may prefix "nodeid,").
    iface, _, dest = rest.rpartition(";")
    if scheme == "norm":
        dest = dest.rpartition(",")[2]
    host, port = _split_host_port(dest, endpoint)
    try:
        group = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise ValueError(f"{endpoint!r}: {host!r} is not an IP address") from None
    if scheme in ("epgm", "pgm") and not group.is_multicast:
        raise ValueError(f"{endpoint!r}: {host} is not a multicast group (224.0.0.0/4)")
    if scheme in ("epgm", "pgm") and not iface:
        raise ValueError(f"{endpoint!r}: expected {scheme}://INTERFACE;GROUP:PORT")
    return Endpoint(scheme, rest, host, _port(port, endpoint, allow_wildcard=False))


def transport_available(scheme: str) -> bool:
    if scheme not in MULTICAST:
        return True
    import zmq

    return bool(zmq.has("pgm" if scheme in ("epgm", "pgm") else "norm"))


def endpoint_problems(endpoints: object) -> list[str]:
    """Every problem with a list of endpoints, including transports this libzmq lacks."""
    if not isinstance(endpoints, list) or not endpoints:
        return ["endpoints must be a non-empty list of strings"]
    problems = []
    for endpoint in endpoints:
        try:
            parsed = parse_endpoint(endpoint)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if not transport_available(parsed.scheme):
            problems.append(
                f"{endpoint!r}: {parsed.scheme}:// is not available: {MULTICAST_REMEDY}"
            )
    return problems


def validate_endpoints(value: object) -> None:
    problems = endpoint_problems(value)
    if problems:
        raise ValidationError(problems)
