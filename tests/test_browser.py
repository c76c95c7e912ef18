"""Debian's chromium, driven by Playwright, on the live page and on the bare client library.

The live page runs against the real stack: a ZeroMQ PUB socket in the test, daphne with the
embedded subscriber, the consumer. The client library's recovery (reconnect, `since`,
duplicates, gaps, dead connections) is driven by a scripted WebSocket server, because only
a script can drop a connection or repeat a message at an exact point of the protocol.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import zmq
from playwright.sync_api import expect
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection, serve

from .conftest import DAPHNE, ROOT, Server, Site, free_port, skip_or_fail, stop, wait_for_port

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CLIENT_JS = ROOT / "zmqfeed" / "static" / "zmqfeed" / "zmqfeed.js"
XSS = "<img src=x onerror=alert(1)>"
SHOTS = os.environ.get("ZMQFEED_SCREENSHOTS")  # a directory: save the live page there


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"{CHROMIUM} is missing: apt-get install chromium (or `make browser`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


def until(check: Callable[[], bool], what: str, timeout: float = 15.0, act=None) -> None:
    """Poll `check` (doing `act` before each try) until it holds, or fail saying what."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if act:
            act()
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


# The live page against the real stack.


def feed_doc(slug: str, port: int, payload: str) -> dict:
    return {
        "slug": slug,
        "name": f"Browser {payload}",
        "endpoints": [f"tcp://127.0.0.1:{port}"],
        "bind": False,
        "framing": "multipart",
        "payload": payload,
        "enabled": True,
        "topics": [
            {"slug": "all", "name": "All", "prefix": "", "access": "public", "groups": []},
            {"slug": "boss", "name": "Boss", "prefix": "", "access": "staff", "groups": []},
        ],
    }


def start_stack(site: Site) -> tuple[Server, dict[str, zmq.Socket], zmq.Context]:
    """Three feeds (json, text, binary) on PUB sockets of the test, and daphne subscribed."""
    ctx = zmq.Context()
    pubs: dict[str, zmq.Socket] = {}
    feeds = []
    for payload in ("json", "text", "binary"):
        pub = ctx.socket(zmq.PUB)
        pub.setsockopt(zmq.LINGER, 0)
        port = pub.bind_to_random_port("tcp://127.0.0.1")
        pubs[payload] = pub
        feeds.append(feed_doc(f"b-{payload}", port, payload))
    site.configure({"feeds": feeds})
    return site.daphne(), pubs, ctx


@contextmanager
def running_stack(site: Site) -> Iterator[tuple[Site, Server, dict[str, zmq.Socket]]]:
    server, pubs, ctx = start_stack(site)
    try:
        yield site, server, pubs
    finally:
        site.close()
        ctx.destroy(linger=0)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[tuple[Site, Server, dict[str, zmq.Socket]]]:
    """One site for the tests that leave the server running (a site costs seconds to start)."""
    with running_stack(Site(tmp_path_factory.mktemp("browser"))) as parts:
        yield parts


@pytest.fixture
def own_stack(site: Site) -> Iterator[tuple[Site, Server, dict[str, zmq.Socket]]]:
    with running_stack(site) as parts:
        yield parts


def shown(page, text: str) -> bool:
    cells = page.locator("#zf-messages td.zf-data").all_text_contents()
    return text in cells


def publish_until_shown(page, pub: zmq.Socket, frames: list[bytes], text: str) -> None:
    """PUB/SUB joins late: publish until the page shows the message."""
    until(
        lambda: shown(page, text), f"{text!r} on the page", act=lambda: pub.send_multipart(frames)
    )


def test_live_page_shows_messages_as_text(stack, page):
    _site, server, pubs = stack
    page.goto(f"{server.http}/zmqfeed/b-json/")
    page.wait_for_selector('#zf-state[data-state="open"]', timeout=15_000)
    assert page.locator("input[data-topic]").evaluate_all(
        "els => els.map(e => e.dataset.topic)"
    ) == ["all"], "the staff-only topic must not be offered to an anonymous user"

    publish_until_shown(page, pubs["json"], [b"px.eur", b'{"bid": 1.05}'], '{"bid":1.05}')
    row = page.locator("#zf-messages tr").first
    assert row.locator(".zf-topic").text_content() == "All"  # the topic's name, not its slug
    assert row.locator(".zf-zmq-topic").text_content() == "px.eur"
    seq = int(row.locator(".zf-num").text_content())
    assert seq >= 1
    until(
        lambda: page.locator('[data-seq-for="all"]').text_content() not in ("\N{EN DASH}", "0"),
        "the topic's latest seq",
    )

    # A JSON string payload that would run script if it were parsed as HTML.
    publish_until_shown(page, pubs["json"], [b"px.eur", json.dumps(XSS).encode()], XSS)
    assert page.locator("#zf-messages img").count() == 0
    assert int(page.locator("#zf-messages tr").first.locator(".zf-num").text_content()) > seq
    until(lambda: float(page.locator("#zf-rate").text_content()) > 0, "a message rate")
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / "live-json.png"), full_page=True)

    # The same payload on a text feed.
    page.goto(f"{server.http}/zmqfeed/b-text/")
    page.wait_for_selector('#zf-state[data-state="open"]', timeout=15_000)
    publish_until_shown(page, pubs["text"], [b"log", XSS.encode()], XSS)
    assert page.locator("#zf-messages img").count() == 0
    page.wait_for_timeout(300)  # an onerror handler would have fired by now
    assert page.dialogs == []
    assert page.errors == []


def test_live_page_keeps_at_most_max_rows(stack, page):
    _site, server, pubs = stack
    page.goto(f"{server.http}/zmqfeed/b-json/")
    page.wait_for_selector('#zf-state[data-state="open"]', timeout=15_000)
    max_rows = int(page.locator("#zf-live").get_attribute("data-max-rows"))
    publish_until_shown(page, pubs["json"], [b"t", b'"first"'], "first")
    for n in range(max_rows + 50):
        pubs["json"].send_multipart([b"t", json.dumps(n).encode()])
    last = str(max_rows + 49)
    until(lambda: shown(page, last), "the last of a burst")
    assert page.locator("#zf-messages tr").count() == max_rows
    assert page.locator("#zf-messages tr").first.locator(".zf-data").text_content() == last


def test_unchecking_a_topic_stops_its_messages(stack, page):
    _site, server, pubs = stack
    page.goto(f"{server.http}/zmqfeed/b-text/")
    page.wait_for_selector('#zf-state[data-state="open"]', timeout=15_000)
    publish_until_shown(page, pubs["text"], [b"a", b"before"], "before")
    page.locator('input[data-topic="all"]').uncheck()
    page.wait_for_function("!window.zmqfeedLive.isSubscribed('b-text', 'all')")
    page.wait_for_timeout(300)  # the unsubscribe reaches the server
    count = page.locator("#zf-messages tr").count()
    for _ in range(5):
        pubs["text"].send_multipart([b"a", b"after"])
    page.wait_for_timeout(500)
    assert page.locator("#zf-messages tr").count() == count
    assert not shown(page, "after")


def test_live_page_reconnects_after_server_restart(own_stack, page):
    """A new daphne on the same port: the page reconnects, resubscribes and shows new data."""
    site, server, pubs = own_stack
    page.goto(f"{server.http}/zmqfeed/b-json/")
    page.wait_for_selector('#zf-state[data-state="open"]', timeout=15_000)
    publish_until_shown(page, pubs["json"], [b"x", b'"one"'], "one")
    stop(server.proc)
    page.wait_for_selector('#zf-state[data-state^="reconnecting"]', timeout=15_000)
    proc = site.spawn(
        [DAPHNE, "-b", "127.0.0.1", "-p", str(server.port), "project.asgi:application"],
        "daphne-restarted.log",
    )
    wait_for_port(server.port, proc)
    page.wait_for_selector('#zf-state[data-state="open"]', timeout=20_000)
    publish_until_shown(page, pubs["json"], [b"x", b'"two"'], "two")
    # The new process numbers from 1 again, in a new epoch: the page says so instead of
    # hiding new messages, and marks the place in the table.
    notices = page.locator("#zf-notices").text_content()
    assert "numbering started again" in notices, notices
    marker = page.locator("#zf-messages tr.zf-marker-reset")
    assert marker.count() == 1 and "numbering started again" in marker.text_content()
    page.screenshot(path=str(site.tmp / "live-reset.png"), full_page=True)


# How the live page shows each kind of data.


def row_of(page, zmq_topic: str):
    """The newest row of a message with this ZeroMQ topic."""
    cell = page.locator("td.zf-zmq-topic", has_text=re.compile(f"^{re.escape(zmq_topic)}$"))
    return page.locator("#zf-messages tr").filter(has=cell).first


def publish_until_row(page, pub: zmq.Socket, frames: list[bytes]):
    """PUB/SUB joins late: publish until a row with the message's ZeroMQ topic is shown.

    Copies published meanwhile may still arrive and go on top, so the row returned is the
    first one shown, held by its seq.
    """
    newest = row_of(page, frames[0].decode())
    until(
        lambda: newest.count() > 0,
        f"a row for {frames[0]!r}",
        act=lambda: pub.send_multipart(frames),
    )
    seq = newest.locator("td.zf-num").text_content()  # one topic on the page: seqs are unique
    return page.locator("#zf-messages tr").filter(
        has=page.locator("td.zf-num", has_text=re.compile(f"^{seq}$"))
    )


def open_live_page(page, server: Server, feed: str) -> None:
    page.goto(f"{server.http}/zmqfeed/{feed}/")
    page.wait_for_selector('#zf-state[data-state="open"]', timeout=15_000)


def fits_its_column(page) -> bool:
    """Nothing in the table is wider than the table's box (no sideways scrolling)."""
    return page.evaluate(
        "(() => { const f = document.querySelector('.zf-feed'); "
        "return f.scrollWidth <= f.clientWidth; })()"
    )


NESTED = {
    "order": {"id": 123456, "side": "buy", "px": 1.0523, "qty": 2500000, "tags": ["algo", "eu"]},
    "fills": [{"px": 1.0521 + i / 10000, "qty": 100000 * (i + 1)} for i in range(6)],
    "meta": {"host": "pricer-03.internal", "trace": "x" * 150},
    "ok": True,
}


def test_nested_json_is_pretty_printed_and_folds(stack, page):
    _site, server, pubs = stack
    open_live_page(page, server, "b-json")
    row = publish_until_row(page, pubs["json"], [b"nested", json.dumps(NESTED).encode()])
    data = row.locator("td.zf-data")
    top = data.locator(".zf-json > details.zf-j-node")
    summary = top.locator("> summary")

    # Big: it starts folded to one line, `{4 keys}` and a preview, and nothing else shows.
    assert top.get_attribute("open") is None
    assert summary.inner_text().startswith("{4 keys}"), summary.inner_text()
    assert '"side": "buy"' not in data.inner_text()
    assert data.bounding_box()["height"] < 40, "a folded value takes one line"

    summary.click()
    assert top.get_attribute("open") is not None
    expect(data).to_contain_text('"side": "buy"', use_inner_text=True)  # built when opened
    text = data.inner_text()
    assert '"side": "buy",' in text.splitlines(), text  # one member a line
    assert len(text.splitlines()) > 10, text
    # Pretty: members sit indented under their parent.
    outer = data.locator(".zf-j-key", has_text='"order"').bounding_box()
    inner = data.locator(".zf-j-key", has_text='"side"').bounding_box()
    assert inner["x"] > outer["x"] + 5 and inner["y"] > outer["y"]
    assert fits_its_column(page), "a long value must wrap, not widen the table"

    # A member folds on its own.
    order = data.locator(".zf-j-kids > details.zf-j-node").filter(
        has=page.locator("> summary .zf-j-key", has_text='"order"')
    )
    order.locator("> summary").click()
    expect(data).not_to_contain_text('"side": "buy"', use_inner_text=True)
    assert '"order": {5 keys},' in data.inner_text()
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / "live-json-nested.png"), full_page=True)

    # A short value stays on one line, exactly as JSON.
    row = publish_until_row(page, pubs["json"], [b"short", b'{"bid": 1.05, "n": [1, 2]}'])
    short = row.locator("td.zf-data")
    assert short.text_content() == '{"bid":1.05,"n":[1,2]}'
    assert short.locator("details").count() == 0
    assert page.errors == []


def test_text_feed_shows_text_as_written(stack, page):
    _site, server, pubs = stack
    open_live_page(page, server, "b-text")
    written = "first line\n    indented <b>second</b>\tline"
    row = publish_until_row(page, pubs["text"], [b"log.one", written.encode()])
    data = row.locator("td.zf-data")
    assert data.text_content() == written
    assert data.inner_text() == written  # line breaks, indentation and tabs kept (pre-wrap)
    assert data.locator("b").count() == 0

    # Long text folds to its first line and opens on a click.
    long = "\n".join(f"line {n} of the log" for n in range(30))
    row = publish_until_row(page, pubs["text"], [b"log.long", long.encode()])
    fold = row.locator("td.zf-data > details")
    assert fold.locator("> summary").inner_text().startswith("line 0 of the log")
    assert "30 lines" in fold.locator("> summary").inner_text()
    assert "line 29 of the log" not in fold.inner_text()
    fold.locator("> summary").click()
    expect(fold).to_contain_text("line 29 of the log", use_inner_text=True)
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / "live-text.png"), full_page=True)
    assert page.errors == []


def jupyter_message(msg_type: str, content: dict) -> dict:
    return {
        "header": {"msg_id": "m-1", "msg_type": msg_type, "session": "s", "username": "u",
                   "date": "2025-01-01T00:00:00Z", "version": "5.3"},
        "parent_header": {"msg_id": "r-1", "msg_type": "execute_request"},
        "metadata": {},
        "content": content,
        "buffers": [],
    }  # fmt: skip


def test_jupyter_shaped_json_shows_its_type_and_text(stack, page):
    _site, server, pubs = stack
    open_live_page(page, server, "b-json")
    message = jupyter_message("stream", {"name": "stdout", "text": "hello from the kernel\n"})
    row = publish_until_row(page, pubs["json"], [b"iopub", json.dumps(message).encode()])
    data = row.locator("td.zf-data")
    assert data.get_attribute("data-kind") == "jupyter"
    assert data.locator(".zf-jup-type").text_content() == "stream"
    assert data.locator(".zf-jup-text").text_content() == "hello from the kernel"
    assert data.locator(".zf-jup-text").is_visible()

    # The whole message is there on a click.
    raw = data.locator("details.zf-jup-raw")
    assert '"msg_type": "stream"' not in raw.inner_text()
    raw.locator("> summary").click()
    expect(raw).to_contain_text('"msg_type": "stream",', use_inner_text=True)
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / "live-jupyter.png"), full_page=True)
    assert page.errors == []


def test_binary_feed_shows_size_and_first_bytes(stack, page):
    _site, server, pubs = stack
    open_live_page(page, server, "b-binary")
    row = publish_until_row(page, pubs["binary"], [b"blob", bytes(range(42))])
    data = row.locator("td.zf-data")
    summary = data.locator("details.zf-bytes > summary")
    assert data.get_attribute("data-encoding") == "base64"
    assert summary.locator(".zf-size").text_content() == "42 B"
    assert summary.locator(".zf-first").text_content() == "· 0001020304050607…"
    assert "AAECAwQF" not in data.inner_text(), "the base64 text is not shown folded"
    assert data.bounding_box()["height"] < 40

    summary.click()
    expect(data.locator(".zf-dump")).to_be_visible()
    dump = data.locator(".zf-dump").inner_text()
    assert dump.startswith("00000000  00 01 02 03 04 05 06 07"), dump
    assert "28 29" in dump  # the last bytes, 0x28 and 0x29
    assert fits_its_column(page)

    row = publish_until_row(page, pubs["binary"], [b"tiny", b"\x00\xff\x10"])
    tiny = row.locator("td.zf-data summary")
    assert tiny.locator(".zf-size").text_content() == "3 B"
    assert tiny.locator(".zf-first").text_content() == "· 00ff10"  # all of it: no ellipsis
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / "live-binary.png"), full_page=True)
    assert page.errors == []


def upcoming_envelopes(ws, frame):
    """Envelope fields no feed of today's server sends: upstream_seq, parts, hex, an error."""
    if frame["type"] == "ping":
        reply(ws, frame, type="pong")
    elif frame["type"] == "subscribe":
        reply(ws, frame, type="subscribed", feed="f", topic=frame["topic"], seq=0)
        traceback = ["\x1b[0;31mZeroDivisionError\x1b[0m  Traceback", "----> 1 \x1b[38;5;241m1/0"]
        error = jupyter_message(
            "error",
            {"ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": traceback},
        )
        envelopes = [
            {"data": {"px": 1}, "upstream_seq": 9001, "parts": ["second frame", {"k": [1, 2]}]},
            {"data": "0a1b2c3d4e5f60718293", "encoding": "hex"},
            {"data": error},
        ]
        send(ws, {"type": "batch", "messages": [
            {"type": "message", "feed": "f", "topic": frame["topic"], "zmq_topic": f"up.{n}",
             "seq": n, "ts": 1.0, **envelope}
            for n, envelope in enumerate(envelopes, 1)
        ]})  # fmt: skip


def test_upcoming_envelope_fields_are_shown(stack, page):
    """upstream_seq, parts, hex and a Jupyter error, from a scripted server on the live page.

    The live page as daphne renders it, with its WebSocket pointed at the script, is served
    by the script itself (a page fulfilled by Playwright may not open a WebSocket to
    loopback), its scripts and styles still from daphne.
    """
    _site, server, _pubs = stack
    with urllib.request.urlopen(f"{server.http}/zmqfeed/b-json/", timeout=10) as response:
        html = response.read().decode()
    script = Script([upcoming_envelopes])
    html = html.replace('="/static/', f'="{server.http}/static/').replace(
        'data-feed="b-json"', f'data-feed="f" data-ws-url="ws://127.0.0.1:{script.port}/ws/"'
    )
    assert f"{server.http}/static/zmqfeed/live.js" in html and "data-ws-url" in html
    script.page = html
    try:
        page.goto(f"http://127.0.0.1:{script.port}/zmqfeed/")
        until(lambda: row_of(page, "up.3").count() > 0, "the scripted messages")

        first = row_of(page, "up.1")
        assert page.locator("th.zf-col-upstream").is_visible()
        assert first.locator("td.zf-upstream").text_content() == "9001"
        parts = first.locator("details.zf-parts")
        assert parts.locator("> summary").inner_text() == "+ 2 parts"
        parts.locator("> summary").click()
        expect(parts.locator("li")).to_have_count(2)
        assert parts.locator("li").all_inner_texts() == ["second frame", '{"k":[1,2]}']

        hex_row = row_of(page, "up.2").locator("td.zf-data summary")
        assert hex_row.locator(".zf-size").text_content() == "10 B"
        assert hex_row.locator(".zf-first").text_content() == "· 0a1b2c3d4e5f6071…"

        error = row_of(page, "up.3").locator("td.zf-data")
        assert error.locator(".zf-jup-type").text_content() == "error"
        summary = error.locator(".zf-jup-error").text_content()
        assert summary == "ZeroDivisionError: division by zero"
        error.locator("details.zf-jup-tb > summary").click()
        expect(error.locator("details.zf-jup-tb .zf-text")).to_be_visible()
        traceback = error.locator("details.zf-jup-tb .zf-text").text_content()
        assert traceback == "ZeroDivisionError  Traceback\n----> 1 1/0", repr(traceback)
        if SHOTS:
            page.screenshot(path=str(Path(SHOTS) / "live-upcoming.png"), full_page=True)
        assert page.errors == []
    finally:
        script.close()


# The client library against a scripted server.


class Script:
    """A WebSocket server that plays one scene per connection and records what it hears."""

    def __init__(
        self, scenes: list[Callable[[ServerConnection, dict], None]], page: str | None = None
    ) -> None:
        self.scenes = scenes
        self.page = page  # HTML answered to a plain GET (no WebSocket upgrade), if any
        self.heard: list[tuple[int, dict]] = []
        self.connections = 0
        self.server = serve(self._handle, "127.0.0.1", 0, process_request=self._http)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _http(self, ws: ServerConnection, request: Request) -> Response | None:
        if self.page is None or "upgrade" in request.headers.get("Connection", "").lower():
            return None
        headers = Headers({"Content-Type": "text/html; charset=utf-8"})
        return Response(200, "OK", headers, self.page.encode())

    def _handle(self, ws: ServerConnection) -> None:
        n = self.connections
        self.connections += 1
        scene = self.scenes[min(n, len(self.scenes) - 1)]
        try:
            for text in ws:
                frame = json.loads(text)
                self.heard.append((n, frame))
                scene(ws, frame)
        except ConnectionClosed:
            pass  # the scenes and the client's dead-connection check close on purpose

    def frames(self, kind: str) -> list[tuple[int, dict]]:
        return [(n, f) for n, f in self.heard if f["type"] == kind]

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


def msg(seq: int, data: object = None) -> dict:
    return {"type": "message", "feed": "f", "topic": "t", "zmq_topic": "z", "seq": seq,
            "ts": 1.0, "data": seq if data is None else data}  # fmt: skip


def send(ws: ServerConnection, *frames: dict) -> None:
    for frame in frames:
        ws.send(json.dumps(frame))


def reply(ws: ServerConnection, frame: dict, **fields) -> None:
    send(ws, {"type": fields.pop("type"), "id": frame["id"], **fields})


def first_connection(ws, frame):
    """Latest seq 5; then 6, a batch 7, 8 and a repeated 7, then 11 (9 and 10 lost); then drop."""
    if frame["type"] == "ping":
        reply(ws, frame, type="pong")
    elif frame["type"] == "subscribe":
        reply(ws, frame, type="subscribed", feed="f", topic="t", seq=5, epoch="A")
        send(ws, msg(6), {"type": "batch", "messages": [msg(7), msg(8), msg(7)]}, msg(11))
        ws.close(1011)


def second_connection(ws, frame):
    """Not recovered: 12 is gone from the history (a gap), 13 replayed; then answer one ping
    and go silent."""
    if frame["type"] == "subscribe":
        reply(ws, frame, type="subscribed", feed="f", topic="t", seq=13, epoch="A", recovered=False)
        gap = {"type": "gap", "feed": "f", "topic": "t", "from_seq": 12, "to_seq": 12}
        send(
            ws,
            {**gap, "reason": "history"},
            {"type": "batch", "replayed": True, "messages": [msg(13)]},
        )
    elif frame["type"] == "ping" and not getattr(ws, "ponged", False):
        ws.ponged = True
        reply(ws, frame, type="pong")


def third_connection(ws, frame):
    """A restarted server: a new epoch at seq 1, which it replays; then 2, live."""
    if frame["type"] == "ping":
        reply(ws, frame, type="pong")
    elif frame["type"] == "subscribe" and frame["topic"] == "t":
        reply(ws, frame, type="subscribed", feed="f", topic="t", seq=1, epoch="B", recovered=False)
        send(ws, {"type": "batch", "replayed": True, "messages": [msg(1)]}, msg(2))
    elif frame["type"] == "subscribe":
        reply(ws, frame, type="error", code="forbidden", detail="not yours")
    elif frame["type"] == "unsubscribe":
        reply(ws, frame, type="unsubscribed", feed=frame["feed"], topic=frame["topic"])


HARNESS = """
([url, options]) => {
  window.events = [];
  const feed = new ZmqFeed(url, options);
  window.feed = feed;
  feed.on("state", (s) => events.push(["state", s]));
  feed.on("gap", (g) => events.push(["gap", g.from_seq, g.to_seq, g.reason]));
  feed.on("reset", (r) =>
    events.push(["reset", r.lastSeq, r.seq, r.previousEpoch, r.epoch, r.renumbered]));
  feed.on("subscribed", (s) => events.push(["subscribed", s.epoch, s.recovered]));
  feed.on("error", (e) => events.push(["error", e.code, e.topic || null]));
  feed.on("unsubscribed", (u) => events.push(["unsubscribed", u.topic]));
  feed.subscribe("f", "t", (m) => events.push(["msg", m.seq]));
  feed.on("message", (m) => m.replayed && events.push(["replayed", m.seq]));
}
"""


def load_client(page, url: str, **options) -> None:
    page.set_content("<!doctype html><title>client</title>")
    page.add_script_tag(path=str(CLIENT_JS))
    page.evaluate(HARNESS, [url, options])


def events(page, kind: str) -> list[list]:
    return [e[1:] for e in page.evaluate("window.events") if e[0] == kind]


def test_client_recovers_in_order_without_duplicates(page):
    script = Script([first_connection, second_connection, third_connection])
    try:
        load_client(
            page,
            f"ws://127.0.0.1:{script.port}/ws/zmqfeed/",
            minDelay=50,
            maxDelay=200,
            pingInterval=300,
            pongTimeout=300,
        )
        until(lambda: [2] in events(page, "msg"), "the message after the third connection")
        assert [s for (s,) in events(page, "msg")] == [6, 7, 8, 11, 13, 1, 2]
        assert events(page, "gap") == [[9, 10, "missed"], [12, 12, "history"]]
        # Continuity broken twice: messages lost in the same numbering, then a new one.
        assert events(page, "reset") == [[11, 13, "A", "A", False], [13, 1, "A", "B", True]]
        assert events(page, "subscribed") == [["A", None], ["A", False], ["B", False]]
        assert [s for (s,) in events(page, "replayed")] == [13, 1]
        states = [s for (s,) in events(page, "state")]
        assert states == ["open", "reconnecting", "open", "reconnecting", "open"], states
        assert page.evaluate("window.feed.duplicates") == 1

        subscribes = [(n, f.get("since"), f.get("epoch")) for n, f in script.frames("subscribe")]
        # No `since` at first; then the last seq seen, with its epoch; then the same after
        # the replay.
        assert subscribes == [(0, None, None), (1, 11, "A"), (2, 13, "A")]
        assert all(isinstance(f["id"], str) for _, f in script.heard)
        assert [n for n, _ in script.frames("ping")][:2] == [1, 1]

        # A refused subscription is dropped and reported; unsubscribe reaches the server.
        page.evaluate("void window.feed.subscribe('f', 'secret', () => {})")
        until(lambda: ["unsubscribed", "secret"] in page.evaluate("window.events"), "the refusal")
        assert ["forbidden", "secret"] in events(page, "error")
        assert not page.evaluate("window.feed.isSubscribed('f', 'secret')")
        page.evaluate("window.feed.unsubscribe('f', 't')")
        until(lambda: script.frames("unsubscribe"), "the unsubscribe frame")
        assert [f["topic"] for _, f in script.frames("unsubscribe")] == ["t"]
        assert page.errors == []
    finally:
        page.evaluate("window.feed && window.feed.close()")
        script.close()


def test_client_backs_off_with_jitter_up_to_the_cap(page):
    port = free_port()  # nothing listens: every attempt is refused
    page.set_content("<!doctype html><title>client</title>")
    page.add_script_tag(path=str(CLIENT_JS))
    delays = page.evaluate(
        """(url) => new Promise((resolve) => {
            const delays = [];
            const feed = new ZmqFeed(url, {minDelay: 20, maxDelay: 160, transport: "websocket"});
            feed.on("state", (state, detail) => {
              if (state !== "reconnecting" || detail.delay === undefined) return;
              delays.push(detail.delay);
              if (delays.length === 7) { feed.close(); resolve(delays); }
            });
        })""",
        f"ws://127.0.0.1:{port}/ws/zmqfeed/",
    )
    for attempt, delay in enumerate(delays):
        ceiling = min(160, 20 * 2**attempt)
        assert ceiling / 2 <= delay <= ceiling, (attempt, delays)
