"""`make loadtest` at CI size: the whole stack as separate processes (Anvil, `ape run deploy`, `ape run hub`,
two client processes of two wallets each) for 3 seconds of payments; the run must end with every balance
checked (each payout on-chain equals the wallet's final state, the hub earned exactly the ledger payments
it countersigned), payments of both kinds made, and every process it started ended, the hub cleanly. The
same with two hub workers sharing a PostgreSQL store (every Alice on one worker, her Bob on the other); a
SQLite store with two workers, or a PostgreSQL store without pgserver, refused before anything starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from perun_vyper.tools import load_procs, loadtest

ROOT = Path(__file__).resolve().parents[2]


def _loadtest(tmp_path: Path, *extra: str) -> tuple[list[str], dict]:
    """A 3-second run with 4 wallets in 2 client processes; its output lines and its JSON summary."""
    summary = tmp_path / "summary.json"
    command = [
        sys.executable, "-m", "perun_vyper.tools.loadtest", "--clients", "4", "--processes", "2",
        "--seconds", "3", "--timeout", "240", "--json", str(summary), *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1].startswith("loadtest: OK")
    result = json.loads(summary.read_text())
    assert result["balancesChecked"] is True
    assert result["hubPayments"] > 0 and result["virtualPayments"] > 0
    assert result["hubEarned"] == result["hubPayments"] * 10**9
    assert 0 < result["ledgerLatencyMs"]["p50"] <= result["ledgerLatencyMs"]["p99"]
    # The client processes exit by themselves; nothing is left killed.
    assert result["exitCodes"]["client-0"] == result["exitCodes"]["client-1"] == 0
    assert None not in result["exitCodes"].values()
    return lines, result


def test_loadtest__four_clients_two_processes__balances_checked_and_payments_counted(tmp_path):
    lines, result = _loadtest(tmp_path)
    assert "hub service load: 4 clients in 2 processes, 1 hub worker on a sqlite store, 3.0 s" in lines
    assert (result["workers"], result["store"]) == (1, "sqlite")
    assert set(result["cpu"]) == {"hub", "anvil", "client-0", "client-1"}
    assert result["exitCodes"]["hub"] == 0  # the hub stops cleanly on SIGTERM


def test_loadtest__two_workers_on_postgres__pairs_across_workers__balances_checked_both_served(tmp_path):
    lines, result = _loadtest(tmp_path, "--workers", "2", "--store", "postgres")
    assert "hub service load: 4 clients in 2 processes, 2 hub workers on a postgres store, 3.0 s" in lines
    assert (result["workers"], result["store"]) == (2, "postgres")
    # Wallet i with worker i % 2: each worker served its wallets' hub payments; the Alices are all on w0, so
    # every virtual payment went from w0 to Bob's w1 through the bus.
    served = result["workerPayments"]
    assert served["w0"]["hub"] > 0 and served["w1"]["hub"] > 0
    assert served["w0"]["hub"] + served["w1"]["hub"] == result["hubPayments"]
    assert served["w0"]["virtual"] == result["virtualPayments"] > 0
    assert set(result["cpu"]) == {"hub w0", "hub w1", "postgres", "anvil", "client-0", "client-1"}
    assert result["cpu"]["postgres"] > 0
    assert result["hubTransactions"] == 8  # a deposit and a close per channel, from either worker
    assert result["exitCodes"]["hub w0"] == result["exitCodes"]["hub w1"] == 0


def test_loadtest__sqlite_store_with_two_workers__refused_before_anything_starts(monkeypatch, capsys):
    def started(*args, **kwargs):
        raise AssertionError("the load test started something")

    monkeypatch.setattr(load_procs.Processes, "start", started)
    monkeypatch.setattr(load_procs.Postgres, "start", started)
    monkeypatch.setattr(loadtest.tempfile, "TemporaryDirectory", started)
    with pytest.raises(SystemExit) as exit_:
        loadtest.main(["--store", "sqlite", "--workers", "2"])
    assert exit_.value.code == 2
    assert (
        capsys.readouterr()
        .err.splitlines()[-1]
        .endswith(
            "error: --workers 2 needs --store postgres: a SQLite store belongs to one hub process, "
            "several workers share a PostgreSQL store"
        )
    )


def test_loadtest__postgres_store_without_pgserver__one_line_exit_1_nothing_started(monkeypatch, capsys):
    def started(*args, **kwargs):
        raise AssertionError("the load test started something")

    monkeypatch.setattr(load_procs.Processes, "start", started)
    monkeypatch.setattr(loadtest.tempfile, "TemporaryDirectory", started)
    monkeypatch.setattr(loadtest.importlib.util, "find_spec", lambda name: None)
    assert loadtest.main(["--store", "postgres", "--workers", "2"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "loadtest: FAILED: --store postgres needs the pgserver package (pip install pgserver); nothing started"
    ]
