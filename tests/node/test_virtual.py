"""Virtual channels through the hub service: Alice and Bob, each a wallet connected to the hub, open a
virtual channel in the order of SPEC 9.7, pay each other end to end (the hub relays, never signs), and
close it with both releases countersigned together; and every refusal on the way."""

from __future__ import annotations

import asyncio

import pytest

from perun_vyper import Signer
from perun_vyper.core.codec import hexstr
from perun_vyper.core.virtual import VirtualParams, VirtualState
from perun_vyper.errors import HubError, HubUnavailable, RefusedUpdate
from perun_vyper.node import HubClient
from perun_vyper.node.schema import update_to_msg
from perun_vyper.node.virtual_schema import vparams_to_msg
from tests.node.conftest import call, error_of, raw, run
from tests.support.constants import E
from tests.support.parties import (
    ALICE,
    ALICE_KEY,
    BOB,
    BOB_KEY,
    INGRID,
    LEDGER_DOMAIN,
    NOW,
    STRANGER_KEY,
    VIRTUAL_DOMAIN,
)

M = E // 1000


def vwallet(server, key: bytes, store, **options) -> HubClient:
    return HubClient(server.url, key, store, LEDGER_DOMAIN, virtual_domain=VIRTUAL_DOMAIN, clock=lambda: NOW, **options)


async def funded(server, client: HubClient, deposit: int = E, hub_deposit: int = E):
    """A ledger channel of ``client`` with the hub, both deposits told to both sides (off-chain)."""
    channel = await client.open_channel(deposit, hub_deposit)
    channel.confirm_funding((deposit, hub_deposit))
    await server.work(server.hub.channels[channel.channel_id].confirm_funding, (deposit, hub_deposit))
    return channel


async def settled(predicate, timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` holds (a wallet's background step finished)."""
    end = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < end, "not settled in time"
        await asyncio.sleep(0.01)


def test_virtual__open_pay_both_ways_close__ledgers_follow_final_state_hub_neutral(serving, hub, store_at):
    async def scenario():
        async with (
            serving() as server,
            vwallet(server, ALICE_KEY, store_at("alice")) as alice,
            vwallet(server, BOB_KEY, store_at("bob")) as bob,
        ):
            left, right = await funded(server, alice), await funded(server, bob)
            channel = await alice.open_virtual(BOB, 400 * M, nonce=7)
            held = {
                "alice lock": alice.channels[left.channel_id].state.locks,
                "bob lock": bob.channels[right.channel_id].state.locks,
                "hub virtual states": hub.store.latest(channel.channel_id),
            }
            for _ in range(3):
                await alice.pay_virtual(channel.channel_id, 100 * M)
            await settled(lambda: channel.channel_id in bob.virtuals)
            await bob.pay_virtual(channel.channel_id, 50 * M)
            await alice.close_virtual(channel.channel_id)
            await settled(lambda: not right.state.locks)
            return channel, held, left, right

    channel, held, left, right = run(scenario())
    params = channel.params
    assert params == VirtualParams(
        ALICE,
        BOB,
        INGRID,
        left.channel_id,
        right.channel_id,
        400 * M,
        0,
        NOW + 7 * 86400 // 2,
        3600,
        7,
        ledger_adjudicator=LEDGER_DOMAIN.verifying_contract,
        chain_id=31337,
    )
    assert len(held["alice lock"]) == 1 and len(held["bob lock"]) == 1
    assert held["hub virtual states"] is None  # the hub never held a virtual state before the close
    final = VirtualState(params.channel_id, 5, 150 * M, 250 * M, True)
    assert channel.state == final
    # Alice: 1 - 0.4 + 0.15; the hub's side in her channel takes Bob's 0.25, which it paid him in his.
    assert (left.state.balance_a, left.state.balance_b, left.state.locks) == (750 * M, E + 250 * M, ())
    assert (right.state.balance_a, right.state.balance_b, right.state.locks) == (1250 * M, E - 250 * M, ())
    for ledger in (left, right):
        assert ledger.latest.fully_signed and hub.store.latest(ledger.channel_id) == ledger.latest
    assert hub.store.latest(params.channel_id).state == final  # the evidence of both releases
