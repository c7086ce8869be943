"""The per-payment hot path: EIP-712 hashing by direct 32-byte packing and secp256k1 through coincurve.

Each function here computes exactly what a slower, general function of this package computes
(``LedgerState.struct_hash``, ``VirtualState.struct_hash``, ``Domain.digest``, ``sign_digest``,
``recover_digest``); ``tests/client/test_fastpath.py`` keeps them equal. What is saved per call:
eth-abi's type dispatch (~25 us per struct hash), the eth-hash wrapper around keccak, eth-keys'
object layers around libsecp256k1, and the EIP-55 checksum of the recovered address (signers are
compared as 20 raw bytes).
"""

from __future__ import annotations

from functools import lru_cache

import coincurve
from eth_utils import to_canonical_address, to_checksum_address

from .eip712 import Domain
from .errors import InvalidSignature
from .signing import check_signature_form
from .state import LEDGER_STATE_TYPE_HASH, LOCK_TYPE_HASH, LedgerState
from .virtual import VIRTUAL_STATE_TYPE_HASH, VirtualState

_FALSE = bytes(32)
_TRUE = bytes(31) + b"\x01"


try:
    from Crypto.Hash import keccak as _keccak

    def keccak256(data: bytes) -> bytes:
        """Keccak-256 (Ethereum's, not SHA3-256) through pycryptodome, without eth-hash's dispatch."""
        return _keccak.new(data=data, digest_bits=256).digest()

except ImportError:  # pragma: no cover - eth-hash with another backend
    from eth_utils import keccak as keccak256


_EMPTY_LOCKS_HASH = keccak256(b"")


def ledger_state_hash(state: LedgerState) -> bytes:
    """``state.struct_hash()``: every field is one 32-byte big-endian word (bytes32 as is)."""
    if state.locks:
        words = []
        for lock in state.locks:
            if len(lock.channel) != 32:  # eth-abi pads or refuses; leave such a lock to it
                return state.struct_hash()
            words.append(
                keccak256(
                    LOCK_TYPE_HASH
                    + lock.channel
                    + lock.amount_a.to_bytes(32, "big")
                    + lock.amount_b.to_bytes(32, "big")
                )
            )
        locks_hash = keccak256(b"".join(words))
    else:
        locks_hash = _EMPTY_LOCKS_HASH
    return keccak256(
        b"".join(
            (
                LEDGER_STATE_TYPE_HASH,
                state.channel,
                state.version.to_bytes(32, "big"),
                state.balance_a.to_bytes(32, "big"),
                state.balance_b.to_bytes(32, "big"),
                state.funding_a.to_bytes(32, "big"),
                state.funding_b.to_bytes(32, "big"),
                locks_hash,
                _TRUE if state.is_final else _FALSE,
            )
        )
    )


def virtual_state_hash(state: VirtualState) -> bytes:
    """``state.struct_hash()`` of a virtual state."""
    return keccak256(
        b"".join(
            (
                VIRTUAL_STATE_TYPE_HASH,
                state.channel,
                state.version.to_bytes(32, "big"),
                state.balance_alice.to_bytes(32, "big"),
                state.balance_bob.to_bytes(32, "big"),
                _TRUE if state.is_final else _FALSE,
            )
        )
    )


def state_hash(state: LedgerState | VirtualState) -> bytes:
    return ledger_state_hash(state) if isinstance(state, LedgerState) else virtual_state_hash(state)


def digest_prefix(domain: Domain) -> bytes:
    """``0x1901 || domainSeparator``: what every digest in ``domain`` starts with (computed once)."""
    return b"\x19\x01" + domain.separator


def state_digest(prefix: bytes, state: LedgerState | VirtualState) -> bytes:
    """``domain.digest(state.struct_hash())`` given ``digest_prefix(domain)``."""
    return keccak256(prefix + state_hash(state))


class Signer:
    """A private key held as a libsecp256k1 key; signs digests as ``sign_digest`` does (RFC 6979, low s)."""

    __slots__ = ("_key", "address", "address_bytes")

    def __init__(self, private_key: bytes | str) -> None:
        raw = bytes.fromhex(private_key.removeprefix("0x")) if isinstance(private_key, str) else bytes(private_key)
        self._key = coincurve.PrivateKey(raw)
        self.address_bytes = _address_of_public_key(self._key.public_key.format(compressed=False))
        self.address = to_checksum_address(self.address_bytes)

    def sign(self, digest: bytes) -> bytes:
        """65 bytes ``r || s || v`` with ``v`` in {27, 28}; libsecp256k1 always returns the low-s form."""
        signature = self._key.sign_recoverable(digest, hasher=None)
        return signature[:64] + bytes((signature[64] + 27,))

    def __repr__(self) -> str:  # never show the key
        return f"Signer({self.address})"


@lru_cache(maxsize=4096)
def _address_of_public_key(uncompressed: bytes) -> bytes:
    return keccak256(uncompressed[1:])[12:]


def recover_address(digest: bytes, signature: bytes) -> bytes:
    """The 20-byte signer of ``digest``; refuses exactly what ``recover_digest`` (and the adjudicator) refuse."""
    _, _, v = check_signature_form(signature)
    try:
        public_key = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes((v - 27,)), digest, hasher=None
        )
    except Exception as exc:  # coincurve raises ValueError or its own errors for r >= n or no key
        raise InvalidSignature(f"the signature does not recover a key: {exc}") from exc
    return _address_of_public_key(public_key.format(compressed=False))


def verify_digest(digest: bytes, signature: bytes, signer: bytes) -> None:
    """Raise InvalidSignature unless the 20-byte address ``signer`` signed ``digest``."""
    recovered = recover_address(digest, signature)
    if recovered != signer:
        raise InvalidSignature(f"signed by {to_checksum_address(recovered)}, expected {to_checksum_address(signer)}")


def address_bytes(address: str) -> bytes:
    return to_canonical_address(address)
