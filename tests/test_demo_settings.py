"""The demo's settings from a bare shell: one line instead of a traceback, a kept dev key."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

KEY_FILE = ".dev-secret-key"
PRINT_KEY = (
    "import hashlib; from django.conf import settings; "
    "print(hashlib.sha256(settings.SECRET_KEY.encode()).hexdigest())"
)


def manage(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """manage.py with nothing of this shell's environment but PATH: as a new user runs it."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=cwd,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def checkout(tmp_path: Path) -> Path:
    """The demo site alone in a fresh directory, so that its key file starts absent."""
    shutil.copytree(
        ROOT / "project", tmp_path / "project", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "manage.py", tmp_path / "manage.py")
    return tmp_path


def test_without_a_secret_key_manage_py_says_what_to_set_in_one_line() -> None:
    result = manage(ROOT, "check")
    assert result.returncode != 0
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert "set DJANGO_SECRET_KEY" in line and "DJANGO_DEBUG=1 for development" in line


def test_a_development_key_is_made_once_and_kept(tmp_path: Path) -> None:
    site = checkout(tmp_path)
    first = manage(site, "shell", "-v", "0", "-c", PRINT_KEY, DJANGO_DEBUG="1")
    assert first.returncode == 0, first.stderr
    key_file = site / KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in site.iterdir() if p.name.startswith(KEY_FILE)] == [KEY_FILE]
    again = manage(site, "shell", "-v", "0", "-c", PRINT_KEY, DJANGO_DEBUG="1")
    assert again.stdout == first.stdout  # a restart keeps sessions and tokens
    digest = hashlib.sha256(key_file.read_text().strip().encode()).hexdigest()
    assert first.stdout.strip() == digest

    key_file.unlink()
    fresh = manage(site, "shell", "-v", "0", "-c", PRINT_KEY, DJANGO_DEBUG="1")
    assert fresh.stdout != first.stdout  # random, not a constant of the source
    assert manage(site, "check", DJANGO_DEBUG="1").returncode == 0


def test_a_given_secret_key_is_used_and_no_file_is_made(tmp_path: Path) -> None:
    site = checkout(tmp_path)
    result = manage(site, "shell", "-v", "0", "-c", PRINT_KEY, DJANGO_SECRET_KEY="k" * 50)
    assert result.stdout.strip() == hashlib.sha256(b"k" * 50).hexdigest(), result.stderr
    assert not (site / KEY_FILE).exists()


def test_the_key_file_is_not_tracked() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", KEY_FILE], cwd=ROOT)
    assert ignored.returncode == 0
