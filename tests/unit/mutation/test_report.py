"""docs/MUTATION.md: its equivalence notes name mutants the generator still makes, with a reason, and its
generated report is from the current sources, lists every note, and meets the target score."""

import tomllib
from collections import Counter
from pathlib import Path

from perun_vyper.tools.mutation.mutants import generate
from perun_vyper.tools.mutation.report import BEGIN, END, NOTES, TARGET, sources_digest

ROOT = Path(__file__).resolve().parents[3]


def test_equivalence_notes__name_current_mutants_with_a_reason():
    notes = tomllib.loads((ROOT / NOTES).read_text())
    current = {m.id for m in generate(ROOT)}
    assert sorted(set(notes) - current) == []
    assert all(len(note["reason"].split()) >= 12 for note in notes.values())


def _generated_report() -> str:
    text = (ROOT / "docs/MUTATION.md").read_text()
    assert BEGIN in text and END in text, "docs/MUTATION.md lost its generated section: run `make mutation`"
    return text.split(BEGIN, 1)[1].split(END, 1)[0]


def _section(report: str, title: str) -> str:
    return report.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_report__made_from_the_current_sources_and_generator():
    report = _generated_report()
    assert f"Sources: `{sources_digest(ROOT)}`" in report, "a shipped source changed since: run `make mutation`"
    generated = Counter(m.source for m in generate(ROOT))
    rows = {
        line.split("`")[1]: line.split(" | ")
        for line in _section(report, "Scores per source").splitlines()
        if line.startswith("| `")
    }
    assert {source: int(cells[1]) for source, cells in rows.items()} == dict(generated)
    assert "have no result yet" not in report and "## Stale equivalence notes" not in report


def test_report__every_source_meets_the_target():
    report = _generated_report()
    for line in _section(report, "Scores per source").splitlines():
        if line.startswith("| `") or line.startswith("| **all**"):
            cell = line.rstrip(" |").rsplit("| ", 1)[1].strip("*")
            assert cell == "n/a" or float(cell.rstrip("%")) >= 100 * TARGET, line


def test_report__lists_every_equivalence_note_as_equivalent():
    notes = tomllib.loads((ROOT / NOTES).read_text())
    listed = {
        line.split("`")[1]
        for line in _section(_generated_report(), "Equivalent mutants").splitlines()
        if line.startswith("### `")
    }
    assert listed == set(notes), "notes changed since the run: run `make mutation` (or `--only` the new ones)"
