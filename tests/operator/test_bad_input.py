"""Every bad input an operator can give `ape run watch` and `ape run hub` ends in one ``Error:`` line that
names the cause and the fix, with exit status 1, no traceback, and nothing written (tools/cli.py).

Each command runs as a subprocess on the test's Anvil (``APE_FOUNDRY_HOST`` + ``ethereum:local:foundry``,
README "A node you started"), with stdin closed.
"""

from __future__ import annotations

import socket
import sqlite3

import pytest

from perun_vyper import ChannelParams, ChannelRecord, Store
from perun_vyper.store import StoreIdentity
from perun_vyper.tools.deployment import PROXY_ADDRESS
from tests.support.cli import ape_run, cli_env, error_line, run_cli, snapshot

NETWORK = ("--network", "ethereum:local:foundry")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _watch(store, ledger: str, virtual: str, network=NETWORK) -> list[str]:
    return ape_run(
        "watch", *network, "--account", "TEST::4", "--store", str(store), "--ledger", ledger, "--virtual", virtual,
        "--once",
    )  # fmt: skip


def _perun_store(path, domain, alice, bob) -> None:
    """A store with one channel of this deployment, as a wallet writes it."""
    params = ChannelParams(alice.address, bob.address, nonce=1)
    with Store(path) as store:
        store.add_channel(ChannelRecord(params.channel_id, "ledger", params, domain, alice.address))


@pytest.mark.parametrize(
    "case", ["no node", "local network with another chain id", "ledger is the proxy", "ledger and virtual swapped"]
)
def test_watch__bad_node_or_address__one_line_nothing_written(
    case, ledger, virtual, chain, domain, alice, bob, tmp_path
):
    store = tmp_path / "alice.db"
    _perun_store(store, domain, alice, bob)
    before = snapshot(tmp_path)
    env = cli_env(tmp_path, APE_FOUNDRY_HOST=chain.provider.uri)
    addresses = [str(ledger.address), str(virtual.address)]
    network = NETWORK
    if case == "no node":
        network = ("--network", f"http://127.0.0.1:{_free_port()}")
    elif case == "local network with another chain id":
        network = ("--network", f"ethereum:local:{chain.provider.uri}")
    elif case == "ledger is the proxy":
        addresses[0] = PROXY_ADDRESS
    else:
        addresses.reverse()
    line = error_line(run_cli(_watch(store, *addresses, network=network), env))
    howto = "(README, 'A node you started')"
    if case == "no node":
        assert line.startswith(f"Error: No (supported) node found on '{network[1]}'") and line.endswith(howto)
        assert "start the node first, or check the url" in line
    elif case == "local network with another chain id":
        assert line == (
            f"Error: the node at {chain.provider.uri} has chain id {chain.chain_id}, but the network ethereum:local "
            "signs for chain id 1337; for an Anvil you started, run with APE_FOUNDRY_HOST=<its url> and --network "
            f"ethereum:local:foundry; for another node pass --network <its url> {howto}"
        )
    elif case == "ledger is the proxy":
        assert line == (
            f"Error: --ledger {PROXY_ADDRESS} does not answer eip712Domain() like a perun-vyper PerunLedger; pass "
            "the address `ape run deploy` printed for this chain"
        )
    else:
        assert line == (
            f"Error: --virtual {ledger.address} answers eip712Domain() as PerunLedger v1 at {ledger.address} on chain "
            f"{chain.chain_id}, not a PerunVirtual v1 at its own address; pass the address `ape run deploy` printed "
            "for this chain"
        )
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("case", ["text file", "empty file", "another application's database", "other deployment"])
def test_watch__store_not_of_this_deployment__one_line_unchanged(case, ledger, virtual, chain, tmp_path):
    store = tmp_path / "watched.db"
    if case == "text file":
        store.write_text("channel ids of my own\n")
    elif case == "empty file":
        store.touch()
    elif case == "another application's database":
        with sqlite3.connect(store) as other:
            other.execute("CREATE TABLE notes (body TEXT)")
            other.execute("INSERT INTO notes VALUES ('keep me')")
        other.close()
    else:
        identity = StoreIdentity(chain.chain_id + 1, str(ledger.address), str(virtual.address))
        Store(store, identity=identity).close()
    before = snapshot(tmp_path)
    env = cli_env(tmp_path, APE_FOUNDRY_HOST=chain.provider.uri)
    line = error_line(run_cli(_watch(store, str(ledger.address), str(virtual.address)), env))
    if case == "text file":
        assert line.startswith(f"Error: {store} is not a SQLite database")
    elif case == "empty file":
        assert line.startswith(f"Error: {store} holds no perun-vyper store")
    elif case == "another application's database":
        assert line.startswith(f"Error: {store} holds another application's tables (notes), not a perun-vyper store")
    else:
        assert line.startswith(f"Error: {store} is the store of chain {chain.chain_id + 1}")
        assert f"this run is on chain {chain.chain_id}" in line
    assert snapshot(tmp_path) == before


def test_hub__store_of_another_application__one_line_unchanged(ledger, virtual, chain, tmp_path):
    store = tmp_path / "hub.db"
    with sqlite3.connect(store) as other:
        other.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    other.close()
    before = snapshot(tmp_path)
    command = ape_run(
        "hub", *NETWORK, "--account", "TEST::3", "--store", str(store), "--ledger", str(ledger.address),
        "--virtual", str(virtual.address), "--collateral", "1000", "--listen", "127.0.0.1:0",
    )  # fmt: skip
    line = error_line(run_cli(command, cli_env(tmp_path, APE_FOUNDRY_HOST=chain.provider.uri)))
    assert line.startswith(f"Error: {store} holds another application's tables (invoices), not a perun-vyper store")
    assert snapshot(tmp_path) == before
