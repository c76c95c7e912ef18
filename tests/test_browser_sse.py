"""Server-Sent Events in Debian's chromium: a bare EventSource that resumes by itself across
a daphne restart (scaled mode, so that the numbering outlives the process), and zmqfeed.js
falling back to SSE when its WebSocket cannot open."""

from __future__ import annotations

import threading
import time

import pytest
import zmq

from . import test_browser
from .conftest import DAPHNE, Site, free_port, stop, wait_for_port
from .test_browser import CLIENT_JS, until

# The browser test module's fixtures: chromium once per module, a fresh page per test.
browser = test_browser.browser
page = test_browser.page

pytestmark = [pytest.mark.browser]


def feed(slug: str, port: int, topics: tuple[str, ...] = ("all",)) -> dict:
    return {
        "slug": slug,
        "name": slug,
        "endpoints": [f"tcp://127.0.0.1:{port}"],
        "topics": [{"slug": t, "name": t, "prefix": t[:1]} for t in topics],
    }


class Ticker:
    """Publishes ``<topic> <n>`` with n counting up, steadily, from a thread of its own."""

    def __init__(self, rate: float = 100.0, topics: tuple[bytes, ...] = (b"a",)) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.PUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.rate, self.topics = rate, topics
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for topic in self.topics:
                self.sock.send_multipart([topic, b"%d" % self.sent])
            self.sent += 1
            time.sleep(1 / self.rate)

    def stop(self) -> int:
        """Stops publishing; the last n sent."""
        self._stop.set()
        self._thread.join(5)
        return self.sent - 1

    def close(self) -> None:
        self.stop()
        self.ctx.destroy(linger=0)


RAW_EVENTSOURCE = """
(url) => {
  window.got = [];  // [seq, data, replayed]
  window.kinds = [];
  window.opens = 0;
  const es = new EventSource(url);
  window.es = es;
  es.onopen = () => { window.opens++; };
  es.onmessage = (e) => {
    const frame = JSON.parse(e.data);
    if (frame.type === "message") got.push([frame.seq, frame.data, false]);
    else if (frame.type === "batch") {
      for (const m of frame.messages) got.push([m.seq, m.data, !!frame.replayed]);
    } else kinds.push([frame.type, frame.recovered === undefined ? null : frame.recovered]);
  };
}
"""


@pytest.mark.redis
def test_an_eventsource_resumes_by_itself_across_a_daphne_restart(tmp_path, redis_url, page):
    site = Site(tmp_path, {"REDIS_URL": redis_url})
    ticker = Ticker()
    try:
        site.configure({"feeds": [feed("es", ticker.port)]})
        site.subscriber()
        server = site.daphne()
        page.goto(f"{server.http}/zmqfeed/")
        page.evaluate(RAW_EVENTSOURCE, "/zmqfeed/sse/es/all/")
        until(lambda: len(page.evaluate("window.got")) > 20, "messages over the EventSource")

        stop(server.proc)
        time.sleep(1.5)  # published meanwhile: routed into Redis by the subscriber
        proc = site.spawn(
            [DAPHNE, "-b", "127.0.0.1", "-p", str(server.port), "project.asgi:application"],
            "daphne-restarted.log",
        )
        wait_for_port(server.port, proc)
        until(lambda: page.evaluate("window.opens") >= 2, "the EventSource's own reconnect")
        count = len(page.evaluate("window.got"))
        until(lambda: len(page.evaluate("window.got")) > count + 20, "messages after it")
        last = ticker.stop()
        until(lambda: page.evaluate("window.got")[-1][1] == last, "the last message published")

        got = page.evaluate("window.got")
        seqs = [seq for seq, _, _ in got]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a hole or a duplicate"
        data = [d for _, d, _ in got]
        assert data == list(range(data[0], last + 1))
        assert any(replayed for _, _, replayed in got), "the missed ones were replayed"
        assert page.evaluate("window.kinds") == [["subscribed", None], ["subscribed", True]]
        assert page.evaluate("window.opens") == 2
        assert page.errors == []
    finally:
        ticker.close()
        site.close()


FALLBACK = """
([url, options]) => {
  window.seen = {};
  window.states = [];
  window.transports = [];
  window.resets = [];
  const feed = new ZmqFeed(url, options);
  window.feed = feed;
  feed.on("state", (s) => states.push(s));
  feed.on("transport", (t) => transports.push(t));
  feed.on("reset", (r) => resets.push(r));
  window.follow = (topic) => {
    seen[topic] = [];
    feed.subscribe("fb", topic, (m) => seen[topic].push([m.seq, m.data]));
  };
  follow("a");
}
"""


def test_zmqfeed_js_falls_back_to_sse_when_its_websocket_cannot_open(site, page):
    ticker = Ticker(rate=50.0, topics=(b"a", b"b"))
    try:
        site.configure({"feeds": [feed("fb", ticker.port, ("a", "b"))]})
        server = site.daphne()
        page.goto(f"{server.http}/zmqfeed/")
        page.add_script_tag(path=str(CLIENT_JS))
        closed = f"ws://127.0.0.1:{free_port()}/ws/zmqfeed/"  # nothing listens there
        page.evaluate(
            FALLBACK, [closed, {"minDelay": 50, "maxDelay": 100, "sseUrl": "/zmqfeed/sse/"}]
        )
        until(lambda: len(page.evaluate("seen.a")) > 10, "messages over SSE")
        assert page.evaluate("window.feed.transport") == "sse"
        assert page.evaluate("window.transports") == ["sse"]
        assert page.evaluate("window.states")[-1] == "open"

        rejected = page.evaluate(
            "window.feed.publish('fb', 'a', 1).then(() => 'resolved', (e) => e.message)"
        )
        assert "not available over Server-Sent Events" in rejected

        # A new topic re-opens the stream with the positions so far: no hole, no duplicate.
        page.evaluate("follow('b')")
        until(lambda: len(page.evaluate("seen.b")) > 10, "the second topic's messages")
        page.evaluate("window.feed.unsubscribe('fb', 'b')")
        count = len(page.evaluate("seen.a"))
        until(lambda: len(page.evaluate("seen.a")) > count + 10, "the first topic after re-opens")
        last = ticker.stop()
        until(lambda: page.evaluate("seen.a")[-1][1] == last, "the last message published")
        seqs = [seq for seq, _ in page.evaluate("seen.a")]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a hole or a duplicate"
        assert page.evaluate("window.feed.duplicates") >= 0
        assert page.evaluate("window.resets") == []
        assert page.errors == []
    finally:
        page.evaluate("window.feed && window.feed.close()")
        ticker.close()
