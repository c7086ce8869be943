"""CI's mutation sample: the tool still generates, compiles, runs and kills (``make mutation`` runs all)."""

import json
import subprocess
import sys
from pathlib import Path

from perun_vyper.tools.mutation.mutants import generate
from perun_vyper.tools.mutation.run import SAMPLE

ROOT = Path(__file__).resolve().parents[3]


def test_mutation_sample__every_sample_mutant__killed_by_its_test_module(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "perun_vyper.tools.mutation", "--sample", "--jobs", "1", "--state", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    mutants = {m.id: m for m in generate(ROOT)}
    assert done.returncode == 0, done.stdout[-3000:]
    assert len(summary["results"]) == len(SAMPLE)
    for (source, function, operator, module), row in zip(SAMPLE, summary["results"], strict=True):
        mutant = mutants[row["id"]]
        assert (mutant.source, mutant.function, mutant.operator) == (source, function, operator)
        assert row["status"] == "killed"
        assert row["killer"].startswith(f"{module}::")
