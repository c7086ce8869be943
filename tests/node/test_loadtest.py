"""`make loadtest` at CI size: the whole stack as separate processes (Anvil, `ape run deploy`, `ape run hub`,
two client processes of two wallets each) for 3 seconds of payments; the run must end with every balance
checked (each payout on-chain equals the wallet's final state, the hub earned exactly the ledger payments
it countersigned), payments of both kinds made, and every process it started ended, the hub cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_loadtest__four_clients_two_processes__balances_checked_and_payments_counted(tmp_path):
    summary = tmp_path / "summary.json"
    command = [
        sys.executable, "-m", "perun_vyper.tools.loadtest", "--clients", "4", "--processes", "2",
        "--seconds", "3", "--timeout", "240", "--json", str(summary),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].startswith("loadtest: OK")
    result = json.loads(summary.read_text())
    assert result["balancesChecked"] is True
    assert result["hubPayments"] > 0 and result["virtualPayments"] > 0
    assert result["hubEarned"] == result["hubPayments"] * 10**9
    assert 0 < result["ledgerLatencyMs"]["p50"] <= result["ledgerLatencyMs"]["p99"]
    assert set(result["cpu"]) == {"hub", "anvil", "client-0", "client-1"}
    # The client processes exit by themselves; the hub stops cleanly on SIGTERM; nothing is left killed.
    assert result["exitCodes"]["hub"] == 0
    assert result["exitCodes"]["client-0"] == result["exitCodes"]["client-1"] == 0
    assert None not in result["exitCodes"].values()
