"""App channels through the hub service with the chain attached (Anvil, the SLA app, Ingrid the provider):
the hub deposits its bond only after the wallet's deposit, answers a request with its response in the same
answer (the app contract checked on both sides), and closes with the final state; exact balances."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest

from perun_vyper.client.app_hub import AppHub, sla_service
from perun_vyper.core.codec import hexstr
from perun_vyper.core.sla import SlaData, request
from perun_vyper.errors import HubError
from perun_vyper.node import HubClient, HubServer, Policy
from perun_vyper.node.guard import HubGuard
from perun_vyper.watchtower import Watchtower
from perun_vyper.watchtower.actions import AppConcluded, AppMoved
from tests.node.conftest import run
from tests.support.apps import PRICE
from tests.support.constants import E

POLICY = Policy(collateral=2 * E)
REQUEST = b"\x0a" * 32


def _response(request: bytes) -> bytes:
    return bytes(b ^ 0x55 for b in request)


@pytest.fixture
def backend() -> str:
    # One store backend for the chain stories: tests/node/test_app.py runs the API on both.
    return "sqlite"


@pytest.fixture
def app_hub(chain_hub, apps, sla, app_domain) -> AppHub:
    return AppHub(chain_hub, app_domain, {str(sla.address): sla_service(_response)}, adjudicator=apps)


@pytest.fixture
def serving(chain_hub, domain, app_hub, ingrid):
    @asynccontextmanager
    async def _serving():
        async with HubServer(chain_hub, domain, POLICY, account=ingrid, apps=app_hub) as server:
            yield server

    return _serving


@pytest.fixture
def wallet(alice, store_at, domain, ledger, apps, app_domain):
    def _wallet(server: HubServer) -> HubClient:
        return HubClient(
            server.url,
            alice.private_key,
            store_at("alice"),
            domain,
            adjudicator=ledger,
            app_domain=app_domain,
            app_adjudicator=apps,
        )

    return _wallet


def test_app_chain__fund_request_answered_close__exact_balances(serving, wallet, sla, sla_data, chain, alice, ingrid):
    before = (alice.balance, ingrid.balance)

    async def scenario():
        async with serving() as server, wallet(server) as client:
            channel = await client.open_app(str(sla.address), E, E, sla_data())
            with pytest.raises(HubError, match=f"your side of app channel {hexstr(channel.channel_id)} holds 0"):
                await client.app_funded(channel.channel_id)
            fee_deposit = channel.deposit(E, alice).total_fees_paid
            funded = await client.app_funded(channel.channel_id)
            again = await client.app_funded(channel.channel_id)  # a repeat deposits nothing
            latest = await client.app_move(channel.channel_id, request(channel.app_state, REQUEST))
            await client.app_finalize(channel.channel_id)
            close_tx = await client.app_close(channel.channel_id)
            return channel, fee_deposit, funded, again, latest, close_tx

    channel, fee_deposit, funded, again, latest, close_tx = run(scenario(), 120)
    assert funded.deposit_tx is not None and again.deposit_tx is None
    assert (funded.holdings.deposit_a, funded.holdings.deposit_b) == (str(E), str(E))
    assert SlaData.decode(latest.state.app_data).response == _response(REQUEST)
    assert (latest.state.balance_a, latest.state.balance_b) == (E - PRICE, E + PRICE)
    assert close_tx is not None and channel.holdings() == (0, 0, True)
    hub_fees = sum(r.total_fees_paid for r in chain.history[ingrid.address][-2:])
    assert alice.balance == before[0] - fee_deposit - PRICE
    assert ingrid.balance == before[1] - hub_fees + PRICE


def test_app_chain__request_forced_on_chain__hub_guard_answers_and_is_paid(
    serving, wallet, app_hub, ledger, virtual, sla, sla_data, chain, alice, ingrid, watcher
):
    before = (alice.balance, ingrid.balance)

    async def scenario():
        async with serving() as server, wallet(server) as client:
            channel = await client.open_app(str(sla.address), E, E, sla_data())
            fee_deposit = channel.deposit(E, alice).total_fees_paid
            await client.app_funded(channel.channel_id)
            # The wallet claims the hub never answered: it forces its request without sending it.
            channel.propose_move(request(channel.app_state, REQUEST))
            channel.force(sender=watcher)
            guard = HubGuard(server, Watchtower(app_hub.store, ledger, virtual, ingrid), 60, apps=app_hub)
            answered = await guard.round()
            chain.mine(timestamp=channel.dispute().deadline)
            concluded = await guard.round()
            return channel, fee_deposit, answered, concluded

    channel, fee_deposit, answered, concluded = run(scenario(), 120)
    assert [type(action) for action in answered] == [AppMoved]
    assert (answered[0].old_version, answered[0].new_version) == (1, 2)
    assert [(type(a), a.payouts) for a in concluded] == [(AppConcluded, (E - PRICE, E + PRICE))]
    hub_fees = sum(r.total_fees_paid for r in chain.history[ingrid.address][-3:])  # deposit, progress, conclude
    assert alice.balance == before[0] - fee_deposit - PRICE
    assert ingrid.balance == before[1] - hub_fees + PRICE
    assert channel.holdings() == (0, 0, True)
