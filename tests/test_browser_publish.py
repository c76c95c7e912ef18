"""The live page's publish box, in Debian's chromium, against the real stack.

A ZeroMQ SUB socket of the test is the feed's publish endpoint (the gateway connects a PUB
to it); what is typed into the box must arrive there framed as the feed prescribes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from . import test_browser
from .conftest import Server, Site, free_port
from .support import feed_doc

pytestmark = pytest.mark.browser

browser = test_browser.browser
page = test_browser.page

SHOT = Path("/tmp/zf/shots/publish.png")


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[tuple[Server, zmq.Socket]]:
    """Feed `pp` (json) publishes into the test's SUB; feed `ro` has no publishable topic."""
    site = Site(tmp_path_factory.mktemp("browser-publish"))
    ctx = zmq.Context()
    try:
        pub = ctx.socket(zmq.PUB)  # what the gateway reads; nothing is sent on it here
        pub.setsockopt(zmq.LINGER, 0)
        endpoint = f"tcp://127.0.0.1:{pub.bind_to_random_port('tcp://127.0.0.1')}"
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        outlet = f"tcp://127.0.0.1:{free_port()}"
        sub.bind(outlet)
        sub.subscribe(b"")
        topics = [
            {"slug": "cmd", "prefix": "cmd.", "publish_access": "public"},
            # Publishable, not readable: offered in the box, not in the topic list.
            {"slug": "drop", "prefix": "drop.", "access": "staff", "publish_access": "public"},
            {"slug": "quiet", "prefix": "q."},  # readable, not publishable
        ]
        doc = {
            "feeds": [
                feed_doc("pp", endpoint, topics, publish_endpoints=[outlet], publish_socket="pub"),
                feed_doc("ro", endpoint, [{"slug": "all"}]),
            ]
        }
        site.configure(doc)
        yield site.daphne(), sub
    finally:
        site.close()
        ctx.destroy(linger=0)


def open_page(page, server: Server, feed: str) -> None:
    page.goto(f"{server.http}/zmqfeed/{feed}/")
    page.wait_for_selector('#zf-state[data-state="open"]', timeout=15_000)


def send_until_published(page, sub: zmq.Socket, tries: int = 60) -> str:
    """ZeroMQ connects late: the gateway says `unavailable` until the SUB is joined.

    libzmq handles a new peer's pipe (and sends it the SUB's subscription) in the socket's
    own thread, so the idle SUB is touched (ZMQ_EVENTS) between tries.
    """
    status = page.locator("#zf-pub-status")
    text = ""
    for _ in range(tries):
        sub.getsockopt(zmq.EVENTS)
        page.locator("#zf-pub-send").click()
        page.wait_for_function(
            "() => !document.getElementById('zf-pub-send').disabled", timeout=15_000
        )
        text = status.text_content() or ""
        if text == "published":
            return text
        assert text.startswith(("unavailable", "not_found")), text
        time.sleep(0.5)
    pytest.fail(f"never published; last status {text!r}")


def received(sub: zmq.Socket, timeout_ms: int) -> list[list[bytes]]:
    got = []
    while sub.poll(timeout_ms):
        got.append(sub.recv_multipart())
        timeout_ms = 300
    return got


def test_the_publish_box_sends_json_to_the_feeds_socket(stack, page):
    server, sub = stack
    open_page(page, server, "pp")
    options = page.locator("#zf-pub-topic option")
    assert options.evaluate_all("els => els.map(e => e.value)") == ["cmd", "drop"]
    assert page.locator("input[data-topic]").evaluate_all(
        "els => els.map(e => e.dataset.topic)"
    ) == ["cmd", "quiet"]
    assert page.locator("#zf-pub-status").get_attribute("aria-live") == "polite"

    page.locator("#zf-pub-topic").select_option("cmd")
    page.locator("#zf-pub-subtopic").fill("go")
    page.locator("#zf-pub-data").fill('{"k": 1}')
    send_until_published(page, sub)
    assert received(sub, 5000) == [[b"cmd.go", b'{"k":1}']]

    SHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOT), full_page=True)
    assert page.errors == []


def test_invalid_json_shows_an_error_and_sends_nothing(stack, page):
    server, sub = stack
    open_page(page, server, "pp")
    received(sub, 100)  # nothing left over
    page.evaluate(
        """() => {
          const client = window.zmqfeedLive, publish = client.publish.bind(client);
          window.publishes = 0;
          client.publish = (...args) => (window.publishes++, publish(...args));
        }"""
    )
    page.locator("#zf-pub-data").fill("{not json")
    page.locator("#zf-pub-send").click()
    status = page.locator("#zf-pub-status")
    assert (status.text_content() or "").startswith("not JSON")
    assert status.get_attribute("data-kind") == "error"
    assert page.evaluate("window.publishes") == 0
    assert received(sub, 1000) == []


def test_no_publish_box_without_publishable_topics(stack, page):
    server, _sub = stack
    open_page(page, server, "ro")
    assert page.locator("#zf-publish").count() == 0
    assert page.locator("input[data-topic]").count() == 1
