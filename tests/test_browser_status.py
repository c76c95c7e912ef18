"""The status page in Debian's chromium: a staff user watches a feed receive, then go silent.

The real stack: daphne with the embedded subscriber, ZeroMQ publishers in this test, the
page polling status.json. ZMQFEED_SCREENSHOTS (a directory) saves the status page at
1280x800 and 390 px wide, and the admin's feed list, there.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zmq

from .conftest import Site
from .test_browser import browser  # noqa: F401  (the module's chromium, as a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = os.environ.get("ZMQFEED_SCREENSHOTS")
SETTINGS = {"DJANGO_SETTINGS_MODULE": "tests.sites.status_settings"}  # SILENT_AFTER 2 s


def until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


class Publishing:
    """A PUB socket sending ~40 messages a second while `on` is set; its socket stays open
    when it is cleared (the feed's connection stays up: silent, not an error)."""

    def __init__(self, ctx: zmq.Context) -> None:
        self.sock = ctx.socket(zmq.PUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.on = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        n = 0
        while not self.done.is_set():
            if self.on.wait(0.1):
                n += 1
                self.sock.send_multipart([b"px.eur", b'{"bid": %d}' % n])
                if n % 7 == 0:
                    self.sock.send_multipart([b"px.eur", b"not json"])  # dropped: invalid_json
                if n % 5 == 0:
                    # Through the SUB filter (px.eur) but not the topic's exact match: unrouted.
                    self.sock.send_multipart([b"px.eur.late", b"1"])
                time.sleep(0.025)

    def close(self) -> None:
        self.done.set()
        self.thread.join(5)
        self.sock.close(0)


def feed(slug: str, name: str, port: int | None, topics: list[str], **fields) -> dict:
    return {
        "slug": slug,
        "name": name,
        "endpoints": [f"tcp://127.0.0.1:{port}" if port else "tcp://192.0.2.1:5555"],
        "bind": port is None,
        "framing": "multipart",
        "payload": "json",
        "enabled": True,
        "topics": [
            {
                "slug": t,
                "name": t.upper(),
                "prefix": f"px.{t}",
                "match": "exact",
                "access": "public",
                "groups": [],
            }
            for t in topics
        ],
        **fields,
    }


@pytest.fixture
def stack(tmp_path) -> Iterator[tuple[Site, object, Publishing]]:
    site = Site(tmp_path, SETTINGS)
    ctx = zmq.Context()
    pub = Publishing(ctx)
    quiet = ctx.socket(zmq.PUB)  # a publisher that never sends
    quiet.setsockopt(zmq.LINGER, 0)
    quiet_port = quiet.bind_to_random_port("tcp://127.0.0.1")
    site.configure(
        {
            "feeds": [
                feed("prices", "Prices", pub.port, ["eur", "desk"]),
                feed("quiet", "Quiet sensor", quiet_port, ["all"]),
                feed("unbound", "Unassigned bind", None, ["all"]),
                feed("bare", "No topics yet", pub.port, []),
                feed("retired", "Retired", pub.port, ["all"], enabled=False),
            ]
        }
    )
    site.create_user("boss", staff=True)
    site.shell(
        "from django.contrib.auth.models import User\n"
        "User.objects.filter(username='boss').update(is_superuser=True)\n"
    )
    server = site.daphne()
    try:
        yield site, server, pub
    finally:
        site.close()
        pub.close()
        quiet.close(0)
        ctx.destroy(linger=0)


def logged_in(chromium, site: Site, server, width: int = 1280, height: int = 800):
    context = chromium.new_context(viewport={"width": width, "height": height})
    name, value = site.session_cookie("boss").split("=", 1)
    context.add_cookies([{"name": name, "value": value, "url": server.http}])
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return context, page


def badge(page, slug: str) -> str:
    found = page.locator(f'.zf-status-card[data-feed="{slug}"] [data-role="state"]')
    return found.text_content() if found.count() else ""


def test_the_status_page_shows_a_feed_that_stops_publishing_turn_silent(browser, stack):  # noqa: F811
    site, server, pub = stack
    context, page = logged_in(browser, site, server)
    try:
        page.goto(f"{server.http}/zmqfeed/")
        page.locator("a.zf-status-link").click()  # linked from the bar, for staff
        page.wait_for_url("**/zmqfeed/status/")
        # A viewer on the live page: a subscriber the status page counts.
        viewer = context.new_page()
        viewer.goto(f"{server.http}/zmqfeed/prices/")

        pub.on.set()
        until(lambda: badge(page, "prices") == "receiving", "prices receiving")
        card = page.locator('.zf-status-card[data-feed="prices"]')
        until(lambda: float(card.locator('[data-role="rate"] strong').text_content()) > 0, "a rate")
        until(lambda: card.locator(".zf-status-drop").count() == 2, "drops by reason")
        reasons = card.locator(".zf-status-drop").evaluate_all(
            "rows => rows.map(r => r.dataset.reason)"
        )
        assert reasons == ["invalid_json", "unrouted"]
        until(
            lambda: card.locator('[data-topic="eur"] strong').text_content() == "1",
            "the live page's subscription to EUR",
        )
        assert card.locator('[data-role="age"]').text_content() in ("just now", "1 s ago")
        assert card.locator("a").get_attribute("href") == "/zmqfeed/prices/"
        # The sparkline has drawn something.
        drawn = card.locator("canvas.zf-spark").first.evaluate(
            "c => c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some(v => v)"
        )
        assert drawn
        assert badge(page, "unbound") == "error"
        assert (
            "Cannot assign requested address"
            in page.locator('.zf-status-card[data-feed="unbound"] .zf-status-detail').text_content()
        )
        assert badge(page, "bare") == "error"
        assert badge(page, "retired") == "disabled"
        until(lambda: badge(page, "quiet") == "silent", "the quiet feed silent")
        if SHOTS:
            page.wait_for_timeout(3000)  # a few seconds of sparkline
            page.screenshot(path=str(Path(SHOTS) / "status-1280.png"), full_page=True)

        pub.on.clear()  # it stops publishing; its socket stays connected
        until(lambda: badge(page, "prices") == "silent", "prices silent")
        detail = page.locator('.zf-status-card[data-feed="prices"] .zf-status-detail')
        assert detail.text_content().startswith("no message for")
        assert page.errors == []

        if SHOTS:
            pub.on.set()
            until(lambda: badge(page, "prices") == "receiving", "prices receiving again")
            phone_context, phone = logged_in(browser, site, server, 390, 844)
            phone.goto(f"{server.http}/zmqfeed/status/")
            until(lambda: badge(phone, "prices") == "receiving", "the phone's page filled")
            phone.wait_for_timeout(1500)
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"the phone page scrolls sideways ({width} px)"
            phone.screenshot(path=str(Path(SHOTS) / "status-390.png"), full_page=True)
            phone_context.close()
            page.goto(f"{server.http}/admin/zmqfeed/feed/")
            page.screenshot(path=str(Path(SHOTS) / "admin-feeds-1280.png"), full_page=True)
    finally:
        context.close()
