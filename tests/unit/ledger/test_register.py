"""register: starting and updating a dispute with non-final states both participants signed."""

import ape
import pytest

from perun_vyper import ETH, MAX_AMOUNT, MAX_CHALLENGE_DURATION, MIN_CHALLENGE_DURATION, LedgerState, Lock
from perun_vyper.signing import sign_digest
from tests.view_reverts import assert_view_reverts

ZERO_HASH = b"\x00" * 32


def _registered(ledger, receipt) -> list:
    return list(receipt.decode_logs(ledger.Registered))


def _sign_raw(ledger, state_tuple, account) -> bytes:
    """A valid signature of a state tuple LedgerState would refuse to build (digest from the contract)."""
    return sign_digest(account.private_key, ledger.state_digest(state_tuple))


def _signed_raw(ledger, state_tuple, alice, bob) -> tuple:
    return state_tuple, _sign_raw(ledger, state_tuple, alice), _sign_raw(ledger, state_tuple, bob)


def _register_at(ledger, chain, params, signed_args, sender, timestamp=None):
    """Register in a block whose timestamp is exactly ``timestamp`` (if given)."""
    if timestamp is not None:
        chain.pending_timestamp = timestamp
    receipt = ledger.register(params.as_tuple(), *signed_args, sender=sender)
    if timestamp is not None:
        assert receipt.timestamp == timestamp
    return receipt


def test_register__valid_state__emits_registered_with_deadline(ledger, open_channel, signed, stranger):
    params, state0 = open_channel(challenge_duration=7200)
    state = state0.pay(3 * 10**17, 0)
    receipt = ledger.register(params.as_tuple(), *signed(state), sender=stranger)
    events = _registered(ledger, receipt)
    assert len(events) == 1
    assert events[0].contract_address == ledger.address
    assert events[0].channel == params.channel_id
    assert events[0].version == 1
    assert events[0].deadline == receipt.timestamp + 7200
    assert tuple(ledger.dispute(params.channel_id)) == (1, receipt.timestamp + 7200, state.struct_hash())


def test_register__no_dispute__dispute_view_is_empty(ledger, open_channel):
    params, _ = open_channel()
    assert tuple(ledger.dispute(params.channel_id)) == (0, 0, ZERO_HASH)


def test_register__initial_state_version_zero__registers(ledger, open_channel, signed, stranger):
    params, state0 = open_channel()
    receipt = ledger.register(params.as_tuple(), *signed(state0), sender=stranger)
    deadline = receipt.timestamp + params.challenge_duration
    assert [(e.version, e.deadline) for e in _registered(ledger, receipt)] == [(0, deadline)]
    assert tuple(ledger.dispute(params.channel_id)) == (0, deadline, state0.struct_hash())


@pytest.mark.parametrize("sender_name", ["stranger", "watcher", "ingrid", "alice", "bob"])
def test_register__any_sender__registers(ledger, open_channel, signed, request, sender_name):
    params, state0 = open_channel()
    state = state0.pay(1, 1)
    receipt = ledger.register(params.as_tuple(), *signed(state), sender=request.getfixturevalue(sender_name))
    assert [(e.channel, e.version) for e in _registered(ledger, receipt)] == [(params.channel_id, 1)]
    assert ledger.dispute(params.channel_id)[2] == state.struct_hash()


def test_register__higher_version_during_period__replaces_without_extending_deadline(
    ledger, open_channel, signed, stranger, watcher, chain
):
    params, state0 = open_channel()
    state1 = state0.pay(10**17, 0)
    state3 = state1.pay(10**17, 0).pay(5, 1)
    first = ledger.register(params.as_tuple(), *signed(state1), sender=stranger)
    deadline = first.timestamp + params.challenge_duration
    second = _register_at(ledger, chain, params, signed(state3), watcher, first.timestamp + 1000)
    events = _registered(ledger, second)
    assert [(e.channel, e.version, e.deadline) for e in events] == [(params.channel_id, 3, deadline)]
    assert tuple(ledger.dispute(params.channel_id)) == (3, deadline, state3.struct_hash())


def test_register__same_state_again__is_noop(ledger, open_channel, signed, stranger, watcher, chain):
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
        == (
            1,
            first.timestamp + params.challenge_duration,
            state.struct_hash(),
        )
    )


def test_register__same_state_again_without_signatures__is_noop(ledger, open_channel, signed, stranger):
    # The no-op path returns before checking signatures: the state is already proven registered.
    params, state0 = open_channel()
    state = state0.pay(10**17, 0)
    ledger.register(params.as_tuple(), *signed(state), sender=stranger)
    before = tuple(ledger.dispute(params.channel_id))
    again = ledger.register(params.as_tuple(), state.as_tuple(), b"", b"", sender=stranger)
    assert len(again.logs) == 0
    assert tuple(ledger.dispute(params.channel_id)) == before


def test_register__same_version_different_content__reverts_stale(ledger, open_channel, signed, stranger):
    params, state0 = open_channel()
    state_a = state0.pay(10**17, 0)
    state_b = state0.pay(2 * 10**17, 0)
    assert state_a.version == state_b.version == 1
    ledger.register(params.as_tuple(), *signed(state_a), sender=stranger)
    with ape.reverts("ledger: stale version"):
        ledger.register(params.as_tuple(), *signed(state_b), sender=stranger)
    assert ledger.dispute(params.channel_id)[2] == state_a.struct_hash()


def test_register__lower_version__reverts_stale(ledger, open_channel, signed, stranger):
    params, state0 = open_channel()
    state1 = state0.pay(10**17, 0)
    state2 = state1.pay(10**17, 0)
    ledger.register(params.as_tuple(), *signed(state2), sender=stranger)
    for older in (state1, state0):
        with ape.reverts("ledger: stale version"):
            ledger.register(params.as_tuple(), *signed(older), sender=stranger)
    assert tuple(ledger.dispute(params.channel_id))[0::2] == (2, state2.struct_hash())


@pytest.mark.parametrize("offset", [0, 1, 10**6])
def test_register__at_or_after_deadline__reverts_period_over(ledger, open_channel, signed, stranger, chain, offset):
    params, state0 = open_channel()
    state1 = state0.pay(10**17, 0)
    first = ledger.register(params.as_tuple(), *signed(state1), sender=stranger)
    deadline = first.timestamp + params.challenge_duration
    chain.pending_timestamp = deadline + offset
    with ape.reverts("ledger: challenge period over"):
        ledger.register(params.as_tuple(), *signed(state1.pay(1, 0)), sender=stranger)
    assert chain.blocks.head.timestamp == deadline + offset  # the reverting tx ran at that time
    assert tuple(ledger.dispute(params.channel_id)) == (1, deadline, state1.struct_hash())


def test_register__same_state_at_deadline__reverts_period_over(ledger, open_channel, signed, stranger, chain):
    # The "harmless no-op" of re-registering ends with the challenge period.
    params, state0 = open_channel()
    state1 = state0.pay(10**17, 0)
    first = ledger.register(params.as_tuple(), *signed(state1), sender=stranger)
    deadline = first.timestamp + params.challenge_duration
    chain.pending_timestamp = deadline
    with ape.reverts("ledger: challenge period over"):
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
    assert tuple(ledger.dispute(params.channel_id)) == (2, deadline, state2.struct_hash())


def test_register__final_state__reverts_call_close(ledger, open_channel, signed, stranger):
    params, state0 = open_channel()
    final = state0.pay(10**17, 0).finalized()
    with ape.reverts("ledger: final state, call close"):
        ledger.register(params.as_tuple(), *signed(final), sender=stranger)


def test_register__final_state_during_dispute__reverts_call_close(ledger, open_channel, signed, stranger):
    params, state0 = open_channel()
    state1 = state0.pay(10**17, 0)
    ledger.register(params.as_tuple(), *signed(state1), sender=stranger)
    with ape.reverts("ledger: final state, call close"):
        ledger.register(params.as_tuple(), *signed(state1.finalized()), sender=stranger)


def test_register__no_deposits__reverts_unknown_channel(ledger, make_params, signed, stranger):
    params = make_params()
    state = LedgerState.initial(params.channel_id, 10**18, 10**18)
    with ape.reverts("ledger: unknown channel"):
        ledger.register(params.as_tuple(), *signed(state), sender=stranger)


def test_register__after_close__reverts_channel_concluded(ledger, open_channel, signed, stranger):
    params, state0 = open_channel()
    state1 = state0.pay(10**17, 0)
    ledger.close(params.as_tuple(), *signed(state1.finalized()), sender=stranger)
    with ape.reverts("ledger: channel concluded"):
        ledger.register(params.as_tuple(), *signed(state1), sender=stranger)


def test_register__after_conclude__reverts_channel_concluded(ledger, open_channel, signed, stranger, chain):
    params, state0 = open_channel()
    state1 = state0.pay(10**17, 0)
    first = ledger.register(params.as_tuple(), *signed(state1), sender=stranger)
    chain.pending_timestamp = first.timestamp + params.challenge_duration
    ledger.conclude(params.as_tuple(), state1.as_tuple(), sender=stranger)
    with ape.reverts("ledger: channel concluded"):
        ledger.register(params.as_tuple(), *signed(state1.pay(1, 0)), sender=stranger)


def test_register__state_of_other_channel__reverts(ledger, open_channel, signed, stranger):
    params, _ = open_channel()
    _other, other_state0 = open_channel()
    with ape.reverts("ledger: state for another channel"):
        ledger.register(params.as_tuple(), *signed(other_state0.pay(1, 0)), sender=stranger)


def test_register__balances_not_conserved__reverts(ledger, open_channel, alice, bob, stranger):
    params, _ = open_channel()
    for balance_a, balance_b in ((10**18, 10**18 + 1), (10**18, 10**18 - 1), (0, 0)):
        state = (params.channel_id, 1, balance_a, balance_b, 10**18, 10**18, [], False)
        with ape.reverts("ledger: balances do not match funding"):
            ledger.register(params.as_tuple(), *_signed_raw(ledger, state, alice, bob), sender=stranger)


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
def test_register__amount_above_max__reverts_too_large(ledger, open_channel, alice, bob, stranger, amounts):
    params, _ = open_channel()
    state = (params.channel_id, 1, *amounts, [], False)
    with ape.reverts("ledger: amount too large"):
        ledger.register(params.as_tuple(), *_signed_raw(ledger, state, alice, bob), sender=stranger)


def test_register__state_with_lock__registers(ledger, open_channel, signed, stranger):
    params, _ = open_channel()
    lock = Lock(b"\x42" * 32, 10**17, 10**17)
    state = LedgerState(params.channel_id, 1, 9 * 10**17, 9 * 10**17, 10**18, 10**18, (lock,))
    tx = ledger.register(params.as_tuple(), *signed(state), sender=stranger)
    assert ledger.dispute(params.channel_id)[0] == 1
    assert ledger.dispute(params.channel_id)[2] == state.struct_hash()
    assert [e.version for e in tx.decode_logs(ledger.Registered)] == [1]


def test_register__duplicate_lock__reverts(ledger, open_channel, alice, bob, stranger):
    params, _ = open_channel()
    lock = (b"\x42" * 32, 10**17, 10**17)
    state = (params.channel_id, 1, 6 * 10**17, 10**18, 10**18, 10**18, [lock, (b"\x43" * 32, 0, 0), lock], False)
    with ape.reverts("ledger: duplicate lock"):
        ledger.register(params.as_tuple(), *_signed_raw(ledger, state, alice, bob), sender=stranger)
    assert ledger.dispute(params.channel_id) == (0, 0, b"\x00" * 32)


def test_register__lock_amount_above_max__reverts(ledger, open_channel, alice, bob, stranger):
    params, _ = open_channel()
    state = (params.channel_id, 1, 0, 0, 10**18, 10**18, [(b"\x42" * 32, MAX_AMOUNT + 1, 0)], False)
    with ape.reverts("ledger: amount too large"):
        ledger.register(params.as_tuple(), *_signed_raw(ledger, state, alice, bob), sender=stranger)


def test_register__locks_break_conservation__reverts(ledger, open_channel, alice, bob, stranger):
    params, _ = open_channel()
    state = (params.channel_id, 1, 10**18, 10**18, 10**18, 10**18, [(b"\x42" * 32, 1, 0)], False)
    with ape.reverts("ledger: balances do not match funding"):
        ledger.register(params.as_tuple(), *_signed_raw(ledger, state, alice, bob), sender=stranger)


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
        ({"duration": MIN_CHALLENGE_DURATION - 1}, "ledger: challenge duration out of range"),
        ({"duration": MAX_CHALLENGE_DURATION + 1}, "ledger: challenge duration out of range"),
        ({"duration": 0}, "ledger: challenge duration out of range"),
    ],
)
def test_register__invalid_params__reverts(ledger, alice, bob, stranger, sign, overrides, reason):
    if overrides.get("b") == "alice":
        overrides = {"b": str(alice.address)}
    params = _raw_params(alice, bob, **overrides)
    # A state for some channel id; the parameter check comes first, whatever the state.
    state = LedgerState.initial(b"\x01" * 32, 1, 1)
    with ape.reverts(reason):
        ledger.register(params, state.as_tuple(), sign(state, alice), sign(state, bob), sender=stranger)
    assert_view_reverts(ledger.channel_id, params, reason=reason)


@pytest.mark.parametrize("duration", [MIN_CHALLENGE_DURATION, MAX_CHALLENGE_DURATION])
def test_register__duration_at_bound__registers(ledger, open_channel, signed, stranger, duration):
    params, state0 = open_channel(challenge_duration=duration)
    receipt = ledger.register(params.as_tuple(), *signed(state0.pay(1, 0)), sender=stranger)
    deadline = receipt.timestamp + duration
    assert [(e.version, e.deadline) for e in _registered(ledger, receipt)] == [(1, deadline)]
    assert ledger.dispute(params.channel_id)[1] == deadline
