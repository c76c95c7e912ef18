"""Endpoint syntax and transport availability, checked before any socket sees an endpoint."""

from __future__ import annotations

import pytest
import zmq
from django.core.exceptions import ValidationError

from zmqfeed.endpoints import (
    MULTICAST_REMEDY,
    Endpoint,
    endpoint_problems,
    parse_endpoint,
    transport_available,
    validate_endpoints,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tcp://127.0.0.1:5556", Endpoint("tcp", "127.0.0.1:5556", "127.0.0.1", 5556)),
        ("tcp://*:5556", Endpoint("tcp", "*:5556", "*", 5556)),
        ("tcp://*:*", Endpoint("tcp", "*:*", "*", None)),
        ("tcp://[::1]:5556", Endpoint("tcp", "[::1]:5556", "[::1]", 5556)),
        (
            "tcp://feeds.example.com:65535",
            Endpoint("tcp", "feeds.example.com:65535", "feeds.example.com", 65535),
        ),
        ("tcp://eth0;10.0.0.1:5556", Endpoint("tcp", "eth0;10.0.0.1:5556", "10.0.0.1", 5556)),
        ("  ipc:///tmp/feed.sock\n", Endpoint("ipc", "/tmp/feed.sock")),
        (
            "epgm://eth0;239.192.1.1:5555",
            Endpoint("epgm", "eth0;239.192.1.1:5555", "239.192.1.1", 5555),
        ),
        ("pgm://eth0;239.1.1.1:1", Endpoint("pgm", "eth0;239.1.1.1:1", "239.1.1.1", 1)),
        ("norm://7,239.1.1.1:5555", Endpoint("norm", "7,239.1.1.1:5555", "239.1.1.1", 5555)),
    ],
)
def test_good_endpoints_parse_into_their_parts(text: str, expected: Endpoint) -> None:
    assert parse_endpoint(text) == expected


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("", "non-empty string"),
        ("   ", "non-empty string"),
        (None, "non-empty string"),
        ("127.0.0.1:5556", "SCHEME://ADDRESS"),
        ("udp://host:1", "'udp'"),
        ("TCP://host:1", "'TCP'"),
        ("tcp://", "address after tcp:// is empty"),
        ("tcp://host", "HOST:PORT"),
        ("tcp://:1", "HOST:PORT"),
        ("tcp://host:0", "not '0'"),
        ("tcp://host:65536", "not '65536'"),
        ("tcp://host:http", "not 'http'"),
        ("tcp://ho st:1", "'ho st' is not a host name"),
        ("tcp://-bad:1", "'-bad' is not a host name"),
        ("ipc://a b", "no spaces"),
        ("ipc:///" + "x" * 107, "at most 107 characters"),
        ("epgm://239.1.1.1:5555", "epgm://INTERFACE;GROUP:PORT"),
        ("epgm://eth0;10.0.0.1:5555", "10.0.0.1 is not a multicast group"),
        ("pgm://eth0;feeds:5555", "'feeds' is not an IP address"),
        ("epgm://eth0;239.1.1.1:*", "not '*'"),
    ],
)
def test_bad_endpoints_are_refused_naming_the_bad_part(text: object, named: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_endpoint(text)  # type: ignore[arg-type]
    assert named in str(caught.value)
    if isinstance(text, str) and text.strip():
        assert repr(text.strip()) in str(caught.value)  # the whole endpoint, to find it


@pytest.mark.parametrize(
    ("endpoint", "capability"),
    [
        ("epgm://eth0;239.192.1.1:5555", "pgm"),
        ("pgm://eth0;239.192.1.1:5555", "pgm"),
        ("norm://239.192.1.1:5555", "norm"),
    ],
)
def test_multicast_transports_follow_what_this_libzmq_has(endpoint: str, capability: str) -> None:
    """Whichever libzmq runs the tests: a lacking transport is a problem that names the remedy."""
    scheme = endpoint.partition("://")[0]
    has = bool(zmq.has(capability))
    assert transport_available(scheme) is has
    problems = endpoint_problems([endpoint])
    if has:
        assert problems == []
    else:
        assert problems == [f"{endpoint!r}: {scheme}:// is not available: {MULTICAST_REMEDY}"]
        assert "make multicast" in problems[0]
        assert "tcp://" in problems[0]


def test_tcp_and_ipc_are_always_available() -> None:
    assert transport_available("tcp") and transport_available("ipc")
    assert endpoint_problems(["tcp://127.0.0.1:5556", "ipc:///tmp/x.sock"]) == []


def test_problems_of_a_list_are_all_reported() -> None:
    problems = endpoint_problems(["tcp://127.0.0.1:5556", "tcp://h", "ftp://h:1"])
    assert len(problems) == 2
    assert "'tcp://h'" in problems[0] and "'ftp://h:1'" in problems[1]


@pytest.mark.parametrize("value", [[], "tcp://127.0.0.1:5556", None, {"a": 1}])
def test_endpoints_must_be_a_non_empty_list(value: object) -> None:
    assert endpoint_problems(value) == ["endpoints must be a non-empty list of strings"]


def test_model_validator_raises_every_problem() -> None:
    validate_endpoints(["tcp://127.0.0.1:5556"])
    with pytest.raises(ValidationError) as caught:
        validate_endpoints(["tcp://h", "tcp://h:0"])
    assert len(caught.value.messages) == 2
