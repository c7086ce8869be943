"""close: a final state both participants signed concludes the channel at once."""

import ape
import pytest

from perun_vyper import LedgerState
from tests.ledger_checks import assert_settled as _assert_settled

ETH_UNIT = 10**18


def _concluded(ledger, receipt) -> list:
    return list(receipt.decode_logs(ledger.Concluded))


def _final(state: LedgerState, version: int) -> LedgerState:
    return LedgerState(**{**state.__dict__, "version": version, "is_final": True})


def test_close__final_state__concludes_and_pays(ledger, open_channel, signed, alice, bob, stranger):
    params, state0 = open_channel()
    final = state0.pay(3 * 10**17, 0).pay(10**17, 1).finalized()
    before_a, before_b, before_ledger = alice.balance, bob.balance, ledger.balance
    receipt = ledger.close(params.as_tuple(), *signed(final), sender=stranger)
    events = _concluded(ledger, receipt)
    assert len(events) == 1
    assert events[0].contract_address == ledger.address
    assert events[0].channel == params.channel_id
    assert events[0].version == 3
    assert events[0].payout_a == 8 * 10**17
    assert events[0].payout_b == 12 * 10**17
    assert alice.balance - before_a == 8 * 10**17
    assert bob.balance - before_b == 12 * 10**17
    assert before_ledger - ledger.balance == 2 * ETH_UNIT
    assert list(receipt.decode_logs(ledger.Registered)) == []
    _assert_settled(ledger, params)


def test_close__final_initial_state__refunds(ledger, open_channel, signed, alice, bob, stranger):
    params, _ = open_channel(deposit_a=ETH_UNIT, deposit_b=2 * ETH_UNIT)
    final = LedgerState(params.channel_id, 0, ETH_UNIT, 2 * ETH_UNIT, ETH_UNIT, 2 * ETH_UNIT, is_final=True)
    before_a, before_b = alice.balance, bob.balance
    receipt = ledger.close(params.as_tuple(), *signed(final), sender=stranger)
    assert [(e.version, e.payout_a, e.payout_b) for e in _concluded(ledger, receipt)] == [(0, ETH_UNIT, 2 * ETH_UNIT)]
    assert (alice.balance - before_a, bob.balance - before_b) == (ETH_UNIT, 2 * ETH_UNIT)


@pytest.mark.parametrize("side", [0, 1])
def test_close__participant_sender__pays_minus_fee(ledger, open_channel, signed, alice, bob, side):
    params, state0 = open_channel()
    final = state0.pay(4 * 10**17, 1).finalized()
    before_a, before_b = alice.balance, bob.balance
    receipt = ledger.close(params.as_tuple(), *signed(final), sender=(alice, bob)[side])
    expected = [14 * 10**17, 6 * 10**17]
    expected[side] -= receipt.total_fees_paid
    assert [alice.balance - before_a, bob.balance - before_b] == expected


def test_close__late_top_up__returns_extra_deposit(ledger, open_channel, signed, alice, bob, stranger, deposit):
    params, state0 = open_channel()
    final = state0.pay(10**17, 0).finalized()
    deposit(params, 1, 7, bob)  # after both signed
    before_a, before_b = alice.balance, bob.balance
    receipt = ledger.close(params.as_tuple(), *signed(final), sender=stranger)
    assert [(e.payout_a, e.payout_b) for e in _concluded(ledger, receipt)] == [(9 * 10**17, 11 * 10**17 + 7)]
    assert (alice.balance - before_a, bob.balance - before_b) == (9 * 10**17, 11 * 10**17 + 7)


def test_close__erc20_channel__pays_tokens(ledger, open_channel, signed, alice, bob, stranger, token):
    params, state0 = open_channel(deposit_a=500, deposit_b=300, asset=token)
    final = state0.pay(200, 0).finalized()
    before_a, before_b, before_ledger = token.balanceOf(alice), token.balanceOf(bob), token.balanceOf(ledger)
    receipt = ledger.close(params.as_tuple(), *signed(final), sender=stranger)
    assert [(e.payout_a, e.payout_b) for e in _concluded(ledger, receipt)] == [(300, 500)]
    assert (token.balanceOf(alice) - before_a, token.balanceOf(bob) - before_b) == (300, 500)
    assert before_ledger - token.balanceOf(ledger) == 800
    _assert_settled(ledger, params)


def test_close__non_final_state__reverts_not_final(ledger, open_channel, signed, stranger):
    params, state0 = open_channel()
    for state in (state0, state0.pay(10**17, 0)):
        with ape.reverts("ledger: state not final"):
            ledger.close(params.as_tuple(), *signed(state), sender=stranger)
    assert tuple(ledger.holdings(params.channel_id)) == (ETH_UNIT, ETH_UNIT, False)


def test_close__unknown_channel__reverts(ledger, make_params, signed, stranger):
    params = make_params()
    final = LedgerState(params.channel_id, 1, 1, 1, 1, 1, is_final=True)
    with ape.reverts("ledger: unknown channel"):
        ledger.close(params.as_tuple(), *signed(final), sender=stranger)


def test_close__state_of_other_channel__reverts(ledger, open_channel, signed, stranger):
    params, _ = open_channel()
    _other, other_state0 = open_channel()
    with ape.reverts("ledger: state for another channel"):
        ledger.close(params.as_tuple(), *signed(other_state0.finalized()), sender=stranger)


def test_close__during_dispute_with_newer_final__concludes_and_clears_dispute(
    ledger, open_channel, signed, alice, bob, stranger, watcher
):
    params, state0 = open_channel()
    state1 = state0.pay(10**17, 0)
    ledger.register(params.as_tuple(), *signed(state1), sender=stranger)
    assert ledger.dispute(params.channel_id)[0] == 1
    final = state1.pay(10**17, 0).finalized()  # version 3
    before_a, before_b = alice.balance, bob.balance
    receipt = ledger.close(params.as_tuple(), *signed(final), sender=watcher)
    assert [(e.channel, e.version, e.payout_a, e.payout_b) for e in _concluded(ledger, receipt)] == [
        (params.channel_id, 3, 8 * 10**17, 12 * 10**17)
    ]
    assert (alice.balance - before_a, bob.balance - before_b) == (8 * 10**17, 12 * 10**17)
    _assert_settled(ledger, params)


def test_close__final_version_just_above_registered__concludes(ledger, open_channel, signed, stranger):
    params, state0 = open_channel()
    state2 = state0.pay(10**17, 0).pay(10**17, 0)
    ledger.register(params.as_tuple(), *signed(state2), sender=stranger)
    receipt = ledger.close(params.as_tuple(), *signed(_final(state2, 3)), sender=stranger)
    assert [e.version for e in _concluded(ledger, receipt)] == [3]
    _assert_settled(ledger, params)


@pytest.mark.parametrize("version", [0, 1, 2])
def test_close__final_version_not_above_registered__reverts_stale(ledger, open_channel, signed, stranger, version):
    params, state0 = open_channel()
    state2 = state0.pay(10**17, 0).pay(10**17, 0)
    first = ledger.register(params.as_tuple(), *signed(state2), sender=stranger)
    with ape.reverts("ledger: stale version"):
        ledger.close(params.as_tuple(), *signed(_final(state2, version)), sender=stranger)
    deadline = first.timestamp + params.challenge_duration
    assert tuple(ledger.dispute(params.channel_id)) == (2, deadline, state2.struct_hash())
    assert tuple(ledger.holdings(params.channel_id)) == (ETH_UNIT, ETH_UNIT, False)


def test_close__after_close__reverts_channel_concluded(ledger, open_channel, signed, alice, bob, stranger):
    params, state0 = open_channel()
    final = state0.pay(10**17, 0).finalized()
    ledger.close(params.as_tuple(), *signed(final), sender=stranger)
    before_a, before_b = alice.balance, bob.balance
    with ape.reverts("ledger: channel concluded"):
        ledger.close(params.as_tuple(), *signed(final), sender=stranger)
    with ape.reverts("ledger: channel concluded"):
        ledger.close(params.as_tuple(), *signed(_final(final, 5)), sender=stranger)
    assert (alice.balance, bob.balance) == (before_a, before_b)


def test_close__after_conclude__reverts_channel_concluded(ledger, open_channel, signed, stranger, chain):
    params, state0 = open_channel()
    state1 = state0.pay(10**17, 0)
    first = ledger.register(params.as_tuple(), *signed(state1), sender=stranger)
    chain.pending_timestamp = first.timestamp + params.challenge_duration
    ledger.conclude(params.as_tuple(), state1.as_tuple(), sender=stranger)
    with ape.reverts("ledger: channel concluded"):
        ledger.close(params.as_tuple(), *signed(state1.finalized()), sender=stranger)
    _assert_settled(ledger, params)


@pytest.mark.parametrize("offset", [0, 10**5])
def test_close__after_dispute_deadline_not_concluded__concludes(
    ledger, open_channel, signed, alice, bob, stranger, chain, offset
):
    params, state0 = open_channel()
    state1 = state0.pay(10**17, 0)
    first = ledger.register(params.as_tuple(), *signed(state1), sender=stranger)
    deadline = first.timestamp + params.challenge_duration
    final = state1.pay(2 * 10**17, 1).finalized()
    chain.pending_timestamp = deadline + offset
    before_a, before_b = alice.balance, bob.balance
    receipt = ledger.close(params.as_tuple(), *signed(final), sender=stranger)
    assert receipt.timestamp == deadline + offset
    assert [(e.version, e.payout_a, e.payout_b) for e in _concluded(ledger, receipt)] == [(3, 11 * 10**17, 9 * 10**17)]
    assert (alice.balance - before_a, bob.balance - before_b) == (11 * 10**17, 9 * 10**17)
    _assert_settled(ledger, params)
    with ape.reverts("ledger: channel concluded"):
        ledger.conclude(params.as_tuple(), state1.as_tuple(), sender=stranger)
