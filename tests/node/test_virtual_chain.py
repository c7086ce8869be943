"""A virtual channel through the hub service with the chain attached (Anvil through Ape): Alice and Bob
fund their ledger channels on-chain, open a virtual channel over the network (the hub reads the virtual
record before it countersigns each lock), pay both ways, close it, and close their ledger channels through
the hub. On-chain, everyone is paid exactly the final state, and Ingrid gets back exactly her deposits."""

from __future__ import annotations

import asyncio

import pytest

from perun_vyper import Hub
from perun_vyper.node import HubClient, HubServer, Policy
from tests.node.conftest import run
from tests.support.constants import E, M


@pytest.fixture
def hub(chain_hub) -> Hub:
    return chain_hub


def test_virtual_on_chain__open_pay_close_then_ledgers_closed__payouts_exact_ingrid_neutral(
    hub, domain, virtual_domain, ledger, chain, alice, bob, ingrid, store_at
):
    def wallet(server: HubServer, account, name: str) -> HubClient:
        return HubClient(
            server.url,
            account.private_key,
            store_at(name),
            domain,
            adjudicator=ledger,
            virtual_domain=virtual_domain,
            clock=lambda: chain.pending_timestamp,
        )

    async def scenario():
        async with (
            HubServer(hub, domain, Policy(collateral=2 * E), account=ingrid) as server,
            wallet(server, alice, "alice") as at_alice,
            wallet(server, bob, "bob") as at_bob,
        ):
            legs = []
            for client, account in ((at_alice, alice), (at_bob, bob)):
                channel = await client.open_channel(E, E)
                client.deposit(channel.channel_id, E, account)
                await client.funded(channel.channel_id)
                legs.append(channel)
            virtual = await at_alice.open_virtual(bob.address, 400 * M)
            await at_alice.pay_virtual(virtual.channel_id, 300 * M)
            await at_bob.pay_virtual(virtual.channel_id, 100 * M)
            await at_alice.close_virtual(virtual.channel_id)
            for _ in range(500):
                if not legs[1].state.locks:
                    break
                await asyncio.sleep(0.01)
            closes = []
            for client, channel in ((at_alice, legs[0]), (at_bob, legs[1])):
                await client.finalize(channel.channel_id)
                closes.append(chain.get_receipt(await client.close_channel(channel.channel_id)))
            return legs, virtual, closes

    legs, virtual, closes = run(scenario(), 120)
    assert virtual.state.is_final and (virtual.state.balance_alice, virtual.state.balance_bob) == (200 * M, 200 * M)
    payouts = [
        [(event.payout_a, event.payout_b) for event in receipt.decode_logs(ledger.Concluded)] for receipt in closes
    ]
    # Alice: 1 - 0.4 + 0.2; Bob: 1 + 0.2. Ingrid: 1.2 from Alice's channel, 0.8 from Bob's: her 2 back.
    assert payouts == [[(800 * M, 1200 * M)], [(1200 * M, 800 * M)]]
    assert all(receipt.sender == ingrid.address for receipt in closes)
    for channel in legs:
        assert tuple(ledger.holdings(channel.channel_id))[2] is True  # concluded
