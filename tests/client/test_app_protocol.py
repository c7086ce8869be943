"""The app channel client off-chain (SLA rules in Python, no chain): moves, the final state, durability
across a restart, and every refusal, each writing nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from perun_vyper import AppChannel, AppParams, AppState, AppStatus, RefusedUpdate, Unenforceable, exchange
from perun_vyper.core import sla
from perun_vyper.core.app import Registration
from perun_vyper.core.codec import Domain
from perun_vyper.core.sla import SlaData
from tests.support.parties import ALICE, ALICE_KEY, BOB, BOB_KEY, forge, snapshot

APP_DOMAIN = Domain.app(31337, "0x" + "a9" * 20)
SLA_ADDRESS = "0x" + "51" * 20
PRICE, PENALTY = 10**15, 10**17
TERMS = SlaData(PRICE, PENALTY, 3).encode()
E = 10**18
REQUEST, RESPONSE = b"\x01" * 32, b"\x02" * 32


def _open(store_at, rules=sla.check, **kwargs) -> tuple[AppChannel, AppChannel]:
    """Alice (the client, side A) and Bob (the provider, side B): version 0 signed by both, funded."""
    params = AppParams(ALICE, BOB, SLA_ADDRESS, nonce=7)
    client = AppChannel.open(params, APP_DOMAIN, ALICE_KEY, store_at("alice"), E, E, TERMS, rules=rules, **kwargs)
    provider = AppChannel.open(params, APP_DOMAIN, BOB_KEY, store_at("bob"), E, E, TERMS, rules=rules, **kwargs)
    exchange(client, provider)
    for channel in (client, provider):
        channel.confirm_funding((E, E))
    return client, provider


def test_app_channel__request_and_response__both_hold_the_same_states(store_at):
    client, provider = _open(store_at)
    exchange(client, provider, client.propose_move(sla.request(client.app_state, REQUEST)))
    assert provider.app_state.balance_a == E + PENALTY and provider.app_state.version == 1
    exchange(provider, client, provider.propose_move(sla.respond(provider.app_state, RESPONSE)))
    assert client.latest == provider.latest
    assert (client.app_state.balance_a, client.app_state.balance_b) == (E - PRICE, E + PRICE)
    assert SlaData.decode(client.app_state.app_data) == SlaData(PRICE, PENALTY, 2, False, REQUEST, RESPONSE)
    exchange(client, provider, client.propose_final())
    assert provider.app_state.is_final and provider.app_state.version == 3


def test_app_channel__restore__same_states_and_pending_resent(store_at):
    client, provider = _open(store_at)
    update = client.propose_move(sla.request(client.app_state, REQUEST))
    # The client process dies after committing its signature, before the provider answered.
    restored = AppChannel.restore(store_at("alice"), client.channel_id, ALICE_KEY, rules=sla.check)
    assert restored.pending() == update and restored.latest == client.latest
    restored.confirm_funding((E, E))
    exchange(restored, provider)
    assert restored.latest == provider.latest and restored.app_state.version == 1
    assert AppChannel.restore(store_at("bob"), provider.channel_id, BOB_KEY).latest == provider.latest


def test_accept__move_of_the_wrong_party__refused_nothing_written(store_at):
    client, provider = _open(store_at)
    # The provider proposes the client's move (a request) as its own.
    forged = forge(sla.request(provider.app_state, REQUEST), BOB_KEY, APP_DOMAIN)
    before = snapshot(store_at("alice"))
    reason = "the app refuses the move: the provider moves only by a response: a response is 32 non-zero bytes"
    with pytest.raises(RefusedUpdate, match=reason):
        client.accept(forged)
    assert snapshot(store_at("alice")) == before


def test_accept__invalid_move__refused_with_the_app_reason(store_at):
    client, provider = _open(store_at)
    exchange(client, provider, client.propose_move(sla.request(client.app_state, REQUEST)))
    second = replace(
        client.app_state,
        version=2,
        app_data=replace(SlaData.decode(client.app_state.app_data), request=b"\x03" * 32).encode(),
    )
    before = snapshot(store_at("bob"))
    reason = "the app refuses the move: the client moves only by a request: a request is pending; wait for its"
    with pytest.raises(RefusedUpdate, match=reason):
        provider.accept(forge(second, ALICE_KEY, APP_DOMAIN))
    assert snapshot(store_at("bob")) == before


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"version": 2}, "adds one to the version"),
        ({"funding_a": E + 1, "balance_a": E + PENALTY + 1}, "a move changes only the balances and the app data"),
    ],
)
def test_accept__not_a_move__refused(store_at, change, reason):
    client, provider = _open(store_at)
    state = replace(sla.request(client.app_state, REQUEST), **change)
    with pytest.raises(RefusedUpdate, match=f"not a move: .*{reason}"):
        provider.accept(forge(state, ALICE_KEY, APP_DOMAIN))


def test_accept__final_with_other_balances__refused(store_at):
    client, provider = _open(store_at)
    final = replace(client.app_state.finalized(), balance_a=E - 1, balance_b=E + 1)
    with pytest.raises(RefusedUpdate, match="a final state keeps the latest state's balances and app data"):
        provider.accept(forge(final, ALICE_KEY, APP_DOMAIN))


def test_propose__after_final__refused(store_at):
    client, provider = _open(store_at)
    exchange(client, provider, client.propose_final())
    with pytest.raises(RefusedUpdate, match="the channel's latest state is final; close it on-chain"):
        client.propose_move(sla.request(replace(client.app_state, is_final=False), REQUEST))


def test_propose__neither_rules_nor_adjudicator__refused_nothing_signed(store_at):
    client, _ = _open(store_at, rules=None)
    before = snapshot(store_at("alice"))
    with pytest.raises(RefusedUpdate, match="neither rules nor an adjudicator to check moves with"):
        client.propose_move(sla.request(client.app_state, REQUEST))
    assert snapshot(store_at("alice")) == before and client.pending() is None


def test_propose__deposits_not_known__refused(store_at):
    params = AppParams(ALICE, BOB, SLA_ADDRESS, nonce=8)
    client = AppChannel.open(params, APP_DOMAIN, ALICE_KEY, store_at("alice"), E, E, TERMS, rules=sla.check)
    provider = AppChannel.open(params, APP_DOMAIN, BOB_KEY, store_at("bob"), E, E, TERMS, rules=sla.check)
    exchange(client, provider)
    with pytest.raises(RefusedUpdate, match=r"accounts for deposits \(10+, 10+\) but only \(0, 0\) are known"):
        client.propose_move(sla.request(client.app_state, REQUEST))


@pytest.mark.parametrize(
    "status",
    [
        AppStatus(b"", (E, E), False, Registration.of(AppState(bytes(32), 0, 1, 1, 1, 1), 5).stored()),
        AppStatus(b"", (0, 0), True),
    ],
    ids=["disputed", "concluded"],
)
def test_sign__disputed_or_concluded__unenforceable_nothing_written(store_at, status):
    client, provider = _open(store_at)
    for party in (client, provider):
        party.chain.observe(replace(status, channel=party.channel_id))
    request = sla.request(client.app_state, REQUEST)
    before = (snapshot(store_at("alice")), snapshot(store_at("bob")))
    with pytest.raises(Unenforceable, match="takes no new off-chain state"):
        client.propose_move(request)
    with pytest.raises(Unenforceable, match="takes no new off-chain state"):
        provider.accept(forge(request, ALICE_KEY, APP_DOMAIN))
    assert (snapshot(store_at("alice")), snapshot(store_at("bob"))) == before


def test_accept__release_evidence__refused(store_at):
    client, provider = _open(store_at)
    update = forge(sla.request(client.app_state, REQUEST), ALICE_KEY, APP_DOMAIN, release=object())
    with pytest.raises(RefusedUpdate, match="an app channel update carries no release evidence"):
        provider.accept(update)
