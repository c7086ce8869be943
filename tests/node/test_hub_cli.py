"""End to end: `ape run hub` as a subprocess on the test's own Anvil (``--network <uri>``, sending as
``TEST::3``, the ``ingrid`` fixture's account), a ``HubClient`` of Alice's in this process. Alice opens,
funds (the hub deposits its side) and pays; a stale registration the test makes is answered by the
hub's in-process watchtower while it serves, and Alice's connection hears ``chain.disputed``; SIGTERM
stops the hub with exit 0. A bad ``--ledger``, a malformed ``--listen``, a port in use and a store that
cannot be opened each end in one ``Error:`` line and exit code 1."""

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

from perun_vyper import Store
from perun_vyper.core import calls
from perun_vyper.core.codec import hexstr
from perun_vyper.core.display import utc
from perun_vyper.node import HubClient
from tests.node.conftest import run
from tests.support.constants import HOUR, E, M
from tests.support.process import Output

ROOT = Path(__file__).resolve().parents[2]


def _hub_command(uri: str, store: Path, ledger: str, virtual: str, *extra: str) -> list[str]:
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
    ledger, virtual, chain, domain, alice, ingrid, tmp_path
):
    uri = chain.provider.uri
    command = _hub_command(
        uri, tmp_path / "hub.db", str(ledger.address), str(virtual.address),
        "--listen", "127.0.0.1:0", "--watch-interval", "0.3", "--rate", "200", "--burst", "300",
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
        assert started == (f"{prefix}{port} chain={chain.chain_id} ledger={ledger.address} virtual={virtual.address}")
        url = f"ws://127.0.0.1:{port}"

        async def scenario():
            with Store(tmp_path / "alice.db") as store:
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


def test_hub_cli__ledger_address_without_code__one_line_exit_1(ledger, virtual, chain, stranger, tmp_path):
    command = _hub_command(chain.provider.uri, tmp_path / "hub.db", str(stranger.address), str(virtual.address))
    done = subprocess.run(command, cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    # Ape's own log line ("INFO: Connecting to ...") is all there is besides the error.
    assert [line for line in done.stdout.splitlines() if not line.startswith("INFO:")] == []
    assert done.stderr.splitlines() == [
        f"Error: no contract at --ledger {stranger.address} on chain {chain.chain_id}; pass the address "
        "`ape run deploy` printed for this chain"
    ]
    assert not (tmp_path / "hub.db").exists()  # nothing created before the inputs are checked


@pytest.mark.parametrize("case", ["listen malformed", "port in use", "store not openable"])
def test_hub_cli__bad_input__one_error_line_exit_1(case, ledger, virtual, chain, tmp_path):
    store, extra = tmp_path / "hub.db", []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        if case == "listen malformed":
            extra = ["--listen", "localhost"]
        elif case == "port in use":
            extra = ["--listen", f"127.0.0.1:{port}"]
        else:
            store = tmp_path / "no-such-directory" / "hub.db"
        command = _hub_command(chain.provider.uri, store, str(ledger.address), str(virtual.address), *extra)
        done = subprocess.run(command, cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert [line for line in done.stdout.splitlines() if not line.startswith("INFO:")] == []
    [line] = done.stderr.splitlines()
    if case == "listen malformed":
        assert line == "Error: --listen localhost is not HOST:PORT; pass e.g. --listen 127.0.0.1:8765"
    elif case == "port in use":
        assert line.startswith(f"Error: cannot listen on 127.0.0.1:{port} (")
        assert line.endswith("address already in use); pick a free address with --listen HOST:PORT")
    else:
        assert line == (
            f"Error: cannot open the store {store}: unable to open database file; pass --store with a writable "
            "file path (created if missing) or a postgresql:// URL"
        )
