"""Which Origin headers may open a WebSocket, and the allowed list a site gets by default."""

from __future__ import annotations

import pytest

from zmqfeed.origins import allowed_origins, origin_allowed


def headers(origin: bytes | None, *others: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    found = [(b"host", b"127.0.0.1:8000"), *others]
    if origin is not None:
        found.append((b"origin", origin))
    return found


def test_a_request_without_origin_is_not_a_browsers_and_is_allowed() -> None:
    assert origin_allowed(headers(None), ["example.com"])
    assert origin_allowed([], [])


@pytest.mark.parametrize(
    ("origin", "allowed", "expected"),
    [
        # Host patterns (ALLOWED_HOSTS style): any scheme, any port.
        (b"http://127.0.0.1:8000", ["127.0.0.1"], True),
        (b"https://127.0.0.1", ["127.0.0.1"], True),
        (b"http://localhost:8000", ["127.0.0.1", "localhost"], True),
        (b"http://LOCALHOST:8000", ["localhost"], True),
        (b"http://[::1]:8000", ["[::1]"], True),
        (b"http://evil.test", ["127.0.0.1", "localhost"], False),
        (b"http://127.0.0.2:8000", ["127.0.0.1"], False),
        (b"http://localhost.evil.test", ["localhost"], False),
        (b"http://example.com", [], False),
        # A leading dot: the domain and every subdomain, never a lookalike.
        (b"https://example.com", [".example.com"], True),
        (b"https://feeds.example.com", [".example.com"], True),
        (b"https://a.b.example.com:8443", [".example.com"], True),
        (b"https://badexample.com", [".example.com"], False),
        (b"https://example.com.evil.test", [".example.com"], False),
        (b"http://sub.localhost:8000", [".localhost"], True),
        # Exact host without a dot: no subdomains.
        (b"https://feeds.example.com", ["example.com"], False),
        # Origin patterns with a scheme: scheme and port must match (default ports count).
        (b"https://example.com", ["https://example.com"], True),
        (b"https://example.com:443", ["https://example.com"], True),
        (b"http://example.com:80", ["http://example.com"], True),
        (b"http://example.com", ["https://example.com"], False),
        (b"https://example.com:8443", ["https://example.com"], False),
        (b"https://example.com:8443", ["https://example.com:8443"], True),
        (b"http://127.0.0.1:8000", ["http://127.0.0.1:8000"], True),
        (b"http://127.0.0.1:8001", ["http://127.0.0.1:8000"], False),
        (b"https://feeds.example.com", ["https://.example.com"], True),
        # Everything.
        (b"http://anything.test:1", ["*"], True),
        (b"null", ["*"], True),
        # Origins that name no host: sandboxed frames, files, garbage.
        (b"null", ["127.0.0.1", "localhost"], False),
        (b"file://", ["localhost"], False),
        (b"", ["localhost"], False),
        (b"http://[::1", ["[::1]"], False),
    ],
)
def test_origin_matching(origin: bytes, allowed: list[str], expected: bool) -> None:
    assert origin_allowed(headers(origin), allowed) is expected


def test_only_the_origin_header_counts() -> None:
    assert not origin_allowed(
        headers(b"http://evil.test", (b"referer", b"http://127.0.0.1/")), ["127.0.0.1"]
    )
    assert origin_allowed([(b"x-origin", b"http://evil.test")], ["127.0.0.1"])


@pytest.mark.parametrize("origin", [b"http://127.0.0.1:abc", b"http://127.0.0.1:99999"])
def test_a_malformed_port_is_refused_not_raised(origin: bytes) -> None:
    """Any client can send any Origin; the answer must be no, not a traceback per connect."""
    assert origin_allowed(headers(origin), ["http://127.0.0.1:8000"]) is False


# The allowed list


def test_zmqfeed_allowed_origins_wins(settings) -> None:
    settings.ZMQFEED = {"ALLOWED_ORIGINS": ("https://feeds.example.com", ".example.org")}
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    assert allowed_origins() == ["https://feeds.example.com", ".example.org"]
    assert origin_allowed(headers(b"https://feeds.example.com"), allowed_origins())
    assert not origin_allowed(headers(b"http://127.0.0.1:8000"), allowed_origins())


def test_an_empty_zmqfeed_list_allows_only_requests_without_origin(settings) -> None:
    settings.ZMQFEED = {"ALLOWED_ORIGINS": []}
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    assert allowed_origins() == []
    assert not origin_allowed(headers(b"http://127.0.0.1:8000"), allowed_origins())


@pytest.mark.parametrize("debug", [True, False])
def test_without_zmqfeed_setting_the_allowed_hosts_are_the_origins(settings, debug) -> None:
    settings.ZMQFEED = {}
    settings.DEBUG = debug
    settings.ALLOWED_HOSTS = [".example.com", "127.0.0.1"]
    assert allowed_origins() == [".example.com", "127.0.0.1"]
    assert origin_allowed(headers(b"https://www.example.com"), allowed_origins())
    assert not origin_allowed(headers(b"https://localhost"), allowed_origins())


def test_debug_without_allowed_hosts_allows_local_origins(settings) -> None:
    settings.ZMQFEED = {}
    settings.DEBUG = True
    settings.ALLOWED_HOSTS = []
    allowed = allowed_origins()
    for origin in (b"http://localhost:8000", b"http://app.localhost", b"http://127.0.0.1:1"):
        assert origin_allowed(headers(origin), allowed), origin
    assert origin_allowed(headers(b"http://[::1]:8000"), allowed)
    assert not origin_allowed(headers(b"http://example.com"), allowed)


def test_production_without_allowed_hosts_allows_no_origin(settings) -> None:
    settings.ZMQFEED = {}
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = []
    assert allowed_origins() == []
    assert not origin_allowed(headers(b"http://localhost:8000"), allowed_origins())


def test_the_allowed_list_follows_settings_changes(settings) -> None:
    settings.ZMQFEED = {"ALLOWED_ORIGINS": ["a.test"]}
    assert allowed_origins() == ["a.test"]
    settings.ZMQFEED = {"ALLOWED_ORIGINS": ["b.test"]}
    assert allowed_origins() == ["b.test"]
