"""docs/SECURITY.md names a test for every threat, docs/COVERAGE.md one for every kind of gap in the coverage
report: each named test must exist (the suite runs it)."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_REF = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def test_security_doc__every_named_test__exists():
    text = (ROOT / "docs" / "SECURITY.md").read_text()
    refs = TEST_REF.findall(text)
    threat_rows = [line for line in text.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(threat_rows) >= 40
    # Every threat row names exactly one test.
    assert all(len(TEST_REF.findall(row)) == 1 for row in threat_rows)
    missing = [f"{file}::{name}" for file, name in refs if name not in _test_names(ROOT / file)]
    assert missing == []


def test_coverage_doc__every_named_test__exists():
    text = (ROOT / "docs" / "COVERAGE.md").read_text()
    refs = TEST_REF.findall(text)
    assert len(refs) >= 8
    missing = [f"{file}::{name}" for file, name in refs if name not in _test_names(ROOT / file)]
    assert missing == []
    named_files = re.findall(r"`(tests/[\w/]+\.py)`", text)
    assert [file for file in named_files if not (ROOT / file).is_file()] == []
