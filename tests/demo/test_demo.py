"""`ape run demo` end to end with a small network (the hub as its own process, the users its WebSocket
clients), and the summary's verdict logic."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from perun_vyper.tools.demo import Check, Phase, Result, summary_lines
from tests.support.cli import retry_anvil_start

ROOT = Path(__file__).resolve().parents[2]
APE = str(Path(sys.executable).with_name("ape"))


def _run_demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return retry_anvil_start(
        lambda: subprocess.run(
            [APE, "run", "demo", "--network", "ethereum:local:foundry", "--store-dir", str(tmp_path), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        ),
        lambda done: done.stdout + done.stderr,
    )


def test_demo__two_users_small__every_check_passes(tmp_path):
    done = _run_demo(tmp_path, "--users", "2", "--payments", "40")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    # 1 restart check, 3 cooperative (Ingrid + 2 users), 3 hub-offline, 5 attack checks.
    assert "12/12 checks passed" in out
    assert "FAILED" not in out
    assert "Traceback" not in out + done.stderr
    # Ape's per-transaction lines are off (the demo's and the hub's) unless -v asks for them.
    assert "Confirmed" not in out + done.stderr and "INFO:" not in out + done.stderr
    # Not a terminal: the payments' progress is one line per quarter.
    assert re.findall(r"^   paid .*$", out, re.MULTILINE) == [
        f"   paid {n}/40 ({n * 5 // 2}%)" for n in (10, 20, 30, 40)
    ]
    # Ids and hashes in full, amounts in ETH beside wei.
    funded = re.findall(
        r"^   (alice|bob)-ingrid ledger channel 0x[0-9a-f]{64} funded with 10 ETH \(10000000000000000000 wei\) from "
        r"each side \(the hub's deposit 0x[0-9a-f]{64}\)$",
        out,
        re.MULTILINE,
    )
    assert funded == ["alice", "bob", "alice", "bob", "bob"]
    assert "   alice <-> bob over Ingrid, 1 ETH (1000000000000000000 wei) locked from each side" in out
    assert "   alice paid bob 0.55 ETH (550000000000000000 wei) in 10 payments; the hub process is stopped" in out
    # Each party's fees, exact in wei, in the summary.
    for party in ("deployer", "ingrid", "alice", "bob"):
        assert re.search(rf"^   {party} +0\.[0-9]+ ETH \([1-9][0-9]* wei\)$", out, re.MULTILINE), party
    assert re.search(r"off-chain payments: 40 in [0-9.]+ s = [0-9,]+ payments/s \(over WebSocket through the hub", out)
    for phase, txs in [
        ("deploy the adjudicators", 2),
        ("open 2 ledger channels with Ingrid", 4),
        ("40 off-chain payments", 0),
        ("close everything cooperatively", 2),  # the hub's two closes
        ("dispute with Ingrid offline", 9),
        ("stale-state attack answered by the hub's watchtower", 5),
    ]:
        assert re.search(rf"^{re.escape(phase)}\s+{txs}\s+[0-9,]+", out, re.MULTILINE), phase
    # The hub is its own process: started on the demo's chain, its lines prefixed, stopped by SIGTERM.
    hub = r"\[hub\] hub 0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # TEST::1
    assert re.search(rf"^{hub} listening on ws://127\.0\.0\.1:[0-9]+ chain=31337 ", out, re.MULTILINE)
    assert re.search(rf"^{hub} stopped \(SIGTERM\)$", out, re.MULTILINE)
    assert "2 wallets connected and logged in: alice, bob" in out
    # With the hub stopped, the users registered alone; its watchtower saw it afterwards.
    observed = r"^\[hub\] observed\s+ledger 0x[0-9a-f]{64} registered v1 deadline=[0-9-]+ [0-9:]+ UTC \((.*)\) "
    assert len(re.findall(observed, out, re.MULTILINE)) >= 3
    refuted = re.findall(r"^\[hub\] refuted\s+ledger (0x[0-9a-f]{64}) v1 -> v3 tx=0x[0-9a-f]{64}$", out, re.MULTILINE)
    concluded = re.findall(
        r"^\[hub\] concluded\s+ledger (0x[0-9a-f]{64}) v3 payout_a=7 ETH \(7000000000000000000 wei\) "
        r"payout_b=13 ETH \(13000000000000000000 wei\) tx=0x[0-9a-f]{64}$",
        out,
        re.MULTILINE,
    )
    assert len(refuted) == 1 and concluded == refuted
    assert "bob's wallet heard chain.disputed from the hub" in out
    # Each party's store file stays behind, in WAL mode: the two wallets' and the hub process's.
    assert sorted(p.name for p in tmp_path.glob("*.sqlite")) == ["alice.sqlite", "bob.sqlite", "ingrid.sqlite"]


@pytest.mark.parametrize("verbosity", [(), ("-v", "INFO")])
def test_demo__one_user__usage_error_and_nothing_deployed(tmp_path, verbosity):
    done = _run_demo(tmp_path, "--users", "1", *verbosity)
    assert done.returncode != 0
    assert "--users must be between 2 and 7" in done.stdout + done.stderr
    assert "deploy the adjudicators" not in done.stdout
    # Ape's INFO lines (here: Anvil starting) only when asked for with -v.
    assert ("INFO:     Starting 'anvil' process." in done.stdout + done.stderr) == bool(verbosity)


def test_summary__one_failed_check__says_demo_failed():
    result = Result(phases=[Phase("p")], checks=[Check("a", 1, 1), Check("b", 2, 3)], payments=10, payment_seconds=0.5)
    lines = summary_lines(result)
    assert not result.ok
    assert "[ok] a" in lines and "[FAILED] b" in lines
    assert lines[-1] == "1/2 checks passed -- DEMO FAILED"
    assert (
        "off-chain payments: 10 in 0.50 s = 20 payments/s (over WebSocket through the hub: sign, verify, persist on "
        "both sides)"
    ) in lines
    assert not any("rate limit" in line for line in lines)


def test_summary__paced_payments__says_how_long_it_waited():
    lines = summary_lines(Result(payments=10, payment_seconds=2.0, paced_seconds=1.25))
    assert ("  of which 1.25 s waiting to stay within the hub's per-connection rate limit (hub.info limits)") in lines


def test_summary__all_checks_pass__no_failure_marker():
    result = Result(checks=[Check("a", 5, 5)])
    assert result.ok
    assert summary_lines(result)[-1] == "1/1 checks passed"
