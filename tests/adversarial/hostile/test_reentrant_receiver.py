"""A re-entrant ETH receiver against every payout path of the ledger adjudicator.

The push gets 10,000 gas, too little to even load the payload, so the receiver runs out of gas, its call
is undone and the payout is credited; `withdraw` forwards all gas, so there the re-entry is attempted,
and refused by the lock, or for `deposit` (outside the lock) into the concluded channel, by "ledger:
channel concluded".

What must hold whatever they do is in helpers.py.
"""

from __future__ import annotations

import pytest

from perun_vyper import ETH
from tests.adversarial.hostile.helpers import (
    LOCK_REFUSAL,
    TARGETS,
    Target,
    assert_refused_by_lock,
    assert_refused_with,
    channel_target,
    conclude_hub,
    hub_payouts,
    hub_target,
)
from tests.support.checks import assert_accounts_balance as _assert_invariant
from tests.support.checks import assert_concluded as _assert_concluded
from tests.support.checks import assert_credited as _assert_credited
from tests.support.checks import assert_withdrawn as _assert_withdrawn
from tests.support.checks import holdings as _holdings
from tests.support.constants import (
    LEDGER_CONCLUDED,
    VIRTUAL_CONCLUDED,
    E,
)
from tests.support.reverts import revert_reason as _revert_reason

# ---------------------------------------------------------------------------------------------------
# re-entrant ETH receiver: the push gets 10,000 gas, too little to even load the payload, so the receiver
# runs out of gas, its call is undone and the payout is credited; `withdraw` forwards all gas, so there
# the re-entry is attempted, and refused by the lock, or for `deposit` (outside the lock) into the
# concluded channel, by "ledger: channel concluded". (A receiver lean enough to re-enter `deposit` within
# the 10,000 gas is in the `deposit` section below.)


def _withdraw_reentered(ledger, hostile, alice, name: str, target: Target, credit: int, virtual) -> None:
    alice_before, ledger_before = alice.balance, ledger.balance
    tx = ledger.withdraw(ETH, alice, sender=alice)
    _assert_withdrawn(ledger, tx, alice, ETH, alice.address, credit)
    # Paid exactly once: the re-entrant call (a second withdraw, a close, a deposit with 1 wei...) moved nothing.
    assert alice.balance == alice_before + credit - tx.total_fees_paid
    assert ledger.balance == ledger_before - credit
    assert ledger.credits(ETH, alice) == 0
    if name == "virtual.register":
        # The VirtualAdjudicator has its own lock; a registration from inside a ledger withdraw is legitimate.
        assert hostile.attempts() == 1
        assert hostile.last_success() is True
        assert virtual.record(target.virtual_params.channel_id)[0] == target.virtual_state.version
    elif name == "ledger.deposit":
        # Outside the lock, `deposit` runs, and refuses the concluded channel: its 1 wei went back.
        assert_refused_with(hostile, 1, LEDGER_CONCLUDED)
        assert _holdings(ledger, target.params.channel_id) == (0, 0, True)
    else:
        assert_refused_by_lock(hostile, 1)


@pytest.mark.parametrize("name", TARGETS)
def test_close__reentrant_receiver__credited_then_withdrawn_once(
    ledger, virtual, open_channel, signed_final, receiver_on, arm, chain, alice, bob, ingrid, watcher, name: str
) -> None:
    params, state0 = open_channel(E, E)
    hostile = receiver_on(alice)
    target = arm(hostile, name, channel_target(params, state0, alice, bob, ingrid, chain))
    final = state0.pay(E // 4, 0).finalized()
    alice_before, bob_before = alice.balance, bob.balance

    tx = ledger.close(params.as_tuple(), *signed_final(final), sender=watcher)

    _assert_concluded(ledger, tx, params, final.version, 3 * E // 4, 5 * E // 4)
    _assert_credited(ledger, tx, params, [(alice.address, 3 * E // 4)])
    assert alice.balance == alice_before
    assert bob.balance == bob_before + 5 * E // 4
    assert hostile.attempts() == 0  # the out-of-gas receiver's call was rolled back with it
    assert list(tx.decode_logs(ledger.Deposited)) == []
    assert virtual.record(target.virtual_params.channel_id)[0] == 0
    _assert_invariant(ledger, ETH, [params], [alice, bob])

    _withdraw_reentered(ledger, hostile, alice, name, target, 3 * E // 4, virtual)
    _assert_invariant(ledger, ETH, [params], [alice, bob])


@pytest.mark.parametrize("name", TARGETS)
def test_conclude__reentrant_receiver__credited_then_withdrawn_once(
    ledger, virtual, open_channel, signed, receiver_on, arm, chain, alice, bob, ingrid, watcher, name: str
) -> None:
    params, state0 = open_channel(E, E)
    state1 = state0.pay(E // 5, 1)  # A 1.2, B 0.8
    ledger.register(params.as_tuple(), *signed(state1), sender=watcher)
    chain.pending_timestamp += params.challenge_duration
    hostile = receiver_on(alice)
    target = arm(hostile, name, channel_target(params, state1, alice, bob, ingrid, chain))
    alice_before, bob_before = alice.balance, bob.balance

    tx = ledger.conclude(params.as_tuple(), sender=watcher)

    _assert_concluded(ledger, tx, params, 1, 6 * E // 5, 4 * E // 5)
    _assert_credited(ledger, tx, params, [(alice.address, 6 * E // 5)])
    assert alice.balance == alice_before
    assert bob.balance == bob_before + 4 * E // 5
    assert hostile.attempts() == 0
    assert list(tx.decode_logs(ledger.Deposited)) == []
    _assert_invariant(ledger, ETH, [params], [alice, bob])

    _withdraw_reentered(ledger, hostile, alice, name, target, 6 * E // 5, virtual)
    _assert_invariant(ledger, ETH, [params], [alice, bob])


@pytest.mark.parametrize("name", TARGETS)
def test_conclude_with_lock__reentrant_receiver__credited_ingrid_neutral(
    ledger, virtual, hub_with_lock, signed, receiver_on, arm, alice, bob, ingrid, watcher, name: str
) -> None:
    deposit, funding = E, E // 2
    h = hub_with_lock(deposit, funding, funding // 5)
    hostile = receiver_on(alice)
    arm(hostile, name, hub_target(h, alice, ingrid))
    (alice_pay, ingrid_left), (ingrid_right, bob_pay) = hub_payouts(h, deposit)
    alice_before, ingrid_before, bob_before = alice.balance, ingrid.balance, bob.balance

    tx_left, tx_right = conclude_hub(ledger, h, watcher)

    _assert_concluded(ledger, tx_left, h.hub.left, h.left.version, alice_pay, ingrid_left)
    _assert_concluded(ledger, tx_right, h.hub.right, h.right.version, ingrid_right, bob_pay)
    _assert_credited(ledger, tx_left, h.hub.left, [(alice.address, alice_pay)])
    _assert_credited(ledger, tx_right, h.hub.right, [])
    assert alice.balance == alice_before
    assert bob.balance == bob_before + bob_pay
    # Ingrid is neutral: she gets back exactly her two deposits, whatever Alice's receiver did.
    assert ingrid.balance == ingrid_before + 2 * deposit
    assert ledger.credits(ETH, ingrid) == 0
    assert hostile.attempts() == 0
    assert virtual.record(h.vp.channel_id)[0] == h.outcome.version  # the settled outcome is untouched
    _assert_invariant(ledger, ETH, [h.hub.left, h.hub.right], [alice, bob, ingrid])

    alice_before = alice.balance
    tx = ledger.withdraw(ETH, alice, sender=alice)
    _assert_withdrawn(ledger, tx, alice, ETH, alice.address, alice_pay)
    assert alice.balance == alice_before + alice_pay - tx.total_fees_paid
    assert hostile.attempts() == 1
    assert hostile.last_success() is False
    if name == "virtual.register":
        # Not the ledger's lock: the VirtualAdjudicator refuses to rewrite an outcome a ledger channel may
        # already have split a lock by (here the left channel did, the right one too).
        assert _revert_reason(bytes(hostile.last_response())) == VIRTUAL_CONCLUDED
        assert virtual.record(h.vp.channel_id)[0] == h.outcome.version
    elif name == "ledger.deposit":
        # `deposit` (outside the lock) into the concluded Alice-Ingrid channel: refused by its own check.
        assert _revert_reason(bytes(hostile.last_response())) == LEDGER_CONCLUDED
        assert _holdings(ledger, h.hub.left.channel_id) == (0, 0, True)
    else:
        assert bytes(hostile.last_response()) == LOCK_REFUSAL
    _assert_invariant(ledger, ETH, [h.hub.left, h.hub.right], [alice, bob, ingrid])


# ---------------------------------------------------------------------------------------------------
# read-only re-entrancy: no view of the ledger answers while it is paying someone. Re-entered from a
# receiver that `withdraw` pays (all gas forwarded), each view is refused by the lock; the same call
# answers outside the payout.

VIEWS = {
    "holdings": lambda ledger, params, who: ledger.holdings.encode_input(params.channel_id),
    "dispute": lambda ledger, params, who: ledger.dispute.encode_input(params.channel_id),
    "credits": lambda ledger, params, who: ledger.credits.encode_input(ETH, who),
    "DOMAIN_SEPARATOR": lambda ledger, params, who: ledger.DOMAIN_SEPARATOR.encode_input(),
    "eip712Domain": lambda ledger, params, who: ledger.eip712Domain.encode_input(),
}


@pytest.mark.parametrize("view", VIEWS)
def test_withdraw__view_reentered_during_payout__refused_by_lock(
    ledger, open_channel, signed_final, receiver_on, chain, alice, watcher, deployer, view: str
) -> None:
    params, state0 = open_channel(E, E)
    hostile = receiver_on(alice)
    data = bytes(VIEWS[view](ledger, params, alice.address))
    hostile.arm(ledger.address, data, 0, sender=deployer)
    # The armed receiver cannot even load its payload with the push's 10,000 gas: Alice's E is credited.
    ledger.close(params.as_tuple(), *signed_final(state0.finalized()), sender=watcher)

    tx = ledger.withdraw(ETH, alice, sender=alice)

    _assert_withdrawn(ledger, tx, alice, ETH, alice.address, E)
    assert_refused_by_lock(hostile, 1)
    answer = chain.provider.web3.eth.call({"to": str(ledger.address), "data": "0x" + data.hex()})
    assert len(answer) >= 32  # outside the payout the same call answers
