"""pyproject.toml and requirements.txt tell one story: the same ranges, one version, one licence."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import zmqfeed

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]

# What zmqfeed itself imports: both files must name each of them.
RUNTIME = [
    "django",
    "channels",
    "daphne",
    "pyzmq",
    "channels-redis",
    "redis",
    "orjson",
    "prometheus-client",
]


def _by_name(lines: list[str]) -> dict[str, Requirement]:
    reqs = [Requirement(line) for line in lines]
    by_name = {canonicalize_name(r.name): r for r in reqs}
    assert len(by_name) == len(reqs), f"a package is named twice: {lines}"
    return by_name


def requirements_txt() -> dict[str, Requirement]:
    lines = []
    for raw in (ROOT / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            lines.append(line)
    return _by_name(lines)


def pyproject(extras: bool = True) -> dict[str, Requirement]:
    lines = list(PROJECT["dependencies"])
    if extras:
        for group in PROJECT.get("optional-dependencies", {}).values():
            lines += group
    return _by_name(lines)


def test_both_files_name_every_runtime_dependency():
    txt, toml = requirements_txt(), pyproject()
    for name in RUNTIME:
        assert name in toml, f"pyproject.toml does not name {name}"
        assert name in txt, f"requirements.txt does not name {name}"


def test_requirements_txt_installs_all_that_the_package_declares():
    missing = sorted(set(pyproject()) - set(requirements_txt()))
    assert not missing, f"in pyproject.toml but not requirements.txt: {missing}"


def test_packages_named_in_both_files_have_the_same_range():
    txt, toml = requirements_txt(), pyproject()
    differ = {
        name: (str(toml[name].specifier), str(txt[name].specifier))
        for name in sorted(set(txt) & set(toml))
        if (toml[name].specifier, toml[name].extras) != (txt[name].specifier, txt[name].extras)
    }
    assert not differ, f"pyproject.toml vs requirements.txt: {differ}"


def test_redis_is_an_extra_not_a_requirement():
    assert {"channels-redis", "redis"}.isdisjoint(pyproject(extras=False))
    extra = _by_name(PROJECT["optional-dependencies"]["redis"])
    assert set(extra) == {"channels-redis", "redis"}


def test_the_django_range_admits_the_classified_versions_and_not_django_6():
    django = pyproject()["django"].specifier
    classified = [
        c.rsplit("::", 1)[1].strip()
        for c in PROJECT["classifiers"]
        if re.fullmatch(r"Framework :: Django :: [\d.]+", c)
    ]
    assert classified
    for version in classified:
        assert django.contains(f"{version}.0"), f"{django} excludes Django {version}"
    # Django 6 needs Python 3.12; requires-python admits 3.10 and nothing tests 6 here.
    assert not django.contains("6.0")


def test_the_version_has_one_source():
    assert "version" not in PROJECT
    assert "version" in PROJECT["dynamic"]
    dynamic = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "zmqfeed.__version__"}
    Version(zmqfeed.__version__)  # a valid version


def test_the_installed_metadata_has_that_version():
    try:
        installed = importlib.metadata.version("zmqfeed")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("zmqfeed is not installed (pip install --no-deps -e .)")
    assert installed == zmqfeed.__version__, "stale install: pip install --no-deps -e ."


def test_the_licence_is_mit_in_metadata_and_file():
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 zmqfeed contributors" in text
    licence_classifiers = [c for c in PROJECT["classifiers"] if c.startswith("License ::")]
    assert not licence_classifiers, "with a licence expression, no License :: classifier"


def test_package_data_takes_every_template_and_static_file():
    """A file the globs miss is absent from the wheel: a page without its script or chart."""
    globs = PYPROJECT["tool"]["setuptools"]["package-data"]["zmqfeed"]
    package = ROOT / "zmqfeed"
    files = [
        path.relative_to(package)
        for folder in ("templates", "static")
        for path in (package / folder).rglob("*")
        if path.is_file()
    ]
    assert any(f.parts[-2:] == ("uplot", "LICENSE") for f in files), "uPlot's licence"
    # Path.match matches from the right: the same depth makes it a match of the whole path.
    missed = [
        str(f)
        for f in files
        if not any(len(f.parts) == len(Path(g).parts) and f.match(g) for g in globs)
    ]
    assert not missed, f"not in [tool.setuptools.package-data]: {missed}"
