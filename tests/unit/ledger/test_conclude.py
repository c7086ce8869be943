"""conclude: paying out a disputed channel by its registered state once the challenge period is over."""

import ape
import pytest

from perun_vyper import LedgerState
from tests.ledger_checks import assert_settled as _assert_settled

ETH_UNIT = 10**18


def _concluded(ledger, receipt) -> list:
    return list(receipt.decode_logs(ledger.Concluded))


def _register(ledger, params, signed_args, sender) -> int:
    """Register and return the dispute's deadline."""
    receipt = ledger.register(params.as_tuple(), *signed_args, sender=sender)
    return receipt.timestamp + params.challenge_duration


def _conclude_at(ledger, chain, params, state, sender, timestamp):
    chain.pending_timestamp = timestamp
    receipt = ledger.conclude(params.as_tuple(), state.as_tuple(), sender=sender)
    assert receipt.timestamp == timestamp
    return receipt


def test_conclude__after_deadline__pays_registered_state(
    ledger, open_channel, signed, alice, bob, stranger, watcher, chain
):
    params, state0 = open_channel()
    state = state0.pay(3 * 10**17, 0)
    deadline = _register(ledger, params, signed(state), stranger)
    before_a, before_b, before_ledger = alice.balance, bob.balance, ledger.balance
    receipt = _conclude_at(ledger, chain, params, state, watcher, deadline + 100)
    events = _concluded(ledger, receipt)
    assert len(events) == 1
    assert events[0].contract_address == ledger.address
    assert events[0].channel == params.channel_id
    assert events[0].version == 1
    assert events[0].payout_a == 7 * 10**17
    assert events[0].payout_b == 13 * 10**17
    assert alice.balance - before_a == 7 * 10**17
    assert bob.balance - before_b == 13 * 10**17
    assert before_ledger - ledger.balance == 2 * ETH_UNIT
    assert list(receipt.decode_logs(ledger.Credited)) == []
    _assert_settled(ledger, params)


def test_conclude__exactly_at_deadline__succeeds(ledger, open_channel, signed, alice, bob, stranger, chain):
    params, state0 = open_channel()
    state = state0.pay(10**17, 1)
    deadline = _register(ledger, params, signed(state), stranger)
    before_a, before_b = alice.balance, bob.balance
    receipt = _conclude_at(ledger, chain, params, state, stranger, deadline)
    assert [(e.version, e.payout_a, e.payout_b) for e in _concluded(ledger, receipt)] == [(1, 11 * 10**17, 9 * 10**17)]
    assert (alice.balance - before_a, bob.balance - before_b) == (11 * 10**17, 9 * 10**17)
    _assert_settled(ledger, params)


def test_conclude__one_second_before_deadline__reverts_not_over(ledger, open_channel, signed, stranger, chain):
    params, state0 = open_channel()
    state = state0.pay(10**17, 1)
    deadline = _register(ledger, params, signed(state), stranger)
    chain.pending_timestamp = deadline - 1
    with ape.reverts("ledger: challenge period not over"):
        ledger.conclude(params.as_tuple(), state.as_tuple(), sender=stranger)
    assert chain.blocks.head.timestamp == deadline - 1  # the reverting tx ran one second early
    assert tuple(ledger.holdings(params.channel_id)) == (ETH_UNIT, ETH_UNIT, False)
    assert tuple(ledger.dispute(params.channel_id)) == (1, deadline, state.struct_hash())


def test_conclude__right_after_register__reverts_not_over(ledger, open_channel, signed, stranger):
    params, state0 = open_channel()
    state = state0.pay(10**17, 1)
    _register(ledger, params, signed(state), stranger)
    with ape.reverts("ledger: challenge period not over"):
        ledger.conclude(params.as_tuple(), state.as_tuple(), sender=stranger)


def test_conclude__no_dispute__reverts(ledger, open_channel, stranger):
    params, state0 = open_channel()
    with ape.reverts("ledger: no dispute"):
        ledger.conclude(params.as_tuple(), state0.as_tuple(), sender=stranger)


def test_conclude__unknown_channel__reverts(ledger, make_params, stranger):
    params = make_params()
    with ape.reverts("ledger: unknown channel"):
        state = LedgerState.initial(params.channel_id, 1, 1)
        ledger.conclude(params.as_tuple(), state.as_tuple(), sender=stranger)


@pytest.mark.parametrize("which", ["older", "newer", "same_version_other_balances", "final_twin"])
def test_conclude__state_other_than_registered__reverts(ledger, open_channel, signed, stranger, chain, which):
    params, state0 = open_channel()
    state1 = state0.pay(10**17, 0)
    deadline = _register(ledger, params, signed(state1), stranger)
    other = {
        "older": state0,
        "newer": state1.pay(1, 0),
        "same_version_other_balances": state0.pay(2 * 10**17, 0),
        "final_twin": LedgerState(**{**state1.__dict__, "is_final": True}),
    }[which]
    chain.pending_timestamp = deadline
    with ape.reverts("ledger: state not registered"):
        ledger.conclude(params.as_tuple(), other.as_tuple(), sender=stranger)
    assert tuple(ledger.holdings(params.channel_id)) == (ETH_UNIT, ETH_UNIT, False)


def test_conclude__twice__reverts_channel_concluded(ledger, open_channel, signed, alice, bob, stranger, chain):
    params, state0 = open_channel()
    state = state0.pay(10**17, 0)
    deadline = _register(ledger, params, signed(state), stranger)
    _conclude_at(ledger, chain, params, state, stranger, deadline)
    before_a, before_b = alice.balance, bob.balance
    with ape.reverts("ledger: channel concluded"):
        ledger.conclude(params.as_tuple(), state.as_tuple(), sender=stranger)
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
    receipt = _conclude_at(ledger, chain, params, state, request.getfixturevalue(sender_name), deadline + 1)
    assert [(e.payout_a, e.payout_b) for e in _concluded(ledger, receipt)] == [(6 * 10**17, 14 * 10**17)]
    assert (alice.balance - before_a, bob.balance - before_b) == (6 * 10**17, 14 * 10**17)


@pytest.mark.parametrize("side", [0, 1])
def test_conclude__participant_sender__pays_minus_fee(ledger, open_channel, signed, alice, bob, stranger, chain, side):
    params, state0 = open_channel()
    state = state0.pay(4 * 10**17, 0)
    deadline = _register(ledger, params, signed(state), stranger)
    before_a, before_b = alice.balance, bob.balance
    sender = (alice, bob)[side]
    receipt = _conclude_at(ledger, chain, params, state, sender, deadline + 1)
    fee = receipt.total_fees_paid
    assert fee > 0
    expected = [6 * 10**17, 14 * 10**17]
    expected[side] -= fee
    assert [alice.balance - before_a, bob.balance - before_b] == expected


def test_conclude__partner_never_funded__refunds_deposit(ledger, open_channel, signed, alice, bob, stranger, chain):
    # Both signed version 0 (1 ETH each) before funding; only alice deposited.
    params, _ = open_channel(deposit_a=ETH_UNIT, deposit_b=0)
    state0 = LedgerState.initial(params.channel_id, ETH_UNIT, ETH_UNIT)
    assert tuple(ledger.holdings(params.channel_id)) == (ETH_UNIT, 0, False)
    deadline = _register(ledger, params, signed(state0), stranger)
    before_a, before_b = alice.balance, bob.balance
    receipt = _conclude_at(ledger, chain, params, state0, stranger, deadline)
    assert [(e.version, e.payout_a, e.payout_b) for e in _concluded(ledger, receipt)] == [(0, ETH_UNIT, 0)]
    assert (alice.balance - before_a, bob.balance - before_b) == (ETH_UNIT, 0)
    _assert_settled(ledger, params)


def test_conclude__partner_underfunded_later_state__refunds_deposits(
    ledger, open_channel, signed, alice, bob, stranger, chain, deposit
):
    # Bob deposited only half of what the states say he funded: nothing moved, each gets its own deposit.
    params, _ = open_channel(deposit_a=ETH_UNIT, deposit_b=0)
    deposit(params, 1, ETH_UNIT // 2, bob)
    state = LedgerState.initial(params.channel_id, ETH_UNIT, ETH_UNIT).pay(3 * 10**17, 0)
    deadline = _register(ledger, params, signed(state), stranger)
    before_a, before_b = alice.balance, bob.balance
    receipt = _conclude_at(ledger, chain, params, state, stranger, deadline)
    assert [(e.payout_a, e.payout_b) for e in _concluded(ledger, receipt)] == [(ETH_UNIT, ETH_UNIT // 2)]
    assert (alice.balance - before_a, bob.balance - before_b) == (ETH_UNIT, ETH_UNIT // 2)


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
    holdings = [ETH_UNIT, ETH_UNIT]
    holdings[side] += extra
    assert tuple(ledger.holdings(params.channel_id)) == (*holdings, False)
    deadline = _register(ledger, params, signed(state), stranger)
    before_a, before_b = alice.balance, bob.balance
    receipt = _conclude_at(ledger, chain, params, state, stranger, deadline)
    assert [(e.payout_a, e.payout_b) for e in _concluded(ledger, receipt)] == [tuple(expected)]
    assert [alice.balance - before_a, bob.balance - before_b] == expected
    _assert_settled(ledger, params)


def test_conclude__top_up_state__pays_by_state(ledger, open_channel, signed, alice, bob, stranger, chain, deposit):
    # A top-up the state accounts for is not paid back on top of the balance.
    params, state0 = open_channel()
    deposit(params, 1, 3 * 10**17, bob)
    state = state0.top_up(3 * 10**17, 1).pay(5 * 10**17, 1)
    deadline = _register(ledger, params, signed(state), stranger)
    before_a, before_b = alice.balance, bob.balance
    receipt = _conclude_at(ledger, chain, params, state, stranger, deadline)
    assert [(e.version, e.payout_a, e.payout_b) for e in _concluded(ledger, receipt)] == [(2, 15 * 10**17, 8 * 10**17)]
    assert (alice.balance - before_a, bob.balance - before_b) == (15 * 10**17, 8 * 10**17)


def test_conclude__erc20_channel__pays_tokens(ledger, open_channel, signed, alice, bob, stranger, chain, token):
    params, state0 = open_channel(deposit_a=10**6, deposit_b=2 * 10**6, asset=token)
    state = state0.pay(250_000, 1)
    deadline = _register(ledger, params, signed(state), stranger)
    before_a, before_b, before_ledger = token.balanceOf(alice), token.balanceOf(bob), token.balanceOf(ledger)
    eth_a, eth_b = alice.balance, bob.balance
    receipt = _conclude_at(ledger, chain, params, state, stranger, deadline)
    assert [(e.channel, e.payout_a, e.payout_b) for e in _concluded(ledger, receipt)] == [
        (params.channel_id, 1_250_000, 1_750_000)
    ]
    assert token.balanceOf(alice) - before_a == 1_250_000
    assert token.balanceOf(bob) - before_b == 1_750_000
    assert before_ledger - token.balanceOf(ledger) == 3 * 10**6
    assert (alice.balance, bob.balance) == (eth_a, eth_b)
    assert list(receipt.decode_logs(ledger.Credited)) == []
    _assert_settled(ledger, params)
