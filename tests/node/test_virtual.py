"""Virtual channels through the hub service: Alice and Bob, each a wallet connected to the hub, open a
virtual channel in the order of SPEC 9.7, pay each other end to end (the hub relays, never signs), and
close it with both releases countersigned together; and every refusal on the way."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NamedTuple

import msgspec
import pytest

from perun_vyper import Signer
from perun_vyper.client import LedgerChannel
from perun_vyper.core.codec import hexstr
from perun_vyper.core.virtual import VirtualParams, VirtualState
from perun_vyper.errors import HubError, HubUnavailable
from perun_vyper.node import HubClient, HubServer
from perun_vyper.node.schema import update_to_msg
from perun_vyper.node.virtual_schema import vparams_to_msg, vstate_to_msg
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


class Users(NamedTuple):
    server: HubServer
    alice: HubClient
    bob: HubClient
    left: LedgerChannel  # Alice's channel with the hub, funded
    right: LedgerChannel  # Bob's


@pytest.fixture
def users(serving, store_at):
    """``async with users() as (server, alice, bob, left, right)``: the hub served, Alice's and Bob's
    wallets logged in, each with a funded ledger channel; options go to Alice's wallet."""

    @asynccontextmanager
    async def _users(**alice_options) -> AsyncIterator[Users]:
        async with (
            serving() as server,
            vwallet(server, ALICE_KEY, store_at("alice"), **alice_options) as alice,
            vwallet(server, BOB_KEY, store_at("bob")) as bob,
        ):
            yield Users(server, alice, bob, await funded(server, alice), await funded(server, bob))

    return _users


async def settled(predicate, timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` holds (a wallet's background step finished)."""
    end = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < end, "not settled in time"
        await asyncio.sleep(0.01)


def test_virtual__open_pay_both_ways_close__ledgers_follow_final_state_hub_neutral(users, hub, store_at):
    async def scenario():
        async with users() as (_server, alice, bob, left, right):
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
            listed = [msgspec.json.decode(await client.call("virtual.list")) for client in (alice, bob)]
            return channel, held, left, right, listed

    channel, held, left, right, listed = run(scenario())
    params = channel.params
    entry = {"channel": hexstr(params.channel_id), "params": msgspec.to_builtins(vparams_to_msg(params))}
    assert listed == [{"channels": [entry]}] * 2
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


def _proposal(params: VirtualParams, key: bytes) -> dict:
    signature = Signer(key).sign_state(VirtualState.initial(params), VIRTUAL_DOMAIN)
    return {"params": msgspec.to_builtins(vparams_to_msg(params)), "signature": hexstr(signature)}


def _vparams(left: bytes, right: bytes, **changes) -> VirtualParams:
    fields = dict(alice=ALICE, bob=BOB, ingrid=INGRID, ledger_alice=left, ledger_bob=right)
    fields |= dict(funding_alice=100 * M, funding_bob=0, validity=NOW + 3600, challenge_duration=3600, nonce=1)
    return VirtualParams(**(fields | changes), ledger_adjudicator=LEDGER_DOMAIN.verifying_contract, chain_id=31337)


def test_propose__refusals__each_named__nothing_agreed(users, hub, store_at):
    async def scenario():
        async with users() as (server, _alice, bob, left, right):
            ok = _vparams(left.channel_id, right.channel_id)
            proposals = {
                "not alice": _proposal(_vparams(right.channel_id, left.channel_id, alice=BOB, bob=ALICE), BOB_KEY),
                "not her leg": _proposal(_vparams(right.channel_id, left.channel_id), ALICE_KEY),
                "signature": _proposal(ok, STRANGER_KEY),
                "validity": _proposal(_vparams(left.channel_id, right.channel_id, validity=NOW + 8 * 86400), ALICE_KEY),
            }
            async with raw(server, ALICE_KEY) as ws:
                answers = {name: error_of(await call(ws, "virtual.propose", body)) for name, body in proposals.items()}
            await bob.close()
            async with raw(server, ALICE_KEY) as ws:
                answers["offline"] = error_of(await call(ws, "virtual.propose", _proposal(ok, ALICE_KEY)))
            return answers, left, right

    answers, _, right = run(scenario())
    assert answers["not alice"] == (
        2001,
        f"the proposer of a virtual channel is its Alice: params.alice must be {ALICE}",
    )
    assert answers["not her leg"] == (
        1003,
        f"ledgerAlice {hexstr(right.channel_id)} is not a channel of {ALICE} with this hub",
    )
    assert answers["signature"][0] == 2003 and Signer(STRANGER_KEY).address in answers["signature"][1]
    assert answers["validity"] == (
        2001,
        f"validity {NOW + 8 * 86400} is {8 * 86400}s ahead, beyond this hub's maximum of {7 * 86400}s (until then "
        "only Alice and Bob may open a dispute and Ingrid's collateral stays locked); ask for a validity of at most "
        f"{NOW + 7 * 86400}",
    )
    assert answers["offline"] == (
        1006,
        f"{BOB} is not connected to this hub; the hub relays only to a connected wallet: retry when it is online",
    )
    assert hub.virtuals() == []


def test_send__stranger_or_malformed__refused(users, store_at):
    async def scenario():
        async with users() as (server, alice, _bob, _left, _right):
            channel = await alice.open_virtual(BOB, 100 * M)
            update = msgspec.to_builtins(update_to_msg(_any_update(alice)))
            target = hexstr(channel.channel_id)
            async with raw(server, STRANGER_KEY) as stranger, raw(server, ALICE_KEY) as ws:
                return channel, {
                    "stranger": error_of(await call(stranger, "virtual.send", {"channel": target, "refusal": "no"})),
                    "two parts": error_of(
                        await call(ws, "virtual.send", {"channel": target, "refusal": "no", "update": update})
                    ),
                    "none": error_of(await call(ws, "virtual.send", {"channel": target})),
                }

    channel, answers = run(scenario())
    assert answers["stranger"] == (
        1003,
        f"virtual channel {hexstr(channel.channel_id)} is not one of {Signer(STRANGER_KEY).address}'s through this hub",
    )
    assert answers["none"] == (-32602, "virtual.send carries exactly one of update, countersignature and refusal")
    assert answers["two parts"][0] == -32602  # a ledger update is not a virtual one: the schema refuses it


def _any_update(client: HubClient):
    """A ledger update of ``client`` (only its form matters)."""
    channel = next(iter(client.channels.values()))
    return channel.propose_payment(1)


def test_pay__forged_update__peer_refuses_with_reason_through_hub(users, store_at):
    async def scenario():
        async with users() as (server, alice, bob, _left, _right):
            channel = await alice.open_virtual(BOB, 100 * M)
            forged = channel.state.pay(10 * M, from_alice=True)
            signature = Signer(STRANGER_KEY).sign_state(forged, VIRTUAL_DOMAIN)
            body = {
                "channel": hexstr(channel.channel_id),
                "update": {"state": _vstate(forged), "signature": hexstr(signature)},
            }
            async with raw(server, ALICE_KEY) as ws:
                answer = await call(ws, "virtual.send", body)
                pushed = await asyncio.wait_for(ws.recv(), 5)
            return channel, bob.virtuals[channel.channel_id], answer, pushed

    _, at_bob, answer, pushed = run(scenario())
    message = json.loads(pushed)
    assert answer["result"] == {}
    assert message["method"] == "virtual.message" and message["params"]["sender"] == BOB
    assert message["params"]["refusal"] == f"signed by {Signer(STRANGER_KEY).address}, expected {ALICE}"
    assert at_bob.state.version == 0 and at_bob.pending() is None  # Bob signed nothing


def _vstate(state: VirtualState) -> dict:
    return msgspec.to_builtins(vstate_to_msg(state))


def test_lock__bob_before_alice__hub_refuses(users, store_at):
    async def scenario():
        async with users() as (server, _alice, bob, left, right):
            params = _vparams(left.channel_id, right.channel_id)
            async with raw(server, ALICE_KEY) as ws:
                assert "result" in await call(ws, "virtual.propose", _proposal(params, ALICE_KEY))
                await settled(lambda: params.channel_id in bob.virtuals)
                update = right.propose_lock(params)
                with pytest.raises(HubError) as refused:
                    await bob.call("ledger.update", {"update": msgspec.to_builtins(update_to_msg(update))})
            return refused.value, right

    refused, right = run(scenario())
    assert (refused.code, str(refused)) == (
        2001,
        "Ingrid signs the lock in the Ingrid-Bob channel only once the Alice-Ingrid channel holds its lock (fully "
        "signed); lock the Alice side first",
    )
    assert right.state.locks == ()


def test_open__peer_declines__alice_times_out_nothing_locked(users, hub, store_at):
    async def scenario():
        async with users(timeout=0.5) as (_server, alice, bob, left, _right):
            with pytest.raises(HubUnavailable) as waited:
                await alice.open_virtual(BOB, 100 * M, 50 * M)  # locks Bob's funds: his default policy declines
            return waited.value, left, bob

    waited, left, bob = run(scenario())
    assert (
        str(waited)
        == f"waited 0.5s for {BOB} to accept the virtual channel; the proposal stays in flight: resume() later"
    )
    assert left.state.locks == () and bob.virtuals == {}


def test_pay__peer_offline_then_resume_after_restart__both_hold_payment(serving, store_at):
    async def scenario():
        async with serving() as server:
            alice = vwallet(server, ALICE_KEY, store_at("alice"))
            bob = vwallet(server, BOB_KEY, store_at("bob"))
            async with alice, bob:
                await funded(server, alice), await funded(server, bob)
                channel = await alice.open_virtual(BOB, 100 * M)
                await alice.pay_virtual(channel.channel_id, 10 * M)
            async with vwallet(server, ALICE_KEY, store_at("alice")) as alice_again:
                with pytest.raises(HubError) as offline:
                    await alice_again.pay_virtual(channel.channel_id, 20 * M)
                async with vwallet(server, BOB_KEY, store_at("bob")) as bob_again:
                    resumed = await vwallet_resume(alice_again)
                    return offline.value, resumed, alice_again.virtuals[channel.channel_id], bob_again

    offline, resumed, at_alice, _ = run(scenario())
    assert offline.code == 1006
    assert [signed.state.version for signed in resumed] == [2]
    assert at_alice.state == VirtualState(at_alice.channel_id, 2, 70 * M, 30 * M)
    assert store_at("bob").latest(at_alice.channel_id) == at_alice.latest


async def vwallet_resume(client: HubClient):
    return await client.resume()


def test_propose__a_leg_cannot_hold_its_lock__refused_nothing_agreed(users, hub):
    async def scenario():
        async with users() as (server, alice, _bob, left, right):
            await alice.pay(left.channel_id, 900 * M)  # Alice keeps 0.1 in her channel
            too_much = _vparams(left.channel_id, right.channel_id, funding_alice=200 * M)
            async with raw(server, ALICE_KEY) as ws:
                return right, error_of(await call(ws, "virtual.propose", _proposal(too_much, ALICE_KEY)))

    _, answer = run(scenario())
    assert answer[0] == 2001
    assert answer[1].endswith(
        f"cannot lock fundingAlice {200 * M}: the side that funds it holds {100 * M}; ask for less or top up first"
    )
    assert hub.virtuals() == []


def test_pay_virtual__connection_drops_while_waiting__fails_at_once_not_at_timeout(users):
    async def scenario():
        async with users() as (_server, alice, bob, _left, _right):
            channel = await alice.open_virtual(BOB, 100 * M)
            stalled = asyncio.Event()

            async def never_answer(_params) -> None:
                stalled.set()
                await asyncio.sleep(3)  # longer than the test waits, shorter than closing allows

            bob._handlers["virtual.message"] = never_answer  # Bob's wallet hangs: no countersignature comes
            paying = asyncio.ensure_future(alice.pay_virtual(channel.channel_id, 10 * M))
            await asyncio.wait_for(stalled.wait(), 5)
            started = asyncio.get_running_loop().time()
            await alice._ws.close()  # Alice's connection to the hub drops while she waits
            with pytest.raises(HubUnavailable) as raised:
                await paying
            return str(raised.value), asyncio.get_running_loop().time() - started, channel

    message, waited, channel = run(scenario())
    assert message.endswith("closed; reconnect and resume()")
    assert waited < 2  # not the 30 s timeout
    assert channel.pending() is not None  # the payment stays in flight for resume()
