"""The status page's data from the real thing: daphne, ZeroMQ publishers, zmq_subscribe.

A feed goes receiving while its publisher sends, silent when it stops (its socket still
connected), error when it binds an address the host does not have; scaled mode reports the
zmq_subscribe process's feeds and the servers' subscriptions through Redis.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest
import zmq.asyncio

from tests.conftest import Site
from tests.support import Publisher, connect, feed_doc, subscribe, until_flowing

pytestmark = pytest.mark.slow

SETTINGS = {"DJANGO_SETTINGS_MODULE": "tests.sites.status_settings"}  # SILENT_AFTER 2 s
UNASSIGNED = "tcp://192.0.2.1:5555"  # TEST-NET-1: an address no host of ours has


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 90))


def get(server, path: str, cookie: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(server.http + path)
    if cookie:
        request.add_header("Cookie", cookie)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def feed_status(server, cookie: str, slug: str) -> dict:
    code, body = get(server, "/zmqfeed/status.json", cookie)
    assert code == 200, body
    return {row["slug"]: row for row in json.loads(body)["feeds"]}[slug]


async def until_state(server, cookie, slug, state, timeout=20.0, act=None) -> dict:
    deadline = time.monotonic() + timeout
    row: dict = {}
    while time.monotonic() < deadline:
        if act is not None:
            await act()
        row = await asyncio.to_thread(feed_status, server, cookie, slug)
        if row["state"] == state:
            return row
        await asyncio.sleep(0.2)
    raise AssertionError(f"{slug} never {state}: {row}")


@pytest.fixture
def status_site(tmp_path):
    site = Site(tmp_path, SETTINGS)
    site.create_user("boss", staff=True)
    site.create_user("ann")
    yield site
    site.close()


def test_a_feed_goes_receiving_then_silent_and_a_bad_bind_is_an_error(status_site) -> None:
    site = status_site
    ctx = zmq.asyncio.Context()

    async def main():
        pub = Publisher(ctx)
        site.configure(
            {
                "feeds": [
                    feed_doc("ticks", pub.endpoint, [{"slug": "all"}]),
                    feed_doc("nowhere", UNASSIGNED, [{"slug": "all"}], bind=True),
                ]
            }
        )
        server = site.daphne()
        staff = site.session_cookie("boss")
        ws = await connect(server)
        await subscribe(ws, "ticks", "all")
        await until_flowing(pub, ws, "t", "0")

        async def publish():
            for i in range(20):
                await pub.send("t", str(i))

        row = await until_state(server, staff, "ticks", "receiving", act=publish)
        assert row["received"] > 0 and row["age"] is not None and row["age"] < 2.0
        assert row["peers"] == 1
        assert [t["subscribers"] for t in row["topics"]] == [1]
        assert row["process"] and row["role"] == "active" and row["holder"] is None

        # The publisher stops sending (its socket stays connected): silent.
        row = await until_state(server, staff, "ticks", "silent")
        assert row["detail"].startswith("no message for")

        # A bind to an address the host does not have: an error that says so, not "running".
        row = await asyncio.to_thread(feed_status, server, staff, "nowhere")
        assert row["state"] == "error", row
        assert f"{UNASSIGNED}: cannot bind: Cannot assign requested address" in row["detail"]

        # The same states as Prometheus gauges: 1 for the current one, 0 for the others.
        code, text = await asyncio.to_thread(get, server, "/zmqfeed/metrics")
        assert code == 200
        assert 'zmqfeed_feed_state{feed="nowhere",state="error"} 1.0' in text
        assert 'zmqfeed_feed_state{feed="nowhere",state="receiving"} 0.0' in text
        assert 'zmqfeed_feed_state{feed="ticks",state="silent"} 1.0' in text
        assert 'zmqfeed_subscriptions{feed="ticks",topic="all"} 1.0' in text

        # And again when it publishes.
        await until_state(server, staff, "ticks", "receiving", act=publish)
        await ws.close()
        pub.close()

    try:
        run(main())
    finally:
        ctx.destroy(linger=0)


def test_only_staff_get_the_status(status_site) -> None:
    site = status_site
    server = site.daphne()
    assert get(server, "/zmqfeed/status.json")[0] == 403
    assert get(server, "/zmqfeed/status.json", site.session_cookie("ann"))[0] == 403
    assert get(server, "/zmqfeed/status/", site.session_cookie("ann"))[0] == 403
    code, body = get(server, "/zmqfeed/status/", site.session_cookie("boss"))
    assert code == 200 and 'id="zf-status"' in body
    # Anonymous: to the login page (which urllib follows).
    code, body = get(server, "/zmqfeed/status/")
    assert code == 200 and "next=/zmqfeed/status/" in body and 'name="username"' in body


@pytest.mark.redis
def test_scaled_mode_reports_the_subscriber_process_through_redis(tmp_path, redis_url) -> None:
    site = Site(tmp_path, {**SETTINGS, "REDIS_URL": redis_url})
    site.create_user("boss", staff=True)
    ctx = zmq.asyncio.Context()

    async def main():
        pub = Publisher(ctx)
        site.configure({"feeds": [feed_doc("sc", pub.endpoint, [{"slug": "all"}])]})
        subscriber = site.subscriber()
        servers = [site.daphne(), site.daphne()]
        staff = site.session_cookie("boss")
        ws = await connect(servers[1])
        await subscribe(ws, "sc", "all")
        await until_flowing(pub, ws, "t", "0")

        async def publish():
            for i in range(20):
                await pub.send("t", str(i))

        # Asked of the other server: what it shows comes from Redis, not its own memory.
        row = await until_state(servers[0], staff, "sc", "receiving", act=publish)
        assert row["process"].endswith(f":{subscriber.pid}")
        assert row["holder"] is not None and row["holder"]["pid"] == subscriber.pid
        assert row["topics"][0]["subscribers"] == 1  # the client of the other server
        code, body = get(servers[0], "/zmqfeed/status.json", staff)
        assert code == 200
        status = json.loads(body)
        assert status["mode"] == "scaled" and status["leases"] is True
        kinds = sorted(p["kind"] for p in status["processes"])
        assert kinds == ["server", "subscriber"]  # the server with no client reports nothing
        row = await until_state(servers[0], staff, "sc", "silent")

        # The subscriber goes away: its snapshot with it (deleted on a clean stop).
        subscriber.terminate()
        subscriber.wait(10)
        row = await until_state(servers[0], staff, "sc", "error")
        assert "no zmq_subscribe process reports this feed" in row["detail"]
        await ws.close()
        pub.close()

    try:
        run(main())
    finally:
        ctx.destroy(linger=0)
        site.close()
