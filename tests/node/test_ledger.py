"""Ledger channels through the hub service: opening (version 0 signed by both), payments to the hub with
both stores checked, repeats answered idempotently, conflicts and other users' channels refused, a
disconnect in the middle of an update, and the ``channel.updated`` notification."""

from __future__ import annotations

import asyncio
import json

import msgspec

from perun_vyper import ChannelParams, LedgerState, Signer, open_store
from perun_vyper.chain import LedgerStatus
from perun_vyper.core.codec import hexstr
from perun_vyper.errors import HubError, InvalidParams
from perun_vyper.node import HubClient, Policy
from perun_vyper.node.schema import params_to_msg, update_to_msg
from tests.node.conftest import call, error_of, raw, run, wallet, worker_blocked
from tests.support.constants import E
from tests.support.parties import ALICE, ALICE_KEY, BOB, BOB_KEY, INGRID, LEDGER_DOMAIN, NOW, snapshot

_plain = msgspec.to_builtins


async def _funded(server, client: HubClient, deposit: int = E, hub_deposit: int = E):
    """A channel opened by ``client`` with the hub, both deposits told to both sides (off-chain)."""
    channel = await client.open_channel(deposit, hub_deposit)
    channel.confirm_funding((deposit, hub_deposit))
    await server.work(server.hub.channels[channel.channel_id].confirm_funding, (deposit, hub_deposit))
    return channel


def test_open__both_sign_version_0__both_stores_hold_it(serving, hub, store_at):
    async def scenario():
        async with serving() as server, wallet(server, ALICE_KEY, store_at("alice")) as alice:
            channel = await alice.open_channel(E, 2 * E, nonce=5)
            return channel, await alice.hub_channels()

    channel, listed = run(scenario())
    params = ChannelParams(ALICE, INGRID, nonce=5)
    initial = LedgerState.initial(params.channel_id, E, 2 * E)
    assert channel.channel_id == params.channel_id and channel.pending() is None
    assert channel.latest.state == initial and channel.latest.fully_signed
    assert store_at("alice").latest(params.channel_id) == channel.latest
    assert hub.store.latest(params.channel_id) == channel.latest
    assert hub.channels[params.channel_id].latest == channel.latest
    assert [entry.channel for entry in listed] == [hexstr(params.channel_id)]
    assert listed[0].latest.sig_a == hexstr(channel.latest.sig_a)


def _open_params(signer_key: bytes, params: ChannelParams, deposit_a: int, deposit_b: int) -> dict:
    state = LedgerState.initial(params.channel_id, deposit_a, deposit_b)
    return {
        "params": _plain(params_to_msg(params)),
        "depositA": str(deposit_a),
        "depositB": str(deposit_b),
        "signature": hexstr(Signer(signer_key).sign_state(state, LEDGER_DOMAIN)),
    }


def test_propose_open__refusals__nothing_recorded(serving, hub):
    policy = Policy(collateral=2 * E, max_challenge_duration=3600)
    proposals = {
        "collateral": _open_params(ALICE_KEY, ChannelParams(ALICE, INGRID, nonce=1), E, 3 * E),
        "third party": _open_params(ALICE_KEY, ChannelParams(ALICE, BOB, nonce=1), E, E),
        "bad signature": _open_params(BOB_KEY, ChannelParams(ALICE, INGRID, nonce=1), E, E),
        "duration": _open_params(ALICE_KEY, ChannelParams(ALICE, INGRID, challenge_duration=7200), E, E),
        "amount": _open_params(ALICE_KEY, ChannelParams(ALICE, INGRID), E, E) | {"depositA": str(2**120)},
    }

    async def scenario():
        async with serving(policy=policy) as server, raw(server, ALICE_KEY) as ws:
            return {name: await call(ws, "ledger.propose_open", params) for name, params in proposals.items()}

    answers = {name: error_of(answer) for name, answer in run(scenario()).items()}
    assert answers["collateral"] == (
        2001,
        f"the hub's side would hold {3 * E}; this hub puts at most {2 * E} into one channel "
        "(hub.info policy.collateral)",
    )
    assert answers["third party"] == (
        2005,
        f"a channel with this hub has two participants, the hub ({INGRID}) and you ({ALICE}), in either order",
    )
    assert answers["bad signature"] == (2003, f"signed by {BOB}, expected {ALICE}")
    assert answers["duration"] == (2001, "challenge duration 7200s is outside this hub's [3600, 3600]")
    assert answers["amount"][0] == 2004 and answers["amount"][1].startswith(f"balance_a = {2**120} is outside")
    assert snapshot(hub.store) == []
    assert hub.channels == {}


def test_propose_open__repeated__same_countersignature(serving, hub):
    params = _open_params(ALICE_KEY, ChannelParams(ALICE, INGRID, nonce=3), E, E)

    async def scenario():
        async with serving() as server, raw(server, ALICE_KEY) as ws:
            first = await call(ws, "ledger.propose_open", params)
            again = await call(ws, "ledger.propose_open", params, request_id=2)
            other = await call(ws, "ledger.propose_open", params | {"depositA": "5"}, request_id=3)
            return first, again, other

    first, again, other = run(scenario())
    assert first["result"] == again["result"]
    assert first["result"]["channel"] == hexstr(ChannelParams(ALICE, INGRID, nonce=3).channel_id)
    assert error_of(other)[0] == 2003  # Alice's signature is of the other deposits


def test_pay__round_trip__balances_in_both_memories_and_stores(serving, hub, store_at):
    async def scenario():
        async with serving() as server, wallet(server, ALICE_KEY, store_at("alice")) as alice:
            channel = await _funded(server, alice)
            await alice.pay(channel.channel_id, 7)
            signed = await alice.pay(channel.channel_id, 5)
            return channel, signed

    channel, signed = run(scenario())
    expected = LedgerState(channel.channel_id, 2, E - 12, E + 12, E, E)
    assert signed.state == expected and signed.fully_signed
    hub_side = hub.channels[channel.channel_id]
    assert channel.latest == hub_side.latest == signed
    for store in (store_at("alice"), hub.store):
        assert store.latest(channel.channel_id) == signed
        assert store.newest(channel.channel_id) == signed
        assert [s.state.version for s in store.history(channel.channel_id)] == [0, 1, 2]


def test_update__repeated__same_countersignature__conflicting__refused(serving, hub, store_at):
    async def scenario():
        async with serving() as server:
            async with wallet(server, ALICE_KEY, store_at("alice")) as alice:
                channel = await _funded(server, alice)
            update = channel.propose_payment(7)
            conflicting = Signer(ALICE_KEY).sign_state(channel.state.pay(9, 0), LEDGER_DOMAIN)
            async with raw(server, ALICE_KEY) as ws:
                first = await call(ws, "ledger.update", {"update": _plain(update_to_msg(update))})
                again = await call(ws, "ledger.update", {"update": _plain(update_to_msg(update))}, request_id=2)
                other = _plain(update_to_msg(update))
                other["state"] = _plain(update_to_msg(update))["state"] | {
                    "balanceA": str(E - 9),
                    "balanceB": str(E + 9),
                }
                other["signature"] = hexstr(conflicting)
                refused = await call(ws, "ledger.update", {"update": other}, request_id=3)
            return channel, first, again, refused

    channel, first, again, refused = run(scenario())
    assert first["result"] == again["result"]
    assert error_of(refused) == (
        2001,
        "version 1 is already signed differently (latest fully signed: 1); a party never signs two states of one "
        "version",
    )
    assert refused["error"]["data"] == {"type": "RefusedUpdate"}
    assert hub.store.latest(channel.channel_id).state.balance_a == E - 7


def test_update__another_users_channel_or_unknown__refused_alike(serving, hub, store_at):
    async def scenario():
        async with serving() as server:
            async with wallet(server, ALICE_KEY, store_at("alice")) as alice:
                channel = await _funded(server, alice)
            update = update_to_msg(channel.propose_payment(1))
            async with raw(server, BOB_KEY) as ws:
                theirs = await call(ws, "ledger.update", {"update": _plain(update)})
                unknown = _plain(update)
                unknown["state"]["channel"] = "0x" + "ab" * 32
                none = await call(ws, "ledger.update", {"update": unknown})
            return channel, theirs, none

    channel, theirs, none = run(scenario())
    assert error_of(theirs) == (
        1003,
        f"channel {hexstr(channel.channel_id)} is not a channel of {BOB} with this hub; channel.list shows yours",
    )
    assert error_of(none) == (
        1003,
        f"channel 0x{'ab' * 32} is not a channel of {BOB} with this hub; channel.list shows yours",
    )
    assert hub.store.latest(channel.channel_id).state.version == 0


def test_update__channel_registered_on_chain__unenforceable_with_channel_and_situation(serving, hub, store_at):
    async def scenario():
        async with serving() as server, wallet(server, ALICE_KEY, store_at("alice")) as alice:
            channel = await _funded(server, alice)
            status = LedgerStatus(channel.channel_id, (E, E), False, 0, NOW + 3600)
            await server.work(hub.channels[channel.channel_id].chain.observe, status)
            try:
                await alice.pay(channel.channel_id, 1)
            except HubError as exc:
                return channel, exc

    channel, exc = run(scenario())
    situation = f"in dispute on-chain: version 0 registered, deadline {NOW + 3600}"
    assert exc.code == 2002
    assert exc.data == {"type": "Unenforceable", "channel": hexstr(channel.channel_id), "situation": situation}
    assert str(exc).startswith(f"channel {hexstr(channel.channel_id)} is {situation}; ")
    assert channel.pending() is not None  # a refused proposal stays in flight (SPEC 11)


def test_disconnect_mid_update__hub_store_consistent__resume_gets_the_same_countersignature(serving, hub, store_at):
    async def scenario():
        async with serving() as server:
            async with wallet(server, ALICE_KEY, store_at("alice")) as alice:
                channel = await _funded(server, alice)
            update = channel.propose_payment(7)
            async with worker_blocked(server), raw(server, ALICE_KEY) as ws:
                await ws.send(
                    json.dumps(
                        {
                            "jsonrpc": "2.0",
                            "id": 1,
                            "method": "ledger.update",
                            "params": {"update": _plain(update_to_msg(update))},
                        }
                    )
                )
                while server.busy == 0:
                    await asyncio.sleep(0.01)
                # gone before the hub looked at the update
            await server.drain()
            hub_view = snapshot(hub.store)
            async with HubClient(server.url, ALICE_KEY, store_at("alice"), LEDGER_DOMAIN) as again:
                resumed = await again.resume()
                return hub_view, resumed, again.channel(channel.channel_id)

    hub_view, resumed, channel = run(scenario())
    [(_, history)] = hub_view
    assert [s.state.version for s in history] == [0, 1] and all(s.fully_signed for s in history)
    assert resumed == [history[1]]
    assert channel.latest == history[1] and channel.pending() is None
    assert store_at("alice").latest(channel.channel_id) == hub.store.latest(channel.channel_id) == history[1]


def test_notification__channel_updated__sent_to_the_users_other_connections(serving, store_at):
    async def scenario():
        async with serving() as server, wallet(server, ALICE_KEY, store_at("alice")) as alice:
            channel = await _funded(server, alice)
            async with raw(server, ALICE_KEY) as watcher, raw(server, BOB_KEY) as bob:
                signed = await alice.pay(channel.channel_id, 3)
                notice = json.loads(await asyncio.wait_for(watcher.recv(), 5))
                bob_heard = await call(bob, "hub.info")  # the next frame Bob gets is this answer
                return channel, signed, notice, bob_heard, alice.notifications.qsize()

    channel, signed, notice, bob_heard, own = run(scenario())
    assert notice["method"] == "channel.updated" and "id" not in notice
    assert notice["params"]["channel"] == hexstr(channel.channel_id)
    assert notice["params"]["latest"]["state"]["version"] == 1
    assert notice["params"]["latest"]["state"]["balanceA"] == str(E - 3)
    assert notice["params"]["latest"]["sigA"] == hexstr(signed.sig_a)
    assert "result" in bob_heard and own == 0


def test_wallet__hub_on_another_adjudicator__refused_before_signing(serving, store_at):
    from perun_vyper import Domain

    other = Domain(LEDGER_DOMAIN.name, LEDGER_DOMAIN.version, 31337, "0x" + "99" * 20)

    async def scenario():
        async with serving() as server:
            client = HubClient(server.url, ALICE_KEY, store_at("alice"), other)
            try:
                await client.connect()
            except InvalidParams as exc:
                return str(exc)
            finally:
                await client.close()

    message = run(scenario())
    assert message.startswith("the hub uses LedgerAdjudicator ")
    assert "states signed for another deployment would not be enforceable" in message


def test_wallet__store_kept__reopened_wallet_knows_its_channels(serving, store_at):
    async def scenario():
        async with serving() as server:
            store = store_at("wallet")
            async with HubClient(server.url, ALICE_KEY, store, LEDGER_DOMAIN) as alice:
                channel = await _funded(server, alice)
                await alice.pay(channel.channel_id, 2)
            store.close()
            with open_store(store.target) as reopened:
                again = HubClient(server.url, ALICE_KEY, reopened, LEDGER_DOMAIN)
                return channel.channel_id, again.channel(channel.channel_id).state

    channel_id, state = run(scenario())
    assert state == LedgerState(channel_id, 1, E - 2, E + 2, E, E)
