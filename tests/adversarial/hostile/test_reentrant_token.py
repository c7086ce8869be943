"""A re-entrant token against every payout path of the ledger adjudicator.

The token payout gets 150,000 gas, enough for the hook to try its call; the ledger's lock refuses it and
the transfer itself goes through. `deposit`, outside the lock, is re-entered into an open ETH channel (a
token channel's id has bit 255 set, which `deposit` refuses): it goes through, once per push, accounted
like any deposit.

What must hold whatever they do is in helpers.py.
"""

from __future__ import annotations

import pytest

from perun_vyper import ETH, LedgerState
from tests.adversarial.hostile.helpers import (
    TARGETS,
    UNIT,
    Target,
    assert_hook_deposits,
    assert_refused_by_lock,
    channel_target,
    conclude_hub,
    hub_payouts,
    hub_target,
    token_balances,
    withdraw_token_once,
)
from tests.support.checks import assert_accounts_balance as _assert_invariant
from tests.support.checks import assert_concluded as _assert_concluded
from tests.support.checks import assert_credited as _assert_credited
from tests.support.checks import assert_deposited as _assert_deposited
from tests.support.checks import holdings as _holdings
from tests.support.constants import (
    VIRTUAL_CONCLUDED,
    E,
)
from tests.support.reverts import revert_reason as _revert_reason


def _assert_token_push(ledger, virtual, rtoken, tx, params, name: str, target: Target, payouts, owners) -> bool:
    """Checks one concluding transaction; returns whether its payouts were credited instead of pushed."""
    if name == "virtual.register":
        # Registering a virtual state from inside the hook (the VirtualAdjudicator has its own lock: legitimate)
        # costs about all the 150,000 gas the push leaves the token: with compact signatures the first
        # transfer fits (146,343 gas measured), so both pushes go through, the second registration being a
        # no-op. Should the cost grow past the cap, the first transfer runs out of gas, the registration is
        # undone with it, and both payouts are credited (nothing lost, see the withdrawals in the callers).
        # Either way it is all or nothing, and the ledger's outcome is the same.
        credited = list(tx.decode_logs(ledger.Credited)) != []
        if credited:
            _assert_credited(ledger, tx, params, [(o.address, p) for o, p in zip(owners, payouts, strict=True) if p])
            assert rtoken.attempts() == 0
            assert virtual.record(target.virtual_params.channel_id)[0] == 0
        else:
            _assert_credited(ledger, tx, params, [])
            assert rtoken.attempts() == sum(1 for p in payouts if p)
            assert rtoken.last_success() is True
            assert virtual.record(target.virtual_params.channel_id)[0] == target.virtual_state.version
        return credited
    _assert_credited(ledger, tx, params, [])
    return False


@pytest.mark.parametrize("name", TARGETS)
def test_close__reentrant_token__refused_both_paid_once(
    ledger, virtual, open_channel, signed_final, rtoken, arm, chain, alice, bob, ingrid, watcher, name: str
) -> None:
    params, state0 = open_channel(1000 * UNIT, 1000 * UNIT, asset=rtoken)
    target = arm(rtoken, name, channel_target(params, state0, alice, bob, ingrid, chain))
    final = state0.pay(250 * UNIT, 0).finalized()
    payouts = (750 * UNIT, 1250 * UNIT)
    before = token_balances(rtoken, alice, bob, ledger)
    eth_before = ledger.balance

    tx = ledger.close(params.as_tuple(), *signed_final(final), sender=watcher)

    _assert_concluded(ledger, tx, params, final.version, *payouts)
    credited = _assert_token_push(ledger, virtual, rtoken, tx, params, name, target, payouts, (alice, bob))
    _assert_invariant(ledger, rtoken, [params], [alice, bob])
    if credited:
        assert token_balances(rtoken, alice, bob, ledger) == before
        withdraw_token_once(ledger, rtoken, alice, payouts[0])
        # The hook's registration now had all the gas it wanted: legitimate, and the ledger is untouched.
        assert rtoken.last_success() is True
        assert virtual.record(target.virtual_params.channel_id)[0] == target.virtual_state.version
        withdraw_token_once(ledger, rtoken, bob, payouts[1])
        assert rtoken.attempts() == 2
        assert rtoken.last_success() is True  # the same state again: a no-op
    else:
        if name == "ledger.deposit":
            assert_hook_deposits(ledger, rtoken, [tx], target.eth_channel, 2, [alice, bob])
            assert ledger.balance == eth_before + 2
        else:
            if name != "virtual.register":  # checked by _assert_token_push
                assert_refused_by_lock(rtoken, 2)
            assert ledger.balance == eth_before
        assert token_balances(rtoken, alice, bob, ledger) == [
            before[0] + payouts[0],
            before[1] + payouts[1],
            before[2] - sum(payouts),
        ]
    assert token_balances(rtoken, alice, bob) == [before[0] + payouts[0], before[1] + payouts[1]]
    _assert_invariant(ledger, rtoken, [params], [alice, bob])


@pytest.mark.parametrize("name", TARGETS)
def test_conclude__reentrant_token__refused_both_paid_once(
    ledger, virtual, open_channel, signed, rtoken, arm, chain, alice, bob, ingrid, watcher, name: str
) -> None:
    params, state0 = open_channel(1000 * UNIT, 1000 * UNIT, asset=rtoken)
    state1 = state0.pay(200 * UNIT, 1)
    ledger.register(params.as_tuple(), *signed(state1), sender=watcher)
    chain.pending_timestamp += params.challenge_duration
    target = arm(rtoken, name, channel_target(params, state1, alice, bob, ingrid, chain))
    payouts = (1200 * UNIT, 800 * UNIT)
    before = token_balances(rtoken, alice, bob, ledger)
    eth_before = ledger.balance

    tx = ledger.conclude(params.as_tuple(), sender=watcher)

    _assert_concluded(ledger, tx, params, 1, *payouts)
    credited = _assert_token_push(ledger, virtual, rtoken, tx, params, name, target, payouts, (alice, bob))
    _assert_invariant(ledger, rtoken, [params], [alice, bob])
    if credited:
        withdraw_token_once(ledger, rtoken, alice, payouts[0])
        withdraw_token_once(ledger, rtoken, bob, payouts[1])
        assert virtual.record(target.virtual_params.channel_id)[0] == target.virtual_state.version
    elif name == "ledger.deposit":
        assert_hook_deposits(ledger, rtoken, [tx], target.eth_channel, 2, [alice, bob])
        assert ledger.balance == eth_before + 2
    elif name != "virtual.register":  # checked by _assert_token_push
        assert_refused_by_lock(rtoken, 2)
    assert token_balances(rtoken, alice, bob, ledger) == [
        before[0] + payouts[0],
        before[1] + payouts[1],
        before[2] - sum(payouts),
    ]
    assert tuple(ledger.dispute(params.channel_id)) == (0, 0, b"\x00" * 32)
    _assert_invariant(ledger, rtoken, [params], [alice, bob])


@pytest.mark.parametrize("name", TARGETS)
def test_conclude_with_lock__reentrant_token__refused_ingrid_neutral(
    ledger, virtual, hub_with_lock, rtoken, arm, alice, bob, ingrid, watcher, name: str
) -> None:
    deposit, funding = 1000 * UNIT, 400 * UNIT
    h = hub_with_lock(deposit, funding, 150 * UNIT, asset=rtoken)
    target = arm(rtoken, name, hub_target(h, alice, ingrid))
    (alice_pay, ingrid_left), (ingrid_right, bob_pay) = hub_payouts(h, deposit)
    before = token_balances(rtoken, alice, ingrid, bob, ledger)
    eth_before = ledger.balance

    tx_left, tx_right = conclude_hub(ledger, h, watcher)

    _assert_concluded(ledger, tx_left, h.hub.left, h.left.version, alice_pay, ingrid_left)
    _assert_concluded(ledger, tx_right, h.hub.right, h.right.version, ingrid_right, bob_pay)
    if name == "virtual.register":
        # Loading the payload and calling the VirtualAdjudicator costs more than the push leaves the token:
        # all four pushes run out of gas and are credited; the credits are withdrawn below with all gas.
        _assert_credited(ledger, tx_left, h.hub.left, [(alice.address, alice_pay), (ingrid.address, ingrid_left)])
        _assert_credited(ledger, tx_right, h.hub.right, [(ingrid.address, ingrid_right), (bob.address, bob_pay)])
        assert rtoken.attempts() == 0
        _assert_invariant(ledger, rtoken, [h.hub.left, h.hub.right], [alice, bob, ingrid])
        withdraw_token_once(ledger, rtoken, alice, alice_pay)
        withdraw_token_once(ledger, rtoken, ingrid, ingrid_left + ingrid_right)
        withdraw_token_once(ledger, rtoken, bob, bob_pay)
        assert rtoken.attempts() == 3
        # The VirtualAdjudicator is not locked by a ledger payout; it refuses on its own rule: the outcome
        # both ledger channels split their lock by can no longer change.
        assert rtoken.last_success() is False
        assert _revert_reason(bytes(rtoken.last_response())) == VIRTUAL_CONCLUDED
    elif name == "ledger.deposit":
        # Every one of the four pushes ran the hook, whose deposit into the open ETH channel went through,
        # and paid: no credit anywhere.
        _assert_credited(ledger, tx_left, h.hub.left, [])
        _assert_credited(ledger, tx_right, h.hub.right, [])
        assert_hook_deposits(ledger, rtoken, [tx_left, tx_right], target.eth_channel, 4, [alice, bob])
        assert ledger.balance == eth_before + 4
    else:
        # Every one of the four pushes ran the hook, was refused re-entry and paid: no credit anywhere.
        _assert_credited(ledger, tx_left, h.hub.left, [])
        _assert_credited(ledger, tx_right, h.hub.right, [])
        assert_refused_by_lock(rtoken, 4)
    assert virtual.record(h.vp.channel_id)[0] == h.outcome.version
    assert token_balances(rtoken, alice, ingrid, bob, ledger) == [
        before[0] + alice_pay,
        before[1] + 2 * deposit,  # Ingrid neutral: exactly her two deposits back
        before[2] + bob_pay,
        before[3] - 4 * deposit,
    ]
    _assert_invariant(ledger, rtoken, [h.hub.left, h.hub.right], [alice, bob, ingrid])


@pytest.mark.parametrize("name", TARGETS)
def test_withdraw__reentrant_token__refused_paid_once(
    ledger,
    virtual,
    open_channel,
    signed_final,
    rtoken,
    arm,
    gas_burner,
    chain,
    deployer,
    alice,
    bob,
    ingrid,
    watcher,
    name: str,
) -> None:
    # First make the payouts fail: a hook that burns all the gas the push leaves it gets both credited.
    params, state0 = open_channel(1000 * UNIT, 1000 * UNIT, asset=rtoken)
    rtoken.arm(gas_burner, b"", 0, sender=deployer)
    tx = ledger.close(params.as_tuple(), *signed_final(state0.pay(100 * UNIT, 1).finalized()), sender=watcher)
    _assert_credited(ledger, tx, params, [(alice.address, 1100 * UNIT), (bob.address, 900 * UNIT)])
    assert rtoken.attempts() == 0
    target = arm(rtoken, name, channel_target(params, state0, alice, bob, ingrid, chain))
    eth_before = ledger.balance

    # Alice collects at Ingrid's address; Bob at his own.
    withdraw_token_once(ledger, rtoken, alice, 1100 * UNIT, receiver=ingrid)
    if name == "virtual.register":
        assert rtoken.last_success() is True
        assert virtual.record(target.virtual_params.channel_id)[0] == target.virtual_state.version
    elif name == "ledger.deposit":
        # `deposit` is outside the lock `withdraw` holds: the hook's deposit into an open ETH channel counts.
        assert rtoken.attempts() == 1
        assert rtoken.last_success() is True
        assert _holdings(ledger, target.eth_channel.channel_id) == (E + 1, E, False)
    else:
        assert_refused_by_lock(rtoken, 1)
    _assert_invariant(ledger, rtoken, [params], [alice, bob])
    withdraw_token_once(ledger, rtoken, bob, 900 * UNIT)
    assert rtoken.attempts() == 2
    if name == "ledger.deposit":
        assert _holdings(ledger, target.eth_channel.channel_id) == (E + 2, E, False)
        assert ledger.balance == eth_before + 2
        _assert_invariant(ledger, ETH, [target.eth_channel], [alice, bob])
    assert ledger.credits(rtoken, alice) == ledger.credits(rtoken, bob) == 0
    assert rtoken.balanceOf(ledger) == 0
    _assert_invariant(ledger, rtoken, [params], [alice, bob])


def test_deposit_token__reentrant_token__refused_credited_once(
    ledger, make_params, signed, rtoken, arm, chain, alice, bob, ingrid
) -> None:
    # The hook also runs in `transferFrom`: a deposit that tries to deposit again is refused mid-pull.
    params = make_params(asset=rtoken)
    state0 = LedgerState.initial(params.channel_id, 500 * UNIT, 0)
    arm(rtoken, "ledger.deposit_token", channel_target(params, state0, alice, bob, ingrid, chain))
    rtoken.approve(ledger, 10**6 * UNIT, sender=alice)
    ledger_before = rtoken.balanceOf(ledger)

    tx = ledger.deposit_token(params.as_tuple(), 0, 500 * UNIT, sender=alice)

    _assert_deposited(ledger, tx, params.channel_id, 500 * UNIT, 0)
    assert_refused_by_lock(rtoken, 1)
    assert ledger.holdings(params.channel_id) == (500 * UNIT, 0, False)
    assert rtoken.balanceOf(ledger) == ledger_before + 500 * UNIT
    _assert_invariant(ledger, rtoken, [params], [alice, bob])
