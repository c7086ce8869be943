"""`ape run hub` as Ingrid runs it in production: her key in a keyfile account (``ape accounts import``), the
passphrase in ``APE_ACCOUNTS_<alias>_PASSPHRASE``, no terminal, on a node it did not start. A wallet in
this process opens, funds and pays: the hub signs channel states with the keyfile's key and sends its
deposit from the keyfile account without a prompt; SIGTERM stops it with exit 0."""

from __future__ import annotations

import secrets
import signal

from perun_vyper import Store
from perun_vyper.node import HubClient
from tests.node.conftest import run
from tests.support.cli import PASSPHRASE, ape_run, cli_env, running, write_keyfile
from tests.support.constants import E, M


def test_hub__keyfile_account_no_terminal__signs_states_and_deposits(
    ledger, virtual, chain, domain, alice, stranger, tmp_path
):
    ingrid = write_keyfile(tmp_path, "ingrid", secrets.token_bytes(32))
    stranger.transfer(ingrid, 5 * E)
    env = cli_env(tmp_path, APE_FOUNDRY_HOST=chain.provider.uri, APE_ACCOUNTS_ingrid_PASSPHRASE=PASSPHRASE)
    command = ape_run(
        "hub", "--network", "ethereum:local:foundry", "--account", "ingrid", "--store", str(tmp_path / "hub.db"),
        "--ledger", str(ledger.address), "--virtual", str(virtual.address), "--collateral", str(2 * E),
        "--listen", "127.0.0.1:0", "--watch-interval", "600",
    )  # fmt: skip
    with running(command, env) as (proc, output):
        started = output.until("hub ", timeout=120)
        assert started.startswith(f"hub {ingrid} listening on ws://127.0.0.1:")
        url = started.split(" on ")[1].split()[0]

        async def scenario():
            with Store(tmp_path / "alice.db") as store:
                async with HubClient(url, alice, store, domain, adjudicator=ledger) as client:
                    channel = await client.open_channel(E, E)
                    client.deposit(channel.channel_id, E, alice)
                    funded = await client.funded(channel.channel_id)
                    signed = await client.pay(channel.channel_id, 100 * M)
                    return channel, funded, signed

        channel, funded, signed = run(scenario(), 120)
        assert chain.get_receipt(funded.deposit_tx).sender == ingrid
        assert tuple(ledger.holdings(channel.channel_id))[:2] == (E, E)
        assert (signed.state.balance_a, signed.state.balance_b) == (E - 100 * M, E + 100 * M)
        assert signed.fully_signed
        proc.send_signal(signal.SIGTERM)
        assert output.until("hub ", timeout=30) == f"hub {ingrid} stopped (SIGTERM)"
        assert proc.wait(timeout=30) == 0
