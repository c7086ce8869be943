"""``make mutation``: every mutant of the shipped Vyper sources against the contract suites (docs/MUTATION.md).

    python -m perun_vyper.tools.mutation [--jobs 2] [--only ID,...] [--sample] [--fresh] [--report PATH]

1. Generates the mutants (``mutants.py``).
2. Maps, once, which tests call which external function of which contract, on the unmutated contracts
   (one ``ape test`` session, ``worker.py`` in ``map`` mode); cached in .build/mutation/map.json until a
   contract, a test or this tool changes.
3. Runs the mutants in ``--jobs`` worker sessions sharing one queue. A mutant runs the tests that call an
   external function from which the mutated function is reached (``build.call_graph``), fastest first
   (tests that killed a mutant of the same function before go first), and stops at the first failure.
   A mutant that runs longer than its budget is stopped, its worker restarted, and it is reported as
   timed out. Results are kept in .build/mutation/results.jsonl: a run that was interrupted resumes.
4. Writes the report (``report.py``), reading the equivalence notes in docs/mutation_equivalents.toml.

``--sample`` is what CI runs: a fixed handful of mutants, each against one test module, which must all die.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .build import call_graph, dependents, entry_points
from .mutants import MODULE_LEVEL, SHIPPED, Mutant, generate

# The tests mutants are judged by: every suite that drives the contracts directly. The off-chain suites
# (client, hub node, watchtower, deploy, demo) reach the contracts through processes and minutes-long
# scenarios; the gas snapshot would fail for any mutant that changes gas, which says nothing of behaviour.
SUITE = ("tests/unit/app", "tests/unit/ledger", "tests/unit/virtual", "tests/adversarial", "tests/scenarios")
# CI's sample: (source, function, operator, test module); the first such mutant of each is run.
SAMPLE = (
    ("contracts/LedgerAdjudicator.vy", "register", "comparison negated", "tests/unit/ledger/test_register.py"),
    ("contracts/LedgerAdjudicator.vy", "close", "check deleted", "tests/unit/ledger/test_close.py"),
    ("contracts/VirtualAdjudicator.vy", "register", "state write deleted", "tests/unit/virtual/test_register.py"),
    ("contracts/modules/asset_holder.vy", "withdraw", "event removed", "tests/unit/ledger/test_withdraw.py"),
    ("contracts/modules/packed_words.vy", "_pack_dispute", "shift swapped", "tests/unit/ledger/test_register.py"),
    (
        "contracts/modules/typed_signatures.vy",
        "_recover",
        "comparison boundary",
        "tests/unit/ledger/test_signatures.py",
    ),
)
STATE = Path(".build/mutation")
BASE_SECONDS = 90  # compile, deploy and the first test, on a busy 2-core machine
MAX_RESTARTS = 20


def fingerprint(root: Path) -> str:
    """Changes whenever a contract or a test changes: the cached map and results then expire (after a change
    to this tool, run with --fresh)."""
    digest = hashlib.sha256()
    files = [*sorted((root / "contracts").rglob("*.vy*")), *sorted((root / "tests").rglob("*.py"))]
    for path in files:
        digest.update(path.as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _plan_tests(mutant: Mutant, graph, test_map: dict, root: Path) -> list[str]:
    contracts = dependents(root, mutant.source)
    entries = entry_points(graph, mutant, contracts)
    wanted = {f"{contract}.{function}" for contract, function in entries}
    # What a constructor sets (immutables, the domain separator) is used by every later call, and session
    # fixtures deploy once, for the first test only: a constructor's tests are every test of the contract.
    whole = {contract for contract, function in entries if function == "__init__"}
    if mutant.function == MODULE_LEVEL:
        # Code outside functions (a constant, a pragma) may be read by any call, the getters of public
        # constants included, which the call graph (functions only) does not list.
        whole |= set(contracts)
    tests = [
        nodeid
        for nodeid, info in test_map.items()
        if any(f"{contract}.{function}" in wanted or contract in whole for contract, function in info["entries"])
    ]
    return sorted(tests, key=lambda nodeid: (test_map[nodeid]["seconds"], nodeid))


def _ape_test(paths, plan: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PERUN_MUTATION_PLAN": str(plan)}
    command = ["ape", "test", *paths, "-q", "-p", "no:cacheprovider", "-p", "perun_vyper.tools.mutation.worker"]
    return subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def build_map(root: Path, state: Path, print_=print) -> dict:
    """The test map, from the cache or from one mapping session."""
    path = state / "map.json"
    stamp = state / "map.fingerprint"
    current = fingerprint(root)
    if path.is_file() and stamp.is_file() and stamp.read_text() == current:
        return json.loads(path.read_text())
    print_(f"mapping the tests of {', '.join(SUITE)} (one pass on the unmutated contracts)")
    scratch = Path(tempfile.mkdtemp(prefix="mutation-map-"))
    plan = state / "plan-map.json"
    plan.write_text(json.dumps({"mode": "map", "root": str(root), "scratch": str(scratch), "map": str(path)}))
    log = state / "map.log"
    started = time.monotonic()
    process = _ape_test(SUITE, plan, log)
    if process.wait() != 0 or not path.is_file():
        raise SystemExit(
            f"mutation: the mapping session failed (exit {process.returncode}); see {log}:\n"
            + "\n".join(log.read_text().splitlines()[-30:])
        )
    stamp.write_text(current)
    print_(f"mapped {len(json.loads(path.read_text()))} tests in {time.monotonic() - started:.0f} s")
    return json.loads(path.read_text())


def run_mutants(
    root: Path, state: Path, jobs: list[dict], paths, workers: int, print_=print, stamp: str = ""
) -> list[dict]:
    """Runs ``jobs`` ({id, tests, budget}) in ``workers`` sessions; returns their results."""
    results_path = state / "results.jsonl"
    claims = state / "claims"
    claims.mkdir(parents=True, exist_ok=True)
    for claim in claims.iterdir():
        claim.unlink()
    done = {row["id"] for row in _read(results_path)}
    queue = [job for job in jobs if job["id"] not in done]
    budgets = {job["id"]: job["budget"] for job in queue}
    print_(f"{len(queue)} mutants to run ({len(jobs) - len(queue)} already have a result) in {workers} workers")
    restarts = 0
    running: dict[int, tuple[subprocess.Popen, Path]] = {}

    def start(slot: int) -> None:
        scratch = Path(tempfile.mkdtemp(prefix=f"mutation-{slot}-"))
        plan = state / f"plan-{slot}.json"
        current = state / f"current-{slot}.json"
        current.unlink(missing_ok=True)
        plan.write_text(
            json.dumps(
                {
                    "mode": "run",
                    "root": str(root),
                    "scratch": str(scratch),
                    "queue": queue,
                    "claims": str(claims),
                    "current": str(current),
                    "results": str(results_path),
                    "fingerprint": stamp,
                }
            )
        )
        running[slot] = (_ape_test(paths, plan, state / f"worker-{slot}.log"), current)

    for slot in range(workers):
        start(slot)
    started, last_report = time.monotonic(), 0.0
    while running:
        time.sleep(1)
        finished = {row["id"] for row in _read(results_path)}
        for slot, (process, current) in list(running.items()):
            now_current = _current(current)
            if process.poll() is not None:
                del running[slot]
                log = state / f"worker-{slot}.log"
                if now_current and now_current["id"] not in finished:
                    _append(
                        results_path,
                        {
                            "id": now_current["id"],
                            "status": "error",
                            "fingerprint": stamp,
                            "reason": f"worker exited {process.returncode}; see {log}",
                        },
                    )
                if process.returncode not in (0, 5) and restarts < MAX_RESTARTS and len(finished) < len(jobs):
                    print_(
                        f"worker {slot} exited {process.returncode}: " + " | ".join(log.read_text().splitlines()[-3:])
                    )
                    restarts += 1
                    start(slot)
                continue
            if now_current and now_current["id"] not in finished:
                elapsed = time.time() - now_current["started"]
                if elapsed > budgets.get(now_current["id"], BASE_SECONDS):
                    _stop(process)
                    _append(
                        results_path,
                        {
                            "id": now_current["id"],
                            "status": "timed out",
                            "fingerprint": stamp,
                            "seconds": round(elapsed, 1),
                        },
                    )
                    del running[slot]
                    if restarts < MAX_RESTARTS:
                        restarts += 1
                        start(slot)
        if time.monotonic() - last_report > 60:
            last_report = time.monotonic()
            count = len(finished & set(budgets))
            print_(f"  {count}/{len(queue)} mutants in {time.monotonic() - started:.0f} s")
    wanted = {job["id"] for job in jobs}
    return [row for row in _read(results_path) if row["id"] in wanted]


def _current(path: Path) -> dict | None:
    """The mutant a worker runs now (None before its first). Workers replace the file atomically; an
    unreadable one (a worker from before that change) counts as none for this second."""
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except json.JSONDecodeError:
        return None


def _read(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            rows[row["id"]] = row
    return list(rows.values())


def _append(path: Path, row: dict) -> None:
    with path.open("a") as out:
        out.write(json.dumps(row) + "\n")


def sample_jobs(mutants: list[Mutant]) -> list[dict]:
    """The fixed sample CI runs: the first mutant of each SAMPLE row, against that row's test module."""
    jobs = []
    for source, function, operator, tests in SAMPLE:
        found = next((m for m in mutants if (m.source, m.function, m.operator) == (source, function, operator)), None)
        if found is None:
            raise SystemExit(f"mutation: no {operator!r} mutant of {source}:{function} any more; update run.SAMPLE")
        jobs.append({"id": found.id, "tests": [tests], "budget": BASE_SECONDS * 2})
    return jobs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perun_vyper.tools.mutation", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="worker sessions (default 2: one per core here)")
    parser.add_argument("--only", default="", help="comma-separated mutant ids to run (default: all)")
    parser.add_argument("--sample", action="store_true", help="CI's fixed sample only; prints a JSON summary")
    parser.add_argument("--fresh", action="store_true", help="forget earlier results and run every mutant again")
    parser.add_argument("--report", default="docs/MUTATION.md", help="where the report goes ('' for none)")
    parser.add_argument("--state", default=str(STATE), help="cache and results folder")
    parser.add_argument("--report-only", action="store_true", help="write the report from the last results")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    root = Path.cwd()
    if not (root / "ape-config.yaml").is_file():
        parser.error("run it from the project's root (where ape-config.yaml is)")
    state = Path(args.state)
    print_ = lambda line: print(line, flush=True)  # noqa: E731
    started = time.monotonic()
    mutants = generate(root, SHIPPED)
    if args.sample:
        jobs = sample_jobs(mutants)
        state.mkdir(parents=True, exist_ok=True)
        (state / "results.jsonl").unlink(missing_ok=True)
        paths = sorted({test for job in jobs for test in job["tests"]})
        results = run_mutants(root, state, jobs, paths, args.jobs, print_)
        print(json.dumps({"results": results, "seconds": round(time.monotonic() - started, 1)}))
        return 0 if len(results) == len(jobs) and all(r["status"] == "killed" for r in results) else 1
    only = {part for part in args.only.split(",") if part}
    unknown = only - {m.id for m in mutants}
    if unknown:
        parser.error(f"no such mutant: {', '.join(sorted(unknown))} (ids are in docs/MUTATION.md)")
    if args.report_only:
        return _report(root, args, mutants, state, fingerprint(root))
    state.mkdir(parents=True, exist_ok=True)
    results_path = state / "results.jsonl"
    current = fingerprint(root)
    run_path = state / "run.json"
    if only:
        # Re-runs these mutants on the current sources and tests; the other results are kept (the report
        # says how many were re-run alone).
        kept = [row for row in _read(results_path) if row["id"] not in only]
        results_path.write_text("".join(json.dumps(row) + "\n" for row in kept))
    elif args.fresh or any(row.get("fingerprint") != current for row in _read(results_path)):
        results_path.unlink(missing_ok=True)
        run_path.unlink(missing_ok=True)
    mapped = time.monotonic()
    test_map = build_map(root, state, print_)
    map_seconds = time.monotonic() - mapped
    graph = call_graph(root)
    jobs = []
    for mutant in mutants:
        tests = _plan_tests(mutant, graph, test_map, root)
        budget = BASE_SECONDS + 3 * sum(test_map[t]["seconds"] for t in tests)
        jobs.append({"id": mutant.id, "tests": tests, "budget": round(budget)})
    (state / "jobs.json").write_text(json.dumps(jobs))
    chosen = [job for job in jobs if not only or job["id"] in only]
    results = run_mutants(root, state, chosen, SUITE, args.jobs, print_, current)
    elapsed = time.monotonic() - started
    print_(f"ran {len(results)} mutants in {elapsed / 60:.1f} min")
    run = json.loads(run_path.read_text()) if run_path.is_file() else {}
    if only:
        run["rerun"] = sorted(set(run.get("rerun", [])) | only)
    else:
        # Resumed runs add up: the wall time is the sum of the sessions that produced these results.
        run.update(
            suite=list(SUITE),
            jobs=args.jobs,
            cores=os.cpu_count(),
            wall_seconds=run.get("wall_seconds", 0) + elapsed,
            map_seconds=run.get("map_seconds", 0) + map_seconds,
            mutants_run=len(results),
            fingerprint=current,
        )
    run_path.write_text(json.dumps(run, indent=1))
    return _report(root, args, mutants, state, current) if args.report else 0


def _report(root: Path, args, mutants: list[Mutant], state: Path, current: str) -> int:
    from .report import TARGET, write_report

    run_path = state / "run.json"
    if not run_path.is_file() or not args.report:
        raise SystemExit("mutation: no full run to report on yet; run `make mutation` first")
    run = json.loads(run_path.read_text())
    run["reused"] = len(run.get("rerun", []))
    jobs = {job["id"]: job for job in json.loads((state / "jobs.json").read_text())}
    scores = write_report(root, Path(args.report), mutants, _read(state / "results.jsonl"), jobs, run)
    low = {source: value for source, value in scores.items() if value is not None and value < TARGET}
    print(
        f"wrote {args.report}" + (f"; below target: {', '.join(f'{s} {v:.1%}' for s, v in low.items())}" if low else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
