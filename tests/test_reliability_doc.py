"""docs/reliability.md: its one table names, for each condition, tests that exist."""

from __future__ import annotations

import importlib
import re

from tests.conftest import ROOT

DOC = ROOT / "docs" / "reliability.md"
NAME = re.compile(r"(tests/test_\w+\.py)::(test_\w+)")


def _rows() -> list[list[str]]:
    rows = []
    for line in DOC.read_text().splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_every_row_names_tests_that_exist():
    header, *rows = _rows()
    assert header == ["condition", "what zmqfeed promises", "the test that proves it"]
    assert len(rows) >= 10
    for condition, promise, tests in rows:
        names = NAME.findall(tests)
        assert condition and promise and names, f"row {condition!r} names no test"
        assert NAME.sub("", tests).strip(" ,") == "", f"row {condition!r}: {tests!r}"
        for path, function in names:
            assert (ROOT / path).exists(), path
            module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
            assert callable(getattr(module, function, None)), f"{path}::{function} does not exist"


def test_the_standalone_doc_refers_to_no_issue_nor_design_document():
    text = DOC.read_text()
    assert "DESIGN.md" not in text
    assert not re.search(r"(?<![\w/])#\d+", text), "an issue number"


def test_the_readme_links_it():
    assert "(docs/reliability.md)" in (ROOT / "README.md").read_text()
