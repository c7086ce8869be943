"""Signature checks of register and close, and the same refusals in perun_vyper's recover/verify."""

import ape
import pytest
from eth_keys import keys
from eth_utils import keccak

from perun_vyper import Domain, InvalidSignature, LedgerState, recover_digest, sign_state, verify_state
from perun_vyper.constants import DOMAIN_VERSION, HALF_N, LEDGER_DOMAIN_NAME, SECP256K1_N

INVALID = "ledger: invalid signature"
WRONG = "ledger: wrong signer"

# Fixed "random" signatures. Whether an r recovers at all depends only on r (is it the x of a
# curve point), not on the digest, so the outcome is the same for every state.
# v = 0x9c: refused before recovery.
RANDOM_65 = keccak(b"perun random sig 1") + keccak(b"perun random sig 2") + b"\x9c"
# Well-formed (v = 27, low s) and r is on the curve: recovers some unrelated address.
RANDOM_RECOVERS = keccak(b"perun random r 0") + keccak(b"perun random s 0") + b"\x1b"
# Well-formed but r is not the x of any curve point: ecrecover yields nothing.
RANDOM_NO_POINT = keccak(b"perun random r 3") + keccak(b"perun random s 3") + b"\x1b"


def _split(sig: bytes) -> tuple[int, int, int]:
    return int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64]


def _join(r: int, s: int, v: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])


def _high_s_twin(sig: bytes) -> bytes:
    r, s, v = _split(sig)
    return _join(r, SECP256K1_N - s, 55 - v)  # 27 <-> 28


def _with_v(v: int):
    return lambda sig: sig[:64] + bytes([v])


# name -> (mutation of a valid signature, contract revert reason)
MALFORMED = {
    "high_s_twin": (_high_s_twin, INVALID),
    "v_0": (_with_v(0), INVALID),
    "v_1": (_with_v(1), INVALID),
    "v_29": (_with_v(29), INVALID),
    "v_raw_parity": (lambda sig: sig[:64] + bytes([sig[64] - 27]), INVALID),
    "r_zero": (lambda sig: bytes(32) + sig[32:], INVALID),
    "s_zero": (lambda sig: sig[:32] + bytes(32) + sig[64:], INVALID),
    "r_and_s_zero": (lambda sig: bytes(64) + sig[64:], INVALID),
    "64_bytes": (lambda sig: sig[:64], INVALID),
    "empty": (lambda sig: b"", INVALID),
    "random_65_bytes": (lambda sig: RANDOM_65, INVALID),
    "random_no_curve_point": (lambda sig: RANDOM_NO_POINT, INVALID),
    "random_recovers_stranger": (lambda sig: RANDOM_RECOVERS, WRONG),
}


@pytest.fixture(params=["register", "close"])
def entry(request, ledger, open_channel, stranger):
    """(submit, params, state): a funded channel and a state the entry point accepts when well signed."""
    params, state0 = open_channel()
    state = state0.pay(10**17, 0)
    if request.param == "close":
        state = state.finalized()

    def submit(state_tuple, sig_a, sig_b, channel_params=params):
        fn = getattr(ledger, request.param)
        return fn(channel_params.as_tuple(), state_tuple, sig_a, sig_b, sender=stranger)

    return submit, params, state


def test_signatures__valid__accepted(ledger, entry, signed):
    submit, params, state = entry
    receipt = submit(*signed(state))
    assert not receipt.failed
    assert len(receipt.logs) == 1
    if state.is_final:
        assert [e.version for e in receipt.decode_logs(ledger.Concluded)] == [2]
        assert tuple(ledger.holdings(params.channel_id)) == (0, 0, True)
    else:
        assert [e.version for e in receipt.decode_logs(ledger.Registered)] == [1]
        assert ledger.dispute(params.channel_id)[2] == state.struct_hash()


@pytest.mark.parametrize(
    ("entry", "case"),
    [
        ("register", "stranger_as_a"),
        ("register", "stranger_as_b"),
        ("register", "swapped"),
        ("register", "alice_twice"),
        ("register", "bob_twice"),
        ("close", "stranger_as_a"),
        ("close", "swapped"),
    ],
    indirect=["entry"],
)
def test_signatures__wrong_signer__reverts(ledger, entry, sign, alice, bob, stranger, case):
    submit, params, state = entry
    sig_a, sig_b, sig_s = sign(state, alice), sign(state, bob), sign(state, stranger)
    args = {
        "stranger_as_a": (sig_s, sig_b),
        "stranger_as_b": (sig_a, sig_s),
        "swapped": (sig_b, sig_a),
        "alice_twice": (sig_a, sig_a),
        "bob_twice": (sig_b, sig_b),
    }[case]
    with ape.reverts(WRONG):
        submit(state.as_tuple(), *args)
    assert tuple(ledger.holdings(params.channel_id)) == (10**18, 10**18, False)
    assert ledger.dispute(params.channel_id)[0:2] == (0, 0)


# Both entry points share the check: side A's signature goes through register, side B's through close.
@pytest.mark.parametrize(("entry", "side"), [("register", 0), ("close", 1)], indirect=["entry"])
@pytest.mark.parametrize("case", list(MALFORMED))
def test_signatures__malformed__reverts(ledger, entry, sign, alice, bob, case, side):
    submit, params, state = entry
    mutate, reason = MALFORMED[case]
    sigs = [sign(state, alice), sign(state, bob)]
    sigs[side] = mutate(sigs[side])
    with ape.reverts(reason):
        submit(state.as_tuple(), *sigs)
    assert tuple(ledger.holdings(params.channel_id)) == (10**18, 10**18, False)
    assert ledger.dispute(params.channel_id)[0:2] == (0, 0)


def test_signatures__high_s_twin__is_genuine_twin(domain, make_params, alice):
    # The refused twin really is a valid ECDSA signature by alice: only the low-s rule rejects it.
    params = make_params()
    state = LedgerState.initial(params.channel_id, 5, 5).pay(1, 0)
    digest = domain.digest(state.struct_hash())
    r, s, v = _split(_high_s_twin(sign_state(alice.private_key, state, domain)))
    assert s > HALF_N
    recovered = keys.Signature(vrs=(v - 27, r, s)).recover_public_key_from_msg_hash(digest)
    assert recovered.to_checksum_address() == alice.address


def test_signatures__signed_for_other_channel__reverts(ledger, entry, open_channel, sign, alice, bob):
    submit, _, state = entry
    other, _ = open_channel()
    other_state = LedgerState(**{**state.__dict__, "channel": other.channel_id})
    sigs_other = (sign(other_state, alice), sign(other_state, bob))
    # The other channel's state, submitted for this channel.
    with ape.reverts("ledger: state for another channel"):
        submit(other_state.as_tuple(), *sigs_other)
    # This channel's state carrying signatures made over the other channel's state.
    with ape.reverts(WRONG):
        submit(state.as_tuple(), *sigs_other)
    # The other channel's state and its signatures are fine for the other channel.
    receipt = submit(other_state.as_tuple(), *sigs_other, channel_params=other)
    assert len(receipt.logs) == 1


def test_signatures__signed_for_other_deployment__reverts(
    ledger, virtual, entry, project, deployer, alice, bob, stranger, chain
):
    submit, params, state = entry
    second = deployer.deploy(project.LedgerAdjudicator, virtual)
    other_domain = Domain(LEDGER_DOMAIN_NAME, DOMAIN_VERSION, chain.chain_id, second.address)
    assert second.DOMAIN_SEPARATOR() == other_domain.separator != ledger.DOMAIN_SEPARATOR()
    sigs = (sign_state(alice.private_key, state, other_domain), sign_state(bob.private_key, state, other_domain))
    with ape.reverts(WRONG):
        submit(state.as_tuple(), *sigs)
    # The same signatures are accepted by the deployment they were made for.
    second.deposit(params.channel_id, 0, value=10**18, sender=alice)
    second.deposit(params.channel_id, 1, value=10**18, sender=bob)
    fn = second.close if state.is_final else second.register
    receipt = fn(params.as_tuple(), state.as_tuple(), *sigs, sender=stranger)
    assert len(receipt.logs) == 1


def test_signatures__signed_for_other_chain_id__reverts(ledger, entry, alice, bob, chain):
    submit, _, state = entry
    other_chain = Domain(LEDGER_DOMAIN_NAME, DOMAIN_VERSION, chain.chain_id + 1, ledger.address)
    sigs = (sign_state(alice.private_key, state, other_chain), sign_state(bob.private_key, state, other_chain))
    with ape.reverts(WRONG):
        submit(state.as_tuple(), *sigs)


def test_signatures__register_noop_skips_signature_check(ledger, make_params, open_channel, signed, stranger):
    # Documented behaviour: re-registering the registered state returns before checking signatures.
    params, state0 = open_channel()
    state = state0.pay(1, 0)
    ledger.register(params.as_tuple(), *signed(state), sender=stranger)
    receipt = ledger.register(params.as_tuple(), state.as_tuple(), RANDOM_65, b"", sender=stranger)
    assert len(receipt.logs) == 0
    # A new state with the same bad signatures is checked.
    with ape.reverts(INVALID):
        ledger.register(params.as_tuple(), state.pay(1, 0).as_tuple(), RANDOM_65, b"", sender=stranger)


# --- the Python side refuses the same signatures --------------------------------------------------


@pytest.fixture
def signed_digest(domain, make_params, alice):
    params = make_params()
    state = LedgerState.initial(params.channel_id, 10**18, 10**18).pay(10**17, 0)
    return state, domain.digest(state.struct_hash()), sign_state(alice.private_key, state, domain)


def test_recover_digest__valid__returns_signer(signed_digest, domain, alice):
    state, digest, sig = signed_digest
    assert recover_digest(digest, sig) == alice.address
    verify_state(state, domain, sig, alice.address)  # does not raise


@pytest.mark.parametrize("case", list(MALFORMED))
def test_recover_digest__malformed__matches_contract(signed_digest, domain, alice, case):
    state, digest, sig = signed_digest
    mutate, reason = MALFORMED[case]
    bad = mutate(sig)
    if reason == INVALID:
        with pytest.raises(InvalidSignature):
            recover_digest(digest, bad)
    else:
        recovered = recover_digest(digest, bad)
        assert recovered != alice.address and int(recovered, 16) != 0
    with pytest.raises(InvalidSignature):
        verify_state(state, domain, bad, alice.address)


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
    other_domain = Domain(LEDGER_DOMAIN_NAME, DOMAIN_VERSION, chain.chain_id, "0x" + "11" * 20)
    with pytest.raises(InvalidSignature):
        verify_state(state, other_domain, sig, alice.address)
