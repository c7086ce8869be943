"""Tokens that break the ERC20 habits against the ledger's payouts: one returning false, one reverting on
zero amounts, one taking a fee on every transfer.

- returning false: refused on deposit, credited on payout, withdrawable once it transfers again;
- reverting on zero-amount transfers: a zero payout is never attempted;
- fee on transfer: deposits count what arrived; the ledger pays full amounts, recipients bear the fee.

What must hold whatever they do is in helpers.py.
"""

from __future__ import annotations

import ape

from perun_vyper import ChannelParams, LedgerState
from tests.adversarial.hostile.helpers import UNIT, conclude_hub, hub_payouts, token_balances, withdraw_token_once
from tests.support.checks import assert_accounts_balance as _assert_invariant
from tests.support.checks import assert_concluded as _assert_concluded
from tests.support.checks import assert_credited as _assert_credited
from tests.support.checks import assert_deposited as _assert_deposited
from tests.support.checks import assert_withdrawn as _assert_withdrawn
from tests.support.checks import runtime_code as _code
from tests.support.constants import (
    NOTHING_TO_WITHDRAW,
    RETURNS_FALSE_CODE,
    TRANSFER_FAILED,
)

# ---------------------------------------------------------------------------------------------------
# a token returning false: refused on deposit, credited on payout, withdrawable once it transfers again


def test_deposit_token__false_token__reverts_token_transfer_failed(
    ledger, make_params, false_token, deployer, alice
) -> None:
    params = make_params(asset=false_token)
    false_token.approve(ledger, 1000 * UNIT, sender=alice)
    false_token.set_fail(True, sender=deployer)
    alice_before, ledger_before = false_token.balanceOf(alice), false_token.balanceOf(ledger)

    with ape.reverts(TRANSFER_FAILED):
        ledger.deposit_token(params.as_tuple(), 0, 1000 * UNIT, sender=alice)

    assert ledger.holdings(params.channel_id) == (0, 0, False)
    assert (false_token.balanceOf(alice), false_token.balanceOf(ledger)) == (alice_before, ledger_before)


def test_close__false_token__both_credited_withdrawable_after_recovery(
    ledger, open_channel, signed_final, false_token, deployer, alice, bob, ingrid, watcher
) -> None:
    params, state0 = open_channel(1000 * UNIT, 500 * UNIT, asset=false_token)
    false_token.set_fail(True, sender=deployer)
    final = state0.pay(300 * UNIT, 0).finalized()  # A 700, B 800
    before = token_balances(false_token, alice, bob, ledger)

    tx = ledger.close(params.as_tuple(), *signed_final(final), sender=watcher)

    _assert_concluded(ledger, tx, params, final.version, 700 * UNIT, 800 * UNIT)
    _assert_credited(ledger, tx, params, [(alice.address, 700 * UNIT), (bob.address, 800 * UNIT)])
    assert token_balances(false_token, alice, bob, ledger) == before
    _assert_invariant(ledger, false_token, [params], [alice, bob])

    # While the token keeps returning false, withdraw reverts and the credit stays.
    with ape.reverts(TRANSFER_FAILED):
        ledger.withdraw(false_token, alice, sender=alice)
    assert ledger.credits(false_token, alice) == 700 * UNIT

    false_token.set_fail(False, sender=deployer)
    withdraw_token_once(ledger, false_token, alice, 700 * UNIT, receiver=ingrid)
    withdraw_token_once(ledger, false_token, bob, 800 * UNIT)
    assert false_token.balanceOf(ledger) == before[2] - 1500 * UNIT
    _assert_invariant(ledger, false_token, [params], [alice, bob])


def test_conclude__false_token__credited_then_withdrawn(
    ledger, open_channel, signed, false_token, chain, deployer, alice, bob, watcher
) -> None:
    params, state0 = open_channel(1000 * UNIT, 1000 * UNIT, asset=false_token)
    state1 = state0.pay(1000 * UNIT, 0)  # A 0, B 2000: only B is pushed (and credited)
    ledger.register(params.as_tuple(), *signed(state1), sender=watcher)
    chain.pending_timestamp += params.challenge_duration
    false_token.set_fail(True, sender=deployer)

    tx = ledger.conclude(params.as_tuple(), sender=watcher)

    _assert_concluded(ledger, tx, params, 1, 0, 2000 * UNIT)
    _assert_credited(ledger, tx, params, [(bob.address, 2000 * UNIT)])
    assert ledger.credits(false_token, alice) == 0
    _assert_invariant(ledger, false_token, [params], [alice, bob])
    false_token.set_fail(False, sender=deployer)
    withdraw_token_once(ledger, false_token, bob, 2000 * UNIT)
    _assert_invariant(ledger, false_token, [params], [alice, bob])


def test_conclude_with_lock__false_token__all_credited_ingrid_neutral(
    ledger, virtual, hub_with_lock, false_token, deployer, alice, bob, ingrid, watcher
) -> None:
    deposit = 1000 * UNIT
    h = hub_with_lock(deposit, 400 * UNIT, 100 * UNIT, asset=false_token)
    (alice_pay, ingrid_left), (ingrid_right, bob_pay) = hub_payouts(h, deposit)
    false_token.set_fail(True, sender=deployer)
    before = token_balances(false_token, alice, ingrid, bob, ledger)

    tx_left, tx_right = conclude_hub(ledger, h, watcher)

    _assert_credited(ledger, tx_left, h.hub.left, [(alice.address, alice_pay), (ingrid.address, ingrid_left)])
    _assert_credited(ledger, tx_right, h.hub.right, [(ingrid.address, ingrid_right), (bob.address, bob_pay)])
    assert token_balances(false_token, alice, ingrid, bob, ledger) == before
    assert ledger.credits(false_token, ingrid) == 2 * deposit  # neutral: her two deposits, no more, no less
    _assert_invariant(ledger, false_token, [h.hub.left, h.hub.right], [alice, bob, ingrid])
    false_token.set_fail(False, sender=deployer)
    for owner, credit in ((alice, alice_pay), (ingrid, 2 * deposit), (bob, bob_pay)):
        withdraw_token_once(ledger, false_token, owner, credit)
    assert false_token.balanceOf(ledger) == before[3] - 4 * deposit
    _assert_invariant(ledger, false_token, [h.hub.left, h.hub.right], [alice, bob, ingrid])


# ---------------------------------------------------------------------------------------------------
# a token reverting on zero-amount transfers: a zero payout is never attempted


def test_close__zero_revert_token_one_side_zero__other_paid_nothing_credited(
    ledger, open_channel, signed_final, zero_token, alice, bob, watcher
) -> None:
    params, state0 = open_channel(1000 * UNIT, 1000 * UNIT, asset=zero_token)
    final = state0.pay(1000 * UNIT, 0).finalized()  # A 0, B 2000
    before = token_balances(zero_token, alice, bob, ledger)

    tx = ledger.close(params.as_tuple(), *signed_final(final), sender=watcher)

    _assert_concluded(ledger, tx, params, final.version, 0, 2000 * UNIT)
    # Had the zero push been attempted, the token's revert would have been credited (a zero Credited event).
    _assert_credited(ledger, tx, params, [])
    assert token_balances(zero_token, alice, bob, ledger) == [
        before[0],
        before[1] + 2000 * UNIT,
        before[2] - 2000 * UNIT,
    ]
    assert ledger.credits(zero_token, alice) == ledger.credits(zero_token, bob) == 0
    _assert_invariant(ledger, zero_token, [params], [alice, bob])


def test_conclude__zero_revert_token_unfunded_side__other_refunded_nothing_credited(
    ledger, make_params, deposit, signed, zero_token, chain, alice, bob, watcher
) -> None:
    # Bob never funds: the initial state unwinds, Alice gets her deposit back, Bob's zero is not pushed.
    params = make_params(asset=zero_token)
    state0 = LedgerState.initial(params.channel_id, 1000 * UNIT, 1000 * UNIT)
    deposit(params, 0, 1000 * UNIT, alice)
    ledger.register(params.as_tuple(), *signed(state0), sender=watcher)
    chain.pending_timestamp += params.challenge_duration
    alice_before = zero_token.balanceOf(alice)

    tx = ledger.conclude(params.as_tuple(), sender=watcher)

    _assert_concluded(ledger, tx, params, 0, 1000 * UNIT, 0)
    _assert_credited(ledger, tx, params, [])
    assert zero_token.balanceOf(alice) == alice_before + 1000 * UNIT
    _assert_invariant(ledger, zero_token, [params], [alice, bob])


def test_conclude_with_lock__zero_revert_token_zero_payouts__skipped_ingrid_neutral(
    ledger, hub_with_lock, zero_token, alice, bob, ingrid, watcher
) -> None:
    # Everything is locked and Alice pays Bob all of hers: Alice's and Ingrid's right-hand payouts are 0.
    deposit = 500 * UNIT
    h = hub_with_lock(deposit, deposit, deposit, asset=zero_token)
    before = token_balances(zero_token, alice, ingrid, bob, ledger)

    tx_left, tx_right = conclude_hub(ledger, h, watcher)

    _assert_concluded(ledger, tx_left, h.hub.left, h.left.version, 0, 2 * deposit)
    _assert_concluded(ledger, tx_right, h.hub.right, h.right.version, 0, 2 * deposit)
    _assert_credited(ledger, tx_left, h.hub.left, [])
    _assert_credited(ledger, tx_right, h.hub.right, [])
    assert token_balances(zero_token, alice, ingrid, bob, ledger) == [
        before[0],
        before[1] + 2 * deposit,  # neutral
        before[2] + 2 * deposit,
        before[3] - 4 * deposit,
    ]
    _assert_invariant(ledger, zero_token, [h.hub.left, h.hub.right], [alice, bob, ingrid])


def test_withdraw__zero_revert_token_no_credit__reverts_nothing_to_withdraw(ledger, zero_token, alice) -> None:
    # A zero withdrawal never reaches the token (which would revert "token: zero amount").
    with ape.reverts(NOTHING_TO_WITHDRAW):
        ledger.withdraw(zero_token, alice, sender=alice)


# ---------------------------------------------------------------------------------------------------
# a fee-on-transfer token: deposits count what arrived; the ledger pays full amounts, recipients bear the fee


def _fee_channel(ledger, make_params, fee_token, alice, bob) -> tuple[ChannelParams, LedgerState]:
    params = make_params(asset=fee_token)
    for side, who in ((0, alice), (1, bob)):
        fee_token.approve(ledger, 1000 * UNIT, sender=who)
        tx = ledger.deposit_token(params.as_tuple(), side, 1000 * UNIT, sender=who)
        _assert_deposited(ledger, tx, params.channel_id, 990 * UNIT, 990 * UNIT if side else 0)
    assert ledger.holdings(params.channel_id) == (990 * UNIT, 990 * UNIT, False)
    return params, LedgerState.initial(params.channel_id, 990 * UNIT, 990 * UNIT)


def test_close__fee_token__credited_what_arrived_invariant_holds(
    ledger, make_params, signed_final, fee_token, alice, bob, watcher
) -> None:
    ledger_before = fee_token.balanceOf(ledger)
    params, state0 = _fee_channel(ledger, make_params, fee_token, alice, bob)
    assert fee_token.balanceOf(ledger) == ledger_before + 1980 * UNIT
    _assert_invariant(ledger, fee_token, [params], [alice, bob])
    final = state0.pay(90 * UNIT, 0).finalized()  # A 900, B 1080
    before = token_balances(fee_token, alice, bob)

    tx = ledger.close(params.as_tuple(), *signed_final(final), sender=watcher)

    _assert_concluded(ledger, tx, params, final.version, 900 * UNIT, 1080 * UNIT)
    _assert_credited(ledger, tx, params, [])
    assert token_balances(fee_token, alice, bob) == [before[0] + 891 * UNIT, before[1] + 10692 * UNIT // 10]
    assert fee_token.balanceOf(ledger) == ledger_before
    _assert_invariant(ledger, fee_token, [params], [alice, bob])


def test_withdraw__fee_token_credit__ledger_debited_once_invariant_holds(
    ledger, make_params, signed_final, fee_token, project, chain, alice, bob, ingrid, watcher
) -> None:
    params, state0 = _fee_channel(ledger, make_params, fee_token, alice, bob)
    # Swap in code whose `transfer` returns false for the close (storage stays), so both payouts are credited.
    chain.provider.set_code(fee_token.address, RETURNS_FALSE_CODE)
    tx = ledger.close(params.as_tuple(), *signed_final(state0.pay(490 * UNIT, 1).finalized()), sender=watcher)
    chain.provider.set_code(fee_token.address, _code(project.FeeToken))
    _assert_credited(ledger, tx, params, [(alice.address, 1480 * UNIT), (bob.address, 500 * UNIT)])
    _assert_invariant(ledger, fee_token, [params], [alice, bob])
    ledger_before, ingrid_before = fee_token.balanceOf(ledger), fee_token.balanceOf(ingrid)

    tx = ledger.withdraw(fee_token, ingrid, sender=alice)

    _assert_withdrawn(ledger, tx, alice, fee_token, ingrid.address, 1480 * UNIT)
    assert fee_token.balanceOf(ingrid) == ingrid_before + 14652 * UNIT // 10  # 99% of 1480
    assert fee_token.balanceOf(ledger) == ledger_before - 1480 * UNIT
    _assert_invariant(ledger, fee_token, [params], [alice, bob])
    with ape.reverts(NOTHING_TO_WITHDRAW):
        ledger.withdraw(fee_token, ingrid, sender=alice)
