"""README "Plugging into an existing site", done as a new user does it, from its own text.

A fresh `startproject`, the README's snippets taken from README.md at test time (so the test
fails when the README drifts), zmqfeed installed from a wheel into a fresh virtualenv (the
test environment's packages reached through a .pth file, so it runs offline), then daphne,
the README's producer, a WebSocket client and chromium on the live page.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect

from .conftest import ROOT, free_port, skip_or_fail, stop, wait_for_port

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
SECTION = "## Plugging into an existing site"


def readme_snippets() -> list[tuple[str, str]]:
    """(first comment line, body) of each fenced block of the README's plug-in section."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", section, flags=re.S | re.M)
    out = []
    for block in blocks:
        first, _, body = block.partition("\n")
        out.append((first.lstrip("#<!-/ ").rstrip("-> ").strip(), body))
    return out


def snippet(prefix: str) -> tuple[str, str]:
    found = [(head, body) for head, body in readme_snippets() if head.startswith(prefix)]
    assert len(found) == 1, f"README: no single snippet headed {prefix!r}"
    return found[0]


def test_readme_snippets_name_their_files():
    heads = [head for head, _ in readme_snippets()]
    for name in ("mysite/settings.py", "mysite/urls.py", "mysite/asgi.py"):
        assert any(h.startswith(name) for h in heads), heads
    assert sum(h.startswith("shell") for h in heads) >= 3, heads


def _wheel(tmp: Path) -> Path:
    """A wheel of this repository, built from a copy (the source tree gets no build/)."""
    src = tmp / "zmqfeed-src"
    src.mkdir()
    shutil.copytree(ROOT / "zmqfeed", src / "zmqfeed", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    dist = tmp / "dist"
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(src)]
    built = subprocess.run(pip, capture_output=True, text=True, timeout=180)
    if built.returncode:  # no index for the build backend: the one installed here
        subprocess.run([*pip, "--no-build-isolation"], check=True, timeout=180)
    (wheel,) = dist.glob("zmqfeed-*.whl")
    return wheel


def _venv(tmp: Path, wheel: Path) -> tuple[Path, dict[str, str]]:
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # This environment's packages (Django, Channels, daphne...) after the venv's own.
    outer = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "outer-env.pth").write_text("".join(f"{p}\n" for p in sorted(outer)))
    install = ["install", "-q", "--no-deps", "--no-index", str(wheel)]
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), *install],
        check=True,
        timeout=120,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE")}
    env.update(PATH=f"{venv / 'bin'}:{env['PATH']}", PYTHONUNBUFFERED="1", VIRTUAL_ENV=str(venv))
    where = subprocess.run(
        [python, "-c", "import zmqfeed; print(zmqfeed.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp,
        check=True,
    ).stdout.strip()
    assert where.startswith(site), f"zmqfeed imported from {where}, not the new venv {site}"
    return python, env


def _apply(project: Path, head: str, body: str) -> None:
    name = head.split()[0]
    target = project.parent / name
    if "(add at the end)" in head:
        target.write_text(target.read_text() + "\n" + body)
    else:
        assert "(the whole file)" in head, head
        target.write_text(body)


def test_startproject_with_the_readme(tmp_path: Path):
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"{CHROMIUM} is missing: apt-get install chromium (or `make browser`)")
    python, env = _venv(tmp_path, _wheel(tmp_path))
    zmq_port = str(free_port())
    subprocess.run([python, "-m", "django", "startproject", "mysite"], cwd=tmp_path, check=True)
    site = tmp_path / "mysite"
    for name in ("mysite/settings.py", "mysite/urls.py", "mysite/asgi.py"):
        _apply(site / "mysite", *snippet(name))

    _, setup = snippet("shell, in the directory of manage.py")
    subprocess.run(
        ["bash", "-e", "-c", setup.replace("5556", zmq_port)],
        cwd=site,
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
    )
    checked = subprocess.run(
        [python, "manage.py", "check"], cwd=site, env=env, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr

    _, run = snippet("shell: the server")
    lines = [ln.split("#", 1)[0].strip() for ln in run.splitlines()]
    (server_line,) = [ln for ln in lines if ln.startswith("daphne ")]
    (producer_line,) = [ln for ln in lines if "zmq_publish" in ln]
    port = free_port()
    procs = []
    logs = tmp_path / "logs"
    logs.mkdir()
    try:
        server_cmd = [python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
        server_cmd += server_line.split()[1:]
        with open(logs / "daphne.log", "w") as log:
            procs.append(subprocess.Popen(server_cmd, cwd=site, env=env, stdout=log, stderr=log))
        wait_for_port(port, procs[0])
        producer = producer_line.replace("5556", zmq_port).split()
        assert producer[:2] == ["python", "manage.py"], producer_line
        with open(logs / "producer.log", "w") as log:
            procs.append(
                subprocess.Popen([python, *producer[1:]], cwd=site, env=env, stdout=log, stderr=log)
            )
        base = f"http://127.0.0.1:{port}"

        with connect(f"ws://127.0.0.1:{port}/ws/zmqfeed/", open_timeout=10) as ws:
            ws.send(json.dumps({"type": "subscribe", "feed": "demo", "topic": "all"}))
            deadline = time.monotonic() + 20
            got = None
            while got is None and time.monotonic() < deadline:
                frame = json.loads(ws.recv(timeout=20))
                if frame["type"] == "error" and frame.get("code") == "not_found":
                    time.sleep(0.3)
                    ws.send(json.dumps({"type": "subscribe", "feed": "demo", "topic": "all"}))
                elif frame["type"] in ("message", "batch"):
                    got = frame
            assert got is not None, (logs / "daphne.log").read_text()

        html = urllib.request.urlopen(f"{base}/live/demo/", timeout=10).read().decode()
        assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', html)
        assert any(a.endswith(".css") for a in assets) and any(a.endswith(".js") for a in assets)
        for asset in assets:
            with urllib.request.urlopen(base + asset, timeout=10) as reply:
                assert reply.status == 200, asset
        assert 'href="/admin/login/?next=/live/demo/"' in html  # LOGIN_URL, resolved

        from playwright.sync_api import expect, sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                page = browser.new_page()
                page.goto(f"{base}/live/demo/")
                expect(page.locator("#zf-messages tr").first).to_be_visible(timeout=20_000)
                expect(page.locator("#zf-messages tr .zf-zmq-topic").first).to_contain_text("demo.")
            finally:
                browser.close()
    finally:
        for proc in procs:
            stop(proc)
