"""Signature checks of register and close, and the same refusals in perun_vyper's recover/verify/compact.

Both entry points take compact EIP-2098 signatures: ``Signature(r, vs)`` with ``s`` in bits 0-254 of
``vs`` and ``v - 27`` in bit 255. There is no length and no v byte on-chain any more; what is left to get
wrong is ``r``, ``s`` and the v bit. Malformed 65-byte signatures (length, v outside {27, 28}) are refused
by ``perun_vyper.core.keys.compact`` before anything is sent.
"""

import ape
import pytest
from eth_keys import keys
from eth_utils import keccak

from perun_vyper import (
    Domain,
    InvalidSignature,
    LedgerState,
    compact,
    expand,
    recover_digest,
    sign_state,
    verify_state,
)
from perun_vyper.core.constants import HALF_N, SECP256K1_N
from tests.support.constants import LEDGER_OTHER_CHANNEL, LEDGER_WRONG_SIGNER, S_MASK, V_BIT, ZERO_HASH

INVALID = "ledger: invalid signature"

# Fixed "random" words. Whether an r recovers at all depends only on r (is it the x of a curve point),
# not on the digest, so the outcome is the same for every state.
# r is on the curve, s is low: recovers some unrelated address.
RANDOM_R_RECOVERS = int.from_bytes(keccak(b"perun random r 0"), "big")
RANDOM_S = int.from_bytes(keccak(b"perun random s 0"), "big")
# r is not the x of any curve point: ecrecover yields nothing.
RANDOM_R_NO_POINT = int.from_bytes(keccak(b"perun random r 3"), "big")
RANDOM_S_NO_POINT = int.from_bytes(keccak(b"perun random s 3"), "big")
assert RANDOM_S <= HALF_N and RANDOM_S_NO_POINT <= HALF_N


def _ints(sig65: bytes) -> tuple[int, int]:
    """The compact (r, vs) pair of a valid 65-byte signature, as integers."""
    r, vs = compact(sig65)
    return int.from_bytes(r, "big"), int.from_bytes(vs, "big")


def _words(r: int, vs: int) -> tuple[bytes, bytes]:
    return r.to_bytes(32, "big"), vs.to_bytes(32, "big")


def _flip(vs: int) -> int:
    return (vs & V_BIT) ^ V_BIT


def _high_s_twin_65(sig65: bytes) -> bytes:
    """The malleable twin of a 65-byte signature: s' = n - s, v flipped. A valid ECDSA signature by the same
    key, which only the low-s rule refuses."""
    s = int.from_bytes(sig65[32:64], "big")
    return sig65[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig65[64]])  # v: 27 <-> 28


def _high_s_twin_truncated(r: int, vs: int) -> tuple[int, int]:
    """The malleable twin squeezed into the compact form: s' = n - s with the v bit flipped. For every s
    a signer produces (s <= n - 2**255, all but a 2**-127 share of the low half), n - s needs bit 255,
    which belongs to v: only its low 255 bits fit, and they are another, low s that recovers someone
    else. The twin of a real signature therefore cannot be expressed at all."""
    s = vs & S_MASK
    assert SECP256K1_N - s > S_MASK
    return r, ((SECP256K1_N - s) & S_MASK) | _flip(vs)


# name -> (mutation of a valid compact (r, vs) pair, contract revert reason)
MALFORMED = {
    # High s: every s in (n/2, 2**255) that fits in vs is refused, whatever the v bit. s = n/2 + 1 with the
    # v bit flipped is the genuine twin of the signature (r, n/2) (n is odd: n - n/2 = n/2 + 1).
    "s_half_order_twin": (lambda r, vs: (r, (HALF_N + 1) | _flip(vs)), INVALID),
    "s_half_order_plus_1": (lambda r, vs: (r, (HALF_N + 1) | (vs & V_BIT)), INVALID),
    "s_highest": (lambda r, vs: (r, S_MASK), INVALID),
    "s_all_ones": (lambda r, vs: (r, 2**256 - 1), INVALID),
    "r_zero": (lambda r, vs: (0, vs), INVALID),
    "s_zero": (lambda r, vs: (r, vs & V_BIT), INVALID),
    "s_zero_v_bit_set": (lambda r, vs: (r, V_BIT), INVALID),
    "r_and_vs_zero": (lambda r, vs: (0, 0), INVALID),
    "r_equal_order": (lambda r, vs: (SECP256K1_N, vs), INVALID),
    "r_all_ones": (lambda r, vs: (2**256 - 1, vs), INVALID),
    "random_no_curve_point": (lambda r, vs: (RANDOM_R_NO_POINT, RANDOM_S_NO_POINT), INVALID),
    "random_no_curve_point_v_bit": (lambda r, vs: (RANDOM_R_NO_POINT, RANDOM_S_NO_POINT | V_BIT), INVALID),
    # Well-formed, so they reach ecrecover and recover someone else.
    "v_bit_flipped": (lambda r, vs: (r, vs ^ V_BIT), LEDGER_WRONG_SIGNER),
    # r = 1 is the smallest x of a curve point (1 + 7 = 8 is a square mod p): refusing it as malformed
    # (as r = 0 is) would be wrong; it recovers someone.
    "r_one": (lambda r, vs: (1, vs), LEDGER_WRONG_SIGNER),
    # Likewise s = 1, the smallest s EIP-2 allows: well-formed, it recovers someone (r is a curve point).
    "s_one": (lambda r, vs: (r, 1 | (vs & V_BIT)), LEDGER_WRONG_SIGNER),
    "high_s_twin_truncated": (_high_s_twin_truncated, LEDGER_WRONG_SIGNER),
    "s_half_order": (lambda r, vs: (r, HALF_N | (vs & V_BIT)), LEDGER_WRONG_SIGNER),
    "random_recovers_stranger": (lambda r, vs: (RANDOM_R_RECOVERS, RANDOM_S), LEDGER_WRONG_SIGNER),
}


def _mutated(sig65: bytes, case: str) -> tuple[bytes, bytes]:
    mutate, _ = MALFORMED[case]
    return _words(*mutate(*_ints(sig65)))


def _assert_refused_offchain(state, digest, domain, signature: bytes, signer: str) -> None:
    """`compact`, `recover_digest` and `verify_state` each refuse the 65-byte `signature`."""
    with pytest.raises(InvalidSignature):
        compact(signature)
    with pytest.raises(InvalidSignature):
        recover_digest(digest, signature)
    with pytest.raises(InvalidSignature):
        verify_state(state, domain, signature, signer)


@pytest.fixture(params=["register", "close"])
def entry(request, ledger, open_channel, stranger):
    """(submit, params, state): a funded channel and a state the entry point accepts when well signed.
    ``submit(state, sig_a, sig_b)`` passes the state in the entry point's shape: the whole state to
    register, its ``FinalState`` tuple to close."""
    params, state0 = open_channel()
    state = state0.pay(10**17, 0)
    if request.param == "close":
        state = state.finalized()

    def submit(state, sig_a, sig_b, channel_params=params, adjudicator=ledger):
        if request.param == "close":
            return adjudicator.close(channel_params.as_tuple(), state.final_tuple(), sig_a, sig_b, sender=stranger)
        return adjudicator.register(channel_params.as_tuple(), state.as_tuple(), sig_a, sig_b, sender=stranger)

    return submit, params, state


def _assert_untouched(ledger, params) -> None:
    assert tuple(ledger.holdings(params.channel_id)) == (10**18, 10**18, False)
    assert tuple(ledger.dispute(params.channel_id)) == (0, 0, ZERO_HASH)


def _assert_accepted(ledger, receipt, params, state) -> None:
    """The one event of a successful close (Concluded) or register (Registered)."""
    assert not receipt.failed
    assert len(receipt.logs) == 1
    if state.is_final:
        events = [
            (e.contract_address, bytes(e.channel), e.version, e.payout_a, e.payout_b)
            for e in receipt.decode_logs(ledger.Concluded)
        ]
        assert events == [(ledger.address, params.channel_id, state.version, state.balance_a, state.balance_b)]
        assert tuple(ledger.holdings(params.channel_id)) == (0, 0, True)
    else:
        deadline = receipt.timestamp + params.challenge_duration
        events = [
            (e.contract_address, bytes(e.channel), e.version, e.deadline)
            for e in receipt.decode_logs(ledger.Registered)
        ]
        assert events == [(ledger.address, params.channel_id, state.version, deadline)]
        # No locks: the dispute reports no locks hash.
        assert tuple(ledger.dispute(params.channel_id)) == (state.version, deadline, ZERO_HASH)


def test_signatures__valid__accepted(ledger, entry, sign, alice, bob):
    submit, params, state = entry
    before_a, before_b, before_ledger = alice.balance, bob.balance, ledger.balance
    receipt = submit(state, compact(sign(state, alice)), compact(sign(state, bob)))
    _assert_accepted(ledger, receipt, params, state)
    paid = (state.balance_a, state.balance_b) if state.is_final else (0, 0)
    assert (alice.balance - before_a, bob.balance - before_b) == paid
    assert before_ledger - ledger.balance == sum(paid)


def test_signatures__each_v_parity__accepted(ledger, open_channel, sign, alice, bob, stranger):
    # Bit 255 of vs carries v: every combination of the two signers' parities must verify. Signatures are
    # deterministic (RFC 6979), so walk a chain of states until each combination turned up once.
    params, state0 = open_channel()
    wanted = {(27, 27), (27, 28), (28, 27), (28, 28)}
    state, picked = state0, []
    for _ in range(200):
        state = state.pay(1, 0)
        sig_a, sig_b = sign(state, alice), sign(state, bob)
        parities = (sig_a[64], sig_b[64])
        if parities in wanted:
            wanted.remove(parities)
            picked.append((state, sig_a, sig_b))
        if not wanted:
            break
    assert not wanted
    for state, sig_a, sig_b in picked:  # increasing versions: each one replaces the previous
        assert (int.from_bytes(compact(sig_a)[1], "big") >> 255, int.from_bytes(compact(sig_b)[1], "big") >> 255) == (
            sig_a[64] - 27,
            sig_b[64] - 27,
        )
        receipt = ledger.register(params.as_tuple(), state.as_tuple(), compact(sig_a), compact(sig_b), sender=stranger)
        assert [e.version for e in receipt.decode_logs(ledger.Registered)] == [state.version]
    assert ledger.dispute(params.channel_id)[0] == picked[-1][0].version


@pytest.mark.parametrize("case", ["stranger_as_a", "stranger_as_b", "swapped", "alice_twice", "bob_twice"])
def test_signatures__wrong_signer__reverts(ledger, entry, sign, alice, bob, stranger, case):
    submit, params, state = entry
    sig_a, sig_b, sig_s = (compact(sign(state, account)) for account in (alice, bob, stranger))
    args = {
        "stranger_as_a": (sig_s, sig_b),
        "stranger_as_b": (sig_a, sig_s),
        "swapped": (sig_b, sig_a),
        "alice_twice": (sig_a, sig_a),
        "bob_twice": (sig_b, sig_b),
    }[case]
    with ape.reverts(LEDGER_WRONG_SIGNER):
        submit(state, *args)
    _assert_untouched(ledger, params)


# Both entry points share the check; each side's signature is mutated in turn.
@pytest.mark.parametrize("side", [0, 1])
@pytest.mark.parametrize("case", list(MALFORMED))
def test_signatures__malformed__reverts(ledger, entry, sign, alice, bob, case, side):
    submit, params, state = entry
    _, reason = MALFORMED[case]
    sigs = [compact(sign(state, alice)), compact(sign(state, bob))]
    sigs[side] = _mutated(sign(state, (alice, bob)[side]), case)
    with ape.reverts(reason):
        submit(state, *sigs)
    _assert_untouched(ledger, params)


def _recover_key(digest: bytes, r: int, s: int, v: int) -> str:
    """What ecrecover yields, without the low-s rule (eth-keys accepts any s below n)."""
    return keys.Signature(vrs=(v - 27, r, s)).recover_public_key_from_msg_hash(digest).to_checksum_address()


def test_signatures__high_s_twin__is_genuine_twin(domain, make_params, alice):
    # The refused twin really is a valid ECDSA signature by alice: only the low-s rule rejects it.
    params = make_params()
    state = LedgerState.initial(params.channel_id, 5, 5).pay(1, 0)
    digest = domain.digest(state.struct_hash())
    sig = sign_state(alice.private_key, state, domain)
    twin = _high_s_twin_65(sig)
    r, s, v = int.from_bytes(twin[:32], "big"), int.from_bytes(twin[32:64], "big"), twin[64]
    assert s > HALF_N
    assert v != sig[64]
    assert _recover_key(digest, r, s, v) == alice.address
    # The Python side refuses it: compact never turns it into an (r, vs) pair, recover/verify reject it.
    _assert_refused_offchain(state, digest, domain, twin, alice.address)
    # In the compact form the twin does not even fit: n - s needs bit 255 (v's bit). Its low 255 bits with
    # the flipped v bit are a low-s signature of someone else (the contract: "wrong signer").
    assert s > S_MASK
    truncated = expand(*_words(*_high_s_twin_truncated(*_ints(sig))))
    assert int.from_bytes(truncated[32:64], "big") <= HALF_N
    assert recover_digest(digest, truncated) not in (alice.address, "0x" + "00" * 20)
    # A malleable pair that does fit: (r, n/2) and its twin (r, n/2 + 1, v flipped) recover the same key;
    # the low one passes the form check, the twin is refused (on-chain: MALFORMED "s_half_order_twin").
    low = (r, HALF_N, sig[64])
    high = (r, SECP256K1_N - HALF_N, 55 - sig[64])
    assert high[1] == HALF_N + 1 <= S_MASK
    assert _recover_key(digest, *low) == _recover_key(digest, *high)
    low_65, high_65 = (x.to_bytes(32, "big") + y.to_bytes(32, "big") + bytes([z]) for x, y, z in (low, high))
    assert recover_digest(digest, low_65) == _recover_key(digest, *low)
    assert expand(*compact(low_65)) == low_65
    with pytest.raises(InvalidSignature):
        compact(high_65)
    with pytest.raises(InvalidSignature):
        recover_digest(digest, high_65)


@pytest.mark.parametrize("side", [0, 1])
def test_signatures__high_s__refused_then_original_accepted(ledger, entry, sign, alice, bob, side):
    # Every high s that fits in vs is refused with "invalid signature", the twin squeezed into vs recovers
    # someone else; the low-s original of the same signer then verifies.
    submit, params, state = entry
    signer = (alice, bob)[side]
    sigs = [compact(sign(state, alice)), compact(sign(state, bob))]
    for case, reason in (
        ("s_half_order_twin", INVALID),
        ("s_half_order_plus_1", INVALID),
        ("s_highest", INVALID),
        ("high_s_twin_truncated", LEDGER_WRONG_SIGNER),
    ):
        assert MALFORMED[case][1] == reason
        bad = list(sigs)
        bad[side] = _mutated(sign(state, signer), case)
        assert int.from_bytes(bad[side][1], "big") != int.from_bytes(sigs[side][1], "big")
        with ape.reverts(reason):
            submit(state, *bad)
    _assert_untouched(ledger, params)
    _assert_accepted(ledger, submit(state, *sigs), params, state)


def test_signatures__signed_for_other_channel__reverts(ledger, entry, open_channel, sign, alice, bob):
    submit, params, state = entry
    other, _ = open_channel()
    other_state = LedgerState(**{**state.__dict__, "channel": other.channel_id})
    sigs_other = (compact(sign(other_state, alice)), compact(sign(other_state, bob)))
    # The other channel's state, submitted for this channel: register sees the channel id inside the state;
    # close cannot be given one (it rebuilds the state with this channel's id), so the signatures fail.
    with ape.reverts(LEDGER_WRONG_SIGNER if state.is_final else LEDGER_OTHER_CHANNEL):
        submit(other_state, *sigs_other)
    # This channel's state carrying signatures made over the other channel's state.
    with ape.reverts(LEDGER_WRONG_SIGNER):
        submit(state, *sigs_other)
    _assert_untouched(ledger, params)
    # The other channel's state and its signatures are fine for the other channel.
    _assert_accepted(ledger, submit(other_state, *sigs_other, channel_params=other), other, other_state)


def test_signatures__signed_for_other_deployment__reverts(ledger, virtual, entry, project, deployer, alice, bob, chain):
    submit, params, state = entry
    second = deployer.deploy(project.LedgerAdjudicator, virtual)
    other_domain = Domain.ledger(chain.chain_id, second.address)
    assert second.DOMAIN_SEPARATOR() == other_domain.separator != ledger.DOMAIN_SEPARATOR()
    sigs = tuple(compact(sign_state(account.private_key, state, other_domain)) for account in (alice, bob))
    with ape.reverts(LEDGER_WRONG_SIGNER):
        submit(state, *sigs)
    _assert_untouched(ledger, params)
    # The same signatures are accepted by the deployment they were made for.
    second.deposit(params.channel_id, 0, value=10**18, sender=alice)
    second.deposit(params.channel_id, 1, value=10**18, sender=bob)
    _assert_accepted(second, submit(state, *sigs, adjudicator=second), params, state)


def test_signatures__signed_for_other_chain_id__reverts(ledger, entry, alice, bob, chain):
    submit, params, state = entry
    other_chain = Domain.ledger(chain.chain_id + 1, ledger.address)
    sigs = tuple(compact(sign_state(account.private_key, state, other_chain)) for account in (alice, bob))
    with ape.reverts(LEDGER_WRONG_SIGNER):
        submit(state, *sigs)
    _assert_untouched(ledger, params)


def test_signatures__register_same_state_bad_signatures__reverts_invalid(
    ledger, open_channel, signed, alice, bob, stranger
):
    # Re-registering the registered state is a no-op only with valid signatures: register checks them
    # before it compares the outcome with the registered one.
    params, state0 = open_channel()
    state = state0.pay(1, 0)
    first = ledger.register(params.as_tuple(), *signed(state), sender=stranger)
    before = tuple(ledger.dispute(params.channel_id))
    assert before == (1, first.timestamp + params.challenge_duration, ZERO_HASH)
    zero = (ZERO_HASH, ZERO_HASH)
    with ape.reverts(INVALID):
        ledger.register(params.as_tuple(), state.as_tuple(), zero, zero, sender=stranger)
    with ape.reverts(LEDGER_WRONG_SIGNER):
        ledger.register(params.as_tuple(), *signed(state, bob, alice), sender=stranger)
    # With its signatures it is a no-op: no event, the dispute unchanged.
    again = ledger.register(params.as_tuple(), *signed(state), sender=stranger)
    assert len(again.logs) == 0
    assert tuple(ledger.dispute(params.channel_id)) == before
    # A new state with bad signatures is checked too.
    with ape.reverts(INVALID):
        ledger.register(params.as_tuple(), state.pay(1, 0).as_tuple(), zero, zero, sender=stranger)
    assert tuple(ledger.dispute(params.channel_id)) == before


# --- the Python side refuses the same signatures --------------------------------------------------


@pytest.fixture
def signed_digest(domain, make_params, alice):
    params = make_params()
    state = LedgerState.initial(params.channel_id, 10**18, 10**18).pay(10**17, 0)
    return state, domain.digest(state.struct_hash()), sign_state(alice.private_key, state, domain)


def test_recover_digest__valid__returns_signer(signed_digest, domain, alice):
    state, digest, sig = signed_digest
    assert recover_digest(digest, sig) == alice.address
    assert recover_digest(digest, expand(*compact(sig))) == alice.address
    verify_state(state, domain, sig, alice.address)  # does not raise


@pytest.mark.parametrize("case", list(MALFORMED))
def test_recover_digest__malformed__matches_contract(signed_digest, domain, alice, case):
    # Each compact pair the contract refuses, expanded to 65 bytes: the Python side agrees.
    state, digest, sig = signed_digest
    _, reason = MALFORMED[case]
    bad = expand(*_mutated(sig, case))
    if reason == INVALID:
        with pytest.raises(InvalidSignature):
            recover_digest(digest, bad)
    else:
        recovered = recover_digest(digest, bad)
        assert recovered != alice.address and int(recovered, 16) != 0
    with pytest.raises(InvalidSignature):
        verify_state(state, domain, bad, alice.address)


def _with_v(v: int):
    return lambda sig: sig[:64] + bytes([v])


# 65-byte forms that have no compact counterpart, or whose compact form would change the meaning:
# ``compact`` refuses them all, so none reaches the chain.
COMPACT_REFUSED = {
    "64_bytes": lambda sig: sig[:64],
    "66_bytes": lambda sig: sig + b"\x1b",
    "empty": lambda sig: b"",
    "v_0": _with_v(0),
    "v_1": _with_v(1),
    "v_29": _with_v(29),
    "v_0x9c": _with_v(0x9C),
    "v_raw_parity": lambda sig: sig[:64] + bytes([sig[64] - 27]),
    "r_zero": lambda sig: bytes(32) + sig[32:],
    "s_zero": lambda sig: sig[:32] + bytes(32) + sig[64:],
    "r_and_s_zero": lambda sig: bytes(64) + sig[64:],
    "high_s_twin": _high_s_twin_65,
    "s_half_order_plus_1": lambda sig: sig[:32] + (HALF_N + 1).to_bytes(32, "big") + sig[64:],
}


@pytest.mark.parametrize("case", list(COMPACT_REFUSED))
def test_compact__malformed__raises_invalid_signature(signed_digest, domain, alice, case):
    state, digest, sig = signed_digest
    bad = COMPACT_REFUSED[case](sig)
    assert bad != sig
    _assert_refused_offchain(state, digest, domain, bad, alice.address)


def test_compact__valid_low_s__expand_round_trips(domain, make_params, alice, bob):
    # Both v values, from several signers and states: (r, vs) packs v - 27 into bit 255 and expand undoes it.
    params = make_params()
    state, seen = LedgerState.initial(params.channel_id, 10**18, 10**18), set()
    for _ in range(40):
        state = state.pay(1, 0)
        for account in (alice, bob):
            sig = sign_state(account.private_key, state, domain)
            r, vs = compact(sig)
            assert (len(r), len(vs)) == (32, 32)
            assert r == sig[:32]
            assert int.from_bytes(vs, "big") == int.from_bytes(sig[32:64], "big") | (sig[64] - 27) << 255
            assert expand(r, vs) == sig
            assert expand(*compact(sig)) == sig
            seen.add(sig[64])
    assert seen == {27, 28}


def test_verify_state__wrong_signer__raises(signed_digest, domain, bob, stranger):
    state, _, sig_alice = signed_digest
    with pytest.raises(InvalidSignature):
        verify_state(state, domain, sig_alice, bob.address)
    with pytest.raises(InvalidSignature):
        verify_state(state, domain, sign_state(stranger.private_key, state, domain), bob.address)


def test_verify_state__other_channel_or_domain__raises(signed_digest, domain, make_params, alice, chain):
    state, _, sig = signed_digest
    other_state = LedgerState(**{**state.__dict__, "channel": make_params().channel_id})
    with pytest.raises(InvalidSignature):
        verify_state(other_state, domain, sig, alice.address)
    other_domain = Domain.ledger(chain.chain_id, "0x" + "11" * 20)
    with pytest.raises(InvalidSignature):
        verify_state(state, other_domain, sig, alice.address)
