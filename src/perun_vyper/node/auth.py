"""The login challenge (docs/API.md, "Authentication"): a text a wallet signs with its channel key as an
EIP-191 personal message (``personal_sign``), so any wallet can show the user what is signed.

The text binds the hub's address, the chain id, the user's address, a fresh random 32-byte nonce and an
expiry; the hub issues it to one connection, accepts it once, before the expiry, and only from that
user. A login signature is never a channel signature: EIP-191 digests (prefix ``0x19 0x45``) and EIP-712
digests (prefix ``0x19 0x01``) cannot collide.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.codec import keccak256

_TITLE = "Log in to a perun-vyper hub"


def login_message(hub: str, chain_id: int, address: str, nonce: str, expires: int) -> str:
    """The exact text to sign; every field on its own line."""
    return f"{_TITLE}\nhub: {hub}\nchain id: {chain_id}\naddress: {address}\nnonce: {nonce}\nexpires: {expires}"


def personal_digest(message: str) -> bytes:
    """EIP-191 version 0x45: ``keccak256("\\x19Ethereum Signed Message:\\n" + len(message) + message)``."""
    data = message.encode()
    return keccak256(b"\x19Ethereum Signed Message:\n" + str(len(data)).encode() + data)


@dataclass(frozen=True)
class Challenge:
    """One challenge issued to a connection (at most one is outstanding per connection)."""

    address: str
    nonce: str
    expires: int
    message: str
