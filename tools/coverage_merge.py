"""Merge Ape's per-module coverage reports (Cobertura XML) and print statement coverage per Vyper source.

`make coverage` runs each test module in its own `ape test --coverage` process: Ape keeps every trace
of a session in memory (a whole-suite run grew past 22 GB here), so one process per module keeps the
run inside the machine. A statement counts as covered if any module's run hit it.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import defaultdict


def merge(paths: list[str]) -> dict[str, dict[int, int]]:
    hits: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for path in paths:
        for cls in ET.parse(path).getroot().iter("class"):
            lines = hits[cls.attrib["name"]]
            for line in cls.iter("line"):
                lines[int(line.attrib["number"])] += int(line.attrib["hits"])
    return hits


def main(paths: list[str]) -> int:
    if not paths:
        print("no coverage reports given", file=sys.stderr)
        return 2
    hits = merge(paths)
    print(f"{'source':45} {'stmts':>6} {'miss':>6} {'cover':>8}  missed lines")
    for name in sorted(hits):
        lines = hits[name]
        missed = sorted(n for n, h in lines.items() if h == 0)
        total = len(lines)
        cover = 100.0 * (total - len(missed)) / total if total else 100.0
        print(f"{name:45} {total:>6} {len(missed):>6} {cover:>7.2f}%  {','.join(map(str, missed))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
