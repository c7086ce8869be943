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


def merge(paths: list[str]) -> tuple[dict[str, dict[Key, int]], dict[str, dict[str, int]]]:
    hits: dict[str, dict[Key, int]] = defaultdict(lambda: defaultdict(int))
    calls: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for path in paths:
        with open(path) as handle:
            report = json.load(handle)
        for project in report["projects"]:
            for source in project["sources"]:
                for contract in source["contracts"]:
                    for function in contract["functions"]:
                        name = f"{contract['name']}.{function['full_name']}"
                        calls[source["source_id"]][name] += function["hit_count"]
                        for statement in function["statements"]:
                            where = json.dumps(statement.get("location") or statement.get("tag"))
                            key = (contract["name"], function["full_name"], where, "")
                            hits[source["source_id"]][key] += statement["hit_count"]
    return hits, calls


def main(paths: list[str]) -> int:
    if not paths:
        print("no coverage reports given", file=sys.stderr)
        return 2
    hits, calls = merge(paths)
    print(f"{'source':42} {'stmts':>6} {'miss':>6} {'cover':>8} {'funcs':>8}  lines of missed statements")
    for source in sorted(hits):
        functions = calls[source]
        funcs = 100.0 * sum(1 for count in functions.values() if count) / len(functions) if functions else 100.0
        statements = hits[source]
        missed = [key for key, count in statements.items() if count == 0]
        lines = sorted({json.loads(key[2])[0] for key in missed if key[2].startswith("[")})
        cover = 100.0 * (len(statements) - len(missed)) / len(statements) if statements else 100.0
        missed_lines = ",".join(map(str, lines))
        print(f"{source:42} {len(statements):>6} {len(missed):>6} {cover:>7.2f}% {funcs:>7.2f}%  {missed_lines}")
    never = sorted(name for source in calls for name, count in calls[source].items() if not count)
    print("functions never called:", ", ".join(never) or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
