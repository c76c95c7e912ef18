"""Tokens for programs and access that follows the user, against a real daphne.

Every way a token comes in (subprotocol, Authorization header, auth frame), every way it is
refused, and every way access is taken from an open connection (token revoked, user
deactivated, removed from a group, no longer staff, logged out), each within 5 s.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from tests.conftest import Site
from tests.support import closed_code, connect, feed_doc, recv, request, subscribe

REVOCATION_LIMIT = 5.0  # seconds: what the docs promise


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    s = Site(tmp_path_factory.mktemp("tokens"))
    s.configure(
        {
            "feeds": [
                feed_doc(
                    "tk",
                    "tcp://127.0.0.1:1",
                    [
                        {"slug": "open", "access": "public"},
                        {"slug": "staff", "access": "staff"},
                        {"slug": "desk", "access": "group", "groups": ["traders"]},
                    ],
                )
            ]
        }
    )
    for name, staff, groups in (
        ("prog", True, ()),
        ("gone", True, ()),
        ("trader", False, ("traders",)),
        ("boss", True, ()),
        ("leaver", True, ()),
    ):
        s.create_user(name, staff=staff, groups=groups)
    yield s
    s.close()


@pytest.fixture(scope="module")
def server(site):
    return site.daphne()


def token(site: Site, user: str, *args: str) -> str:
    return site.manage("zmq_token", user, *args).stdout.strip().splitlines()[-1]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def taken_away(ws, topic: str, start: float) -> float:
    """Seconds from ``start`` (before the change was made) until the server says `topic` may
    no longer be read (error, then unsubscribed): an upper bound of the revocation delay."""
    error = await recv(ws, REVOCATION_LIMIT + 2)
    assert (error["type"], error.get("code"), error.get("topic")) == ("error", "forbidden", topic)
    assert (await recv(ws))["type"] == "unsubscribed"
    return time.monotonic() - start


def test_a_token_lets_a_program_in_three_ways(site, server):
    value = token(site, "prog")

    async def main():
        # 1. The subprotocol, beside "zmqfeed", which the server selects.
        ws = await connect(server, subprotocols=["zmqfeed", f"zmqfeed.token.{value}"])
        assert ws.subprotocol == "zmqfeed"
        assert (await subscribe(ws, "tk", "staff"))["type"] == "subscribed"
        await ws.close()
        # 2. Authorization: Bearer.
        ws = await connect(server, additional_headers={"Authorization": f"Bearer {value}"})
        assert (await subscribe(ws, "tk", "staff"))["type"] == "subscribed"
        await ws.close()
        # 3. A first frame, answered by `authenticated`.
        ws = await connect(server)
        refused = await request(ws, type="subscribe", feed="tk", topic="staff")
        assert refused["code"] == "forbidden"
        reply = await request(ws, type="auth", token=value, id=1)
        assert reply["type"] == "authenticated" and reply["id"] == 1
        assert reply["expires"] > time.time()
        assert (await subscribe(ws, "tk", "staff"))["type"] == "subscribed"
        await ws.close()

    run(main())
    assert value not in server.log()  # never logged, whatever the level


@pytest.mark.parametrize("how", ["subprotocol", "header"])
def test_a_bad_or_expired_token_at_the_handshake_is_refused_with_4401(site, server, how):
    expired = token(site, "prog", "--ttl", "1")
    time.sleep(1.1)
    forged = token(site, "prog")[:-2] + "xx"

    async def main():
        for bad, says in ((forged, "signature"), (expired, "expired"), ("x" * 600, "not a token")):
            if how == "subprotocol":
                ws = await connect(server, subprotocols=["zmqfeed", f"zmqfeed.token.{bad}"])
            else:
                ws = await connect(server, additional_headers={"Authorization": f"Bearer {bad}"})
            error = await recv(ws)
            assert (error["type"], error["code"]) == ("error", "forbidden")
            assert says in error["detail"], error
            assert await closed_code(ws) == 4401

    run(main())
    assert "Traceback" not in server.log()


def test_a_bad_auth_frame_is_an_error_and_the_connection_stays(site, server):
    async def main():
        ws = await connect(server)
        reply = await request(ws, type="auth", token="nonsense", id=7)
        assert (reply["type"], reply["code"], reply["id"]) == ("error", "forbidden", 7)
        assert (await request(ws, type="ping"))["type"] == "pong"
        await ws.close()

    run(main())


def test_a_revoked_token_loses_what_it_read_on_open_connections(site, server):
    value = token(site, "gone")

    async def main():
        ws = await connect(server, subprotocols=["zmqfeed", f"zmqfeed.token.{value}"])
        assert (await subscribe(ws, "tk", "staff"))["type"] == "subscribed"
        assert (await subscribe(ws, "tk", "open"))["type"] == "subscribed"
        start = time.monotonic()
        site.manage("zmq_token", "gone", "--revoke")
        delay = await taken_away(ws, "staff", start)
        assert delay <= REVOCATION_LIMIT, delay
        assert (await request(ws, type="ping"))["type"] == "pong"  # public topics stay
        await ws.close()
        # And the token no longer opens a connection.
        ws = await connect(server, subprotocols=["zmqfeed", f"zmqfeed.token.{value}"])
        assert "revoked" in (await recv(ws))["detail"]
        assert await closed_code(ws) == 4401
        return delay

    print("revocation delay (token):", run(main()))


@pytest.mark.parametrize(
    ("user", "change", "topic"),
    [
        ("trader", "u.groups.clear()", "desk"),
        ("boss", "u.is_staff = False; u.save()", "staff"),
        ("leaver", "u.is_active = False; u.save()", "staff"),
    ],
    ids=["removed-from-group", "no-longer-staff", "deactivated"],
)
def test_access_follows_the_user_on_open_connections(site, server, user, change, topic):
    cookie = site.session_cookie(user)

    async def main():
        ws = await connect(server, additional_headers={"Cookie": cookie})
        assert (await subscribe(ws, "tk", topic))["type"] == "subscribed"
        start = time.monotonic()
        site.shell(
            "from django.contrib.auth.models import User\n"
            f"u = User.objects.get(username={user!r})\n" + change.replace("; ", "\n")
        )
        delay = await taken_away(ws, topic, start)
        await ws.close()
        return delay

    print(f"revocation delay ({user}):", run(main()))


def test_logging_out_ends_what_the_session_could_read(site, server):
    site.create_user("visitor", staff=True)
    cookie = site.session_cookie("visitor")
    key = cookie.split("=", 1)[1]

    async def main():
        ws = await connect(server, additional_headers={"Cookie": cookie})
        assert (await subscribe(ws, "tk", "staff"))["type"] == "subscribed"
        # What logout does to a database session: flush() deletes it.
        start = time.monotonic()
        site.shell(
            "from django.contrib.sessions.backends.db import SessionStore\n"
            f"SessionStore({key!r}).flush()\n"
        )
        delay = await taken_away(ws, "staff", start)
        assert delay <= REVOCATION_LIMIT, delay
        await ws.close()
        return delay

    print("revocation delay (logout):", run(main()))


def test_a_per_topic_url_closes_with_4403_when_access_goes(site, server):
    value = token(site, "prog")

    async def main():
        ws = await connect(
            server, "/ws/zmqfeed/tk/staff/", subprotocols=["zmqfeed", f"zmqfeed.token.{value}"]
        )
        assert (await recv(ws))["type"] == "subscribed"
        site.manage("zmq_token", "prog", "--revoke")
        assert await closed_code(ws, REVOCATION_LIMIT + 2) == 4403

    run(main())


def test_the_token_view_gives_a_logged_in_user_a_token_over_post_only(site, server):
    import urllib.error
    import urllib.request

    cookie = site.session_cookie("prog")
    url = server.http + "/zmqfeed/token"
    # No CSRF token: refused, like every unprotected POST.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(url, data=b"", headers={"Cookie": cookie}))
    assert refused.value.code == 403
    with pytest.raises(urllib.error.HTTPError) as get:
        urllib.request.urlopen(urllib.request.Request(url, headers={"Cookie": cookie}))
    assert get.value.code == 405
    csrf = "c" * 32
    request = urllib.request.Request(
        url,
        data=b"ttl=60",
        headers={
            "Cookie": f"{cookie}; csrftoken={csrf}",
            "X-CSRFToken": csrf,
            "Referer": server.http + "/",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    with urllib.request.urlopen(request) as response:
        body = json.loads(response.read())
    assert 0 < body["expires"] - time.time() <= 61

    async def main():
        ws = await connect(server, additional_headers={"Authorization": f"Bearer {body['token']}"})
        assert (await subscribe(ws, "tk", "staff"))["type"] == "subscribed"
        await ws.close()

    run(main())
