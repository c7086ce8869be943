"""`make scaling` (perun_vyper.tools.scaling) runs end to end: a SQLite row and one PostgreSQL row per
writer count, every figure present and positive, in the printed table and the JSON."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_scaling__one_and_two_writers__rows_with_figures(tmp_path):
    out = tmp_path / "scaling.json"
    done = subprocess.run(
        [sys.executable, "-m", "perun_vyper.tools.scaling", "--writers", "1,2", "--channels", "2", "--seconds", "0.5",
         "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())
    assert [(row["store"], row["writers"], row["channels"]) for row in rows] == [
        ("sqlite", 1, 2),
        ("postgres", 1, 2),
        ("postgres", 2, 4),
    ]
    for row in rows:
        assert row["updates"] > 0 and row["updatesPerSecond"] > 0 and row["msPerUpdate"] > 0
        assert row["writerCpuUsPerUpdate"] > 0 and row["bytesPerState"] > 0
        assert (row["serverCpuUsPerUpdate"] is None) == (row["store"] == "sqlite")
        if row["store"] == "postgres":
            assert row["serverCpuUsPerUpdate"] > 0
    table = done.stdout.splitlines()
    assert table[1].split() == ["store", "writers", "updates/s", "ms/update", "writer", "CPU", "us/update", "server",
                                "CPU", "us/update", "bytes/state"]  # fmt: skip
    assert [line.split()[:2] for line in table[2:]] == [["sqlite", "1"], ["postgres", "1"], ["postgres", "2"]]
