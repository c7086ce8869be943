"""`ape run hub --app --sla` as a subprocess on the test's Anvil: the hub serves SLA app channels as the
provider. A wallet opens one, funds it (the hub deposits its bond), sends a request and gets the hub's
acknowledgement in the same answer, then closes; SIGTERM stops the hub with exit 0. A `--sla` that is not
the SlaApp and a lone `--app` each end in one ``Error:`` line, nothing written."""

from __future__ import annotations

import signal
import subprocess

import pytest

from perun_vyper import StoreError, open_store
from perun_vyper.client.app_hub import acknowledgement
from perun_vyper.core.sla import SlaData, request
from perun_vyper.node import HubClient
from tests.node.conftest import run
from tests.node.test_hub_cli import ROOT, _env, _hub_command, _one_error_line
from tests.support.apps import PRICE
from tests.support.constants import E
from tests.support.process import Output

REQUEST = b"\x0c" * 32


@pytest.fixture
def backend() -> str:
    # One backend: tests/node/test_hub_cli.py runs the hub process on both.
    return "sqlite"


def test_hub_cli_apps__sla_request_acknowledged_in_one_round_trip__closed(
    ledger, virtual, apps, sla, app_domain, sla_data, chain, domain, alice, ingrid, store_target, store_at, tmp_path
):
    command = _hub_command(
        chain.provider.uri, store_target("hub"), str(ledger.address), str(virtual.address),
        "--app", str(apps.address), "--sla", str(sla.address), "--listen", "127.0.0.1:0",
    )  # fmt: skip
    proc = subprocess.Popen(
        command, cwd=ROOT, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = Output(proc)
    try:
        started = output.until("hub ", timeout=120)
        assert started.endswith(f"virtual={virtual.address} app={apps.address} sla={sla.address}")
        url = "ws://" + started.split("ws://")[1].split(" ")[0]

        async def scenario():
            async with HubClient(
                url,
                alice.private_key,
                store_at("alice"),
                domain,
                adjudicator=ledger,
                app_domain=app_domain,
                app_adjudicator=apps,
            ) as client:
                assert client.info.apps == [sla.address]
                channel = await client.open_app(str(sla.address), E, E, sla_data())
                channel.deposit(E, alice)
                await client.app_funded(channel.channel_id)
                latest = await client.app_move(channel.channel_id, request(channel.app_state, REQUEST))
                await client.app_finalize(channel.channel_id)
                await client.app_close(channel.channel_id)
                return channel, latest

        channel, latest = run(scenario(), 120)
        data = SlaData.decode(latest.state.app_data)
        assert (data.request, data.response) == (REQUEST, acknowledgement(ingrid.address)(REQUEST))
        assert (latest.state.balance_a, latest.state.balance_b) == (E - PRICE, E + PRICE)
        assert channel.holdings() == (0, 0, True)
        proc.send_signal(signal.SIGTERM)
        assert output.until("hub ", timeout=30) == f"hub {ingrid.address} stopped (SIGTERM)"
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not any("Traceback" in line for line in output.lines)


def test_hub_cli_apps__sla_not_the_sla_app__one_error_line_exit_1(ledger, virtual, apps, chain, store_target, tmp_path):
    target = store_target("hub")
    extra = ["--app", str(apps.address), "--sla", str(ledger.address)]
    command = _hub_command(chain.provider.uri, target, str(ledger.address), str(virtual.address), *extra)
    assert _one_error_line(command, tmp_path) == (
        f"Error: --sla {ledger.address} on chain {chain.chain_id} does not hold this release's SlaApp; pass the "
        "address `ape run deploy` printed for this chain"
    )
    with pytest.raises(StoreError, match="holds no perun-vyper store"):
        open_store(target, create=False)


def test_hub_cli_apps__app_without_sla__one_error_line_exit_1(ledger, virtual, apps, chain, tmp_path):
    extra = ["--app", str(apps.address)]
    command = _hub_command(chain.provider.uri, tmp_path / "hub.db", str(ledger.address), str(virtual.address), *extra)
    assert _one_error_line(command, tmp_path) == (
        "Error: --app and --sla go together: pass the AppAdjudicator and the SlaApp `ape run deploy` printed"
    )
    assert not (tmp_path / "hub.db").exists()
