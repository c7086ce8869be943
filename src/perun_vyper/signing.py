"""Signing and verifying states with secp256k1 keys (coincurve through eth-keys when installed)."""

from __future__ import annotations

from typing import Protocol

from eth_keys import keys
from eth_keys.exceptions import BadSignature, ValidationError
from eth_utils import to_checksum_address

from .constants import HALF_N
from .eip712 import Domain
from .errors import InvalidSignature


class TypedStruct(Protocol):
    """Anything with an EIP-712 ``hashStruct``: LedgerState, VirtualState."""

    def struct_hash(self) -> bytes: ...


def sign_digest(private_key: bytes | str, digest: bytes) -> bytes:
    """A 65-byte ``r || s || v`` signature (v in {27, 28}, low s) of a 32-byte digest."""
    key = keys.PrivateKey(bytes.fromhex(private_key[2:]) if isinstance(private_key, str) else private_key)
    sig = key.sign_msg_hash(digest)
    return sig.r.to_bytes(32, "big") + sig.s.to_bytes(32, "big") + bytes([sig.v + 27])


def check_signature_form(signature: bytes) -> tuple[int, int, int]:
    """``(r, s, v)`` of a 65-byte ``r || s || v`` signature; refuses what the adjudicator's ``_recover``
    refuses before recovery (length, zero ``r`` or ``s``, high ``s``, ``v`` outside {27, 28})."""
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


def recover_digest(digest: bytes, signature: bytes) -> str:
    """The signer of ``digest``; refuses exactly what the adjudicator refuses."""
    r, s, v = check_signature_form(signature)
    try:
        public_key = keys.Signature(vrs=(v - 27, r, s)).recover_public_key_from_msg_hash(digest)
    except (BadSignature, ValidationError) as exc:
        raise InvalidSignature(f"the signature does not recover a key: {exc}") from exc
    return public_key.to_checksum_address()


def sign_state(private_key: bytes | str, state: TypedStruct, domain: Domain) -> bytes:
    """Sign a ledger or virtual state for one adjudicator deployment (its ``domain``)."""
    return sign_digest(private_key, domain.digest(state.struct_hash()))


def verify_state(state: TypedStruct, domain: Domain, signature: bytes, signer: str) -> None:
    """Raise InvalidSignature unless ``signer`` signed ``state`` in ``domain``."""
    recovered = recover_digest(domain.digest(state.struct_hash()), signature)
    if recovered != to_checksum_address(signer):
        raise InvalidSignature(f"signed by {recovered}, expected {to_checksum_address(signer)}")
