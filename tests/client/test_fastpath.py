"""The hot path (perun_vyper.fastpath) computes exactly what the general functions compute."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perun_vyper import (
    MAX_AMOUNT,
    Domain,
    InvalidSignature,
    LedgerState,
    Lock,
    VirtualState,
    recover_digest,
    sign_digest,
)
from perun_vyper.constants import HALF_N, SECP256K1_N
from perun_vyper.fastpath import (
    Signer,
    digest_prefix,
    keccak256,
    ledger_state_hash,
    recover_address,
    state_digest,
    virtual_state_hash,
)
from tests.support.parties import LEDGER_DOMAIN, VIRTUAL_DOMAIN

amounts = st.integers(0, MAX_AMOUNT)
ids = st.binary(min_size=32, max_size=32)
versions = st.integers(0, 2**64 - 1)


@st.composite
def ledger_states(draw) -> LedgerState:
    # Ten amounts of at most MAX_AMOUNT // 5 sum to at most 2 * MAX_AMOUNT: fundable by two sides.
    part = st.one_of(st.integers(0, 2**64), st.integers(0, MAX_AMOUNT // 5), st.just(MAX_AMOUNT // 5))
    locks = tuple(draw(st.lists(st.builds(Lock, ids, part, part), max_size=4)))
    balance_a, balance_b = draw(part), draw(part)
    total = balance_a + balance_b + sum(lock.amount_a + lock.amount_b for lock in locks)
    funding_a = draw(st.integers(max(0, total - MAX_AMOUNT), min(total, MAX_AMOUNT)))
    return LedgerState(
        draw(ids), draw(versions), balance_a, balance_b, funding_a, total - funding_a, locks, draw(st.booleans())
    )


@given(ledger_states())
def test_ledger_state_hash__any_state__equals_struct_hash(state):
    assert ledger_state_hash(state) == state.struct_hash()


@given(ids, versions, amounts, amounts, st.booleans())
def test_virtual_state_hash__any_state__equals_struct_hash(channel, version, alice, bob, final):
    state = VirtualState(channel, version, alice, bob, final)
    assert virtual_state_hash(state) == state.struct_hash()


def test_ledger_state_hash__max_amounts__equals_struct_hash():
    state = LedgerState(b"\xff" * 32, 2**64 - 1, MAX_AMOUNT, MAX_AMOUNT, MAX_AMOUNT, MAX_AMOUNT, (), True)
    assert ledger_state_hash(state) == state.struct_hash()


def test_ledger_state_hash__short_lock_id__falls_back_to_eth_abi():
    state = LedgerState(b"\x01" * 32, 1, 0, 0, 5, 0, (Lock(b"\x02" * 3, 5, 0),))
    assert ledger_state_hash(state) == state.struct_hash()


@given(ledger_states(), st.integers(1, 2**64), st.binary(min_size=20, max_size=20))
def test_state_digest__any_domain__equals_domain_digest(state, chain_id, contract):
    domain = Domain("PerunLedger", "1", chain_id, "0x" + contract.hex())
    assert state_digest(digest_prefix(domain), state) == domain.digest(state.struct_hash())


@given(st.binary(max_size=300))
def test_keccak256__equals_eth_utils(data):
    from eth_utils import keccak

    assert keccak256(data) == keccak(data)


@given(st.integers(1, SECP256K1_N - 1), st.binary(min_size=32, max_size=32))
def test_signer__any_key__same_signature_and_address_as_eth_keys(key, digest):
    raw = key.to_bytes(32, "big")
    signer = Signer(raw)
    from eth_keys import keys

    assert signer.address == keys.PrivateKey(raw).public_key.to_checksum_address()
    signature = signer.sign(digest)
    assert signature == sign_digest(raw, digest)
    assert int.from_bytes(signature[32:64], "big") <= HALF_N and signature[64] in (27, 28)
    assert recover_address(digest, signature) == signer.address_bytes
    assert "0x" + recover_address(digest, signature).hex() == recover_digest(digest, signature).lower()


def _signature() -> tuple[bytes, bytes]:
    digest = state_digest(digest_prefix(VIRTUAL_DOMAIN), VirtualState(b"\x05" * 32, 3, 1, 2))
    return digest, Signer(b"\x07" * 32).sign(digest)


def _with(signature: bytes, r: int | None = None, s: int | None = None, v: int | None = None) -> bytes:
    r_bytes = signature[:32] if r is None else r.to_bytes(32, "big")
    s_bytes = signature[32:64] if s is None else s.to_bytes(32, "big")
    return r_bytes + s_bytes + bytes([signature[64] if v is None else v])


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("short", "65 bytes"),
        ("long", "65 bytes"),
        ("r zero", "r or s is zero"),
        ("s zero", "r or s is zero"),
        ("high s", "upper half"),
        ("v 0", "v must be 27 or 28"),
        ("v 29", "v must be 27 or 28"),
        ("r at n", "does not recover"),
        ("r not on curve", "does not recover"),
    ],
)
def test_recover_address__malformed_signature__refused_like_recover_digest(case, fragment):
    digest, signature = _signature()
    s = int.from_bytes(signature[32:64], "big")
    bad = {
        "short": signature[:64],
        "long": signature + b"\x00",
        "r zero": _with(signature, r=0),
        "s zero": _with(signature, s=0),
        "high s": _with(signature, s=SECP256K1_N - s),
        "v 0": _with(signature, v=0),
        "v 29": _with(signature, v=29),
        "r at n": _with(signature, r=SECP256K1_N),
        "r not on curve": _with(signature, r=5),  # x = 5 is not on secp256k1
    }[case]
    with pytest.raises(InvalidSignature, match=fragment):
        recover_address(digest, bad)
    with pytest.raises(InvalidSignature, match=fragment):
        recover_digest(digest, bad)


def test_recover_address__other_digest__recovers_another_signer_as_recover_digest():
    _, signature = _signature()
    other = keccak256(b"other")
    assert "0x" + recover_address(other, signature).hex() == recover_digest(other, signature).lower()
    assert recover_address(other, signature) != Signer(b"\x07" * 32).address_bytes


def test_digest_prefix__is_1901_and_separator():
    assert digest_prefix(LEDGER_DOMAIN) == b"\x19\x01" + LEDGER_DOMAIN.separator
