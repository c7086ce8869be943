"""VirtualAdjudicator.register: opening and answering a virtual-channel dispute, fast close, and every refusal."""

from types import SimpleNamespace

import ape
import pytest
from eth_utils import keccak

from perun_vyper import (
    ETH,
    MAX_AMOUNT,
    MAX_CHALLENGE_DURATION,
    MIN_CHALLENGE_DURATION,
    InvalidParams,
    InvalidSignature,
    VirtualParams,
    VirtualState,
    compact,
    sign_digest,
    sign_state,
)
from perun_vyper.core.constants import HALF_N, SECP256K1_N
from tests.support.constants import (
    ONLY_ENDPOINTS,
    S_MASK,
    V_BIT,
    VIRTUAL_CONCLUDED,
    VIRTUAL_EXPIRED,
    VIRTUAL_PERIOD_OVER,
    VIRTUAL_RANGE,
    VIRTUAL_STALE,
    ZERO_HASH,
)
from tests.support.reverts import assert_view_reverts

FUNDING_ALICE = 3 * 10**17
FUNDING_BOB = 2 * 10**17
DURATION = 3600


@pytest.fixture
def hub_ids(make_params, alice, bob, ingrid):
    """Two ledger channel ids (Alice-Ingrid, Ingrid-Bob). The virtual adjudicator never reads the ledger, so
    nothing is deposited: register only needs the ids inside the virtual parameters."""
    return SimpleNamespace(left=make_params(alice, ingrid), right=make_params(ingrid, bob))


@pytest.fixture
def vparams(make_virtual, hub_ids) -> VirtualParams:
    """A virtual channel valid for one day from now, challenge duration one hour."""
    return make_virtual(hub_ids, FUNDING_ALICE, FUNDING_BOB, challenge_duration=DURATION)


def _events(virtual, receipt) -> list:
    return list(receipt.decode_logs(virtual.Registered))


def _register(virtual, vparams, signed_args, sender, chain, timestamp=None):
    """Register in a block whose timestamp is exactly ``timestamp`` (if given)."""
    if timestamp is not None:
        chain.pending_timestamp = timestamp
    receipt = virtual.register(vparams.as_tuple(), *signed_args, sender=sender)
    if timestamp is not None:
        assert receipt.timestamp == timestamp
    return receipt


def _assert_event(virtual, receipt, vparams, state, deadline):
    events = _events(virtual, receipt)
    assert len(events) == 1
    event = events[0]
    assert event.contract_address == virtual.address
    assert event.channel == vparams.channel_id
    assert event.version == state.version
    assert event.deadline == deadline
    assert event.balance_alice == state.balance_alice
    assert event.balance_bob == state.balance_bob
    assert event.is_final == state.is_final


def _record(virtual, vparams) -> tuple:
    return tuple(virtual.record(vparams.channel_id))


@pytest.fixture
def sign_raw(virtual, virtual_hashing, alice, bob):
    """``sign_raw(state_tuple)``: Alice's and Bob's compact signatures of a state tuple VirtualState would
    refuse to build (the digest comes from the hashing harness in the virtual adjudicator's domain)."""
    separator = virtual.DOMAIN_SEPARATOR()

    def _sign(state_tuple) -> tuple:
        digest = virtual_hashing.state_digest(state_tuple, separator)
        return tuple(compact(sign_digest(who.private_key, digest)) for who in (alice, bob))

    return _sign


def test_constants__python_side__match(virtual):
    assert virtual.MIN_CHALLENGE_DURATION() == MIN_CHALLENGE_DURATION
    assert virtual.MAX_CHALLENGE_DURATION() == MAX_CHALLENGE_DURATION
    assert virtual.MAX_AMOUNT() == MAX_AMOUNT


def test_record__never_registered__is_empty(virtual, vparams):
    assert _record(virtual, vparams) == (0, 0, 0, False)


# --- opening a dispute ------------------------------------------------------------------------------


@pytest.mark.parametrize("sender_name", ["alice", "bob"])
@pytest.mark.parametrize("when", ["now", "validity_minus_1", "validity", "expiry_minus_1"])
def test_register__alice_or_bob_before_expiry__emits_registered(
    virtual, vparams, signed_virtual, chain, request, sender_name, when
):
    timestamp = {
        "now": None,
        "validity_minus_1": vparams.validity - 1,
        "validity": vparams.validity,
        "expiry_minus_1": vparams.expiry - 1,
    }[when]
    state = VirtualState.initial(vparams).pay(10**17, from_alice=True)
    sender = request.getfixturevalue(sender_name)
    receipt = _register(virtual, vparams, signed_virtual(state), sender, chain, timestamp)
    deadline = receipt.timestamp + DURATION
    _assert_event(virtual, receipt, vparams, state, deadline)
    assert _record(virtual, vparams) == (1, deadline, 2 * 10**17, False)


def test_register__initial_state_version_zero__registers(virtual, vparams, signed_virtual, alice, chain):
    state = VirtualState.initial(vparams)
    receipt = _register(virtual, vparams, signed_virtual(state), alice, chain)
    deadline = receipt.timestamp + DURATION
    _assert_event(virtual, receipt, vparams, state, deadline)
    assert _record(virtual, vparams) == (0, deadline, FUNDING_ALICE, False)


@pytest.mark.parametrize("sender_name", ["ingrid", "watcher", "stranger"])
@pytest.mark.parametrize("when", ["now", "validity_minus_1"])
def test_register__other_sender_before_validity__reverts_only_alice_or_bob(
    virtual, vparams, signed_virtual, chain, request, sender_name, when
):
    state = VirtualState.initial(vparams).pay(10**17, from_alice=True)
    if when == "validity_minus_1":
        chain.pending_timestamp = vparams.validity - 1
    with ape.reverts(ONLY_ENDPOINTS):
        virtual.register(vparams.as_tuple(), *signed_virtual(state), sender=request.getfixturevalue(sender_name))
    if when == "validity_minus_1":
        assert chain.blocks.head.timestamp == vparams.validity - 1
    assert _record(virtual, vparams) == (0, 0, 0, False)


@pytest.mark.parametrize("sender_name", ["ingrid", "watcher", "stranger"])
def test_register__other_sender_at_validity__registers(virtual, vparams, signed_virtual, chain, request, sender_name):
    state = VirtualState.initial(vparams).pay(10**17, from_alice=False)
    sender = request.getfixturevalue(sender_name)
    receipt = _register(virtual, vparams, signed_virtual(state), sender, chain, vparams.validity)
    deadline = vparams.validity + DURATION
    _assert_event(virtual, receipt, vparams, state, deadline)
    assert _record(virtual, vparams) == (1, deadline, 4 * 10**17, False)


@pytest.mark.parametrize("sender_name", ["ingrid", "stranger"])
def test_register__other_sender_final_state_before_validity__settles_at_once(
    virtual, vparams, signed_virtual, chain, request, sender_name
):
    # Review finding 3: a final state both endpoints signed may be registered by anyone at any time, so
    # Ingrid can settle the outcome both of her ledger channels use (SPEC 9.3).
    final = VirtualState.initial(vparams).pay(10**17, from_alice=True).finalized()
    assert chain.pending_timestamp < vparams.validity
    receipt = virtual.register(vparams.as_tuple(), *signed_virtual(final), sender=request.getfixturevalue(sender_name))
    _assert_event(virtual, receipt, vparams, final, receipt.timestamp + DURATION)
    assert _record(virtual, vparams) == (final.version, receipt.timestamp + DURATION, final.balance_alice, True)
    assert tuple(virtual.settlement(vparams.as_tuple())) == (
        vparams.channel_id,
        True,
        final.balance_alice,
        final.balance_bob,
    )


# --- answering an open dispute ----------------------------------------------------------------------


@pytest.mark.parametrize("sender_name", ["watcher", "ingrid", "stranger", "bob"])
def test_register__higher_version_during_period__replaces_without_extending_deadline(
    virtual, vparams, signed_virtual, alice, chain, request, sender_name
):
    # Alice opens with an old state before validity; anyone (a watcher defending Bob) answers, also
    # before validity, with a newer one.
    state1 = VirtualState.initial(vparams).pay(10**17, from_alice=False)
    state3 = state1.pay(2 * 10**17, from_alice=True).pay(5, from_alice=False)
    first = _register(virtual, vparams, signed_virtual(state1), alice, chain)
    deadline = first.timestamp + DURATION
    answer_at = first.timestamp + 1000
    assert answer_at < vparams.validity
    second = _register(virtual, vparams, signed_virtual(state3), request.getfixturevalue(sender_name), chain, answer_at)
    _assert_event(virtual, second, vparams, state3, deadline)
    assert _record(virtual, vparams) == (3, deadline, state3.balance_alice, False)


def test_register__several_answers__deadline_stays_first(virtual, vparams, signed_virtual, alice, watcher, chain):
    state = VirtualState.initial(vparams).pay(1, from_alice=True)
    first = _register(virtual, vparams, signed_virtual(state), alice, chain)
    deadline = first.timestamp + DURATION
    for step in (1, 1000, DURATION - 1):
        state = state.pay(1, from_alice=True)
        receipt = _register(virtual, vparams, signed_virtual(state), watcher, chain, first.timestamp + step)
        assert [e.deadline for e in _events(virtual, receipt)] == [deadline]
    assert _record(virtual, vparams) == (4, deadline, FUNDING_ALICE - 4, False)


def test_register__same_state_again__is_noop(virtual, vparams, signed_virtual, alice, watcher, chain):
    state = VirtualState.initial(vparams).pay(10**17, from_alice=True)
    first = _register(virtual, vparams, signed_virtual(state), alice, chain)
    before = _record(virtual, vparams)
    again = _register(virtual, vparams, signed_virtual(state), watcher, chain, first.timestamp + 100)
    assert not again.failed
    assert _events(virtual, again) == []
    assert len(again.logs) == 0
    assert _record(virtual, vparams) == before == (1, first.timestamp + DURATION, 2 * 10**17, False)


def test_register__same_state_again_without_signatures__reverts_invalid_signature(
    virtual, vparams, signed_virtual, alice, stranger
):
    # Review finding 4: signatures are checked before the no-op path, as in the ledger adjudicator.
    state = VirtualState.initial(vparams).pay(10**17, from_alice=True)
    virtual.register(vparams.as_tuple(), *signed_virtual(state), sender=alice)
    before = _record(virtual, vparams)
    zero = (ZERO_HASH, ZERO_HASH)
    with ape.reverts("virtual: invalid signature"):
        virtual.register(vparams.as_tuple(), state.as_tuple(), zero, zero, sender=stranger)
    assert _record(virtual, vparams) == before


def test_register__lower_version__reverts_stale(virtual, vparams, signed_virtual, alice, bob):
    state0 = VirtualState.initial(vparams)
    state1 = state0.pay(10**17, from_alice=True)
    state2 = state1.pay(10**17, from_alice=True)
    virtual.register(vparams.as_tuple(), *signed_virtual(state2), sender=alice)
    for older in (state1, state0):
        with ape.reverts(VIRTUAL_STALE):
            virtual.register(vparams.as_tuple(), *signed_virtual(older), sender=bob)
    assert _record(virtual, vparams)[0::2] == (2, 10**17)


def test_register__same_version_different_balances__reverts_stale(virtual, vparams, signed_virtual, alice, bob):
    state0 = VirtualState.initial(vparams)
    state_a = state0.pay(10**17, from_alice=True)
    state_b = state0.pay(2 * 10**17, from_alice=True)
    assert state_a.version == state_b.version == 1
    virtual.register(vparams.as_tuple(), *signed_virtual(state_a), sender=alice)
    with ape.reverts(VIRTUAL_STALE):
        virtual.register(vparams.as_tuple(), *signed_virtual(state_b), sender=bob)
    assert _record(virtual, vparams)[0::2] == (1, 2 * 10**17)


def test_register__same_version_final__reverts_stale(virtual, vparams, signed_virtual, alice, bob):
    # A final state with the registered version (same balances) is not the registered state: stale.
    state1 = VirtualState.initial(vparams).pay(10**17, from_alice=True)
    virtual.register(vparams.as_tuple(), *signed_virtual(state1), sender=alice)
    same_version_final = VirtualState(state1.channel, 1, state1.balance_alice, state1.balance_bob, True)
    with ape.reverts(VIRTUAL_STALE):
        virtual.register(vparams.as_tuple(), *signed_virtual(same_version_final), sender=bob)
    assert _record(virtual, vparams)[3] is False


@pytest.mark.parametrize("offset", [0, 10**6])
def test_register__at_or_after_deadline__reverts_period_over(
    virtual, vparams, signed_virtual, alice, watcher, chain, offset
):
    state1 = VirtualState.initial(vparams).pay(10**17, from_alice=True)
    first = _register(virtual, vparams, signed_virtual(state1), alice, chain)
    deadline = first.timestamp + DURATION
    chain.pending_timestamp = deadline + offset
    for newer in (state1.pay(1, from_alice=True), state1.finalized(), state1):
        with ape.reverts(VIRTUAL_PERIOD_OVER):
            virtual.register(vparams.as_tuple(), *signed_virtual(newer), sender=watcher)
    assert chain.blocks.head.timestamp >= deadline + offset
    assert _record(virtual, vparams) == (1, deadline, 2 * 10**17, False)


def test_register__one_second_before_deadline__replaces(virtual, vparams, signed_virtual, alice, watcher, chain):
    state1 = VirtualState.initial(vparams).pay(10**17, from_alice=True)
    state2 = state1.pay(1, from_alice=False)
    first = _register(virtual, vparams, signed_virtual(state1), alice, chain)
    deadline = first.timestamp + DURATION
    receipt = _register(virtual, vparams, signed_virtual(state2), watcher, chain, deadline - 1)
    _assert_event(virtual, receipt, vparams, state2, deadline)
    assert _record(virtual, vparams) == (2, deadline, 2 * 10**17 + 1, False)


# --- final states (fast close) ----------------------------------------------------------------------


@pytest.mark.parametrize("sender_name", ["alice", "bob"])
def test_register__final_state_before_validity__settles_at_once(
    virtual, vparams, signed_virtual, chain, request, sender_name
):
    final = VirtualState.initial(vparams).pay(10**17, from_alice=True).finalized()
    receipt = _register(virtual, vparams, signed_virtual(final), request.getfixturevalue(sender_name), chain)
    assert receipt.timestamp < vparams.validity
    deadline = receipt.timestamp + DURATION
    _assert_event(virtual, receipt, vparams, final, deadline)
    assert _record(virtual, vparams) == (2, deadline, 2 * 10**17, True)
    assert tuple(virtual.settlement(vparams.as_tuple())) == (vparams.channel_id, True, 2 * 10**17, 3 * 10**17)


def test_register__final_state_answers_dispute__settles_at_once(
    virtual, vparams, signed_virtual, alice, watcher, chain
):
    state1 = VirtualState.initial(vparams).pay(10**17, from_alice=True)
    final = state1.pay(5 * 10**16, from_alice=False).finalized()
    first = _register(virtual, vparams, signed_virtual(state1), alice, chain)
    deadline = first.timestamp + DURATION
    receipt = _register(virtual, vparams, signed_virtual(final), watcher, chain, first.timestamp + 10)
    _assert_event(virtual, receipt, vparams, final, deadline)
    assert _record(virtual, vparams) == (3, deadline, 25 * 10**16, True)
    assert tuple(virtual.settlement(vparams.as_tuple())) == (vparams.channel_id, True, 25 * 10**16, 25 * 10**16)


@pytest.mark.parametrize("sender_name", ["bob", "watcher"])
def test_register__after_final_state__reverts_channel_concluded(
    virtual, vparams, signed_virtual, alice, chain, request, sender_name
):
    state1 = VirtualState.initial(vparams).pay(10**17, from_alice=True)
    final = state1.finalized()
    _register(virtual, vparams, signed_virtual(final), alice, chain)
    before = _record(virtual, vparams)
    sender = request.getfixturevalue(sender_name)
    newer = VirtualState(final.channel, final.version + 1, 0, vparams.total, False)
    newer_final = VirtualState(final.channel, final.version + 1, vparams.total, 0, True)
    for state in (newer, newer_final, final):
        with ape.reverts(VIRTUAL_CONCLUDED):
            virtual.register(vparams.as_tuple(), *signed_virtual(state), sender=sender)
    # Also after the deadline and after expiry: concluded stays concluded.
    chain.pending_timestamp = vparams.expiry + 1
    with ape.reverts(VIRTUAL_CONCLUDED):
        virtual.register(vparams.as_tuple(), *signed_virtual(newer), sender=sender)
    assert _record(virtual, vparams) == before


# --- expiry -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sender_name", ["alice", "bob", "stranger"])
@pytest.mark.parametrize("offset", [0, 10**5])
def test_register__at_or_after_expiry__reverts_expired(
    virtual, vparams, signed_virtual, chain, request, sender_name, offset
):
    chain.pending_timestamp = vparams.expiry + offset
    state = VirtualState.initial(vparams).pay(10**17, from_alice=True)
    sender = request.getfixturevalue(sender_name)
    for candidate in (state, state.finalized()):
        with ape.reverts(VIRTUAL_EXPIRED):
            virtual.register(vparams.as_tuple(), *signed_virtual(candidate), sender=sender)
    assert _record(virtual, vparams) == (0, 0, 0, False)


@pytest.mark.parametrize("sender_name", ["alice", "stranger"])
def test_register__one_second_before_expiry__registers(virtual, vparams, signed_virtual, chain, request, sender_name):
    state = VirtualState.initial(vparams).pay(10**17, from_alice=True)
    receipt = _register(
        virtual, vparams, signed_virtual(state), request.getfixturevalue(sender_name), chain, vparams.expiry - 1
    )
    deadline = vparams.expiry - 1 + DURATION
    _assert_event(virtual, receipt, vparams, state, deadline)
    assert _record(virtual, vparams) == (1, deadline, 2 * 10**17, False)


# --- state checks -----------------------------------------------------------------------------------


def test_register__state_of_other_channel__reverts(virtual, vparams, make_virtual, hub_ids, signed_virtual, alice):
    other = make_virtual(hub_ids, FUNDING_ALICE, FUNDING_BOB, validity=vparams.validity)
    assert other.channel_id != vparams.channel_id
    other_state = VirtualState.initial(other).pay(1, from_alice=True)
    with ape.reverts("virtual: state for another channel"):
        virtual.register(vparams.as_tuple(), *signed_virtual(other_state), sender=alice)
    assert _record(virtual, vparams) == _record(virtual, other) == (0, 0, 0, False)


@pytest.mark.parametrize(
    ("balance_alice", "balance_bob"),
    [(FUNDING_ALICE, FUNDING_BOB + 1), (FUNDING_ALICE, FUNDING_BOB - 1), (0, 0), (FUNDING_ALICE + FUNDING_BOB, 1)],
)
def test_register__balances_not_conserved__reverts(virtual, vparams, signed_virtual, alice, balance_alice, balance_bob):
    state = VirtualState(vparams.channel_id, 1, balance_alice, balance_bob)
    with ape.reverts("virtual: balances do not match funding"):
        virtual.register(vparams.as_tuple(), *signed_virtual(state), sender=alice)
    assert _record(virtual, vparams) == (0, 0, 0, False)


@pytest.mark.parametrize(
    "balances",
    [(MAX_AMOUNT + 1, 0), (0, MAX_AMOUNT + 1), (2**256 - 1, 1), (2**256 - FUNDING_ALICE, FUNDING_ALICE + FUNDING_BOB)],
)
def test_register__balance_above_max__reverts_too_large(virtual, vparams, sign_raw, alice, balances):
    state = (vparams.channel_id, 1, *balances, False)
    sigs = sign_raw(state)
    with ape.reverts("virtual: amount too large"):
        virtual.register(vparams.as_tuple(), state, *sigs, sender=alice)
    assert _record(virtual, vparams) == (0, 0, 0, False)


# --- parameter checks -------------------------------------------------------------------------------


def _raw_params(alice, bob, ingrid, overrides: dict) -> tuple:
    fields = {
        "alice": str(alice.address),
        "bob": str(bob.address),
        "ingrid": str(ingrid.address),
        "asset": ETH,
        "ledger_adjudicator": "0x" + "5e" * 20,
        "chain_id": 31337,
        "ledger_alice": b"\x0a" * 32,
        "ledger_bob": b"\x0b" * 32,
        "funding_alice": 10,
        "funding_bob": 20,
        "validity": 2**40,
        "challenge_duration": DURATION,
        "nonce": 777,
    }
    for key, value in overrides.items():
        fields[key] = fields.get(value, value)  # a field name copies that field
    return tuple(fields.values())


def _virtual_params(raw: tuple) -> VirtualParams:
    """The Python parameters of a raw ABI tuple (its order is the contract's, not the dataclass's)."""
    alice, bob, ingrid, asset, adjudicator, chain_id, *rest = raw
    return VirtualParams(alice, bob, ingrid, *rest, asset=asset, ledger_adjudicator=adjudicator, chain_id=chain_id)


INVALID_PARAMS = [
    ({"alice": ETH}, "virtual: zero participant"),
    ({"bob": ETH}, "virtual: zero participant"),
    ({"ingrid": ETH}, "virtual: zero participant"),
    ({"bob": "alice"}, "virtual: same participant"),
    ({"ingrid": "alice"}, "virtual: same participant"),
    ({"ingrid": "bob"}, "virtual: same participant"),
    ({"ledger_bob": "ledger_alice"}, "virtual: same ledger channel"),
    ({"challenge_duration": MIN_CHALLENGE_DURATION - 1}, VIRTUAL_RANGE),
    ({"challenge_duration": MAX_CHALLENGE_DURATION + 1}, VIRTUAL_RANGE),
    ({"challenge_duration": 0}, VIRTUAL_RANGE),
    ({"funding_alice": MAX_AMOUNT + 1}, "virtual: amount too large"),
    ({"funding_bob": MAX_AMOUNT + 1}, "virtual: amount too large"),
]


@pytest.mark.parametrize(("overrides", "reason"), INVALID_PARAMS)
def test_register__invalid_params__reverts(
    virtual_hashing, virtual, alice, bob, ingrid, signed_virtual, overrides, reason
):
    params = _raw_params(alice, bob, ingrid, overrides)
    # Any state: the parameter check comes first.
    state = VirtualState(b"\x01" * 32, 1, 10, 20)
    with ape.reverts(reason):
        virtual.register(params, *signed_virtual(state), sender=alice)
    assert_view_reverts(virtual_hashing.virtual_id, params, reason=reason)


@pytest.mark.parametrize(("overrides", "reason"), INVALID_PARAMS)
def test_virtual_params__invalid__raises_invalid_params(alice, bob, ingrid, overrides, reason):
    with pytest.raises(InvalidParams):
        _virtual_params(_raw_params(alice, bob, ingrid, overrides))


@pytest.mark.parametrize("duration", [MIN_CHALLENGE_DURATION, MAX_CHALLENGE_DURATION])
def test_register__duration_at_bound__registers(virtual, make_virtual, hub_ids, signed_virtual, alice, duration):
    vparams = make_virtual(hub_ids, 10, 20, challenge_duration=duration)
    state = VirtualState.initial(vparams).pay(1, from_alice=True)
    receipt = virtual.register(vparams.as_tuple(), *signed_virtual(state), sender=alice)
    _assert_event(virtual, receipt, vparams, state, receipt.timestamp + duration)


def test_register__raw_valid_params__match_virtual_params(virtual_hashing, virtual, alice, bob, ingrid):
    raw = _raw_params(alice, bob, ingrid, {})
    assert virtual_hashing.virtual_id(raw) == _virtual_params(raw).channel_id


# --- signatures -------------------------------------------------------------------------------------
# Compact EIP-2098 signatures (r, vs): s in bits 0-254 of vs, v - 27 in bit 255. No length or v byte is
# left to get wrong on-chain; ``compact`` refuses such 65-byte signatures before they are sent.


def _ints(sig: tuple[bytes, bytes]) -> tuple[int, int]:
    return int.from_bytes(sig[0], "big"), int.from_bytes(sig[1], "big")


def _words(r: int, vs: int) -> tuple[bytes, bytes]:
    return r.to_bytes(32, "big"), vs.to_bytes(32, "big")


def _flip(vs: int) -> int:
    return (vs & V_BIT) ^ V_BIT


# name -> mutation of a valid compact (r, vs) pair that the contract refuses as "virtual: invalid signature"
MALFORMED = {
    # The genuine malleable twin of (r, n/2): s = n/2 + 1 with the v bit flipped (it fits in vs).
    "high_s_twin": lambda r, vs: (r, (HALF_N + 1) | _flip(vs)),
    "high_s_same_v_bit": lambda r, vs: (r, (HALF_N + 1) | (vs & V_BIT)),
    "high_s_highest": lambda r, vs: (r, S_MASK | (vs & V_BIT)),
    "r_zero": lambda r, vs: (0, vs),
    "s_zero": lambda r, vs: (r, vs & V_BIT),
    "s_zero_v_bit_set": lambda r, vs: (r, V_BIT),
    "r_equal_order": lambda r, vs: (SECP256K1_N, vs),
    # Not the x of any curve point: ecrecover yields nothing.
    "r_no_curve_point": lambda r, vs: (int.from_bytes(keccak(b"perun random r 3"), "big"), vs),
}


def _malformed(sig: tuple[bytes, bytes], case: str) -> tuple[bytes, bytes]:
    return _words(*MALFORMED[case](*_ints(sig)))


def _v_bit_flipped(sig: tuple[bytes, bytes]) -> tuple[bytes, bytes]:
    r, vs = _ints(sig)
    return _words(r, vs ^ V_BIT)


def _high_s_twin_truncated(sig: tuple[bytes, bytes]) -> tuple[bytes, bytes]:
    """The twin (n - s, v flipped) of a real signature squeezed into vs: n - s needs bit 255, so only its
    low 255 bits fit, another low s that recovers someone else."""
    r, vs = _ints(sig)
    assert SECP256K1_N - (vs & S_MASK) > S_MASK
    return _words(r, ((SECP256K1_N - (vs & S_MASK)) & S_MASK) | _flip(vs))


@pytest.mark.parametrize(
    "case",
    [
        "stranger_as_alice",
        "stranger_as_bob",
        "swapped",
        "alice_twice",
        "bob_twice",
        "ledger_domain",
        "alice_v_bit_flipped",
        "bob_v_bit_flipped",
        "alice_high_s_twin_truncated",
    ],
)
def test_register__wrong_signer__reverts(virtual, vparams, sign_virtual, domain, alice, bob, stranger, case):
    state = VirtualState.initial(vparams).pay(10**17, from_alice=True)
    sig_a, sig_b, sig_s = (compact(sign_virtual(state, account)) for account in (alice, bob, stranger))
    # The same struct hash signed in the ledger adjudicator's domain: recovers someone else here.
    ledger_sigs = tuple(compact(sign_state(account.private_key, state, domain)) for account in (alice, bob))
    sigs = {
        "stranger_as_alice": (sig_s, sig_b),
        "stranger_as_bob": (sig_a, sig_s),
        "swapped": (sig_b, sig_a),
        "alice_twice": (sig_a, sig_a),
        "bob_twice": (sig_b, sig_b),
        "ledger_domain": ledger_sigs,
        # The top bit of vs is v: flipped, ecrecover picks the other point and another address.
        "alice_v_bit_flipped": (_v_bit_flipped(sig_a), sig_b),
        "bob_v_bit_flipped": (sig_a, _v_bit_flipped(sig_b)),
        "alice_high_s_twin_truncated": (_high_s_twin_truncated(sig_a), sig_b),
    }[case]
    with ape.reverts("virtual: wrong signer"):
        virtual.register(vparams.as_tuple(), state.as_tuple(), *sigs, sender=alice)
    assert _record(virtual, vparams) == (0, 0, 0, False)


@pytest.mark.parametrize("position", [0, 1])
@pytest.mark.parametrize("case", list(MALFORMED))
def test_register__malformed_signature__reverts_invalid(virtual, vparams, signed_virtual, alice, position, case):
    state = VirtualState.initial(vparams).pay(10**17, from_alice=True)
    state_tuple, *sigs = signed_virtual(state)
    valid = list(sigs)
    sigs[position] = _malformed(sigs[position], case)
    with ape.reverts("virtual: invalid signature"):
        virtual.register(vparams.as_tuple(), state_tuple, *sigs, sender=alice)
    assert _record(virtual, vparams) == (0, 0, 0, False)
    # The low-s original verifies.
    receipt = virtual.register(vparams.as_tuple(), state_tuple, *valid, sender=alice)
    _assert_event(virtual, receipt, vparams, state, receipt.timestamp + DURATION)


def test_register__malformed_signature_in_answer__reverts_invalid(virtual, vparams, signed_virtual, alice, watcher):
    state1 = VirtualState.initial(vparams).pay(1, from_alice=True)
    virtual.register(vparams.as_tuple(), *signed_virtual(state1), sender=alice)
    state_tuple, sig_a, sig_b = signed_virtual(state1.pay(1, from_alice=True))
    for bad in (_malformed(sig_b, "high_s_twin"), _malformed(sig_b, "r_zero"), (ZERO_HASH, ZERO_HASH)):
        with ape.reverts("virtual: invalid signature"):
            virtual.register(vparams.as_tuple(), state_tuple, sig_a, bad, sender=watcher)
    assert _record(virtual, vparams)[0] == 1


@pytest.mark.parametrize("case", ["64_bytes", "66_bytes", "empty", "v_0", "v_1", "v_29", "high_s_twin"])
def test_register__malformed_65_byte_signature__compact_raises_invalid_signature(vparams, sign_virtual, alice, case):
    # A 65-byte length or a v byte outside {27, 28} cannot be expressed on-chain any more: the client's
    # compact refuses them (and the 65-byte high-s twin) before anything is sent.
    sig = sign_virtual(VirtualState.initial(vparams).pay(1, from_alice=True), alice)
    s = int.from_bytes(sig[32:64], "big")
    bad = {
        "64_bytes": sig[:64],
        "66_bytes": sig + b"\x1b",
        "empty": b"",
        "v_0": sig[:64] + b"\x00",
        "v_1": sig[:64] + b"\x01",
        "v_29": sig[:64] + bytes([29]),
        "high_s_twin": sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]]),
    }[case]
    with pytest.raises(InvalidSignature):
        compact(bad)
