"""App channels through the hub service, off-chain (the SLA app, Ingrid the provider): opening, a request
answered by the hub's own move in the same answer, both stores checked; a lost countersignature resumed;
every refusal answered as a JSON-RPC error that names the cause, with nothing written."""

from __future__ import annotations

from contextlib import asynccontextmanager

import msgspec
import pytest

from perun_vyper import AppParams, AppState, Domain, Signer, Update
from perun_vyper.client.app_hub import AppHub, sla_service
from perun_vyper.core import sla
from perun_vyper.core.codec import hexstr
from perun_vyper.errors import HubError, InvalidParams
from perun_vyper.node import HubClient, HubServer, rpc
from perun_vyper.node import app_schema as msgs
from tests.node.conftest import POLICY, call, error_of, raw, run
from tests.support.constants import E
from tests.support.parties import ALICE, ALICE_KEY, BOB_KEY, INGRID, LEDGER_DOMAIN, snapshot

APP_DOMAIN = Domain.app(LEDGER_DOMAIN.chain_id, "0x" + "a9" * 20)
SLA = "0x" + "51" * 20
PRICE, PENALTY = 10**15, 10**17
TERMS = sla.SlaData(PRICE, PENALTY, 3).encode()
REQUEST = b"\x01" * 32


def _response(request: bytes) -> bytes:
    return bytes(b ^ 0xFF for b in request)


@pytest.fixture
def apps(hub) -> AppHub:
    return AppHub(hub, APP_DOMAIN, {SLA: sla_service(_response)})


@pytest.fixture
def serving_apps(hub, apps, clock):
    @asynccontextmanager
    async def _serving(with_apps: bool = True):
        async with HubServer(hub, LEDGER_DOMAIN, POLICY, clock=clock, apps=apps if with_apps else None) as server:
            yield server

    return _serving


def _wallet(server: HubServer, key: bytes, store, domain: Domain = APP_DOMAIN) -> HubClient:
    return HubClient(server.url, key, store, LEDGER_DOMAIN, app_domain=domain, app_rules={SLA: sla.check})


async def _funded(server, apps: AppHub, client: HubClient, nonce: int = 5):
    channel = await client.open_app(SLA, E, E, TERMS, nonce=nonce)
    channel.confirm_funding((E, E))
    await server.work(apps.channels[channel.channel_id].confirm_funding, (E, E))
    return channel


def test_app_open__both_sign_version_0__listed(serving_apps, apps, hub, store_at):
    async def scenario():
        async with serving_apps() as server, _wallet(server, ALICE_KEY, store_at("alice")) as alice:
            channel = await alice.open_app(SLA, E, 2 * E, TERMS, nonce=5)
            listed = await alice.call("app.list")
            return channel, alice.info, listed

    channel, info, listed = run(scenario())
    params = AppParams(ALICE, INGRID, SLA, nonce=5)
    assert channel.channel_id == params.channel_id and channel.latest.fully_signed
    assert channel.latest.state == AppState.initial(params.channel_id, E, 2 * E, TERMS)
    assert hub.store.latest(params.channel_id) == channel.latest
    assert (info.app_adjudicator, info.apps) == (APP_DOMAIN.verifying_contract, [AppParams(ALICE, INGRID, SLA).app])
    (entry,) = msgspec.json.decode(listed, type=msgs.AppListResult).channels
    assert (entry.channel, entry.latest) == (hexstr(params.channel_id), msgs.signed_to_msg(channel.latest))


def test_app_update__request__hub_answers_with_its_response(serving_apps, apps, hub, store_at):
    async def scenario():
        async with serving_apps() as server, _wallet(server, ALICE_KEY, store_at("alice")) as alice:
            channel = await _funded(server, apps, alice)
            latest = await alice.app_move(channel.channel_id, sla.request(channel.app_state, REQUEST))
            return channel, latest

    channel, latest = run(scenario())
    assert latest.fully_signed and latest.state.version == 2 and channel.pending() is None
    data = sla.SlaData.decode(latest.state.app_data)
    assert (data.pending, data.request, data.response) == (False, REQUEST, _response(REQUEST))
    assert (latest.state.balance_a, latest.state.balance_b) == (E - PRICE, E + PRICE)
    assert hub.store.latest(channel.channel_id) == latest and apps.channels[channel.channel_id].pending() is None


def test_app_update__invalid_move__refused_nothing_written(serving_apps, apps, hub, store_at):
    async def scenario():
        async with serving_apps() as server, _wallet(server, ALICE_KEY, store_at("alice")) as alice:
            channel = await _funded(server, apps, alice)
            bad = sla.request(channel.app_state, REQUEST)
            bad = AppState(bad.channel, 1, E + 1, E - 1, E, E, bad.app_data)  # the penalty not moved
            signature = Signer(ALICE_KEY).sign_state(bad, APP_DOMAIN)
            before = snapshot(hub.store)
            async with raw(server, ALICE_KEY) as ws:
                update = msgs.update_to_msg(Update(bad, signature))
                answer = await call(ws, "app.update", {"update": msgspec.to_builtins(update)})
            return error_of(answer), before, snapshot(hub.store)

    (code, message), before, after = run(scenario())
    assert code == rpc.REFUSED_UPDATE
    assert message == (
        "the app refuses the move: the state is not the request the SLA app accepts (terms, request count and "
        "balances are fixed by the move)"
    )
    assert after == before


def test_app_open__app_not_served__refused(serving_apps, hub, store_at):
    async def scenario():
        async with serving_apps() as server, _wallet(server, ALICE_KEY, store_at("alice")) as alice:
            with pytest.raises(HubError) as refused:
                await alice.open_app("0x" + "77" * 20, E, E, TERMS, nonce=9)
            return refused.value

    refused = run(scenario())
    assert refused.code == rpc.REFUSED_UPDATE
    assert str(refused).endswith(
        f"this hub serves the apps {AppParams(ALICE, INGRID, SLA).app} only, not 0x" + "77" * 20
    )
    assert hub.store.channels("app") == []


def test_app_update__another_users_channel__not_yours(serving_apps, apps, store_at):
    async def scenario():
        async with serving_apps() as server, _wallet(server, ALICE_KEY, store_at("alice")) as alice:
            channel = await _funded(server, apps, alice)
            move = sla.request(channel.app_state, REQUEST)
            update = msgs.update_to_msg(Update(move, Signer(BOB_KEY).sign_state(move, APP_DOMAIN)))
            async with raw(server, BOB_KEY) as ws:
                return channel, error_of(await call(ws, "app.update", {"update": msgspec.to_builtins(update)}))

    channel, (code, message) = run(scenario())
    assert code == rpc.NOT_YOUR_CHANNEL
    assert message.startswith(f"app channel {hexstr(channel.channel_id)} is not a channel of ")


def test_app_methods__hub_without_apps__refused(serving_apps, store_at):
    async def scenario():
        async with serving_apps(with_apps=False) as server:
            async with raw(server, ALICE_KEY) as ws:
                listed = await call(ws, "app.list")
                opened = await call(ws, "app.proposals")
            with pytest.raises(InvalidParams, match="the hub uses AppAdjudicator none"):
                async with _wallet(server, ALICE_KEY, store_at("alice")):
                    pass
            return listed, opened

    listed, proposals = run(scenario())
    assert listed == {"jsonrpc": "2.0", "id": 1, "result": {"channels": []}}
    code, message = error_of(proposals)
    assert code == rpc.REFUSED_UPDATE and message.startswith("this hub serves no app channels")


def test_app_resume__hub_move_not_countersigned__countersigned_on_resume(serving_apps, apps, hub, store_at):
    async def scenario():
        async with serving_apps() as server:
            async with _wallet(server, ALICE_KEY, store_at("alice")) as alice:
                channel = await _funded(server, apps, alice)
                update = channel.propose_move(sla.request(channel.app_state, REQUEST))
                # The wallet sends its request and dies before reading the answer (the hub's reply).
                await alice.call("app.update", {"update": msgspec.to_builtins(msgs.update_to_msg(update))})
            assert apps.channels[channel.channel_id].pending().version == 2
            async with _wallet(server, ALICE_KEY, store_at("alice")) as again:
                done = await again.app_resume()
                return again.app(channel.channel_id), done

    channel, done = run(scenario())
    assert [signed.state.version for signed in done] == [2]
    assert channel.latest == hub.store.latest(channel.channel_id) and channel.latest.state.version == 2
    assert channel.pending() is None


def test_app_open__malformed_app_data__invalid_params(serving_apps, store_at):
    params = AppParams(ALICE, INGRID, SLA, nonce=3)
    state = AppState.initial(params.channel_id, E, E, TERMS)
    body = {
        "params": msgspec.to_builtins(msgs.params_to_msg(params)),
        "depositA": str(E),
        "depositB": str(E),
        "appData": "0x123",
        "signature": hexstr(Signer(ALICE_KEY).sign_state(state, APP_DOMAIN)),
    }

    async def scenario():
        async with serving_apps() as server, raw(server, ALICE_KEY) as ws:
            return error_of(await call(ws, "app.propose_open", body))

    code, message = run(scenario())
    assert code == rpc.INVALID_PARAMS and "appData" in message


@pytest.mark.parametrize(
    ("hub_side", "terms", "reason"),
    [
        (0, TERMS, "this hub is the provider of its SLA channels: it takes side B, the client side A"),
        (
            1,
            sla.SlaData(PRICE, PENALTY, 3, True, REQUEST).encode(),
            "an SLA channel opens with no request pending and no request or response recorded",
        ),
        (
            1,
            sla.SlaData(PRICE - 1, PENALTY, 3).encode(),
            f"this hub answers requests for at least {PRICE} wei each, not {PRICE - 1}",
        ),
        (
            1,
            b"\x01" * 31,
            "the initial app data are not SLA terms: SLA app data is 192 bytes, got 31; the state is not an SLA state",
        ),
    ],
    ids=["hub-as-client", "request-pending", "price-too-low", "not-sla-data"],
)
def test_app_open__terms_the_hub_does_not_serve__refused_nothing_written(hub, clock, store_at, hub_side, terms, reason):
    apps = AppHub(hub, APP_DOMAIN, {SLA: sla_service(_response, min_price=PRICE)})

    async def scenario():
        async with (
            HubServer(hub, LEDGER_DOMAIN, POLICY, clock=clock, apps=apps) as server,
            _wallet(server, ALICE_KEY, store_at("alice")) as alice,
        ):
            with pytest.raises(HubError) as refused:
                await alice.open_app(SLA, E, E, terms, hub_side=hub_side, nonce=11)
            return refused.value

    refused = run(scenario())
    assert refused.code == rpc.REFUSED_UPDATE and str(refused).endswith(reason)
    assert hub.store.channels("app") == []
