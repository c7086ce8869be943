"""close: a final state both participants signed concludes the channel at once.

`close` takes only the fields a final state can vary (`FinalState`): the contract rebuilds the signed
`LedgerState` with this channel's id, no locks and `is_final` set. A non-final state, a state with
locks or a state of another channel can no longer be expressed; signatures over one do not verify.
"""

import ape
import pytest
from eth_utils import keccak

from perun_vyper import MAX_AMOUNT, InvalidState, LedgerState, Lock, compact
from tests.support.checks import assert_settled as _assert_settled
from tests.support.checks import concluded_logs
from tests.support.constants import (
    FUNDING_MISMATCH,
    LEDGER_AMOUNT_TOO_LARGE,
    LEDGER_CONCLUDED,
    LEDGER_STALE,
    LEDGER_WRONG_SIGNER,
    UNKNOWN_CHANNEL,
    ZERO_HASH,
    E,
)


def _final(state: LedgerState, version: int) -> LedgerState:
    return LedgerState(**{**state.__dict__, "version": version, "is_final": True})


def _sigs(sign, state: LedgerState, alice, bob) -> tuple:
    """Compact signatures of both participants over `state`, whatever it is."""
    return compact(sign(state, alice)), compact(sign(state, bob))


def test_close__final_state__concludes_and_pays(ledger, open_channel, signed_final, alice, bob, stranger):
    params, state0 = open_channel()
    final = state0.pay(3 * 10**17, 0).pay(10**17, 1).finalized()
    before_a, before_b, before_ledger = alice.balance, bob.balance, ledger.balance
    receipt = ledger.close(params.as_tuple(), *signed_final(final), sender=stranger)
    events = concluded_logs(ledger, receipt)
    assert len(events) == 1
    assert events[0].contract_address == ledger.address
    assert events[0].channel == params.channel_id
    assert events[0].version == 3
    assert events[0].payout_a == 8 * 10**17
    assert events[0].payout_b == 12 * 10**17
    assert alice.balance - before_a == 8 * 10**17
    assert bob.balance - before_b == 12 * 10**17
    assert before_ledger - ledger.balance == 2 * E
    assert list(receipt.decode_logs(ledger.Registered)) == []
    assert list(receipt.decode_logs(ledger.Credited)) == []
    _assert_settled(ledger, params)


def test_close__final_tuple__is_version_balances_funding(make_params):
    params = make_params()
    final = LedgerState(params.channel_id, 7, 3, 5, 6, 2, is_final=True)
    assert final.final_tuple() == (7, 3, 5, 6, 2)


def test_close__final_initial_state__refunds(ledger, open_channel, signed_final, alice, bob, stranger):
    params, _ = open_channel(deposit_a=E, deposit_b=2 * E)
    final = LedgerState(params.channel_id, 0, E, 2 * E, E, 2 * E, is_final=True)
    before_a, before_b = alice.balance, bob.balance
    receipt = ledger.close(params.as_tuple(), *signed_final(final), sender=stranger)
    assert [(e.version, e.payout_a, e.payout_b) for e in concluded_logs(ledger, receipt)] == [(0, E, 2 * E)]
    assert (alice.balance - before_a, bob.balance - before_b) == (E, 2 * E)
    _assert_settled(ledger, params)


@pytest.mark.parametrize("side", [0, 1])
def test_close__participant_sender__pays_minus_fee(ledger, open_channel, signed_final, alice, bob, side):
    params, state0 = open_channel()
    final = state0.pay(4 * 10**17, 1).finalized()
    before_a, before_b = alice.balance, bob.balance
    receipt = ledger.close(params.as_tuple(), *signed_final(final), sender=(alice, bob)[side])
    expected = [14 * 10**17, 6 * 10**17]
    expected[side] -= receipt.total_fees_paid
    assert [alice.balance - before_a, bob.balance - before_b] == expected


def test_close__late_top_up__returns_extra_deposit(ledger, open_channel, signed_final, alice, bob, stranger, deposit):
    params, state0 = open_channel()
    final = state0.pay(10**17, 0).finalized()
    deposit(params, 1, 7, bob)  # after both signed
    before_a, before_b = alice.balance, bob.balance
    receipt = ledger.close(params.as_tuple(), *signed_final(final), sender=stranger)
    assert [(e.payout_a, e.payout_b) for e in concluded_logs(ledger, receipt)] == [(9 * 10**17, 11 * 10**17 + 7)]
    assert (alice.balance - before_a, bob.balance - before_b) == (9 * 10**17, 11 * 10**17 + 7)
    _assert_settled(ledger, params)


def test_close__erc20_channel__pays_tokens(ledger, open_channel, signed_final, alice, bob, stranger, token):
    params, state0 = open_channel(deposit_a=500, deposit_b=300, asset=token)
    final = state0.pay(200, 0).finalized()
    before_a, before_b, before_ledger = token.balanceOf(alice), token.balanceOf(bob), token.balanceOf(ledger)
    receipt = ledger.close(params.as_tuple(), *signed_final(final), sender=stranger)
    assert [(e.payout_a, e.payout_b) for e in concluded_logs(ledger, receipt)] == [(300, 500)]
    assert (token.balanceOf(alice) - before_a, token.balanceOf(bob) - before_b) == (300, 500)
    assert before_ledger - token.balanceOf(ledger) == 800
    _assert_settled(ledger, params)


# ---------------------------------------------------------------------------------------------------
# what can no longer be expressed: signatures over a non-final state, a state with locks, or a state of
# another channel do not verify against the final, lock-free state of this channel the contract rebuilds


def test_close__non_final_state__final_tuple_raises_invalid_state(make_params):
    params = make_params()
    state0 = LedgerState.initial(params.channel_id, E, E)
    for state in (state0, state0.pay(10**17, 0)):
        with pytest.raises(InvalidState, match="only a final state"):
            state.final_tuple()


def test_close__state_with_locks__final_tuple_raises_invalid_state(make_params):
    params = make_params()
    lock = Lock(keccak(b"a virtual channel"), 10**17, 10**17)
    locked = LedgerState(params.channel_id, 3, 9 * 10**17, 9 * 10**17, E, E, (lock,), is_final=True)
    with pytest.raises(InvalidState, match="no locks"):
        locked.final_tuple()


def test_close__non_final_state__reverts_wrong_signer(ledger, open_channel, sign, alice, bob, stranger):
    params, state0 = open_channel()
    for state in (state0, state0.pay(10**17, 0)):
        # The same fields the state carries, passed as a final state: the signed state had is_final false.
        fields = (state.version, state.balance_a, state.balance_b, state.funding_a, state.funding_b)
        with ape.reverts(LEDGER_WRONG_SIGNER):
            ledger.close(params.as_tuple(), fields, *_sigs(sign, state, alice, bob), sender=stranger)
    assert tuple(ledger.holdings(params.channel_id)) == (E, E, False)
    assert tuple(ledger.dispute(params.channel_id)) == (0, 0, ZERO_HASH)


def test_close__state_with_locks__reverts_wrong_signer(ledger, open_channel, sign, alice, bob, stranger):
    # A final state still holding a lock: folding the lock back into the balances conserves funds, but the
    # signatures cover the lock, and the contract rebuilds a state without it.
    params, _ = open_channel()
    lock = Lock(keccak(b"a virtual channel"), 10**17, 2 * 10**17)
    locked = LedgerState(params.channel_id, 3, 9 * 10**17, 8 * 10**17, E, E, (lock,), is_final=True)
    sigs = _sigs(sign, locked, alice, bob)
    folded = (3, E, E, E, E)
    with ape.reverts(LEDGER_WRONG_SIGNER):
        ledger.close(params.as_tuple(), folded, *sigs, sender=stranger)
    # Passed as signed (balances without the lock), the fields do not conserve the funding.
    as_signed = (3, 9 * 10**17, 8 * 10**17, E, E)
    with ape.reverts(FUNDING_MISMATCH):
        ledger.close(params.as_tuple(), as_signed, *sigs, sender=stranger)
    assert tuple(ledger.holdings(params.channel_id)) == (E, E, False)


def test_close__state_of_other_channel__reverts(ledger, open_channel, signed_final, stranger):
    # Same participants, same amounts: only the channel id the signatures cover differs.
    params, _ = open_channel()
    other, other_state0 = open_channel()
    other_final = other_state0.pay(10**17, 1).finalized()
    with ape.reverts(LEDGER_WRONG_SIGNER):
        ledger.close(params.as_tuple(), *signed_final(other_final), sender=stranger)
    assert tuple(ledger.holdings(params.channel_id)) == (E, E, False)
    # The signatures are genuine: they close the channel they were made for.
    receipt = ledger.close(other.as_tuple(), *signed_final(other_final), sender=stranger)
    assert [(e.channel, e.payout_a, e.payout_b) for e in concluded_logs(ledger, receipt)] == [
        (other.channel_id, 11 * 10**17, 9 * 10**17)
    ]
    assert tuple(ledger.holdings(params.channel_id)) == (E, E, False)


@pytest.mark.parametrize("field", range(5))
def test_close__field_changed_after_signing__reverts_wrong_signer(
    ledger, open_channel, signed_final, alice, bob, stranger, field
):
    params, state0 = open_channel()
    final = state0.pay(10**17, 0).finalized()  # version 2, A 0.9, B 1.1, funding 1 / 1
    fields, sig_a, sig_b = signed_final(final)
    # Each change keeps the amounts conserved, so only the signature check can refuse it.
    tampered = [
        (3, *fields[1:]),
        (fields[0], fields[1] + 10**17, fields[2] - 10**17, *fields[3:]),
        (fields[0], fields[1] - 10**17, fields[2] + 10**17, *fields[3:]),
        (*fields[:3], fields[3] + 1, fields[4] - 1),
        (fields[0], fields[1] + 1, fields[2], fields[3], fields[4] + 1),
    ][field]
    before_a, before_b = alice.balance, bob.balance
    with ape.reverts(LEDGER_WRONG_SIGNER):
        ledger.close(params.as_tuple(), tampered, sig_a, sig_b, sender=stranger)
    assert tuple(ledger.holdings(params.channel_id)) == (E, E, False)
    assert (alice.balance, bob.balance) == (before_a, before_b)


# ---------------------------------------------------------------------------------------------------
# amounts: every amount at most MAX_AMOUNT, balances sum to the funding (checked before the signatures)


@pytest.mark.parametrize("field", range(1, 5))
def test_close__amount_above_max__reverts_amount_too_large(ledger, open_channel, signed_final, stranger, field):
    params, state0 = open_channel()
    fields, sig_a, sig_b = signed_final(state0.finalized())
    tampered = list(fields)
    tampered[field] = MAX_AMOUNT + 1
    with ape.reverts(LEDGER_AMOUNT_TOO_LARGE):
        ledger.close(params.as_tuple(), tuple(tampered), sig_a, sig_b, sender=stranger)
    assert tuple(ledger.holdings(params.channel_id)) == (E, E, False)


def test_close__max_amounts_conserving__reaches_signature_check(ledger, open_channel, signed_final, stranger):
    # MAX_AMOUNT itself passes the amount checks (the refusal is the signature's, not the bound's).
    params, state0 = open_channel()
    _, sig_a, sig_b = signed_final(state0.finalized())
    with ape.reverts(LEDGER_WRONG_SIGNER):
        ledger.close(
            params.as_tuple(), (1, MAX_AMOUNT, MAX_AMOUNT, MAX_AMOUNT, MAX_AMOUNT), sig_a, sig_b, sender=stranger
        )


@pytest.mark.parametrize(
    "fields",
    [
        (1, E + 1, E, E, E),  # one wei created
        (1, E - 1, E, E, E),  # one wei lost
        (1, 2 * E, 2 * E, E, E),
        (1, 0, 0, E, 0),
    ],
    ids=["created", "lost", "doubled", "all_gone"],
)
def test_close__balances_not_conserved__reverts(ledger, open_channel, signed_final, alice, bob, stranger, fields):
    params, state0 = open_channel()
    _, sig_a, sig_b = signed_final(state0.finalized())
    before_a, before_b, before_ledger = alice.balance, bob.balance, ledger.balance
    with ape.reverts(FUNDING_MISMATCH):
        ledger.close(params.as_tuple(), fields, sig_a, sig_b, sender=stranger)
    assert tuple(ledger.holdings(params.channel_id)) == (E, E, False)
    assert (alice.balance, bob.balance, ledger.balance) == (before_a, before_b, before_ledger)


def test_close__unknown_channel__reverts(ledger, make_params, signed_final, stranger):
    params = make_params()
    final = LedgerState(params.channel_id, 1, 1, 1, 1, 1, is_final=True)
    with ape.reverts(UNKNOWN_CHANNEL):
        ledger.close(params.as_tuple(), *signed_final(final), sender=stranger)
    assert tuple(ledger.holdings(params.channel_id)) == (0, 0, False)


# ---------------------------------------------------------------------------------------------------
# during and after a dispute


def test_close__during_dispute_with_newer_final__concludes_and_clears_dispute(
    ledger, open_channel, signed, signed_final, alice, bob, stranger, watcher
):
    params, state0 = open_channel()
    state1 = state0.pay(10**17, 0)
    ledger.register(params.as_tuple(), *signed(state1), sender=stranger)
    assert ledger.dispute(params.channel_id)[0] == 1
    final = state1.pay(10**17, 0).finalized()  # version 3
    before_a, before_b = alice.balance, bob.balance
    receipt = ledger.close(params.as_tuple(), *signed_final(final), sender=watcher)
    assert [(e.channel, e.version, e.payout_a, e.payout_b) for e in concluded_logs(ledger, receipt)] == [
        (params.channel_id, 3, 8 * 10**17, 12 * 10**17)
    ]
    assert (alice.balance - before_a, bob.balance - before_b) == (8 * 10**17, 12 * 10**17)
    _assert_settled(ledger, params)


def test_close__during_dispute_of_state_with_locks__concludes_and_clears_locks_hash(
    ledger, open_channel, signed, signed_final, alice, bob, stranger, watcher
):
    # A funded state with a lock is registered (the view reports its locks hash); the participants then
    # settle off-chain and close with a newer final state without the lock.
    params, _ = open_channel()
    lock = Lock(keccak(b"a virtual channel"), 10**17, 10**17)
    locked = LedgerState(params.channel_id, 1, 9 * 10**17, 9 * 10**17, E, E, (lock,))
    first = ledger.register(params.as_tuple(), *signed(locked), sender=stranger)
    deadline = first.timestamp + params.challenge_duration
    assert tuple(ledger.dispute(params.channel_id)) == (1, deadline, locked.locks_hash())
    assert locked.locks_hash() != ZERO_HASH
    final = LedgerState(params.channel_id, 2, 13 * 10**17, 7 * 10**17, E, E, is_final=True)
    before_a, before_b = alice.balance, bob.balance
    receipt = ledger.close(params.as_tuple(), *signed_final(final), sender=watcher)
    assert [(e.version, e.payout_a, e.payout_b) for e in concluded_logs(ledger, receipt)] == [
        (2, 13 * 10**17, 7 * 10**17)
    ]
    assert (alice.balance - before_a, bob.balance - before_b) == (13 * 10**17, 7 * 10**17)
    _assert_settled(ledger, params)
    with ape.reverts(LEDGER_CONCLUDED):
        ledger.conclude(params.as_tuple(), locked.locks_tuple(), [], sender=stranger)


def test_close__final_version_just_above_registered__concludes(ledger, open_channel, signed, signed_final, stranger):
    params, state0 = open_channel()
    state2 = state0.pay(10**17, 0).pay(10**17, 0)
    ledger.register(params.as_tuple(), *signed(state2), sender=stranger)
    receipt = ledger.close(params.as_tuple(), *signed_final(_final(state2, 3)), sender=stranger)
    assert [e.version for e in concluded_logs(ledger, receipt)] == [3]
    _assert_settled(ledger, params)


@pytest.mark.parametrize("version", [0, 1, 2])
def test_close__final_version_not_above_registered__reverts_stale(
    ledger, open_channel, signed, signed_final, alice, bob, stranger, version
):
    params, state0 = open_channel()
    state2 = state0.pay(10**17, 0).pay(10**17, 0)
    first = ledger.register(params.as_tuple(), *signed(state2), sender=stranger)
    before_a, before_b, before_ledger = alice.balance, bob.balance, ledger.balance
    with ape.reverts(LEDGER_STALE):
        ledger.close(params.as_tuple(), *signed_final(_final(state2, version)), sender=stranger)
    deadline = first.timestamp + params.challenge_duration
    # The dispute stands as registered (a lock-free state: no locks hash).
    assert tuple(ledger.dispute(params.channel_id)) == (2, deadline, ZERO_HASH)
    assert tuple(ledger.holdings(params.channel_id)) == (E, E, False)
    assert (alice.balance, bob.balance, ledger.balance) == (before_a, before_b, before_ledger)


def test_close__stale_version_with_bad_signatures__reverts_stale_first(
    ledger, open_channel, signed, signed_final, stranger
):
    # The version is checked against the registered one before the signatures are.
    params, state0 = open_channel()
    state2 = state0.pay(10**17, 0).pay(10**17, 0)
    ledger.register(params.as_tuple(), *signed(state2), sender=stranger)
    fields, sig_a, sig_b = signed_final(_final(state2, 2))
    with ape.reverts(LEDGER_STALE):
        ledger.close(params.as_tuple(), fields, sig_b, sig_a, sender=stranger)
    assert ledger.dispute(params.channel_id)[0] == 2


def test_close__after_close__reverts_channel_concluded(ledger, open_channel, signed_final, alice, bob, stranger):
    params, state0 = open_channel()
    final = state0.pay(10**17, 0).finalized()
    ledger.close(params.as_tuple(), *signed_final(final), sender=stranger)
    before_a, before_b, before_ledger = alice.balance, bob.balance, ledger.balance
    with ape.reverts(LEDGER_CONCLUDED):
        ledger.close(params.as_tuple(), *signed_final(final), sender=stranger)
    with ape.reverts(LEDGER_CONCLUDED):
        ledger.close(params.as_tuple(), *signed_final(_final(final, 5)), sender=stranger)
    assert (alice.balance, bob.balance, ledger.balance) == (before_a, before_b, before_ledger)
    _assert_settled(ledger, params)


def test_close__after_conclude__reverts_channel_concluded(ledger, open_channel, signed, signed_final, stranger, chain):
    params, state0 = open_channel()
    state1 = state0.pay(10**17, 0)
    first = ledger.register(params.as_tuple(), *signed(state1), sender=stranger)
    chain.pending_timestamp = first.timestamp + params.challenge_duration
    ledger.conclude(params.as_tuple(), sender=stranger)
    with ape.reverts(LEDGER_CONCLUDED):
        ledger.close(params.as_tuple(), *signed_final(state1.finalized()), sender=stranger)
    _assert_settled(ledger, params)


@pytest.mark.parametrize("offset", [0, 10**5])
def test_close__after_dispute_deadline_not_concluded__concludes(
    ledger, open_channel, signed, signed_final, alice, bob, stranger, chain, offset
):
    params, state0 = open_channel()
    state1 = state0.pay(10**17, 0)
    first = ledger.register(params.as_tuple(), *signed(state1), sender=stranger)
    deadline = first.timestamp + params.challenge_duration
    final = state1.pay(2 * 10**17, 1).finalized()
    chain.pending_timestamp = deadline + offset
    before_a, before_b = alice.balance, bob.balance
    receipt = ledger.close(params.as_tuple(), *signed_final(final), sender=stranger)
    assert receipt.timestamp == deadline + offset
    assert [(e.version, e.payout_a, e.payout_b) for e in concluded_logs(ledger, receipt)] == [
        (3, 11 * 10**17, 9 * 10**17)
    ]
    assert (alice.balance - before_a, bob.balance - before_b) == (11 * 10**17, 9 * 10**17)
    _assert_settled(ledger, params)
    with ape.reverts(LEDGER_CONCLUDED):
        ledger.conclude(params.as_tuple(), sender=stranger)
