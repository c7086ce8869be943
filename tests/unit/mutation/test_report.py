"""The equivalence notes of docs/MUTATION.md: each about a mutant the generator still makes, with a reason."""

import tomllib
from pathlib import Path

from perun_vyper.tools.mutation.mutants import generate
from perun_vyper.tools.mutation.report import NOTES

ROOT = Path(__file__).resolve().parents[3]


def test_equivalence_notes__name_current_mutants_with_a_reason():
    notes = tomllib.loads((ROOT / NOTES).read_text())
    current = {m.id for m in generate(ROOT)}
    assert sorted(set(notes) - current) == []
    assert all(len(note["reason"].split()) >= 12 for note in notes.values())
