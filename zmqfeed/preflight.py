"""Checks that run before a multicast endpoint reaches libzmq.

For some bad multicast endpoints libzmq does not return an error but aborts the whole
process (seen with libzmq 4.3.4): a norm interface that does not exist, a norm UDP port
held by another program, pgm:// without CAP_NET_RAW. In embedded mode that would take the
web server down, so the subscriber asks here first and skips the endpoint with a reason.
"""

from __future__ import annotations

import ipaddress
import socket

from .endpoints import parse_endpoint


def start_problem(endpoint: str) -> str | None:
    """Why attaching this endpoint would abort the process, or None."""
    parsed = parse_endpoint(endpoint)
    if parsed.scheme == "pgm":
        try:
            socket.socket(socket.AF_INET, socket.SOCK_RAW, 113).close()
        except PermissionError:
            return "pgm:// needs CAP_NET_RAW (run as root, or use epgm://)"
    if parsed.scheme != "norm":
        return None
    iface = parsed.address.split(",", 1)[-1].rpartition(";")[0]
    if iface:
        try:
            ipaddress.ip_address(iface)
        except ValueError:
            try:
                socket.if_nametoindex(iface)
            except OSError:
                return f"no network interface named {iface!r}"
    group = ipaddress.ip_address(parsed.host.strip("[]"))
    family = socket.AF_INET6 if group.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        if group.is_multicast:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", parsed.port))
        except OSError as exc:
            return f"UDP port {parsed.port} is taken ({exc.strerror})"
    return None
