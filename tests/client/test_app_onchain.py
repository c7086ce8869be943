"""The app channel client and its watcher on Anvil, with the SLA app: Alice is the client (side A), Bob the
provider (side B). Every story ends with exact balances (gas included)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from perun_vyper import AppChannel, AppParams, RefusedUpdate, Unenforceable, compact, exchange
from perun_vyper.client import app_dispute
from perun_vyper.core.app import NO_REGISTRATION
from perun_vyper.core.sla import SlaData, check, request, respond
from perun_vyper.watchtower.actions import AppConcluded, AppMoved, AppRegistered
from perun_vyper.watchtower.app import AppWatcher, sla_provider
from tests.support.apps import PENALTY, PRICE
from tests.support.constants import E

REQUEST, RESPONSE = b"\x01" * 32, b"\x02" * 32
_nonces = iter(range(1000, 2000))


@pytest.fixture
def backend() -> str:
    # The chain stories need one store backend: the protocol tests run the app client on both.
    return "sqlite"


@pytest.fixture
def sla_pair(store_at, apps, sla, app_domain, alice, bob, sla_data):
    """``sla_pair(deposit_a, deposit_b)``: the client's and the provider's AppChannel, version 0 signed by
    both, funded on-chain; returns them with the fees the deposits cost."""

    def _pair(deposit_a: int = E, deposit_b: int = E):
        params = AppParams(str(alice.address), str(bob.address), str(sla.address), nonce=next(_nonces))
        opened = [
            AppChannel.open(
                params,
                app_domain,
                who,
                store_at(name),
                deposit_a,
                deposit_b,
                sla_data(),
                adjudicator=apps,
                rules=check,
            )
            for who, name in ((alice, "alice"), (bob, "bob"))
        ]
        client, provider = opened
        exchange(client, provider)
        fees = (
            client.deposit(deposit_a, sender=alice).total_fees_paid,
            provider.deposit(deposit_b, sender=bob).total_fees_paid,
        )
        return client, provider, fees

    return _pair


def test_app_onchain__answered_off_chain_then_closed__exact_balances(sla_pair, alice, bob, watcher, apps):
    before = (alice.balance, bob.balance)
    client, provider, fees = sla_pair()
    exchange(client, provider, client.propose_move(request(client.app_state, REQUEST)))
    exchange(provider, client, provider.propose_move(respond(provider.app_state, RESPONSE)))
    exchange(client, provider, client.propose_final())
    before_apps = apps.balance
    client.close(sender=watcher)
    assert alice.balance == before[0] - fees[0] - PRICE
    assert bob.balance == before[1] - fees[1] + PRICE
    assert apps.balance == before_apps - 2 * E and client.holdings() == (0, 0, True)


def test_app_onchain__provider_silent__client_forces_request_and_collects(sla_pair, alice, bob, watcher, chain, apps):
    before = (alice.balance, bob.balance)
    client, provider, fees = sla_pair()
    client.propose_move(request(client.app_state, REQUEST))  # the provider never countersigns
    client.force(sender=watcher)
    dispute = client.dispute()
    assert dispute.state == client.pending().state and dispute.mover == 0 and dispute.agreed == 0
    # Nothing more is signed off-chain once the dispute is open.
    with pytest.raises(Unenforceable, match="in dispute on-chain"):
        provider.propose_final()
    tower = AppWatcher([client], watcher)
    assert tower.poll() == []  # the provider's turn: nothing to do before the deadline
    chain.mine(timestamp=dispute.deadline)
    (concluded,) = tower.poll()
    assert concluded == AppConcluded(client.channel_id, 1, (E + PENALTY, E - PENALTY), concluded.tx)
    assert alice.balance == before[0] - fees[0] + PENALTY
    assert bob.balance == before[1] - fees[1] - PENALTY
    assert client.dispute() is None and client.holdings() == (0, 0, True)


def test_app_onchain__client_lies__provider_watcher_answers_and_is_paid(sla_pair, alice, bob, watcher, chain):
    before = (alice.balance, bob.balance)
    client, provider, fees = sla_pair()
    # The client claims the provider never answered: it forces its request on-chain.
    client.propose_move(request(client.app_state, REQUEST))
    fee_force = client.force(sender=alice).total_fees_paid
    tower = AppWatcher([provider], watcher, answer=sla_provider(lambda request: RESPONSE))
    (moved,) = tower.poll()
    assert moved == AppMoved(provider.channel_id, 1, 2, moved.tx)
    dispute = client.dispute()
    assert dispute.mover == 1 and SlaData.decode(dispute.state.app_data).response == RESPONSE
    chain.mine(timestamp=dispute.deadline)
    (concluded,) = tower.poll()
    assert concluded.payouts == (E - PRICE, E + PRICE)
    assert alice.balance == before[0] - fees[0] - fee_force - PRICE
    assert bob.balance == before[1] - fees[1] + PRICE


def test_app_onchain__stale_state_registered__watcher_refutes_latest_paid(
    sla_pair, alice, bob, watcher, stranger, chain, apps
):
    before = (alice.balance, bob.balance)
    client, provider, fees = sla_pair()
    exchange(client, provider, client.propose_move(request(client.app_state, REQUEST)))
    exchange(provider, client, provider.propose_move(respond(provider.app_state, RESPONSE)))
    # The client registers version 1 (the request pending: the penalty on its side) and hopes.
    stale = client.store.state(client.channel_id, 1)
    apps.register(
        client.params.as_tuple(),
        stale.state.as_tuple(),
        compact(stale.sig_a),
        compact(stale.sig_b),
        NO_REGISTRATION.as_tuple(),
        sender=stranger,
    )
    tower = AppWatcher([provider], watcher, answer=sla_provider(lambda request: b"\x09" * 32))
    (registered,) = tower.poll()
    assert registered == AppRegistered(provider.channel_id, 1, 2, registered.tx)
    dispute = provider.dispute()
    assert dispute.state == provider.app_state and dispute.agreed == 2
    chain.mine(timestamp=dispute.deadline)
    (concluded,) = tower.poll()
    assert concluded.payouts == (E - PRICE, E + PRICE)
    assert alice.balance == before[0] - fees[0] - PRICE
    assert bob.balance == before[1] - fees[1] + PRICE


def test_progress__second_state_of_a_version__refused(sla_pair, watcher):
    client, provider, _ = sla_pair()
    proposal = client.propose_move(request(client.app_state, REQUEST)).state
    provider.register(sender=watcher)  # version 0, before the client forced its request
    other = request(provider.app_state, b"\x05" * 32)
    assert other.version == proposal.version
    with pytest.raises(RefusedUpdate, match="we signed another state of version 1 already; force"):
        client.progress(other, sender=watcher)
    client.force(sender=watcher)  # the proposal it did sign goes on-chain instead
    assert client.dispute().state == proposal


def test_check_move__adjudicator_without_rules__app_contract_reason(
    store_at, apps, sla, app_domain, alice, bob, sla_data
):
    params = AppParams(str(alice.address), str(bob.address), str(sla.address), nonce=next(_nonces))
    client, provider = (
        AppChannel.open(params, app_domain, who, store_at(name), E, E, sla_data(), adjudicator=apps)
        for who, name in ((alice, "alice"), (bob, "bob"))
    )
    exchange(client, provider)
    bad = replace(request(client.app_state, REQUEST), balance_a=E + 1, balance_b=E - 1)
    with pytest.raises(RefusedUpdate, match=f"the app contract {sla.address} refuses the move: sla: wrong balances"):
        client.check_move(client.app_state, bad, 0)
    client.check_move(client.app_state, request(client.app_state, REQUEST), 0)  # accepted: returns


def test_register__already_registered_newer__refused(sla_pair, watcher):
    client, provider, _ = sla_pair()
    exchange(client, provider, client.propose_move(request(client.app_state, REQUEST)))
    provider.register(sender=watcher)
    with pytest.raises(RefusedUpdate, match="version 1 is registered already and ours is 1"):
        client.register(sender=watcher)


def test_dispute__registered_state_not_in_store__refused(
    store_at, sla_pair, apps, app_domain, alice, watcher, sla_data
):
    client, provider, _ = sla_pair()
    exchange(client, provider, client.propose_move(request(client.app_state, REQUEST)))
    provider.register(sender=watcher)
    # A store that lost version 1 (an old backup) cannot name the dispute's state.
    fresh = AppChannel.open(client.params, app_domain, alice, store_at("backup"), E, E, sla_data(), adjudicator=apps)
    with pytest.raises(RefusedUpdate, match=r"has version 1 registered .* a state this store never signed"):
        fresh.dispute()


def test_dispute__long_chain__read_back_from_the_head_in_doubling_windows(sla_pair, watcher, chain, monkeypatch):
    # Windows of 50 blocks instead of 5,000: Anvil mines a few hundred blocks at once, not tens of thousands.
    window = 50
    monkeypatch.setattr(app_dispute, "FIRST_WINDOW", window)
    client, provider, _ = sla_pair()
    exchange(client, provider, client.propose_move(request(client.app_state, REQUEST)))
    chain.mine(3 * window)  # a long chain before the dispute
    provider.register(sender=watcher)
    chain.mine(window + 10)  # the registration is older than the first window
    ranges: list[tuple[int, int]] = []
    ordered_logs = app_dispute._ordered_logs

    def recorded(contract, channel, start, stop):
        ranges.append((start, stop))
        return ordered_logs(contract, channel, start, stop)

    monkeypatch.setattr(app_dispute, "_ordered_logs", recorded)
    dispute = client.dispute()
    stop = chain.blocks.head.number + 1
    assert (dispute.state, dispute.agreed, dispute.mover) == (client.app_state, 1, None)
    # Two windows (the first, then twice as many blocks before it), not every block from block 0.
    assert ranges == [(stop - window, stop), (stop - 3 * window, stop - window)]
    assert stop - 3 * window > 0


def test_app_onchain__token_channel__deposit_token_and_conclusion_in_units(
    store_at, apps, sla, app_domain, sla_data, token, alice, bob, watcher, chain
):
    params = AppParams(str(alice.address), str(bob.address), str(sla.address), str(token.address), nonce=next(_nonces))
    client, provider = (
        AppChannel.open(params, app_domain, who, store_at(name), E, E, sla_data(), adjudicator=apps, rules=check)
        for who, name in ((alice, "alice"), (bob, "bob"))
    )
    exchange(client, provider)
    before = (token.balanceOf(alice), token.balanceOf(bob))
    client.deposit(E, alice)  # approve, then deposit_token under the funding parameters
    provider.deposit(E, bob)
    assert client.holdings() == (E, E, False)
    client.propose_move(request(client.app_state, REQUEST))
    client.force(sender=watcher)
    chain.mine(timestamp=client.dispute().deadline)
    (concluded,) = AppWatcher([provider], watcher).poll()
    assert (concluded.payouts, concluded.symbol, concluded.decimals) == ((E + PENALTY, E - PENALTY), "units", 18)
    assert (token.balanceOf(alice), token.balanceOf(bob)) == (before[0] + PENALTY, before[1] - PENALTY)
