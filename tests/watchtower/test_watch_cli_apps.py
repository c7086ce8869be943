"""`ape run watch --app` guards a store's app channels too (a subprocess on the test's Anvil, sending as
``TEST::4``): the client's stale registration of an SLA channel (its request pending, the penalty on its
side) is answered with the provider's latest state both signed (the request answered, the price paid),
and the dispute concluded at its deadline; the provider, whose store it is, sends nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from perun_vyper import AppChannel, AppParams, compact, exchange
from perun_vyper.core.app import NO_REGISTRATION
from perun_vyper.core.sla import check, request, respond
from tests.support.apps import PRICE
from tests.support.constants import E
from tests.support.process import Output

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def backend() -> str:
    # One backend: tests/watchtower/test_watch_cli.py runs the watch process on both.
    return "sqlite"


def test_watch_cli_apps__stale_registration_refuted_then_concluded(
    ledger, virtual, apps, sla, app_domain, sla_data, chain, alice, bob, watcher, store_at, tmp_path
):
    params = AppParams(str(alice.address), str(bob.address), str(sla.address), nonce=4242)
    client, provider = (
        AppChannel.open(params, app_domain, who, store_at(name), E, E, sla_data(), adjudicator=apps, rules=check)
        for who, name in ((alice, "alice"), (bob, "bob"))
    )
    exchange(client, provider)
    client.deposit(E, alice)
    provider.deposit(E, bob)
    exchange(client, provider, client.propose_move(request(client.app_state, b"\x07" * 32)))
    exchange(provider, client, provider.propose_move(respond(provider.app_state, b"\x08" * 32)))
    bob_balance, bob_nonce = bob.balance, bob.nonce
    store = store_at("bob")
    command = [
        str(Path(sys.executable).with_name("ape")), "run", "watch",
        "--network", chain.provider.uri, "--account", "TEST::4", "--store", store.target,
        "--ledger", str(ledger.address), "--virtual", str(virtual.address), "--app", str(apps.address),
        "--interval", "0.5", "--max-actions", "2", "--max-seconds", "120",
    ]  # fmt: skip
    env = {**os.environ, "APE_DATA_FOLDER": str(tmp_path / "ape-data")}
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = Output(proc)
    try:
        started = output.until("watching")
        assert "0 ledger channels, 0 virtual channels and 1 app channel of " in started
        assert f", app {apps.address}, events from block " in started
        # The client registers version 1: its request pending, the penalty on its side.
        stale = client.store.state(client.channel_id, 1)
        apps.register(
            params.as_tuple(), stale.state.as_tuple(), compact(stale.sig_a), compact(stale.sig_b),
            NO_REGISTRATION.as_tuple(), sender=alice,
        )  # fmt: skip
        channel = "0x" + params.channel_id.hex()
        registered = output.until("registered")
        assert registered.startswith(f"registered app {channel} v2 replacing=1 tx=0x")
        dispute = provider.dispute()
        assert dispute.state == provider.app_state and dispute.agreed == 2
        chain.mine(timestamp=dispute.deadline)
        concluded = output.until("concluded")
        assert concluded.startswith(f"concluded  app {channel} v2 payout_a={(E - PRICE) / E:g} ETH ({E - PRICE} wei) ")
        assert output.until("summary") == "summary    2 actions: 1 AppRegistered, 1 AppConcluded"
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not any("Traceback" in line for line in output.lines)
    assert bob.nonce == bob_nonce  # the provider sent nothing; the watcher's account paid the gas
    assert bob.balance == bob_balance + E + PRICE
