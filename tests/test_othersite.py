"""A hand-written site (tests/sites/othersite) with zmqfeed in its own look, under daphne.

Its own base template, login page (/signin/), zmqfeed at /streams/, a WebSocket route of its
own beside zmqfeed's in its own AuthMiddlewareStack, and a page of its own that uses
zmqfeed.js. The README shows these files: they must be the same text.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import zmq
from websockets.sync.client import connect

from .conftest import PYTHON, ROOT, free_port, skip_or_fail, stop, wait_for_port
from .support import feed_doc

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
SITES = ROOT / "tests" / "sites"
SHOTS = os.environ.get("ZMQFEED_SCREENSHOTS")


def test_the_readme_shows_the_sites_files_as_they_are():
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(
        r"^```[a-z]*\n[#<!\- ]*(othersite/\S+) \(?([^\n]*)\n(.*?)^```", text, re.S | re.M
    )
    names = {name for name, _, _ in blocks}
    assert {"othersite/asgi.py", "othersite/settings.py"} <= names, names
    for name, note, body in blocks:
        source = (SITES / name).read_text()
        if "the whole file" in note or name.endswith((".html", "asgi.py")):
            assert body == source, f"README's {name} differs from tests/sites/{name}"
        else:
            assert body in source, f"README's {name} lines are not in tests/sites/{name}"


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return reply.status, reply.read().decode()


def _recv_until(ws, wanted, resend=None, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if frame.get("type") == "error" and frame.get("code") == "not_found" and resend:
            time.sleep(0.3)  # the feed just imported has not reached the server yet
            resend()
        elif wanted(frame):
            return frame
    raise AssertionError("no such frame")


def test_othersite_end_to_end(tmp_path: Path):
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"{CHROMIUM} is missing: apt-get install chromium (or `make browser`)")
    zmq_port, port = free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONPATH": f"{SITES}{os.pathsep}{ROOT}",
        "DJANGO_SETTINGS_MODULE": "othersite.settings",
        "OTHERSITE_DB": str(tmp_path / "db.sqlite3"),
        "PYTHONUNBUFFERED": "1",
    }

    def manage(*args: str, input: str | None = None) -> None:
        subprocess.run(
            [PYTHON, "-m", "django", *args],
            cwd=tmp_path,
            env=env,
            input=input,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )

    manage("migrate", "--noinput", "-v", "0")
    doc = feed_doc(
        "demo", f"tcp://127.0.0.1:{zmq_port}", [{"slug": "all", "prefix": "demo"}], name="Demo"
    )
    manage("zmq_feeds", "import", "-", input=json.dumps({"feeds": [doc]}))

    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.bind(f"tcp://127.0.0.1:{zmq_port}")
    done = threading.Event()

    def publish() -> None:  # a steady trickle, so that each reader sees messages whenever it joins
        n = 0
        while not done.wait(0.1):
            pub.send_multipart([b"demo.tick", json.dumps({"n": n}).encode()])
            n += 1

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    log = open(tmp_path / "daphne.log", "w")  # noqa: SIM115  (open for the server's life)
    server = subprocess.Popen(
        [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "othersite.asgi:application"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, server)
        origin = {"origin": base}  # AllowedHostsOriginValidator refuses clients without one
        with connect(f"ws://127.0.0.1:{port}/ws/zmqfeed/", open_timeout=10, **origin) as ws:
            sub = json.dumps({"type": "subscribe", "feed": "demo", "topic": "all"})
            ws.send(sub)
            _recv_until(ws, lambda f: f["type"] in ("message", "batch"), lambda: ws.send(sub))
        with connect(f"ws://127.0.0.1:{port}/ws/echo/", open_timeout=10, **origin) as ws:
            ws.send(json.dumps({"hello": 1}))
            assert json.loads(ws.recv(timeout=10)) == {"echo": {"hello": 1}, "user": None}

        status, html = _get(f"{base}/streams/demo/")
        assert status == 200
        assert '<header class="site-header">Other site' in html  # the site's base template
        assert "zf-bar" not in html  # not zmqfeed's own layout
        assert 'href="/signin/?next=/streams/demo/"' in html  # its LOGIN_URL, resolved
        status, listing = _get(f"{base}/streams/")
        assert status == 200 and "Other site" in listing
        assert 'href="/signin/?next=/"' in _get(f"{base}/")[1]  # the context processor
        for asset in re.findall(r'(?:href|src)="(/static/[^"]+)"', html):
            assert _get(base + asset)[0] == 200, asset
        assert _get(f"{base}/signin/?next=/streams/demo/")[0] == 200

        from playwright.sync_api import expect, sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                page = browser.new_page()
                page.goto(f"{base}/")  # the site's own page, with zmqfeed.js
                expect(page.locator("#ticker li").first).to_contain_text(
                    "demo.tick", timeout=20_000
                )
                page.goto(f"{base}/streams/demo/")  # zmqfeed's live page in the site's look
                expect(page.locator("header.site-header")).to_be_visible()
                expect(page.locator("#zf-messages tr").first).to_be_visible(timeout=20_000)
                if SHOTS:
                    page.screenshot(path=str(Path(SHOTS) / "othersite-live.png"))
            finally:
                browser.close()
    finally:
        done.set()
        publisher.join()
        stop(server)
        log.close()
        pub.close(linger=0)
        ctx.term()
