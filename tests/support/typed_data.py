"""The oracle of the hashing tests: a typed-data document written out by hand and hashed by eth-account,
independent of perun_vyper's own EIP-712 codec."""

from __future__ import annotations

from typing import Any

from eth_account.messages import encode_typed_data
from eth_utils import keccak

DOMAIN_TYPES = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def fields(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    """A struct's members in typed-data form, from ``(name, type)`` pairs."""
    return [{"name": name, "type": kind} for name, kind in pairs]


def document(
    primary: str, types: dict[str, list[dict[str, str]]], name: str, chain_id: int, contract: str, message: dict
) -> dict[str, Any]:
    """The typed-data document of ``message`` (a ``primary`` struct) in the domain ``(name, "1", chain_id,
    contract)``; ``types`` holds the primary struct and any it references."""
    return {
        "types": {"EIP712Domain": DOMAIN_TYPES, **types},
        "primaryType": primary,
        "domain": {"name": name, "version": "1", "chainId": chain_id, "verifyingContract": contract},
        "message": message,
    }


def digest(full: dict[str, Any]) -> bytes:
    """What a signer signs for the document, computed by eth-account."""
    signable = encode_typed_data(full_message=full)
    return keccak(b"\x19" + signable.version + signable.header + signable.body)
