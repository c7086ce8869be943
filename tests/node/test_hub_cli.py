"""End to end: `ape run hub` as a subprocess on the test's own Anvil (``--network <uri>``, sending as
``TEST::3``, the ``ingrid`` fixture's account), a ``HubClient`` of Alice's in this process. Alice opens,
funds (the hub deposits its side) and pays; a stale registration the test makes is answered by the
hub's in-process watchtower while it serves, and Alice's connection hears ``chain.disputed``; SIGTERM
stops the hub with exit 0. A bad ``--ledger``, a malformed ``--listen``, a port in use and a store that
cannot be opened each end in one ``Error:`` line and exit code 1. The hub's store is on the test's backend
(a SQLite file, or a schema in the session's PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from perun_vyper import StoreError, open_store
from perun_vyper.core import calls
from perun_vyper.core.codec import hexstr
from perun_vyper.core.display import utc
from perun_vyper.node import HubClient
from tests.node.conftest import run
from tests.support.constants import HOUR, E, M
from tests.support.process import Output

ROOT = Path(__file__).resolve().parents[2]


def _hub_command(uri: str, store: str | Path, ledger: str, virtual: str, *extra: str) -> list[str]:
    return [
        str(Path(sys.executable).with_name("ape")), "run", "hub",
        "--network", uri, "--account", "TEST::3", "--store", str(store),
        "--ledger", ledger, "--virtual", virtual, "--collateral", str(2 * E), *extra,
    ]  # fmt: skip


def _env(tmp_path: Path) -> dict[str, str]:
    # A data folder of its own, as in tests/watchtower/test_watch_cli.py: Ape caches contract types per
    # address of the ad-hoc network on disk. Python warnings of Ape's dependencies (pydantic-settings warns
    # on stderr now and then) are not the hub's output.
    return {**os.environ, "APE_DATA_FOLDER": str(tmp_path / "ape-data"), "PYTHONWARNINGS": "ignore"}


def test_hub_cli__wallet_opens_funds_pays__stale_registration_answered__sigterm_exits_0(
    ledger, virtual, chain, domain, alice, ingrid, store_target, store_at, backend, tmp_path
):
    uri = chain.provider.uri
    target = store_target("hub")
    command = _hub_command(
        uri, target, str(ledger.address), str(virtual.address),
        "--listen", "127.0.0.1:0", "--watch-interval", "0.3", "--rate", "200", "--burst", "300", "--worker", "w1",
    )  # fmt: skip
    proc = subprocess.Popen(
        command, cwd=ROOT, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = Output(proc)
    try:
        started = output.until("hub ", timeout=120)
        prefix = f"hub {ingrid.address} listening on ws://127.0.0.1:"
        assert started.startswith(prefix)
        port = started.removeprefix(prefix).split(" ")[0]
        # A shared store (PostgreSQL) names the worker and the store (without a password) too.
        with open_store(target) as store:
            shared = f" worker=w1 store={store.location}" if backend == "postgres" else ""
        assert started == (
            f"{prefix}{port} chain={chain.chain_id} ledger={ledger.address} virtual={virtual.address} apps=none{shared}"
        )
        url = f"ws://127.0.0.1:{port}"

        async def scenario():
            store = store_at("alice")
            async with HubClient(url, alice.private_key, store, domain, adjudicator=ledger) as client:
                channel = await client.open_channel(E, E)
                client.deposit(channel.channel_id, E, alice)
                funded = await client.funded(channel.channel_id)
                assert (client.info.limits.rate_per_second, client.info.limits.burst) == (200.0, 300)
                await client.pay(channel.channel_id, 100 * M)
                await client.pay(channel.channel_id, 50 * M)
                stale_state = store.state(channel.channel_id, 1)
                stale = ledger.register(*calls.register(channel.params, stale_state), sender=alice)
                observed = await asyncio.to_thread(output.until, "observed")
                refuted = await asyncio.to_thread(output.until, "refuted")
                method, params = await asyncio.wait_for(client.notifications.get(), 10)
                return channel, funded, stale, observed, refuted, method, params

        channel, funded, stale, observed, refuted, method, params = run(scenario(), 120)
        channel_hex = hexstr(channel.channel_id)
        assert funded.deposit_tx is not None
        assert (funded.holdings.deposit_a, funded.holdings.deposit_b) == (str(E), str(E))
        deadline = stale.timestamp + HOUR
        assert re.fullmatch(
            rf"observed   ledger {channel_hex} registered v1 deadline={re.escape(utc(deadline))} "
            rf"\((in 1 h|in 59 min( [0-9]+ s)?)\) block={stale.block_number} tx={str(stale.txn_hash).lower()}",
            observed,
        ), observed
        assert refuted.startswith(f"refuted    ledger {channel_hex} v1 -> v2 tx=0x")
        assert chain.get_receipt(refuted.split("tx=")[1]).sender == ingrid.address
        assert (method, params) == ("chain.disputed", {"channel": channel_hex, "version": 1, "deadline": deadline})
        assert tuple(ledger.dispute(channel.channel_id)) == (2, deadline, bytes(32))

        proc.send_signal(signal.SIGTERM)
        assert output.until("hub ", timeout=30) == f"hub {ingrid.address} stopped (SIGTERM)"
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not any("Traceback" in line for line in output.lines)


def _one_error_line(command: list[str], tmp_path: Path) -> str:
    """Run ``command`` to its end: exit code 1, nothing on stdout but Ape's own log lines ("INFO: Connecting
    to ..."), one line on stderr (returned)."""
    done = subprocess.run(command, cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert [line for line in done.stdout.splitlines() if not line.startswith("INFO:")] == []
    [line] = done.stderr.splitlines()
    return line


def test_hub_cli__ledger_address_without_code__one_line_exit_1(
    ledger, virtual, chain, stranger, store_target, tmp_path
):
    target = store_target("hub")
    command = _hub_command(chain.provider.uri, target, str(stranger.address), str(virtual.address))
    assert _one_error_line(command, tmp_path) == (
        f"Error: no contract at --ledger {stranger.address} on chain {chain.chain_id}; pass the address "
        "`ape run deploy` printed for this chain"
    )
    # Nothing created before the inputs are checked: no file, or a schema without tables.
    with pytest.raises(StoreError, match="holds no perun-vyper store"):
        open_store(target, create=False)


def test_hub_cli__listen_malformed__one_error_line_exit_1(ledger, virtual, chain, tmp_path):
    # The address is checked before the store is opened: no store (and no backend) involved.
    extra = ["--listen", "localhost"]
    command = _hub_command(chain.provider.uri, tmp_path / "hub.db", str(ledger.address), str(virtual.address), *extra)
    line = _one_error_line(command, tmp_path)
    assert line == "Error: --listen localhost is not HOST:PORT; pass e.g. --listen 127.0.0.1:8765"
    assert not (tmp_path / "hub.db").exists()


def test_hub_cli__port_in_use__one_error_line_exit_1(ledger, virtual, chain, store_target, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        extra = ["--listen", f"127.0.0.1:{port}"]
        command = _hub_command(
            chain.provider.uri, store_target("hub"), str(ledger.address), str(virtual.address), *extra
        )
        line = _one_error_line(command, tmp_path)
    assert line.startswith(f"Error: cannot listen on 127.0.0.1:{port} (")
    assert line.endswith("address already in use); pick a free address with --listen HOST:PORT")


def test_hub_cli__store_not_openable__one_error_line_exit_1(ledger, virtual, chain, backend, tmp_path):
    missing = tmp_path / "no-such-directory"  # no server listens there; the password must not be shown
    store = str(missing / "hub.db") if backend == "sqlite" else f"postgresql://perun:secretpw@/perun?host={missing}"
    command = _hub_command(chain.provider.uri, store, str(ledger.address), str(virtual.address))
    line = _one_error_line(command, tmp_path)
    if backend == "sqlite":
        assert line == (
            f"Error: cannot open the store {store}: unable to open database file; pass --store with a writable "
            "file path (created if missing) or a postgresql:// URL"
        )
    else:
        assert line.startswith(
            f"Error: cannot connect to the PostgreSQL store postgresql://perun@/perun?host={missing} ("
        )
        assert line.endswith("); check the URL, that the server runs and that the role may log in")
        assert "secretpw" not in line
    assert not missing.exists()
