"""Merge Ape's statement coverage from several `ape test --coverage` runs; print it per Vyper source.

`make coverage` runs each test module in its own process: Ape keeps every trace of a session in
memory (a whole-suite run grew past 22 GB here). tests/conftest.py saves each run's report as JSON
(PERUN_COVERAGE_JSON); a statement counts as covered if any run hit it. Statements are identified as
Ape identifies them: by source, contract, function and source location (or tag, for compiler checks).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict

Key = tuple[str, str, str, str]


def merge(paths: list[str]) -> dict[str, dict[Key, int]]:
    hits: dict[str, dict[Key, int]] = defaultdict(lambda: defaultdict(int))
    for path in paths:
        with open(path) as handle:
            report = json.load(handle)
        for project in report["projects"]:
            for source in project["sources"]:
                for contract in source["contracts"]:
                    for function in contract["functions"]:
                        for statement in function["statements"]:
                            where = json.dumps(statement.get("location") or statement.get("tag"))
                            key = (contract["name"], function["full_name"], where, "")
                            hits[source["source_id"]][key] += statement["hit_count"]
    return hits


def main(paths: list[str]) -> int:
    if not paths:
        print("no coverage reports given", file=sys.stderr)
        return 2
    hits = merge(paths)
    print(f"{'source':42} {'stmts':>6} {'miss':>6} {'cover':>8}  lines of missed statements")
    for source in sorted(hits):
        statements = hits[source]
        missed = [key for key, count in statements.items() if count == 0]
        lines = sorted({json.loads(key[2])[0] for key in missed if key[2].startswith("[")})
        cover = 100.0 * (len(statements) - len(missed)) / len(statements) if statements else 100.0
        print(f"{source:42} {len(statements):>6} {len(missed):>6} {cover:>7.2f}%  {','.join(map(str, lines))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
