"""conclude: paying out a disputed channel by the outcome settled at registration once the challenge period
is over. ``conclude(params, locks, virtuals)`` takes no state: only the registered state's locks (when the
``dispute`` view reports a locks hash) and their virtual channels' parameters."""

import ape
import pytest

from perun_vyper import LedgerState, Lock, VirtualState, open_virtual
from tests.support.checks import assert_concluded, concluded_logs
from tests.support.checks import assert_settled as _assert_settled
from tests.support.constants import (
    LEDGER_CONCLUDED,
    LEDGER_PERIOD_NOT_OVER,
    LOCKS_NOT_REGISTERED,
    NO_DISPUTE,
    PARAMS_NOT_LOCKS,
    UNKNOWN_CHANNEL,
    ZERO_HASH,
    E,
)


def _register(ledger, params, signed_args, sender) -> int:
    """Register and return the dispute's deadline."""
    receipt = ledger.register(params.as_tuple(), *signed_args, sender=sender)
    return receipt.timestamp + params.challenge_duration


def _conclude_at(ledger, chain, params, sender, timestamp, locks=(), virtuals=()):
    """Conclude at ``timestamp``; without locks through the one-argument form (both lists default to [])."""
    chain.pending_timestamp = timestamp
    if locks or virtuals:
        args = ([lock.as_tuple() for lock in locks], [v.as_tuple() for v in virtuals])
        receipt = ledger.conclude(params.as_tuple(), *args, sender=sender)
    else:
        receipt = ledger.conclude(params.as_tuple(), sender=sender)
    assert receipt.timestamp == timestamp
    return receipt


def test_conclude__after_deadline__pays_registered_state(
    ledger, open_channel, signed, alice, bob, stranger, watcher, chain
):
    params, state0 = open_channel()
    state = state0.pay(3 * 10**17, 0)
    deadline = _register(ledger, params, signed(state), stranger)
    before_a, before_b, before_ledger = alice.balance, bob.balance, ledger.balance
    receipt = _conclude_at(ledger, chain, params, watcher, deadline + 100)
    events = concluded_logs(ledger, receipt)
    assert len(events) == 1
    assert events[0].contract_address == ledger.address
    assert events[0].channel == params.channel_id
    assert events[0].version == 1
    assert events[0].payout_a == 7 * 10**17
    assert events[0].payout_b == 13 * 10**17
    assert alice.balance - before_a == 7 * 10**17
    assert bob.balance - before_b == 13 * 10**17
    assert before_ledger - ledger.balance == 2 * E
    assert list(receipt.decode_logs(ledger.Credited)) == []
    _assert_settled(ledger, params)


def test_conclude__exactly_at_deadline__succeeds(ledger, open_channel, signed, alice, bob, stranger, chain):
    params, state0 = open_channel()
    state = state0.pay(10**17, 1)
    deadline = _register(ledger, params, signed(state), stranger)
    before_a, before_b = alice.balance, bob.balance
    receipt = _conclude_at(ledger, chain, params, stranger, deadline)
    assert [(e.version, e.payout_a, e.payout_b) for e in concluded_logs(ledger, receipt)] == [
        (1, 11 * 10**17, 9 * 10**17)
    ]
    assert (alice.balance - before_a, bob.balance - before_b) == (11 * 10**17, 9 * 10**17)
    _assert_settled(ledger, params)


def test_conclude__one_second_before_deadline__reverts_not_over(ledger, open_channel, signed, stranger, chain):
    params, state0 = open_channel()
    state = state0.pay(10**17, 1)
    deadline = _register(ledger, params, signed(state), stranger)
    chain.pending_timestamp = deadline - 1
    with ape.reverts(LEDGER_PERIOD_NOT_OVER):
        ledger.conclude(params.as_tuple(), sender=stranger)
    assert chain.blocks.head.timestamp == deadline - 1  # the reverting tx ran one second early
    assert tuple(ledger.holdings(params.channel_id)) == (E, E, False)
    assert tuple(ledger.dispute(params.channel_id)) == (1, deadline, ZERO_HASH)


def test_conclude__right_after_register__reverts_not_over(ledger, open_channel, signed, stranger):
    params, state0 = open_channel()
    state = state0.pay(10**17, 1)
    _register(ledger, params, signed(state), stranger)
    with ape.reverts(LEDGER_PERIOD_NOT_OVER):
        ledger.conclude(params.as_tuple(), sender=stranger)


def test_conclude__no_dispute__reverts(ledger, open_channel, stranger):
    params, _ = open_channel()
    with ape.reverts(NO_DISPUTE):
        ledger.conclude(params.as_tuple(), sender=stranger)
    with ape.reverts(NO_DISPUTE):
        ledger.conclude(params.as_tuple(), [], [], sender=stranger)
    assert tuple(ledger.holdings(params.channel_id)) == (E, E, False)
    assert tuple(ledger.dispute(params.channel_id)) == (0, 0, ZERO_HASH)


def test_conclude__unknown_channel__reverts(ledger, make_params, stranger):
    params = make_params()
    with ape.reverts(UNKNOWN_CHANNEL):
        ledger.conclude(params.as_tuple(), sender=stranger)


@pytest.mark.parametrize(
    "case",
    ["none", "missing_one", "extra", "reordered", "other_amounts", "other_channel", "replaced_state_locks"],
)
def test_conclude__locks_other_than_registered__reverts_locks_not_registered(
    ledger, virtual, open_hub, make_virtual, signed, signed_virtual, alice, ingrid, stranger, chain, case
):
    # The registered (funded) state locks two virtual channels; it replaced a state locking only the first.
    hub = open_hub()
    v1, v2, v3 = (make_virtual(hub) for _ in range(3))
    state1 = open_virtual(hub.left_state, hub.left, v1)
    state2 = open_virtual(state1, hub.left, v2)
    l1, l2 = state2.locks
    deadline = _register(ledger, hub.left, signed(state1, alice, ingrid), stranger)  # fixed by the first
    ledger.register(hub.left.as_tuple(), *signed(state2, alice, ingrid), sender=stranger)
    assert tuple(ledger.dispute(hub.left.channel_id)) == (2, deadline, state2.locks_hash())
    # v1 settled (Alice paid Bob 0.05 and both closed it), v2 by its expiry (initial split).
    final = VirtualState.initial(v1).pay(5 * 10**16, from_alice=True).finalized()
    virtual.register(v1.as_tuple(), *signed_virtual(final), sender=alice)
    locks = {
        "none": [],
        "missing_one": [l1],
        "extra": [l1, l2, Lock(v3.channel_id, 0, 0)],
        "reordered": [l2, l1],
        "other_amounts": [Lock(l1.channel, l1.amount_a + 1, l1.amount_b - 1), l2],
        "other_channel": [Lock(v3.channel_id, l1.amount_a, l1.amount_b), l2],
        "replaced_state_locks": list(state1.locks),
    }[case]
    virtuals = ([v1, v2, v3] * 2)[: len(locks)]  # as many as locks: only the locks are wrong
    conclude_at = max(deadline, v2.expiry)
    chain.pending_timestamp = conclude_at
    with ape.reverts(LOCKS_NOT_REGISTERED):
        ledger.conclude(
            hub.left.as_tuple(), [lk.as_tuple() for lk in locks], [v.as_tuple() for v in virtuals], sender=stranger
        )
    assert tuple(ledger.holdings(hub.left.channel_id)) == (E, E, False)
    assert tuple(ledger.dispute(hub.left.channel_id)) == (2, deadline, state2.locks_hash())
    # The registered locks conclude: v1 moves 0.05 from Alice to Bob's side (Ingrid), v2 moves nothing.
    before_a, before_i = alice.balance, ingrid.balance
    receipt = _conclude_at(ledger, chain, hub.left, stranger, conclude_at + 1, [l1, l2], [v1, v2])
    payout_a, payout_b = E - 5 * 10**16, E + 5 * 10**16
    assert_concluded(ledger, receipt, hub.left, 2, payout_a, payout_b)
    assert (alice.balance - before_a, ingrid.balance - before_i) == (payout_a, payout_b)
    _assert_settled(ledger, hub.left)


def test_conclude__locks_for_lock_free_state__reverts_locks_not_registered(
    ledger, open_channel, signed, alice, bob, stranger, chain
):
    params, state0 = open_channel()
    state = state0.pay(10**17, 0)
    deadline = _register(ledger, params, signed(state), stranger)
    assert tuple(ledger.dispute(params.channel_id)) == (1, deadline, ZERO_HASH)
    chain.pending_timestamp = deadline
    lock = (b"\x42" * 32, 0, 0)  # even a lock of nothing
    with ape.reverts(LOCKS_NOT_REGISTERED):
        ledger.conclude(params.as_tuple(), [lock], [], sender=stranger)
    with ape.reverts(LOCKS_NOT_REGISTERED):
        ledger.conclude(params.as_tuple(), [lock], sender=stranger)
    assert tuple(ledger.holdings(params.channel_id)) == (E, E, False)
    before_a, before_b = alice.balance, bob.balance
    receipt = _conclude_at(ledger, chain, params, stranger, deadline + 1)
    assert_concluded(ledger, receipt, params, 1, 9 * 10**17, 11 * 10**17)
    assert (alice.balance - before_a, bob.balance - before_b) == (9 * 10**17, 11 * 10**17)
    _assert_settled(ledger, params)


def test_conclude__virtuals_without_locks__reverts_virtual_params_do_not_match_locks(
    ledger, open_hub, make_virtual, signed, alice, ingrid, stranger, chain
):
    hub = open_hub()
    vparams = make_virtual(hub)
    state = hub.left_state.pay(10**17, 0)
    deadline = _register(ledger, hub.left, signed(state, alice, ingrid), stranger)
    chain.pending_timestamp = deadline
    with ape.reverts(PARAMS_NOT_LOCKS):
        ledger.conclude(hub.left.as_tuple(), [], [vparams.as_tuple()], sender=stranger)
    assert tuple(ledger.holdings(hub.left.channel_id)) == (E, E, False)
    receipt = _conclude_at(ledger, chain, hub.left, stranger, deadline + 1)
    assert_concluded(ledger, receipt, hub.left, 1, 9 * 10**17, 11 * 10**17)


def test_conclude__twice__reverts_channel_concluded(ledger, open_channel, signed, alice, bob, stranger, chain):
    params, state0 = open_channel()
    state = state0.pay(10**17, 0)
    deadline = _register(ledger, params, signed(state), stranger)
    _conclude_at(ledger, chain, params, stranger, deadline)
    before_a, before_b = alice.balance, bob.balance
    with ape.reverts(LEDGER_CONCLUDED):
        ledger.conclude(params.as_tuple(), sender=stranger)
    assert (alice.balance, bob.balance) == (before_a, before_b)
    _assert_settled(ledger, params)


@pytest.mark.parametrize("sender_name", ["stranger", "watcher", "ingrid", "deployer"])
def test_conclude__third_party_sender__pays_participants(
    ledger, open_channel, signed, alice, bob, stranger, chain, request, sender_name
):
    params, state0 = open_channel()
    state = state0.pay(4 * 10**17, 0)
    deadline = _register(ledger, params, signed(state), stranger)
    before_a, before_b = alice.balance, bob.balance
    receipt = _conclude_at(ledger, chain, params, request.getfixturevalue(sender_name), deadline + 1)
    assert [(e.payout_a, e.payout_b) for e in concluded_logs(ledger, receipt)] == [(6 * 10**17, 14 * 10**17)]
    assert (alice.balance - before_a, bob.balance - before_b) == (6 * 10**17, 14 * 10**17)


@pytest.mark.parametrize("side", [0, 1])
def test_conclude__participant_sender__pays_minus_fee(ledger, open_channel, signed, alice, bob, stranger, chain, side):
    params, state0 = open_channel()
    state = state0.pay(4 * 10**17, 0)
    deadline = _register(ledger, params, signed(state), stranger)
    before_a, before_b = alice.balance, bob.balance
    sender = (alice, bob)[side]
    receipt = _conclude_at(ledger, chain, params, sender, deadline + 1)
    fee = receipt.total_fees_paid
    assert fee > 0
    expected = [6 * 10**17, 14 * 10**17]
    expected[side] -= fee
    assert [alice.balance - before_a, bob.balance - before_b] == expected


def test_conclude__partner_never_funded__refunds_deposit(ledger, open_channel, signed, alice, bob, stranger, chain):
    # Both signed version 0 (1 ETH each) before funding; only alice deposited.
    params, _ = open_channel(deposit_a=E, deposit_b=0)
    state0 = LedgerState.initial(params.channel_id, E, E)
    assert tuple(ledger.holdings(params.channel_id)) == (E, 0, False)
    deadline = _register(ledger, params, signed(state0), stranger)
    before_a, before_b = alice.balance, bob.balance
    receipt = _conclude_at(ledger, chain, params, stranger, deadline)
    assert [(e.version, e.payout_a, e.payout_b) for e in concluded_logs(ledger, receipt)] == [(0, E, 0)]
    assert (alice.balance - before_a, bob.balance - before_b) == (E, 0)
    _assert_settled(ledger, params)


def test_conclude__partner_underfunded_later_state__refunds_deposits(
    ledger, open_channel, signed, alice, bob, stranger, chain, deposit
):
    # Bob deposited only half of what the states say he funded: nothing moved, each gets its own deposit.
    params, _ = open_channel(deposit_a=E, deposit_b=0)
    deposit(params, 1, E // 2, bob)
    state = LedgerState.initial(params.channel_id, E, E).pay(3 * 10**17, 0)
    deadline = _register(ledger, params, signed(state), stranger)
    before_a, before_b = alice.balance, bob.balance
    receipt = _conclude_at(ledger, chain, params, stranger, deadline)
    assert [(e.payout_a, e.payout_b) for e in concluded_logs(ledger, receipt)] == [(E, E // 2)]
    assert (alice.balance - before_a, bob.balance - before_b) == (E, E // 2)


@pytest.mark.parametrize("side", [0, 1])
def test_conclude__late_top_up__returns_extra_deposit(
    ledger, open_channel, signed, alice, bob, stranger, chain, deposit, side
):
    params, state0 = open_channel()
    state = state0.pay(2 * 10**17, 0)  # signed while funding is 1 ETH each
    extra = 5 * 10**17
    deposit(params, side, extra, (alice, bob)[side])  # topped up after signing
    expected = [8 * 10**17, 12 * 10**17]
    expected[side] += extra
    holdings = [E, E]
    holdings[side] += extra
    assert tuple(ledger.holdings(params.channel_id)) == (*holdings, False)
    deadline = _register(ledger, params, signed(state), stranger)
    before_a, before_b = alice.balance, bob.balance
    receipt = _conclude_at(ledger, chain, params, stranger, deadline)
    assert [(e.payout_a, e.payout_b) for e in concluded_logs(ledger, receipt)] == [tuple(expected)]
    assert [alice.balance - before_a, bob.balance - before_b] == expected
    _assert_settled(ledger, params)


def test_conclude__top_up_state__pays_by_state(ledger, open_channel, signed, alice, bob, stranger, chain, deposit):
    # A top-up the state accounts for is not paid back on top of the balance.
    params, state0 = open_channel()
    deposit(params, 1, 3 * 10**17, bob)
    state = state0.top_up(3 * 10**17, 1).pay(5 * 10**17, 1)
    deadline = _register(ledger, params, signed(state), stranger)
    before_a, before_b = alice.balance, bob.balance
    receipt = _conclude_at(ledger, chain, params, stranger, deadline)
    assert [(e.version, e.payout_a, e.payout_b) for e in concluded_logs(ledger, receipt)] == [
        (2, 15 * 10**17, 8 * 10**17)
    ]
    assert (alice.balance - before_a, bob.balance - before_b) == (15 * 10**17, 8 * 10**17)


def test_conclude__erc20_channel__pays_tokens(ledger, open_channel, signed, alice, bob, stranger, chain, token):
    params, state0 = open_channel(deposit_a=10**6, deposit_b=2 * 10**6, asset=token)
    state = state0.pay(250_000, 1)
    deadline = _register(ledger, params, signed(state), stranger)
    before_a, before_b, before_ledger = token.balanceOf(alice), token.balanceOf(bob), token.balanceOf(ledger)
    eth_a, eth_b = alice.balance, bob.balance
    receipt = _conclude_at(ledger, chain, params, stranger, deadline)
    assert [(e.channel, e.payout_a, e.payout_b) for e in concluded_logs(ledger, receipt)] == [
        (params.channel_id, 1_250_000, 1_750_000)
    ]
    assert token.balanceOf(alice) - before_a == 1_250_000
    assert token.balanceOf(bob) - before_b == 1_750_000
    assert before_ledger - token.balanceOf(ledger) == 3 * 10**6
    assert (alice.balance, bob.balance) == (eth_a, eth_b)
    assert list(receipt.decode_logs(ledger.Credited)) == []
    _assert_settled(ledger, params)
