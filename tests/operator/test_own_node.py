"""The documented way to use a node the operator started (README, "A node you started"): an Anvil started
by hand on its own port, `ape run deploy` and `ape run watch` attached to it with ``APE_FOUNDRY_HOST`` and
``--network ethereum:local:foundry``, the watchtower sending from a keyfile account with no terminal. The
node outlives both commands."""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from perun_vyper import Store
from perun_vyper.contracts import recorded_pair
from perun_vyper.store import StoreIdentity
from tests.support.cli import PASSPHRASE, ROOT, ape_run, cli_env, run_cli, write_keyfile

ANVIL_CHAIN_ID = 31337


def _rpc(url: str, method: str, *params: object) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())["result"]


@pytest.fixture
def own_anvil():
    """``anvil --port <free>`` started the way an operator starts it; its url. Stopped at the end."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    anvil = shutil.which("anvil") or str(ROOT / "node_modules" / ".bin" / "anvil")
    proc = subprocess.Popen(
        [anvil, "--port", str(port), "--host", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                _rpc(url, "eth_chainId")
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError(f"anvil did not answer at {url} within 20 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_own_node__deploy_then_keyfile_watchtower_unattended__node_kept(own_anvil, tmp_path):
    env = cli_env(tmp_path, APE_FOUNDRY_HOST=own_anvil, APE_ACCOUNTS_watcher_PASSPHRASE=PASSPHRASE)
    records = tmp_path / "deployments"
    network = ("--network", "ethereum:local:foundry")
    deployed = run_cli(ape_run("deploy", *network, "--account", "TEST::0", "--deployments-dir", str(records)), env)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    pair = recorded_pair(records / "ethereum-local.json", ANVIL_CHAIN_ID)
    assert set(pair) == {"ledger", "virtual"}
    assert _rpc(own_anvil, "eth_getCode", pair["ledger"], "latest") not in ("0x", None)

    watcher = write_keyfile(tmp_path, "watcher", secrets.token_bytes(32))
    _rpc(own_anvil, "anvil_setBalance", watcher, hex(10**18))
    store = tmp_path / "alice.db"
    Store(store, identity=StoreIdentity(ANVIL_CHAIN_ID, pair["ledger"], pair["virtual"])).close()
    command = ape_run(
        "watch", *network, "--account", "watcher", "--store", str(store), "--ledger", pair["ledger"],
        "--virtual", pair["virtual"], "--once",
    )  # fmt: skip
    watched = run_cli(command, env)
    output = watched.stdout + watched.stderr
    assert watched.returncode == 0, output
    assert "Traceback" not in output and "Sign:" not in output
    [started] = [line for line in watched.stdout.splitlines() if line.startswith("watching")]
    assert started.startswith(
        f"watching   0 ledger channels and 0 virtual channels of {store} on ethereum:local as {watcher}"
    )
    assert int(str(_rpc(own_anvil, "eth_chainId")), 16) == ANVIL_CHAIN_ID  # the node is still up
    assert Path(store).stat().st_size > 0
