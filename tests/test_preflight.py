"""The checks that keep libzmq from aborting the process on bad multicast endpoints."""

import socket

from tests.conftest import free_port
from zmqfeed.preflight import start_problem


def test_tcp_and_epgm_need_no_probe():
    assert start_problem("tcp://127.0.0.1:5556") is None
    assert start_problem("epgm://127.0.0.1;239.192.1.1:5555") is None


def test_norm_on_a_missing_interface_is_refused():
    problem = start_problem("norm://no-such-if0;239.192.7.7:5555")
    assert problem == "no network interface named 'no-such-if0'"


def test_norm_on_a_taken_udp_port_is_refused():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("", 0))
        port = holder.getsockname()[1]
        problem = start_problem(f"norm://127.0.0.1:{port}")
    assert problem is not None and f"UDP port {port} is taken" in problem


def test_norm_on_a_free_port_and_known_interface_passes():
    assert start_problem(f"norm://lo;239.192.7.7:{free_port()}") is None
