"""`ape run demo`'s command line as a subprocess: a --store-dir it cannot use ends in one ``Error:`` line
before the chain starts, with nothing written; ``--keep`` leaves the chain running with a working
``ape run watch`` command per store until SIGINT. And its helpers: progress lines for a pipe, the
store-dir rules (an existing empty directory is fine: tests/demo/test_demo.py runs in one)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from perun_vyper.tools.demo_cli import FIX, hub_log_level, line_progress, store_dir_problem, wait_for_stop
from tests.support.process import Output

ROOT = Path(__file__).resolve().parents[2]
APE = str(Path(sys.executable).with_name("ape"))


def _env() -> dict[str, str]:
    # `ape` on PATH: the --keep test runs the printed command as a user would, through a shell.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PATH": path}


def _listing(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_size if p.is_file() else -1) for p in root.rglob("*"))


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("file", "is a file, not a directory"),
        ("non_empty", "is not empty (2 entries in it)"),
        ("under_a_file", "cannot be created: {root}/plain is a file"),
    ],
)
def test_demo_cli__unusable_store_dir__one_error_line_nothing_written(tmp_path, case, expected):
    (tmp_path / "plain").write_text("not a directory")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "alice.sqlite").write_text("someone's store")
    (tmp_path / "full" / "notes").mkdir()
    store_dir = {"file": "plain", "non_empty": "full", "under_a_file": "plain/stores"}[case]
    before = _listing(tmp_path)
    done = subprocess.run(
        [APE, "run", "demo", "--network", "ethereum:local:foundry", "--store-dir", str(tmp_path / store_dir)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if "Error" in line]
    assert errors == [f"Error: --store-dir {tmp_path / store_dir} {expected.format(root=tmp_path)}; {FIX}"], output
    assert "deploy the adjudicators" not in output
    assert _listing(tmp_path) == before


def test_demo_cli__keep__watch_command_works_on_the_running_chain__sigint_exits_0(tmp_path):
    store_dir = tmp_path / "new" / "stores"  # created with its parent
    command = [APE, "run", "demo", "--network", "ethereum:local:foundry", "--store-dir", str(store_dir)]
    command += ["--users", "2", "--payments", "20", "--keep"]
    # Its own session: SIGINT to the group is what Ctrl-C does (Anvil gets it too); a failure kills them all.
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = Output(proc)
    try:
        assert output.until("12/12 checks passed", timeout=300)
        output.until("the chain keeps running (--keep); Ctrl-C stops it", timeout=30)
        node = re.fullmatch(r"   node +(http://\S+) \(chain id ([0-9]+)\)", output.until("   node ", 10))
        assert node is not None
        ledger = output.until("   LedgerAdjudicator ", 10).split()[-1]
        virtual = output.until("   VirtualAdjudicator ", 10).split()[-1]
        output.until(f"   watch a party's store once (from {ROOT}):", 10)
        watch = {}
        for name, account in (("ingrid", 1), ("alice", 2), ("bob", 3)):
            line = output.until(f"   {name} ", 10)
            watch[name] = line.split(None, 1)[1]
            assert watch[name] == (
                f"APE_FOUNDRY_HOST={node.group(1)} ape run watch --network ethereum:local:foundry "
                f"--account TEST::{account} --store {store_dir / (name + '.sqlite')} --ledger {ledger} "
                f"--virtual {virtual} --once"
            )
        request = urllib.request.Request(
            node.group(1),
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode(),
            {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert int(json.load(answer)["result"], 16) == int(node.group(2)) == 31337

        # The exact printed command, through a shell, as a user pastes it.
        ran = subprocess.run(
            watch["alice"], shell=True, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert f"channels of {store_dir / 'alice.sqlite'} on ethereum:local" in ran.stdout
        assert re.search(r"^summary    [0-9]+ actions?", ran.stdout, re.MULTILINE), ran.stdout
        assert "Traceback" not in ran.stdout + ran.stderr

        assert proc.poll() is None  # the watch command left the chain (and the demo) running
        os.killpg(proc.pid, signal.SIGINT)
        assert output.until("SIGINT: stopping the chain", timeout=30)
        assert proc.wait(timeout=60) == 0
        assert not any("Traceback" in line for line in output.lines)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def test_line_progress__a_line_per_quarter_after_the_step_is_done():
    shown: list[str] = []
    progress = line_progress(shown.append, "   paid")
    seen = []
    for step in progress(range(8), 8):
        seen.append((step, list(shown)))
    assert seen[1] == (1, [])  # the line for step 2 comes once step 2 is done, not before it
    assert shown == ["   paid 2/8 (25%)", "   paid 4/8 (50%)", "   paid 6/8 (75%)", "   paid 8/8 (100%)"]
    shown.clear()
    assert list(progress(range(3), 3)) == [0, 1, 2]
    assert shown == ["   paid 1/3 (33%)", "   paid 2/3 (66%)", "   paid 3/3 (100%)"]  # never more than 4
    shown.clear()
    assert list(progress(range(0), 0)) == [] and shown == []


def test_store_dir_problem__new_or_empty_directory_is_fine(tmp_path):
    assert store_dir_problem(tmp_path) is None  # exists, empty
    assert store_dir_problem(tmp_path / "a" / "b") is None  # created with its parents
    (tmp_path / "x").write_text("")
    assert store_dir_problem(tmp_path) == f"--store-dir {tmp_path} is not empty (1 entry in it); {FIX}"


def test_hub_log_level__the_demo_level_by_name():
    assert [hub_log_level(level) for level in (10, 20, 30, 40)] == ["DEBUG", "INFO", "WARNING", "ERROR"]
    assert hub_log_level(100_000) == "ERROR"  # -v DISABLE


def test_wait_for_stop__sigterm__returns_its_name_and_restores_the_handlers():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    assert wait_for_stop(lambda: os.kill(os.getpid(), signal.SIGTERM)) == "SIGTERM"
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_store_dir_problem__read_only_parent__cannot_be_created_unless_root(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        # Root writes into read-only directories (CI runs as root): there the directory can be created.
        expected = (
            None
            if os.geteuid() == 0
            else f"--store-dir {locked / 'stores'} cannot be created: {locked} is not writable; {FIX}"
        )
        assert store_dir_problem(locked / "stores") == expected
    finally:
        locked.chmod(0o700)
