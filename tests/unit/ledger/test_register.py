"""register: starting and updating a dispute with non-final states both participants signed.

The outcome is settled at registration: the ``dispute`` view shows (version, deadline, locks hash) and
``conclude`` pays side A's stored base payout, side B the rest of the (frozen) deposits.
"""

import time

import ape
import pytest

from perun_vyper import (
    ETH,
    MAX_AMOUNT,
    MAX_CHALLENGE_DURATION,
    MIN_CHALLENGE_DURATION,
    LedgerState,
    Lock,
    compact,
    sign_digest,
)
from tests.support.checks import assert_concluded, assert_settled
from tests.support.constants import (
    CALL_CLOSE,
    FUNDING_MISMATCH,
    LEDGER_AMOUNT_TOO_LARGE,
    LEDGER_CONCLUDED,
    LEDGER_DISPUTED,
    LEDGER_OTHER_CHANNEL,
    LEDGER_PERIOD_OVER,
    LEDGER_RANGE,
    LEDGER_STALE,
    LEDGER_WRONG_SIGNER,
    LOCKS_NOT_REGISTERED,
    NO_SIG,
    UNKNOWN_CHANNEL,
    ZERO_HASH,
    E,
)
from tests.support.reverts import assert_view_reverts


def _registered(ledger, receipt) -> list:
    return list(receipt.decode_logs(ledger.Registered))


@pytest.fixture
def signed_raw(ledger, ledger_hashing, alice, bob):
    """``signed_raw(state_tuple)``: the tuple with Alice's and Bob's compact signatures, for states
    LedgerState would refuse to build (the digest comes from the hashing harness in the ledger's domain)."""
    separator = ledger.DOMAIN_SEPARATOR()

    def _signed(state_tuple) -> tuple:
        digest = ledger_hashing.state_digest(state_tuple, separator)
        return state_tuple, *(compact(sign_digest(who.private_key, digest)) for who in (alice, bob))

    return _signed


def _register_at(ledger, chain, params, signed_args, sender, timestamp=None):
    """Register in a block whose timestamp is exactly ``timestamp`` (if given)."""
    if timestamp is not None:
        chain.pending_timestamp = timestamp
    receipt = ledger.register(params.as_tuple(), *signed_args, sender=sender)
    if timestamp is not None:
        assert receipt.timestamp == timestamp
    return receipt


def _conclude_after_deadline(ledger, chain, params, sender):
    """Conclude at the dispute's deadline, without locks (the registered state has none, or is unfunded)."""
    chain.pending_timestamp = int(ledger.dispute(params.channel_id)[1])
    return ledger.conclude(params.as_tuple(), [], [], sender=sender)


def _assert_pays(ledger, chain, params, alice, bob, sender, version, payout_a, payout_b):
    """Conclude (no locks) and check the Concluded event, both participants' and the ledger's balances."""
    before = (alice.balance, bob.balance, ledger.balance)
    receipt = _conclude_after_deadline(ledger, chain, params, sender)
    assert_concluded(ledger, receipt, params, version, payout_a, payout_b)
    assert (alice.balance - before[0], bob.balance - before[1]) == (payout_a, payout_b)
    assert before[2] - ledger.balance == payout_a + payout_b
    assert_settled(ledger, params)


def _reverted_tx_fee(chain, head_before: int, sender) -> int:
    """The fee ``sender`` paid for the one transaction of block ``head_before + 1`` (a reverted
    transaction has no Ape receipt; polled, as Anvil may answer before storing the block under load)."""
    web3 = chain.provider.web3
    for _ in range(100):
        if web3.eth.block_number > head_before:
            break
        time.sleep(0.05)
    (tx_hash,) = web3.eth.get_block(head_before + 1)["transactions"]
    receipt = web3.eth.get_transaction_receipt(tx_hash)
    assert (receipt["from"], receipt["status"]) == (sender.address, 0)
    return receipt["gasUsed"] * receipt["effectiveGasPrice"]


# --- starting and replacing a dispute ----------------------------------------------------------------


def test_register__valid_state__emits_registered_with_deadline(
    ledger, open_channel, signed, alice, bob, stranger, watcher, chain
):
    params, state0 = open_channel(challenge_duration=7200)
    state = state0.pay(3 * 10**17, 0)
    receipt = ledger.register(params.as_tuple(), *signed(state), sender=stranger)
    events = _registered(ledger, receipt)
    assert len(events) == 1
    assert events[0].contract_address == ledger.address
    assert events[0].channel == params.channel_id
    assert events[0].version == 1
    assert events[0].deadline == receipt.timestamp + 7200
    # A lock-free state: no locks hash; the holdings stay as deposited until conclusion.
    assert tuple(ledger.dispute(params.channel_id)) == (1, receipt.timestamp + 7200, ZERO_HASH)
    assert tuple(ledger.holdings(params.channel_id)) == (E, E, False)
    # The outcome settled at registration is what conclude pays.
    _assert_pays(ledger, chain, params, alice, bob, watcher, 1, 7 * 10**17, 13 * 10**17)


def test_register__no_dispute__dispute_view_is_empty(ledger, open_channel):
    params, _ = open_channel()
    assert tuple(ledger.dispute(params.channel_id)) == (0, 0, ZERO_HASH)


def test_register__initial_state_version_zero__registers(ledger, open_channel, signed, alice, bob, stranger, chain):
    params, state0 = open_channel()
    receipt = ledger.register(params.as_tuple(), *signed(state0), sender=stranger)
    deadline = receipt.timestamp + params.challenge_duration
    assert [(e.version, e.deadline) for e in _registered(ledger, receipt)] == [(0, deadline)]
    assert tuple(ledger.dispute(params.channel_id)) == (0, deadline, ZERO_HASH)
    _assert_pays(ledger, chain, params, alice, bob, stranger, 0, E, E)


@pytest.mark.parametrize("sender_name", ["stranger", "watcher", "ingrid", "alice", "bob"])
def test_register__any_sender__registers(ledger, open_channel, signed, request, sender_name):
    params, state0 = open_channel()
    state = state0.pay(1, 1)
    receipt = ledger.register(params.as_tuple(), *signed(state), sender=request.getfixturevalue(sender_name))
    assert [(e.channel, e.version) for e in _registered(ledger, receipt)] == [(params.channel_id, 1)]
    assert tuple(ledger.dispute(params.channel_id)) == (1, receipt.timestamp + params.challenge_duration, ZERO_HASH)


def test_register__higher_version_during_period__replaces_without_extending_deadline(
    ledger, open_channel, signed, alice, bob, stranger, watcher, chain
):
    params, state0 = open_channel()
    state1 = state0.pay(10**17, 0)
    state3 = state1.pay(10**17, 0).pay(5, 1)
    first = ledger.register(params.as_tuple(), *signed(state1), sender=stranger)
    deadline = first.timestamp + params.challenge_duration
    second = _register_at(ledger, chain, params, signed(state3), watcher, first.timestamp + 1000)
    events = _registered(ledger, second)
    assert [(e.channel, e.version, e.deadline) for e in events] == [(params.channel_id, 3, deadline)]
    assert tuple(ledger.dispute(params.channel_id)) == (3, deadline, ZERO_HASH)
    # The replacing state's outcome is the one paid, not the first one's.
    _assert_pays(ledger, chain, params, alice, bob, stranger, 3, 8 * 10**17 + 5, 12 * 10**17 - 5)


# --- the same version again --------------------------------------------------------------------------


def test_register__same_state_again__is_noop(ledger, open_channel, signed, alice, bob, stranger, watcher, chain):
    params, state0 = open_channel()
    state = state0.pay(10**17, 0)
    first = ledger.register(params.as_tuple(), *signed(state), sender=stranger)
    before = tuple(ledger.dispute(params.channel_id))
    again = _register_at(ledger, chain, params, signed(state), watcher, first.timestamp + 100)
    assert not again.failed
    assert _registered(ledger, again) == []
    assert len(again.logs) == 0
    assert (
        tuple(ledger.dispute(params.channel_id))
        == before
        == (1, first.timestamp + params.challenge_duration, ZERO_HASH)
    )
    assert tuple(ledger.holdings(params.channel_id)) == (E, E, False)
    _assert_pays(ledger, chain, params, alice, bob, stranger, 1, 9 * 10**17, 11 * 10**17)


def test_register__same_locked_state_again__is_noop_and_keeps_locks_hash(
    ledger, open_channel, signed, stranger, watcher, chain
):
    params, _ = open_channel()
    state = LedgerState(params.channel_id, 1, 9 * 10**17, 8 * 10**17, E, E, (Lock(b"\x42" * 32, 10**17, 2 * 10**17),))
    first = ledger.register(params.as_tuple(), *signed(state), sender=stranger)
    expected = (1, first.timestamp + params.challenge_duration, state.locks_hash())
    assert tuple(ledger.dispute(params.channel_id)) == expected
    again = _register_at(ledger, chain, params, signed(state), watcher, first.timestamp + 100)
    assert len(again.logs) == 0
    assert tuple(ledger.dispute(params.channel_id)) == expected


def test_register__same_state_again_without_signatures__reverts_invalid_signature(
    ledger, open_channel, signed, alice, bob, stranger
):
    # Only the outcome is stored, not the state: the same version is checked for its signatures like any
    # other before it can be a no-op.
    params, state0 = open_channel()
    state = state0.pay(10**17, 0)
    ledger.register(params.as_tuple(), *signed(state), sender=stranger)
    before = tuple(ledger.dispute(params.channel_id))
    with ape.reverts("ledger: invalid signature"):
        ledger.register(params.as_tuple(), state.as_tuple(), NO_SIG, NO_SIG, sender=stranger)
    with ape.reverts(LEDGER_WRONG_SIGNER):
        ledger.register(params.as_tuple(), *signed(state, alice, alice), sender=stranger)
    assert tuple(ledger.dispute(params.channel_id)) == before


@pytest.mark.parametrize(
    "case",
    [
        "other_balances",  # a different payout
        "same_payout_other_locks",  # same payout and flags, another locks hash
        "same_payout_unfunded",  # same payout, but the funded flag differs
    ],
)
def test_register__same_version_different_content__reverts_stale(
    ledger, open_channel, signed, alice, bob, stranger, chain, case
):
    # Both participants signed two different states with the same version (never done honestly): the
    # first registered one stays.
    params, state0 = open_channel()
    lock = Lock(b"\x42" * 32, 10**17, 10**17)
    if case == "other_balances":
        state_a, state_b = state0.pay(10**17, 0), state0.pay(2 * 10**17, 0)
    elif case == "same_payout_other_locks":
        state_a = LedgerState(params.channel_id, 1, 8 * 10**17, 10**18, E, E, (lock,))
        state_b = LedgerState(params.channel_id, 1, 8 * 10**17, 10**18, E, E, (Lock(b"\x43" * 32, 10**17, 10**17),))
    else:
        # A: funded, side A's payout 1 + 1 - 1. B accounts for 2 ETH from side A, which deposited 1: not
        # funded, so side A's payout is its deposit, 1 ETH as well.
        state_a = LedgerState(params.channel_id, 1, E, E, E, E)
        state_b = LedgerState(params.channel_id, 1, E, 2 * E, 2 * E, E)
    assert state_a.version == state_b.version
    assert state_a != state_b
    receipt = ledger.register(params.as_tuple(), *signed(state_a), sender=stranger)
    expected = tuple(ledger.dispute(params.channel_id))
    assert expected == (
        state_a.version,
        receipt.timestamp + params.challenge_duration,
        state_a.locks_hash() if state_a.locks else ZERO_HASH,
    )
    with ape.reverts(LEDGER_STALE):
        ledger.register(params.as_tuple(), *signed(state_b), sender=stranger)
    assert tuple(ledger.dispute(params.channel_id)) == expected
    if not state_a.locks:
        payout_a = state_a.balance_a
        _assert_pays(ledger, chain, params, alice, bob, stranger, state_a.version, payout_a, 2 * E - payout_a)


@pytest.mark.parametrize("case", ["other_funding", "both_unfunded"])
def test_register__same_version_other_state_same_outcome__is_noop(
    ledger, open_channel, signed, alice, bob, stranger, chain, case
):
    # The outcome (side A's payout, funded, locks hash) is all that is stored: another state of the same
    # version that settles exactly the same outcome changes nothing.
    if case == "other_funding":
        # Deposits 1 / 1. A: 0.9 / 1.1 of 1 / 1. B: 0.4 / 0.6 of 0.5 / 0.5 (the rest an unaccounted
        # top-up): side A's payout 0.4 + 1 - 0.5 = 0.9 either way.
        params, _ = open_channel()
        state_a = LedgerState(params.channel_id, 1, 9 * 10**17, 11 * 10**17, E, E)
        state_b = LedgerState(params.channel_id, 1, 4 * 10**17, 6 * 10**17, E // 2, E // 2)
        payouts = (9 * 10**17, 11 * 10**17)
    else:
        # Bob never deposited: whatever the balances, each side gets its deposit back.
        params, _ = open_channel(deposit_a=E, deposit_b=0)
        state_a = LedgerState(params.channel_id, 1, 5 * 10**17, 15 * 10**17, E, E)
        state_b = LedgerState(params.channel_id, 1, 15 * 10**17, 5 * 10**17, E, E)
        payouts = (E, 0)
    first = ledger.register(params.as_tuple(), *signed(state_a), sender=stranger)
    expected = (1, first.timestamp + params.challenge_duration, ZERO_HASH)
    again = ledger.register(params.as_tuple(), *signed(state_b), sender=stranger)
    assert len(again.logs) == 0
    assert tuple(ledger.dispute(params.channel_id)) == expected
    _assert_pays(ledger, chain, params, alice, bob, stranger, 1, *payouts)


# --- older versions and the deadline -----------------------------------------------------------------


def test_register__lower_version__reverts_stale(ledger, open_channel, signed, stranger):
    params, state0 = open_channel()
    state1 = state0.pay(10**17, 0)
    state2 = state1.pay(10**17, 0)
    receipt = ledger.register(params.as_tuple(), *signed(state2), sender=stranger)
    for older in (state1, state0):
        with ape.reverts(LEDGER_STALE):
            ledger.register(params.as_tuple(), *signed(older), sender=stranger)
    assert tuple(ledger.dispute(params.channel_id)) == (2, receipt.timestamp + params.challenge_duration, ZERO_HASH)


def test_register__lower_version_without_signatures__reverts_stale(ledger, open_channel, signed, stranger):
    # The version is checked before the signatures: a stale state is refused as stale, signed or not.
    params, state0 = open_channel()
    state2 = state0.pay(10**17, 0).pay(10**17, 0)
    ledger.register(params.as_tuple(), *signed(state2), sender=stranger)
    before = tuple(ledger.dispute(params.channel_id))
    with ape.reverts(LEDGER_STALE):
        ledger.register(params.as_tuple(), state0.as_tuple(), NO_SIG, NO_SIG, sender=stranger)
    assert tuple(ledger.dispute(params.channel_id)) == before


@pytest.mark.parametrize("offset", [0, 1, 10**6])
def test_register__at_or_after_deadline__reverts_period_over(ledger, open_channel, signed, stranger, chain, offset):
    params, state0 = open_channel()
    state1 = state0.pay(10**17, 0)
    first = ledger.register(params.as_tuple(), *signed(state1), sender=stranger)
    deadline = first.timestamp + params.challenge_duration
    chain.pending_timestamp = deadline + offset
    with ape.reverts(LEDGER_PERIOD_OVER):
        ledger.register(params.as_tuple(), *signed(state1.pay(1, 0)), sender=stranger)
    assert chain.blocks.head.timestamp == deadline + offset  # the reverting tx ran at that time
    assert tuple(ledger.dispute(params.channel_id)) == (1, deadline, ZERO_HASH)


def test_register__same_state_at_deadline__reverts_period_over(ledger, open_channel, signed, stranger, chain):
    # The "harmless no-op" of re-registering ends with the challenge period.
    params, state0 = open_channel()
    state1 = state0.pay(10**17, 0)
    first = ledger.register(params.as_tuple(), *signed(state1), sender=stranger)
    deadline = first.timestamp + params.challenge_duration
    chain.pending_timestamp = deadline
    with ape.reverts(LEDGER_PERIOD_OVER):
        ledger.register(params.as_tuple(), *signed(state1), sender=stranger)
    assert chain.blocks.head.timestamp == deadline


def test_register__one_second_before_deadline__replaces(ledger, open_channel, signed, stranger, chain):
    params, state0 = open_channel()
    state1 = state0.pay(10**17, 0)
    state2 = state1.pay(1, 0)
    first = ledger.register(params.as_tuple(), *signed(state1), sender=stranger)
    deadline = first.timestamp + params.challenge_duration
    receipt = _register_at(ledger, chain, params, signed(state2), stranger, deadline - 1)
    assert [(e.version, e.deadline) for e in _registered(ledger, receipt)] == [(2, deadline)]
    assert tuple(ledger.dispute(params.channel_id)) == (2, deadline, ZERO_HASH)


# --- final states, channel status --------------------------------------------------------------------


def test_register__final_state__reverts_call_close(ledger, open_channel, signed, stranger):
    params, state0 = open_channel()
    final = state0.pay(10**17, 0).finalized()
    with ape.reverts(CALL_CLOSE):
        ledger.register(params.as_tuple(), *signed(final), sender=stranger)


def test_register__final_state_during_dispute__reverts_call_close(ledger, open_channel, signed, stranger):
    params, state0 = open_channel()
    state1 = state0.pay(10**17, 0)
    ledger.register(params.as_tuple(), *signed(state1), sender=stranger)
    with ape.reverts(CALL_CLOSE):
        ledger.register(params.as_tuple(), *signed(state1.finalized()), sender=stranger)


def test_register__no_deposits__reverts_unknown_channel(ledger, make_params, signed, stranger):
    params = make_params()
    state = LedgerState.initial(params.channel_id, 10**18, 10**18)
    with ape.reverts(UNKNOWN_CHANNEL):
        ledger.register(params.as_tuple(), *signed(state), sender=stranger)


def test_register__after_close__reverts_channel_concluded(ledger, open_channel, signed, signed_final, stranger):
    params, state0 = open_channel()
    state1 = state0.pay(10**17, 0)
    ledger.close(params.as_tuple(), *signed_final(state1.finalized()), sender=stranger)
    with ape.reverts(LEDGER_CONCLUDED):
        ledger.register(params.as_tuple(), *signed(state1), sender=stranger)


def test_register__after_conclude__reverts_channel_concluded(ledger, open_channel, signed, stranger, chain):
    params, state0 = open_channel()
    state1 = state0.pay(10**17, 0)
    ledger.register(params.as_tuple(), *signed(state1), sender=stranger)
    _conclude_after_deadline(ledger, chain, params, stranger)
    for state in (state1.pay(1, 0), state1):
        with ape.reverts(LEDGER_CONCLUDED):
            ledger.register(params.as_tuple(), *signed(state), sender=stranger)
    assert_settled(ledger, params)


def test_register__state_of_other_channel__reverts(ledger, open_channel, signed, stranger):
    params, _ = open_channel()
    _other, other_state0 = open_channel()
    with ape.reverts(LEDGER_OTHER_CHANNEL):
        ledger.register(params.as_tuple(), *signed(other_state0.pay(1, 0)), sender=stranger)


# --- amounts -----------------------------------------------------------------------------------------


def test_register__balances_not_conserved__reverts(ledger, open_channel, signed_raw, stranger):
    params, _ = open_channel()
    for balance_a, balance_b in ((10**18, 10**18 + 1), (10**18, 10**18 - 1), (0, 0)):
        state = (params.channel_id, 1, balance_a, balance_b, 10**18, 10**18, [], False)
        with ape.reverts(FUNDING_MISMATCH):
            ledger.register(params.as_tuple(), *signed_raw(state), sender=stranger)


@pytest.mark.parametrize(
    "amounts",
    [
        (MAX_AMOUNT + 1, 0, MAX_AMOUNT + 1, 0),  # a balance above 2**120 - 1
        (0, MAX_AMOUNT + 1, 0, MAX_AMOUNT + 1),
        (MAX_AMOUNT, MAX_AMOUNT, 2 * MAX_AMOUNT, 0),  # balances fine, a funding above the bound
        (MAX_AMOUNT, MAX_AMOUNT, 0, 2 * MAX_AMOUNT),
        (2**256 - 1, 1, 0, 0),  # would overflow the conservation sum if unchecked
    ],
)
def test_register__amount_above_max__reverts_too_large(ledger, open_channel, signed_raw, stranger, amounts):
    params, _ = open_channel()
    state = (params.channel_id, 1, *amounts, [], False)
    with ape.reverts(LEDGER_AMOUNT_TOO_LARGE):
        ledger.register(params.as_tuple(), *signed_raw(state), sender=stranger)


def test_register__payout_of_twice_max_amount__stored_and_paid(
    ledger, make_params, deposit, signed, token, deployer, alice, bob, stranger, chain
):
    # Side A's base payout can reach both deposits (2 * MAX_AMOUNT, 121 bits): a state giving A all it
    # accounts for plus A's whole deposit it does not account for.
    params = make_params(asset=token)
    for who in (alice, bob):
        token.mint(who, MAX_AMOUNT, sender=deployer)
    deposit(params, 0, MAX_AMOUNT, alice)
    deposit(params, 1, MAX_AMOUNT, bob)
    state = LedgerState(params.channel_id, 1, MAX_AMOUNT, 0, 0, MAX_AMOUNT)
    ledger.register(params.as_tuple(), *signed(state), sender=stranger)
    before = (token.balanceOf(alice), token.balanceOf(bob), token.balanceOf(ledger))
    receipt = _conclude_after_deadline(ledger, chain, params, stranger)
    assert_concluded(ledger, receipt, params, 1, 2 * MAX_AMOUNT, 0)
    after = (token.balanceOf(alice), token.balanceOf(bob), token.balanceOf(ledger))
    assert (after[0] - before[0], after[1] - before[1], before[2] - after[2]) == (2 * MAX_AMOUNT, 0, 2 * MAX_AMOUNT)
    assert_settled(ledger, params)


# --- locks -------------------------------------------------------------------------------------------


def test_register__state_with_lock__registers(ledger, open_channel, signed, stranger, chain):
    params, _ = open_channel()
    lock = Lock(b"\x42" * 32, 10**17, 10**17)
    state = LedgerState(params.channel_id, 1, 9 * 10**17, 9 * 10**17, 10**18, 10**18, (lock,))
    tx = ledger.register(params.as_tuple(), *signed(state), sender=stranger)
    # A funded state with locks: the view shows the hash of its Lock[], which conclude must be given.
    assert state.locks_hash() not in (ZERO_HASH, state.struct_hash())
    assert tuple(ledger.dispute(params.channel_id)) == (1, tx.timestamp + params.challenge_duration, state.locks_hash())
    assert [e.version for e in tx.decode_logs(ledger.Registered)] == [1]
    # Conclude needs exactly these locks: the empty list is refused.
    chain.pending_timestamp = tx.timestamp + params.challenge_duration
    with ape.reverts(LOCKS_NOT_REGISTERED):
        ledger.conclude(params.as_tuple(), [], [], sender=stranger)
    assert tuple(ledger.holdings(params.channel_id)) == (E, E, False)


def test_register__lock_free_state_after_locked_state__clears_locks_hash(
    ledger, open_channel, signed, alice, bob, stranger, watcher, chain
):
    params, _ = open_channel()
    lock = Lock(b"\x42" * 32, 10**17, 2 * 10**17)
    locked = LedgerState(params.channel_id, 1, 9 * 10**17, 8 * 10**17, E, E, (lock,))
    lock_free = LedgerState(params.channel_id, 2, 6 * 10**17, 14 * 10**17, E, E)
    first = ledger.register(params.as_tuple(), *signed(locked), sender=stranger)
    deadline = first.timestamp + params.challenge_duration
    assert tuple(ledger.dispute(params.channel_id)) == (1, deadline, locked.locks_hash())
    receipt = ledger.register(params.as_tuple(), *signed(lock_free), sender=watcher)
    assert [(e.version, e.deadline) for e in _registered(ledger, receipt)] == [(2, deadline)]
    assert tuple(ledger.dispute(params.channel_id)) == (2, deadline, ZERO_HASH)
    # Conclude takes no locks any more: the old ones are refused, the empty list pays the new state.
    chain.pending_timestamp = deadline
    with ape.reverts(LOCKS_NOT_REGISTERED):
        ledger.conclude(params.as_tuple(), locked.locks_tuple(), [], sender=stranger)
    _assert_pays(ledger, chain, params, alice, bob, stranger, 2, 6 * 10**17, 14 * 10**17)


def test_register__other_locks_after_locked_state__replaces_locks_hash(
    ledger, open_channel, signed, stranger, watcher, chain
):
    params, _ = open_channel()
    state1 = LedgerState(params.channel_id, 1, 9 * 10**17, 8 * 10**17, E, E, (Lock(b"\x42" * 32, 10**17, 2 * 10**17),))
    state2 = LedgerState(params.channel_id, 2, 9 * 10**17, 8 * 10**17, E, E, (Lock(b"\x43" * 32, 10**17, 2 * 10**17),))
    first = ledger.register(params.as_tuple(), *signed(state1), sender=stranger)
    deadline = first.timestamp + params.challenge_duration
    ledger.register(params.as_tuple(), *signed(state2), sender=watcher)
    assert tuple(ledger.dispute(params.channel_id)) == (2, deadline, state2.locks_hash())
    chain.pending_timestamp = deadline
    for locks in (state1.locks_tuple(), []):
        with ape.reverts(LOCKS_NOT_REGISTERED):
            ledger.conclude(params.as_tuple(), locks, [], sender=stranger)
    assert tuple(ledger.holdings(params.channel_id)) == (E, E, False)


def test_register__unfunded_state_with_locks__no_locks_hash_refunds_deposits(
    ledger, open_channel, signed, alice, bob, stranger, chain
):
    # Bob deposited half of what the state says he funded: the state is not funded, its locks move nothing
    # and are not stored; conclude takes no locks and returns each side its deposit.
    params, _ = open_channel(deposit_a=E, deposit_b=E // 2)
    lock = Lock(b"\x42" * 32, 10**17, 2 * 10**17)
    state = LedgerState(params.channel_id, 1, 9 * 10**17, 8 * 10**17, E, E, (lock,))
    receipt = ledger.register(params.as_tuple(), *signed(state), sender=stranger)
    deadline = receipt.timestamp + params.challenge_duration
    assert [(e.version, e.deadline) for e in _registered(ledger, receipt)] == [(1, deadline)]
    assert tuple(ledger.dispute(params.channel_id)) == (1, deadline, ZERO_HASH)
    chain.pending_timestamp = deadline
    with ape.reverts(LOCKS_NOT_REGISTERED):
        ledger.conclude(params.as_tuple(), state.locks_tuple(), [], sender=stranger)
    _assert_pays(ledger, chain, params, alice, bob, stranger, 1, E, E // 2)


def test_register__unfunded_state_after_locked_state__clears_locks_hash(
    ledger, open_channel, signed, alice, bob, stranger, chain
):
    # A newer state accounting for a top-up that never arrived is unfunded: it replaces the locked state
    # and its locks hash, and each side gets back its deposit.
    params, _ = open_channel()
    locked = LedgerState(params.channel_id, 1, 9 * 10**17, 8 * 10**17, E, E, (Lock(b"\x42" * 32, 10**17, 2 * 10**17),))
    unfunded = LedgerState(params.channel_id, 2, 19 * 10**17, 8 * 10**17, 2 * E, E, locked.locks)
    first = ledger.register(params.as_tuple(), *signed(locked), sender=stranger)
    deadline = first.timestamp + params.challenge_duration
    ledger.register(params.as_tuple(), *signed(unfunded), sender=stranger)
    assert tuple(ledger.dispute(params.channel_id)) == (2, deadline, ZERO_HASH)
    chain.pending_timestamp = deadline
    with ape.reverts(LOCKS_NOT_REGISTERED):
        ledger.conclude(params.as_tuple(), unfunded.locks_tuple(), [], sender=stranger)
    _assert_pays(ledger, chain, params, alice, bob, stranger, 2, E, E)


def test_register__duplicate_lock__reverts(ledger, open_channel, signed_raw, stranger):
    params, _ = open_channel()
    lock = (b"\x42" * 32, 10**17, 10**17)
    state = (params.channel_id, 1, 6 * 10**17, 10**18, 10**18, 10**18, [lock, (b"\x43" * 32, 0, 0), lock], False)
    with ape.reverts("ledger: duplicate lock"):
        ledger.register(params.as_tuple(), *signed_raw(state), sender=stranger)
    assert tuple(ledger.dispute(params.channel_id)) == (0, 0, ZERO_HASH)


def test_register__lock_amount_above_max__reverts(ledger, open_channel, signed_raw, stranger):
    params, _ = open_channel()
    state = (params.channel_id, 1, 0, 0, 10**18, 10**18, [(b"\x42" * 32, MAX_AMOUNT + 1, 0)], False)
    with ape.reverts(LEDGER_AMOUNT_TOO_LARGE):
        ledger.register(params.as_tuple(), *signed_raw(state), sender=stranger)


@pytest.mark.parametrize("amounts", [(MAX_AMOUNT, 0), (0, MAX_AMOUNT)], ids=["a_at_max", "b_at_max"])
def test_register__lock_amount_at_max__registers(ledger, open_channel, signed_raw, stranger, amounts):
    # The bound is inclusive: a lock of exactly MAX_AMOUNT is a valid (here unfunded) state.
    params, _ = open_channel()
    funding = (amounts[0], amounts[1])
    state = (params.channel_id, 1, 0, 0, *funding, [(b"\x42" * 32, *amounts)], False)
    receipt = ledger.register(params.as_tuple(), *signed_raw(state), sender=stranger)
    assert [e.version for e in receipt.decode_logs(ledger.Registered)] == [1]
    assert ledger.dispute(params.channel_id)[0] == 1


def test_register__locks_break_conservation__reverts(ledger, open_channel, signed_raw, stranger):
    params, _ = open_channel()
    state = (params.channel_id, 1, 10**18, 10**18, 10**18, 10**18, [(b"\x42" * 32, 1, 0)], False)
    with ape.reverts(FUNDING_MISMATCH):
        ledger.register(params.as_tuple(), *signed_raw(state), sender=stranger)


# --- deposits are frozen during a dispute ------------------------------------------------------------


@pytest.mark.parametrize("when", ["after_register", "after_refutation", "at_deadline"])
@pytest.mark.parametrize("depositor", ["alice", "bob", "stranger"])
def test_register__deposit_during_dispute__reverts_channel_disputed(
    ledger, open_channel, signed, stranger, chain, request, when, depositor
):
    params, state0 = open_channel()
    state1 = state0.pay(10**17, 0)
    first = ledger.register(params.as_tuple(), *signed(state1), sender=stranger)
    deadline = first.timestamp + params.challenge_duration
    if when == "after_refutation":
        ledger.register(params.as_tuple(), *signed(state1.pay(1, 1)), sender=stranger)
    elif when == "at_deadline":
        chain.pending_timestamp = deadline  # conclusion is open, but nobody concluded yet
    dispute = tuple(ledger.dispute(params.channel_id))
    sender = request.getfixturevalue(depositor)
    for side in (0, 1):
        sender_before, ledger_before, head = sender.balance, ledger.balance, chain.blocks.head.number
        with ape.reverts(LEDGER_DISPUTED):
            ledger.deposit(params.channel_id, side, value=10**17, sender=sender)
        assert sender.balance == sender_before - _reverted_tx_fee(chain, head, sender)  # only the fee is gone
        assert ledger.balance == ledger_before
    assert tuple(ledger.holdings(params.channel_id)) == (E, E, False)
    assert tuple(ledger.dispute(params.channel_id)) == dispute


@pytest.mark.parametrize("side", [0, 1])
def test_register__deposit_token_during_dispute__reverts_channel_disputed(
    ledger, open_channel, signed, token, alice, bob, stranger, side
):
    params, state0 = open_channel(deposit_a=10**6, deposit_b=2 * 10**6, asset=token)
    ledger.register(params.as_tuple(), *signed(state0.pay(10**5, 1)), sender=stranger)
    dispute = tuple(ledger.dispute(params.channel_id))
    owner = (alice, bob)[side]
    token.approve(ledger.address, 5 * 10**5, sender=owner)
    before = (token.balanceOf(owner), token.balanceOf(ledger))
    with ape.reverts(LEDGER_DISPUTED):
        ledger.deposit_token(params.as_tuple(), side, 5 * 10**5, sender=owner)
    assert (token.balanceOf(owner), token.balanceOf(ledger)) == before  # the pull was reverted with it
    assert token.allowance(owner, ledger.address) == 5 * 10**5
    assert tuple(ledger.holdings(params.channel_id)) == (10**6, 2 * 10**6, False)
    assert tuple(ledger.dispute(params.channel_id)) == dispute


def test_register__deposit_after_conclude__reverts_channel_concluded(
    ledger, open_channel, signed, alice, stranger, chain
):
    # Once concluded the channel says so, not "disputed": the dispute is cleared with the deposits.
    params, state0 = open_channel()
    ledger.register(params.as_tuple(), *signed(state0.pay(10**17, 0)), sender=stranger)
    _conclude_after_deadline(ledger, chain, params, stranger)
    ledger_before = ledger.balance
    with ape.reverts(LEDGER_CONCLUDED):
        ledger.deposit(params.channel_id, 0, value=10**17, sender=alice)
    assert ledger.balance == ledger_before
    assert_settled(ledger, params)


# --- parameters --------------------------------------------------------------------------------------


def _raw_params(alice, bob, **overrides) -> tuple:
    fields = {"a": str(alice.address), "b": str(bob.address), "asset": ETH, "duration": 3600, "nonce": 777}
    fields.update(overrides)
    return (fields["a"], fields["b"], fields["asset"], fields["duration"], fields["nonce"])


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"a": ETH}, "ledger: zero participant"),
        ({"b": ETH}, "ledger: zero participant"),
        ({"b": "alice"}, "ledger: same participant"),
        ({"duration": MIN_CHALLENGE_DURATION - 1}, LEDGER_RANGE),
        ({"duration": MAX_CHALLENGE_DURATION + 1}, LEDGER_RANGE),
        ({"duration": 0}, LEDGER_RANGE),
    ],
)
def test_register__invalid_params__reverts(ledger, ledger_hashing, alice, bob, stranger, sign, overrides, reason):
    if overrides.get("b") == "alice":
        overrides = {"b": str(alice.address)}
    params = _raw_params(alice, bob, **overrides)
    # A state for some channel id; the parameter check comes first, whatever the state.
    state = LedgerState.initial(b"\x01" * 32, 1, 1)
    with ape.reverts(reason):
        ledger.register(
            params, state.as_tuple(), compact(sign(state, alice)), compact(sign(state, bob)), sender=stranger
        )
    assert_view_reverts(ledger_hashing.channel_id, params, reason=reason)


@pytest.mark.parametrize("duration", [MIN_CHALLENGE_DURATION, MAX_CHALLENGE_DURATION])
def test_register__duration_at_bound__registers(ledger, open_channel, signed, stranger, duration):
    params, state0 = open_channel(challenge_duration=duration)
    receipt = ledger.register(params.as_tuple(), *signed(state0.pay(1, 0)), sender=stranger)
    deadline = receipt.timestamp + duration
    assert [(e.version, e.deadline) for e in _registered(ledger, receipt)] == [(1, deadline)]
    assert tuple(ledger.dispute(params.channel_id)) == (1, deadline, ZERO_HASH)
