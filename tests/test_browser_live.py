"""The live page's chart, its phone layout and its patience with topics saved a moment ago.

Debian's chromium against the real stack (a ZeroMQ PUB socket of the test, daphne with the
embedded subscriber), except where the client library's retry is driven by a scripted
server, which alone can refuse a subscribe an exact number of times.
"""

from __future__ import annotations

import json
import math
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
from websockets.sync.client import connect

from . import test_browser
from .conftest import PYTHON, ROOT, Server, Site
from .test_browser import CLIENT_JS, SHOTS, Script, reply, send, until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

browser = test_browser.browser
page = test_browser.page

FEED = "charted"


def feed_doc(port: int, *extra: str) -> dict:
    """A JSON feed with a topic `prices` (prefix `px.`), and further topics of all messages."""
    topics = [{"slug": "prices", "name": "Prices", "prefix": "px."}]
    topics += [{"slug": slug, "name": slug.title(), "prefix": ""} for slug in extra]
    for topic in topics:
        topic.update(access="public", groups=[])
    return {
        "feeds": [
            {
                "slug": FEED,
                "name": "Charted feed",
                "endpoints": [f"tcp://127.0.0.1:{port}"],
                "bind": False,
                "framing": "multipart",
                "payload": "json",
                "enabled": True,
                "topics": topics,
            }
        ]
    }


class Ticker:
    """Publishes `{"price": …, "bid": {"size": n}, "venue": "x"}` on px.eur and px.usd, 25/s."""

    def __init__(self, ctx: zmq.Context) -> None:
        self.pub = ctx.socket(zmq.PUB)
        self.pub.setsockopt(zmq.LINGER, 0)
        self.port = self.pub.bind_to_random_port("tcp://127.0.0.1")
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self.stopped.wait(0.04):
            n += 1
            for topic, base in ((b"px.eur", 100.0), (b"px.usd", 90.0)):
                price = base + 5 * math.sin(n / 10)
                data = {"price": price, "bid": {"size": n}, "venue": "x"}
                self.pub.send_multipart([topic, json.dumps(data).encode()])

    def __enter__(self) -> Ticker:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(5)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[tuple[Site, Server, Ticker]]:
    site = Site(tmp_path_factory.mktemp("browser-live"))
    ctx = zmq.Context()
    try:
        ticker = Ticker(ctx)
        site.configure(feed_doc(ticker.port))
        server = site.daphne()
        with ticker:
            yield site, server, ticker
    finally:
        site.close()
        ctx.destroy(linger=0)


def open_page(page, server: Server) -> None:
    page.goto(f"{server.http}/zmqfeed/{FEED}/")
    page.wait_for_selector('#zf-state[data-state="open"]', timeout=15_000)
    page.wait_for_selector("#zf-chart-card:not([hidden])", timeout=15_000)


def shot(page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / name))


# The pixels of the first series' line (#0072b2, anti-aliased) on uPlot's canvas: how many,
# and a fingerprint of where they are.
LINE_PIXELS = """() => {
  const canvas = document.querySelector("#zf-chart canvas");
  const { width, height } = canvas;
  const pixels = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  let count = 0, hash = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    const [r, g, b, a] = [pixels[i], pixels[i + 1], pixels[i + 2], pixels[i + 3]];
    if (a > 100 && r < 60 && Math.abs(g - 114) < 45 && Math.abs(b - 178) < 45) {
      count++;
      hash = (hash * 31 + i / 4) % 1000000007;
    }
  }
  return { count, hash, width };
}"""


def series_points(page) -> list[list[float]]:
    """Each drawn series' values, as uPlot has them (nulls: other series' rows)."""
    return page.evaluate(
        "window.zmqfeedChart.plot.data.slice(1).map((c) => c.filter((v) => v !== null))"
    )


def test_a_numeric_field_is_drawn_as_lines_that_move(stack, page):
    _site, server, _ticker = stack
    open_page(page, server)
    # The numeric leaves of the payload, in the order seen; the first is charted.
    options = page.locator("#zf-field option").all_text_contents()
    assert options == ["price", "bid.size"], options
    assert page.locator("#zf-field").input_value() == "price"

    until(lambda: page.evaluate("!!window.zmqfeedChart.plot"), "the chart")
    labels = page.evaluate("window.zmqfeedChart.plot.series.slice(1).map((s) => s.label)")
    until(
        lambda: (
            sorted(page.evaluate("window.zmqfeedChart.order.map((s) => s.label)"))
            == ["px.eur", "px.usd"]
        ),
        "a line per ZeroMQ topic",
    )
    labels = page.evaluate("window.zmqfeedChart.plot.series.slice(1).map((s) => s.label)")
    assert sorted(labels) == ["px.eur", "px.usd"], labels
    until(lambda: min(len(p) for p in series_points(page)) > 20, "points on both lines")
    for points in series_points(page):
        assert all(84 <= v <= 106 for v in points), points  # prices, not sizes or times

    # Drawn: the first line's colour is on the canvas, and it moves as messages arrive.
    first = page.evaluate(LINE_PIXELS)
    assert first["count"] > 40, first
    rows = page.evaluate("window.zmqfeedChart.plot.data[0].length")
    page.wait_for_timeout(1000)
    second = page.evaluate(LINE_PIXELS)
    assert second["count"] > 40, second
    assert second["hash"] != first["hash"], "the line did not move in a second"
    assert page.evaluate("window.zmqfeedChart.plot.data[0].length") > rows
    shot(page, "live-chart-desktop.png")

    # Another field: the chart starts again with it.
    page.select_option("#zf-field", "bid.size")
    until(lambda: page.evaluate("!!window.zmqfeedChart.plot"), "the chart of bid.size")
    until(lambda: min(len(p) for p in series_points(page)) > 5, "sizes on both lines")
    for points in series_points(page):
        assert points == sorted(points) and all(v == int(v) for v in points), points
    # The choice is remembered for this feed.
    page.reload()
    page.wait_for_selector("#zf-chart-card:not([hidden])", timeout=15_000)
    until(lambda: page.locator("#zf-field").input_value() == "bid.size", "the remembered field")
    assert page.errors == []


def test_the_message_list_is_a_scroll_box(stack, page):
    _site, server, _ticker = stack
    open_page(page, server)
    max_rows = int(page.locator("#zf-live").get_attribute("data-max-rows"))
    until(lambda: page.locator("#zf-messages tr").count() >= max_rows, "a full message list")
    box = page.locator("#zf-scroll")
    sizes = box.evaluate("(b) => [b.clientHeight, b.scrollHeight]")
    assert sizes[0] < sizes[1], f"the list is not cut to a box: {sizes}"
    assert box.bounding_box()["height"] <= 800, box.bounding_box()
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 2 * 800, f"the page is {height} px high with {max_rows} messages"
    # Its header row stays in view as it scrolls.
    box.evaluate("(b) => { b.scrollTop = 3000; }")
    header = page.locator("#zf-table thead th").first.bounding_box()
    assert box.bounding_box()["y"] - 1 <= header["y"] <= box.bounding_box()["y"] + 5
    assert page.locator("#zf-messages tr").count() == max_rows
    assert page.locator("#zf-messages tr td.zf-topic").first.text_content() == "Prices"


def test_a_phone_gets_the_page_without_sideways_scrolling(stack, browser):
    _site, server, _ticker = stack
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        phone = context.new_page()
        errors: list[str] = []
        phone.on("pageerror", lambda error: errors.append(str(error)))
        open_page(phone, server)
        until(lambda: phone.locator("#zf-messages tr").count() > 20, "messages")
        until(lambda: phone.evaluate("!!window.zmqfeedChart.plot"), "the chart")
        widths = phone.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"
        # The chart fits the screen; the messages are blocks, not a table wider than it.
        canvas = phone.locator("#zf-chart canvas").bounding_box()
        assert 250 < canvas["width"] <= 390 and canvas["x"] >= 0, canvas
        data = phone.locator("#zf-messages tr").first.locator("td.zf-data").bounding_box()
        assert data["x"] >= 0 and data["x"] + data["width"] <= 390, data
        scroll = phone.locator("#zf-scroll").evaluate("(b) => [b.scrollWidth, b.clientWidth]")
        assert scroll[0] <= scroll[1], f"the message list scrolls sideways: {scroll}"
        # On a phone the chart comes before the topics.
        chart_y = phone.locator("#zf-chart-card").bounding_box()["y"]
        assert chart_y < phone.locator("#zf-topics").bounding_box()["y"]
        shot(phone, "live-phone.png")
        assert errors == []
    finally:
        context.close()


def test_the_chart_follows_the_width_of_the_window(stack, page):
    _site, server, _ticker = stack
    open_page(page, server)
    until(lambda: page.evaluate("!!window.zmqfeedChart.plot"), "the chart")
    wide = page.locator("#zf-chart canvas").bounding_box()["width"]
    page.set_viewport_size({"width": 500, "height": 800})
    until(
        lambda: page.locator("#zf-chart canvas").bounding_box()["width"] < 500,
        "the chart to shrink",
    )
    assert wide > 800
    assert page.evaluate("document.documentElement.scrollWidth") <= 500


# A topic saved a moment ago: the server knows it only after its next reload.


def test_a_topic_saved_a_moment_ago_is_retried_until_the_server_has_it(site, page):
    """The page lists `late` and `ghost`, which the server does not have (yet).

    Its HTML is rendered by daphne while both topics are in the database; they are then
    deleted, and the page, served as it was by a small HTTP server of the test, subscribes
    over daphne's WebSocket. `late` is saved again a second after the page opens and must
    show messages; `ghost` never comes back and must be unchecked, saying why.
    """
    ctx = zmq.Context()
    ticker = Ticker(ctx)
    script = Script([lambda ws, frame: None])
    importer = None
    try:
        site.configure(feed_doc(ticker.port, "late", "ghost"))
        server = site.daphne()
        with urllib.request.urlopen(f"{server.http}/zmqfeed/{FEED}/", timeout=10) as response:
            html = response.read().decode()
        assert 'data-topic="late"' in html and 'data-topic="ghost"' in html
        site.configure(feed_doc(ticker.port), "--prune")
        # Saving `late` again must not wait for a Python start-up: the process is ready.
        doc = site.tmp / "late.json"
        doc.write_text(json.dumps(feed_doc(ticker.port, "late")))
        code = (
            "import sys; sys.stdin.readline()\n"
            "from django.core.management import call_command\n"
            f"call_command('zmq_feeds', 'import', {str(doc)!r})\n"
        )
        importer = subprocess.Popen(
            [PYTHON, "manage.py", "shell", "-c", code],
            cwd=ROOT,
            env=site.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        until(lambda: refused(server, "late") and refused(server, "ghost"), "the topics gone")
        script.page = html.replace('="/static/', f'="{server.http}/static/').replace(
            f'data-feed="{FEED}"', f'data-feed="{FEED}" data-ws-url="{server.ws}/ws/zmqfeed/"'
        )
        with ticker:
            page.goto(f"http://127.0.0.1:{script.port}/zmqfeed/{FEED}/")
            late = page.locator('[data-status-for="late"]')
            until(lambda: "not on the server yet" in late.text_content(), "the retry said")
            assert page.locator('input[data-topic="late"]').is_checked()
            shot(page, "live-retrying.png")
            page.wait_for_timeout(1000)
            importer.stdin.write("\n")
            importer.stdin.flush()
            assert importer.wait(60) == 0, importer.stdout.read()

            rows = page.locator("#zf-messages td.zf-topic", has_text="Late")
            until(lambda: rows.count() > 0, "messages of the topic saved late", timeout=20)
            assert page.locator('input[data-topic="late"]').is_checked()
            assert late.text_content() == ""

            ghost = page.locator('[data-status-for="ghost"]')
            until(
                lambda: not page.locator('input[data-topic="ghost"]').is_checked(),
                "the topic that never came to be unchecked",
                timeout=30,
            )
            assert "unchecked: the server still has no such topic" in ghost.text_content()
            assert "Ghost: not_found" in page.locator("#zf-notices").text_content()
            shot(page, "live-not-found.png")
            assert page.errors == []
    finally:
        if importer is not None and importer.poll() is None:
            importer.kill()
            importer.wait()
        script.close()
        ctx.destroy(linger=0)


def refused(server: Server, topic: str) -> bool:
    """Whether the server answers a subscribe to this topic with not_found."""
    with connect(f"{server.ws}/ws/zmqfeed/", origin=server.origin, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "subscribe", "id": 1, "feed": FEED, "topic": topic}))
        return json.loads(ws.recv(10)).get("code") == "not_found"


def refuse_twice(ws, frame):
    """`t` is not_found twice, then found (with a message); `never` is never found."""
    if frame["type"] == "ping":
        reply(ws, frame, type="pong")
    elif frame["type"] != "subscribe":
        return
    ws.tries = getattr(ws, "tries", {})
    tries = ws.tries[frame["topic"]] = ws.tries.get(frame["topic"], 0) + 1
    if frame["topic"] == "never" or tries <= 2:
        reply(ws, frame, type="error", code="not_found", detail=f"no topic {frame['topic']!r}")
    else:
        reply(ws, frame, type="subscribed", feed="f", topic="t", seq=0, epoch="A")
        send(ws, {"type": "message", "feed": "f", "topic": "t", "zmq_topic": "z", "seq": 1,
                  "ts": 1.0, "data": "found"})  # fmt: skip


RETRY_HARNESS = """
(url) => {
  window.events = [];
  const feed = new ZmqFeed(url, {notFoundRetry: 3000});
  window.feed = feed;
  feed.on("retry", (r) => events.push(["retry", r.topic, r.attempt, r.delay, r.code]));
  feed.on("error", (e) => events.push(["error", e.code, e.topic, e.retried]));
  feed.on("unsubscribed", (u) => events.push(["unsubscribed", u.topic]));
  feed.on("subscribed", (s) => events.push(["subscribed", s.topic]));
  feed.subscribe("f", "t", (m) => events.push(["msg", m.seq]));
  feed.subscribe("f", "never", () => {});
}
"""


def test_client_retries_a_not_found_subscribe_then_gives_up(page):
    script = Script([refuse_twice])
    try:
        page.set_content("<!doctype html><title>client</title>")
        page.add_script_tag(path=str(CLIENT_JS))
        page.evaluate(RETRY_HARNESS, f"ws://127.0.0.1:{script.port}/ws/")
        until(lambda: ["msg", 1] in page.evaluate("window.events"), "the message once found")
        until(lambda: ["unsubscribed", "never"] in page.evaluate("window.events"), "giving up")
        events = page.evaluate("window.events")
        of_t = [e[:3] for e in events if e[1] == "t" or e[0] == "msg"]
        # Refused twice, then found: no error, no unsubscribe, the message delivered.
        assert of_t == [
            ["retry", "t", 1],
            ["retry", "t", 2],
            ["subscribed", "t"],
            ["msg", 1],
        ], events
        # Backoff: each wait twice the last; the topic never found is dropped after 3 s.
        never = [e[3] for e in events if e[0] == "retry" and e[1] == "never"]
        assert never == [250, 500, 1000], events
        assert ["error", "not_found", "never", 3] in events
        assert not page.evaluate("feed.isSubscribed('f', 'never')")
        subscribes = [f["topic"] for _, f in script.frames("subscribe")]
        assert subscribes.count("t") == 3 and subscribes.count("never") == len(never) + 1
        assert page.errors == []
    finally:
        page.evaluate("window.feed && window.feed.close()")
        script.close()
