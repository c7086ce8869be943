"""The hub service with the chain attached (Anvil through Ape, real signatures): Ingrid's ``Hub`` reads the
LedgerAdjudicator before signing and sends from her Ape account; Alice's wallet is a ``HubClient`` with
the same adjudicator. Funding (the hub deposits only after the user did, once), payments refused before
funding, a top-up, a cooperative close submitted by the hub, and the hub paying the wallet through the
``ledger.proposal`` notification, also across a disconnect."""

from __future__ import annotations

from contextlib import asynccontextmanager

import msgspec
import pytest

from perun_vyper import ChannelStore, Hub, LedgerState, Signer
from perun_vyper.core.codec import hexstr
from perun_vyper.core.protocol import Update
from perun_vyper.errors import HubError, RefusedUpdate, WalletUnavailable
from perun_vyper.node import HubClient, HubServer, Policy
from perun_vyper.node.schema import update_to_msg
from tests.node.conftest import call, error_of, raw, run
from tests.support.constants import E, M

POLICY = Policy(collateral=2 * E)


@pytest.fixture
def hub(chain_hub) -> Hub:
    return chain_hub


@pytest.fixture
def alice_store(store_at) -> ChannelStore:
    return store_at("alice")


@pytest.fixture
def serving(hub, domain, ingrid):
    @asynccontextmanager
    async def _serving():
        async with HubServer(hub, domain, POLICY, account=ingrid) as server:
            yield server

    return _serving


@pytest.fixture
def wallet(alice, alice_store, domain, ledger):
    def _wallet(server: HubServer) -> HubClient:
        return HubClient(server.url, alice.private_key, alice_store, domain, adjudicator=ledger)

    return _wallet


async def _opened(client: HubClient, alice, deposit: int = E, hub_deposit: int = E):
    """A channel opened by Alice with the hub; Alice's deposit on-chain and told to the hub."""
    channel = await client.open_channel(deposit, hub_deposit)
    client.deposit(channel.channel_id, deposit, alice)
    return channel, await client.funded(channel.channel_id)


def test_funded__before_user_deposit__refused(serving, wallet, hub, ledger, alice):
    async def scenario():
        async with serving() as server, wallet(server) as client:
            channel = await client.open_channel(E, E)
            try:
                await client.funded(channel.channel_id)
            except HubError as exc:
                return channel, exc

    channel, exc = run(scenario(), 60)
    assert (exc.code, str(exc)) == (
        2001,
        f"your side of channel {hexstr(channel.channel_id)} holds 0 on-chain, {E} short of the {E} agreed at "
        f"version 0; deposit {E} more (and wait for 0 confirmations), then call ledger.funded again",
    )
    assert tuple(ledger.holdings(channel.channel_id)) == (0, 0, False)


def test_funded__after_user_deposit__hub_deposits_once__repeat_is_a_no_op(
    serving, wallet, ledger, alice, ingrid, chain
):
    before = ingrid.balance

    async def scenario():
        async with serving() as server, wallet(server) as client:
            channel, first = await _opened(client, alice, E, 2 * E)
            again = await client.funded(channel.channel_id)
            return channel, first, again

    channel, first, again = run(scenario(), 60)
    receipt = chain.get_receipt(first.deposit_tx)
    assert receipt.sender == ingrid.address
    assert (first.holdings.deposit_a, first.holdings.deposit_b) == (str(E), str(2 * E))
    assert again.deposit_tx is None and again.holdings == first.holdings
    assert tuple(ledger.holdings(channel.channel_id)) == (E, 2 * E, False)
    assert ingrid.balance == before - 2 * E - receipt.total_fees_paid


def test_pay__before_funding__refused_by_wallet_and_hub(serving, wallet, hub, alice):
    async def scenario():
        async with serving() as server, wallet(server) as client:
            channel = await client.open_channel(E, E)
            client.deposit(channel.channel_id, E, alice)  # Alice's side only: the hub has not deposited
            try:
                await client.pay(channel.channel_id, 5)
            except RefusedUpdate as exc:
                own = str(exc)
            state = channel.state.pay(5, 0)
            forged = Update(state, Signer(alice.private_key).sign_state(state, channel.domain))
            async with raw(server, alice.private_key) as ws:
                answer = await call(ws, "ledger.update", {"update": msgspec.to_builtins(update_to_msg(forged))})
            return channel, own, answer

    channel, own, answer = run(scenario(), 60)
    expected = (
        f"the state accounts for deposits ({E}, {E}) but only ({E}, 0) are known on-chain; deposit first, then "
        "call confirm_funding()"
    )
    assert own == expected
    assert error_of(answer) == (2001, expected)
    assert channel.pending() is None and hub.channels[channel.channel_id].latest.state.version == 0


def test_top_up__deposit_then_update__both_hold_the_new_funding(serving, wallet, hub, ledger, alice):
    async def scenario():
        async with serving() as server, wallet(server) as client:
            channel, _ = await _opened(client, alice)
            await client.pay(channel.channel_id, 100 * M)
            client.deposit(channel.channel_id, 500 * M, alice)
            signed = await client.top_up(channel.channel_id, 500 * M)
            return channel, signed

    channel, signed = run(scenario(), 60)
    assert signed.state == LedgerState(channel.channel_id, 2, E + 400 * M, E + 100 * M, E + 500 * M, E)
    assert signed.fully_signed and hub.channels[channel.channel_id].latest == signed == channel.latest
    assert hub.store.latest(channel.channel_id) == signed
    assert tuple(ledger.holdings(channel.channel_id)) == (E + 500 * M, E, False)


def test_top_up__before_the_deposit__refused(serving, wallet, hub, alice):
    async def scenario():
        async with serving() as server, wallet(server) as client:
            channel, _ = await _opened(client, alice)
            state = channel.state.top_up(500 * M, 0)
            update = Update(state, Signer(alice.private_key).sign_state(state, channel.domain))
            async with raw(server, alice.private_key) as ws:
                return await call(ws, "ledger.update", {"update": msgspec.to_builtins(update_to_msg(update))})

    assert error_of(run(scenario(), 60)) == (
        2001,
        f"the state accounts for deposits ({E + 500 * M}, {E}) but only ({E}, {E}) are known on-chain; deposit "
        "first, then call confirm_funding()",
    )


def test_close__final_state__hub_submits__both_paid_exactly(serving, wallet, hub, ledger, alice, ingrid, chain):
    async def scenario():
        async with serving() as server, wallet(server) as client:
            channel, _ = await _opened(client, alice)
            await client.pay(channel.channel_id, 300 * M)
            final = await client.finalize(channel.channel_id)
            balances = alice.balance, ingrid.balance
            tx = await client.close_channel(channel.channel_id)
            again = await client.close_channel(channel.channel_id)
            return channel, final, balances, tx, again

    channel, final, (alice_before, ingrid_before), tx, again = run(scenario(), 60)
    assert final.state == LedgerState(channel.channel_id, 2, 700 * M, E + 300 * M, E, E, (), True)
    receipt = chain.get_receipt(tx)
    assert receipt.sender == ingrid.address and again is None
    assert alice.balance - alice_before == 700 * M
    assert ingrid.balance - ingrid_before == E + 300 * M - receipt.total_fees_paid
    assert tuple(ledger.holdings(channel.channel_id))[2] is True


def test_close__latest_not_final__refused(serving, wallet, ledger, alice):
    async def scenario():
        async with serving() as server, wallet(server) as client:
            channel, _ = await _opened(client, alice)
            await client.pay(channel.channel_id, 1)
            try:
                await client.close_channel(channel.channel_id)
            except HubError as exc:
                return channel, exc

    channel, exc = run(scenario(), 60)
    assert (exc.code, str(exc)) == (
        2001,
        "the latest state both signed (version 1) is not final; propose the final state through ledger.update "
        "(the hub countersigns it), then call ledger.close",
    )
    assert tuple(ledger.holdings(channel.channel_id)) == (E, E, False)


def test_close_on_chain__by_the_wallet_itself__hub_answers_a_repeat_with_null(serving, wallet, ledger, alice, chain):
    async def scenario():
        async with serving() as server, wallet(server) as client:
            channel, _ = await _opened(client, alice)
            await client.finalize(channel.channel_id)
            receipt = client.close_on_chain(channel.channel_id, alice)
            return channel, receipt, await client.close_channel(channel.channel_id)

    channel, receipt, by_hub = run(scenario(), 60)
    assert receipt.sender == alice.address and by_hub is None
    assert tuple(ledger.holdings(channel.channel_id))[2] is True


def test_hub_pays__proposal_notified__wallet_countersigns__both_hold_it(serving, wallet, hub, alice):
    async def scenario():
        async with serving() as server, wallet(server) as client:
            channel, _ = await _opened(client, alice)
            signed = await server.pay(channel.channel_id, 250 * M)
            method, params = await client.notifications.get()
            return channel, signed, method, params, client.refused

    channel, signed, method, params, refused = run(scenario(), 60)
    assert signed.state == LedgerState(channel.channel_id, 1, E + 250 * M, E - 250 * M, E, E)
    assert signed.fully_signed and refused == []
    assert method == "ledger.proposal" and params["update"]["state"]["version"] == 1
    assert params["update"]["signature"] == hexstr(signed.sig_b)
    assert channel.latest == signed == hub.channels[channel.channel_id].latest
    assert hub.channels[channel.channel_id].pending() is None
    assert hub.store.latest(channel.channel_id) == signed


def test_hub_pays__wallet_disconnected__raises_pending__resume_completes(serving, wallet, hub, alice):
    async def scenario():
        async with serving() as server:
            async with wallet(server) as client:
                channel, _ = await _opened(client, alice)
            try:
                await server.pay(channel.channel_id, 40 * M)
            except WalletUnavailable as exc:
                error = str(exc)
            pending = hub.channels[channel.channel_id].pending()
            async with wallet(server) as again:
                resumed = await again.resume()
                return channel, error, pending, resumed, again.channel(channel.channel_id).latest

    channel, error, pending, resumed, wallet_latest = run(scenario(), 60)
    assert error == (
        f"the wallet {alice.address} of channel {hexstr(channel.channel_id)} is not connected; the hub's proposal "
        "of version 1 stays in flight and completes when the wallet logs in and resumes"
    )
    assert pending.state == LedgerState(channel.channel_id, 1, E + 40 * M, E - 40 * M, E, E)
    hub_side = hub.channels[channel.channel_id]
    assert resumed == [hub_side.latest] == [wallet_latest]
    assert hub_side.latest.state == pending.state and hub_side.latest.fully_signed
    assert hub_side.pending() is None
