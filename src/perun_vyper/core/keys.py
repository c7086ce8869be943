"""Signatures: one signer and one recover, both through libsecp256k1 (coincurve).

A signature is 65 bytes ``r || s || v`` with ``v`` in {27, 28} and ``s`` in the lower half of the curve
order; the adjudicators take it in the EIP-2098 form ``(r, vs)`` (``compact``). ``check_signature_form``
refuses exactly what the adjudicators refuse before recovery, so a malformed signature is refused off-chain
with the reason the chain would give.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

import coincurve
from eth_utils import to_canonical_address, to_checksum_address

from ..errors import InvalidParams, InvalidSignature
from .codec import Domain, keccak256
from .constants import HALF_N


class TypedStruct(Protocol):
    """Anything with an EIP-712 ``hashStruct``: LedgerState, VirtualState."""

    def struct_hash(self) -> bytes: ...


class Signer:
    """A private key held as a libsecp256k1 key: signs digests deterministically (RFC 6979, low s)."""

    __slots__ = ("_key", "address", "address_bytes")

    def __init__(self, private_key: bytes | str) -> None:
        try:
            raw = bytes.fromhex(private_key.removeprefix("0x")) if isinstance(private_key, str) else bytes(private_key)
            if len(raw) != 32:
                raise ValueError(f"{len(raw)} bytes")
            self._key = coincurve.PrivateKey(raw)
        except ValueError as exc:
            raise InvalidParams(f"not a secp256k1 private key ({exc}); pass the 32-byte key of an account") from exc
        self.address_bytes = _address_of_public_key(self._key.public_key.format(compressed=False))
        self.address = to_checksum_address(self.address_bytes)

    def sign(self, digest: bytes) -> bytes:
        """65 bytes ``r || s || v`` with ``v`` in {27, 28}; libsecp256k1 always returns the low-s form."""
        signature = self._key.sign_recoverable(digest, hasher=None)
        return signature[:64] + bytes((signature[64] + 27,))

    def sign_state(self, state: TypedStruct, domain: Domain) -> bytes:
        """Sign a ledger or virtual state for one adjudicator deployment (its ``domain``)."""
        return self.sign(domain.digest(state.struct_hash()))

    def __repr__(self) -> str:  # never show the key
        return f"Signer({self.address})"


@lru_cache(maxsize=4096)
def _address_of_public_key(uncompressed: bytes) -> bytes:
    return keccak256(uncompressed[1:])[12:]


def check_signature_form(signature: bytes) -> tuple[int, int, int]:
    """``(r, s, v)`` of a 65-byte ``r || s || v`` signature; refuses what the adjudicators refuse before
    recovery (length, zero ``r`` or ``s``, high ``s``, ``v`` outside {27, 28})."""
    if len(signature) != 65:
        raise InvalidSignature(f"a signature is 65 bytes (r, s, v), got {len(signature)}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if r == 0 or s == 0:
        raise InvalidSignature("r or s is zero; the signature is malformed")
    if s > HALF_N:
        raise InvalidSignature("s is in the upper half of the curve order (malleable twin); re-sign with low s")
    if v not in (27, 28):
        raise InvalidSignature(f"v must be 27 or 28, got {v}")
    return r, s, v


def recover(digest: bytes, signature: bytes) -> bytes:
    """The 20-byte address that signed ``digest``; refuses exactly what the adjudicators refuse."""
    _, _, v = check_signature_form(signature)
    try:
        public_key = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes((v - 27,)), digest, hasher=None
        )
    except Exception as exc:  # coincurve raises ValueError or its own errors for r >= n or no key
        raise InvalidSignature(f"the signature does not recover a key: {exc}") from exc
    return _address_of_public_key(public_key.format(compressed=False))


def verify(digest: bytes, signature: bytes, signer: bytes | str) -> None:
    """Raise InvalidSignature unless ``signer`` (an address, as 20 bytes or hex) signed ``digest``."""
    expected = signer if isinstance(signer, bytes) else to_canonical_address(signer)
    recovered = recover(digest, signature)
    if recovered != expected:
        raise InvalidSignature(f"signed by {to_checksum_address(recovered)}, expected {to_checksum_address(expected)}")


def sign_digest(private_key: bytes | str, digest: bytes) -> bytes:
    """``Signer(private_key).sign(digest)``: for a one-off signature."""
    return Signer(private_key).sign(digest)


def sign_state(key: Signer | bytes | str, state: TypedStruct, domain: Domain) -> bytes:
    """Sign a ledger or virtual state for one adjudicator deployment (its ``domain``)."""
    return (key if isinstance(key, Signer) else Signer(key)).sign_state(state, domain)


def verify_state(state: TypedStruct, domain: Domain, signature: bytes, signer: bytes | str) -> None:
    """Raise InvalidSignature unless ``signer`` signed ``state`` in ``domain``."""
    verify(domain.digest(state.struct_hash()), signature, signer)


def recover_digest(digest: bytes, signature: bytes) -> str:
    """The checksummed address that signed ``digest`` (``recover``, for display)."""
    return to_checksum_address(recover(digest, signature))


def compact(signature: bytes) -> tuple[bytes, bytes]:
    """The EIP-2098 ``(r, vs)`` form the adjudicators take of a 65-byte ``r || s || v`` signature:
    ``vs`` is ``s`` with ``v - 27`` in its top bit. Refuses what ``check_signature_form`` refuses, so a
    malformed signature never reaches the chain."""
    r, s, v = check_signature_form(signature)
    return r.to_bytes(32, "big"), ((v - 27) << 255 | s).to_bytes(32, "big")


def expand(r: bytes, vs: bytes) -> bytes:
    """The 65-byte ``r || s || v`` signature of an EIP-2098 ``(r, vs)`` pair (the inverse of ``compact``)."""
    word = int.from_bytes(vs, "big")
    return bytes(r) + (word & (2**255 - 1)).to_bytes(32, "big") + bytes([27 + (word >> 255)])
