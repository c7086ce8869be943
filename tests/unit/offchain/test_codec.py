"""The EIP-712 codec and the signer equal their slow oracles: eth-abi's encoding of each struct written out
by hand from the contracts' type strings, and eth-keys' signing and recovery."""

import pytest
from eth_abi import encode
from eth_keys import keys
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from perun_vyper import (
    MAX_AMOUNT,
    ChannelParams,
    Domain,
    InvalidSignature,
    LedgerState,
    Lock,
    Signer,
    VirtualState,
    recover,
    recover_digest,
    sign_digest,
)
from perun_vyper.core.codec import CHANNEL_PARAMS, LEDGER_STATE, LOCK, VIRTUAL_PARAMS, VIRTUAL_STATE, keccak256
from perun_vyper.core.constants import HALF_N, SECP256K1_N
from tests.support.parties import VIRTUAL_DOMAIN

amounts = st.integers(0, MAX_AMOUNT)
ids = st.binary(min_size=32, max_size=32)
versions = st.integers(0, 2**64 - 1)

# The type strings as the contracts spell them (contracts/modules/ledger_types.vy, virtual_types.vy).
LOCK_TYPE = "Lock(bytes32 channel,uint256 amountA,uint256 amountB)"
LEDGER_STATE_TYPE = (
    "LedgerState(bytes32 channel,uint64 version,uint256 balanceA,uint256 balanceB,"
    "uint256 fundingA,uint256 fundingB,Lock[] locks,bool isFinal)" + LOCK_TYPE
)
VIRTUAL_STATE_TYPE = "VirtualState(bytes32 channel,uint64 version,uint256 balanceAlice,uint256 balanceBob,bool isFinal)"
PARAMS_TYPE = (
    "ChannelParams(address participantA,address participantB,address asset,uint64 challengeDuration,uint256 nonce)"
)
VIRTUAL_PARAMS_TYPE = (
    "VirtualParams(address alice,address bob,address ingrid,address asset,address ledgerAdjudicator,uint256 chainId,"
    "bytes32 ledgerAlice,bytes32 ledgerBob,"
    "uint256 fundingAlice,uint256 fundingBob,uint64 validity,uint64 challengeDuration,uint256 nonce)"
)
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"


def _slow_ledger_hash(state: LedgerState) -> bytes:
    lock_hashes = b"".join(
        keccak(encode(["bytes32", "bytes32", "uint256", "uint256"], [keccak(text=LOCK_TYPE), *lock.as_tuple()]))
        for lock in state.locks
    )
    types = ["bytes32", "bytes32", "uint64", "uint256", "uint256", "uint256", "uint256", "bytes32", "bool"]
    values = [keccak(text=LEDGER_STATE_TYPE), state.channel, state.version, state.balance_a, state.balance_b]
    values += [state.funding_a, state.funding_b, keccak(lock_hashes), state.is_final]
    return keccak(encode(types, values))


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


def test_type_strings__equal_the_contracts():
    assert (LOCK.encode_type, LEDGER_STATE.encode_type) == (LOCK_TYPE, LEDGER_STATE_TYPE)
    assert (VIRTUAL_STATE.encode_type, VIRTUAL_PARAMS.encode_type) == (VIRTUAL_STATE_TYPE, VIRTUAL_PARAMS_TYPE)
    assert CHANNEL_PARAMS.encode_type == PARAMS_TYPE
    assert LEDGER_STATE.type_hash == keccak(text=LEDGER_STATE_TYPE)


@given(ledger_states())
def test_ledger_state_hash__any_state__equals_eth_abi(state):
    assert state.struct_hash() == _slow_ledger_hash(state)


@given(ids, versions, amounts, amounts, st.booleans())
def test_virtual_state_hash__any_state__equals_eth_abi(channel, version, alice, bob, final):
    state = VirtualState(channel, version, alice, bob, final)
    types = ["bytes32", "bytes32", "uint64", "uint256", "uint256", "bool"]
    expected = keccak(encode(types, [keccak(text=VIRTUAL_STATE_TYPE), channel, version, alice, bob, final]))
    assert state.struct_hash() == expected


def test_ledger_state_hash__max_amounts__equals_eth_abi():
    state = LedgerState(b"\xff" * 32, 2**64 - 1, MAX_AMOUNT, MAX_AMOUNT, MAX_AMOUNT, MAX_AMOUNT, (), True)
    assert state.struct_hash() == _slow_ledger_hash(state)


@pytest.mark.parametrize("length", [3, 31, 33])
def test_lock__channel_not_32_bytes__refused(length):
    with pytest.raises(ValueError, match="32-byte virtual channel id"):
        Lock(b"\x02" * length, 5, 0)


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**256 - 1), st.booleans())
def test_channel_id__any_params__equals_eth_abi(duration_offset, nonce, token):
    params = ChannelParams("0x" + "aa" * 20, "0x" + "bb" * 20, "0x" + ("cc" if token else "00") * 20, 3600, nonce)
    types = ["bytes32", "address", "address", "address", "uint64", "uint256"]
    digest = keccak(encode(types, [keccak(text=PARAMS_TYPE), *params.as_tuple()]))
    expected = (int.from_bytes(digest, "big") & ~(1 << 255)) | (int(token) << 255)
    assert params.channel_id == expected.to_bytes(32, "big")


@given(ledger_states(), st.integers(1, 2**64), st.binary(min_size=20, max_size=20))
def test_domain_digest__any_domain__equals_eth_abi(state, chain_id, contract):
    domain = Domain("PerunLedger", "1", chain_id, "0x" + contract.hex())
    separator = keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [keccak(text=DOMAIN_TYPE), keccak(text="PerunLedger"), keccak(text="1"), chain_id, "0x" + contract.hex()],
        )
    )
    assert domain.separator == separator
    assert domain.digest(state.struct_hash()) == keccak(b"\x19\x01" + separator + _slow_ledger_hash(state))


@given(st.binary(max_size=300))
def test_keccak256__equals_eth_utils(data):
    assert keccak256(data) == keccak(data)


@given(st.integers(1, SECP256K1_N - 1), st.binary(min_size=32, max_size=32))
def test_signer__any_key__same_signature_and_address_as_eth_keys(key, digest):
    raw = key.to_bytes(32, "big")
    signer = Signer(raw)
    oracle = keys.PrivateKey(raw)
    assert signer.address == oracle.public_key.to_checksum_address()
    signature = signer.sign(digest)
    theirs = oracle.sign_msg_hash(digest)
    assert signature == theirs.r.to_bytes(32, "big") + theirs.s.to_bytes(32, "big") + bytes([theirs.v + 27])
    assert signature == sign_digest(raw, digest)
    assert int.from_bytes(signature[32:64], "big") <= HALF_N and signature[64] in (27, 28)
    assert recover(digest, signature) == signer.address_bytes
    assert recover_digest(digest, signature) == signer.address


@pytest.mark.parametrize("key", [bytes(32), SECP256K1_N.to_bytes(32, "big"), b"\x01" * 31])
def test_signer__invalid_key__refused_with_invalid_params(key):
    from perun_vyper import InvalidParams

    with pytest.raises(InvalidParams, match="not a secp256k1 private key"):
        Signer(key)


def _signature() -> tuple[bytes, bytes]:
    digest = VIRTUAL_DOMAIN.digest(VirtualState(b"\x05" * 32, 3, 1, 2).struct_hash())
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
def test_recover__malformed_signature__refused(case, fragment):
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
        recover(digest, bad)
    with pytest.raises(InvalidSignature, match=fragment):
        recover_digest(digest, bad)


def test_recover__other_digest__recovers_another_signer_as_eth_keys():
    _, signature = _signature()
    other = keccak256(b"other")
    oracle = keys.Signature(vrs=(signature[64] - 27, *(int.from_bytes(signature[i : i + 32], "big") for i in (0, 32))))
    assert recover(other, signature) == oracle.recover_public_key_from_msg_hash(other).to_canonical_address()
    assert recover(other, signature) != Signer(b"\x07" * 32).address_bytes
