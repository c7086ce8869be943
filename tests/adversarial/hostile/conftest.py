"""Fixtures of the hostile-payout tests: hostile receivers and tokens, and a hub channel holding a lock."""

from __future__ import annotations

from dataclasses import replace

import pytest

from perun_vyper import ETH, VirtualState, open_virtual
from tests.adversarial.hostile.helpers import UNIT, HubWithLock, Target, calldata
from tests.support.apps import (  # noqa: F401 (fixtures of test_reentrant_app.py)
    app_domain,
    apps,
    both,
    open_app,
    sign_app,
    sla,
    sla_data,
)
from tests.support.checks import runtime_code as _code
from tests.support.constants import (
    E,
)


@pytest.fixture(scope="module", autouse=True)
def _session_fixtures_first(
    ledger,
    virtual,
    token,
    open_channel,
    open_hub,
    make_virtual,
    make_params,
    deposit,
    signed,
    signed_final,
    signed_virtual,
    deployer,
    alice,
    bob,
    ingrid,
    watcher,
):
    """Ape snapshots the chain per fixture scope: create the session fixtures before this module's."""


@pytest.fixture
def arm(ledger, virtual, signed, signed_final, signed_virtual, make_params, open_channel, token, deployer):
    """``arm(hostile, name, target)``: make the hostile contract call `name` against `target`; returns the
    target, with an open ETH channel (1 ETH a side) when a token's hook is to re-enter `deposit`."""

    def _arm(hostile, name: str, target: Target) -> Target:
        if name == "ledger.deposit" and not target.params.is_eth and target.eth_channel is None:
            eth_channel, _ = open_channel(E, E)
            target = replace(target, eth_channel=eth_channel)
        to, data, value = calldata(
            name, target, ledger, virtual, hostile.address, signed, signed_final, signed_virtual, make_params, token
        )
        hostile.arm(to, data, value, sender=deployer)
        return target

    return _arm


@pytest.fixture
def receiver_on(project, chain):
    """``receiver_on(account)``: the account's address runs ReentrantReceiver; the key still signs."""

    def _install(account):
        chain.provider.set_code(account.address, _code(project.ReentrantReceiver))
        return project.ReentrantReceiver.at(account.address)

    return _install


@pytest.fixture(scope="module")
def rtoken(project, deployer, alice, bob, ingrid):
    rtoken = deployer.deploy(project.ReentrantToken)
    for holder in (alice, bob, ingrid):
        rtoken.mint(holder, 10**6 * UNIT, sender=deployer)
    deployer.transfer(rtoken.address, 10)  # wei the hook may send along with a re-entrant `deposit`
    return rtoken


@pytest.fixture(scope="module")
def false_token(project, deployer, alice, bob, ingrid):
    false_token = deployer.deploy(project.FalseToken)
    for holder in (alice, bob, ingrid):
        false_token.mint(holder, 10**6 * UNIT, sender=deployer)
    return false_token


@pytest.fixture(scope="module")
def zero_token(project, deployer, alice, bob, ingrid):
    zero_token = deployer.deploy(project.ZeroRevertToken)
    for holder in (alice, bob, ingrid):
        zero_token.mint(holder, 10**6 * UNIT, sender=deployer)
    return zero_token


@pytest.fixture(scope="module")
def fee_token(project, deployer, alice, bob):
    fee_token = deployer.deploy(project.FeeToken)
    for holder in (alice, bob):
        fee_token.mint(holder, 10**6 * UNIT, sender=deployer)
    return fee_token


@pytest.fixture(scope="module")
def gas_burner(project, deployer):
    return deployer.deploy(project.GreedyReceiver)


@pytest.fixture
def hub_with_lock(ledger, virtual, open_hub, make_virtual, signed, signed_virtual, alice, bob, ingrid, watcher, chain):
    """``hub_with_lock(deposit, funding, paid_to_bob, asset)``: every deposit `deposit`, lock `funding` each
    way, Alice paid Bob `paid_to_bob` in the virtual channel's final state."""

    def _make(deposit: int, funding: int, paid_to_bob: int, asset=ETH) -> HubWithLock:
        hub = open_hub(deposit, deposit, deposit, deposit, asset=asset)
        vp = make_virtual(hub, funding, funding)
        left = open_virtual(hub.left_state, hub.left, vp)
        right = open_virtual(hub.right_state, hub.right, vp)
        ledger.register(hub.left.as_tuple(), *signed(left, alice, ingrid), sender=watcher)
        ledger.register(hub.right.as_tuple(), *signed(right, ingrid, bob), sender=watcher)
        outcome = VirtualState.initial(vp)
        if paid_to_bob:
            outcome = outcome.pay(paid_to_bob, True)
        outcome = outcome.finalized()
        virtual.register(vp.as_tuple(), *signed_virtual(outcome), sender=bob)
        chain.pending_timestamp += hub.left.challenge_duration
        return HubWithLock(hub, vp, left, right, outcome, funding)

    return _make
