"""EIP-712 in one place: every struct the adjudicators hash is described once, here, and its type string,
type hash, struct hash and eth-account typed-data form are all derived from that description.

A struct is hashed by direct 32-byte packing (each member one word, as ``abi.encode`` of static types
gives it) through pycryptodome's Keccak: no ABI type dispatch on the per-payment path. The values are the
ABI tuple the adjudicators take (``as_tuple()`` of each type), which lists the members in the same order
as the EIP-712 type, so one tuple feeds both the contract call and the hash.

Tests keep this equal to eth-account's ``encode_typed_data`` (fed by ``StructType.typed_data``) and to the
contracts' own hashing (the ``LedgerHashing`` / ``VirtualHashing`` harnesses).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from eth_utils import to_canonical_address, to_checksum_address

from .constants import APP_DOMAIN_NAME, DOMAIN_VERSION, LEDGER_DOMAIN_NAME, VIRTUAL_DOMAIN_NAME

try:
    from Crypto.Hash import keccak as _keccak

    def keccak256(data: bytes) -> bytes:
        """Keccak-256 (Ethereum's, not SHA3-256) through pycryptodome, without eth-hash's dispatch."""
        return _keccak.new(data=data, digest_bits=256).digest()

except ImportError:  # pragma: no cover - eth-hash with another backend
    from eth_utils import keccak as _eth_keccak

    def keccak256(data: bytes) -> bytes:
        return _eth_keccak(data)


_FALSE = bytes(32)
_EMPTY_HASH = keccak256(b"")
_TRUE = bytes(31) + b"\x01"


def hexstr(value: bytes) -> str:
    """``0x``-prefixed lower-case hex: how every channel id and hash is shown."""
    return "0x" + bytes(value).hex()


def unhex(value: str) -> bytes:
    """The bytes of a ``0x``-prefixed hex string."""
    return bytes.fromhex(value.removeprefix("0x"))


def _word_bytes32(value: bytes) -> bytes:
    if len(value) != 32:
        raise ValueError(f"a bytes32 member is 32 bytes, got {len(value)}")
    return bytes(value)


def _word_uint(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _word_bool(value: bool) -> bytes:
    return _TRUE if value else _FALSE


def _word_address(value: str) -> bytes:
    return bytes(12) + to_canonical_address(value)


def _word_string(value: str) -> bytes:
    return keccak256(value.encode())


def _word_bytes(value: bytes) -> bytes:
    return keccak256(bytes(value))


class StructType:
    """One EIP-712 struct type: its name and its members ``(name, type)``, where a type is ``bytes32``,
    ``uintN``, ``bool``, ``address``, ``string``, ``bytes`` or ``<Member>[]`` for an array of a struct in
    ``members``."""

    def __init__(self, name: str, fields: Sequence[tuple[str, str]], members: Sequence[StructType] = ()) -> None:
        self.name = name
        self.fields = tuple(fields)
        self.members = {member.name: member for member in members}
        self._words: tuple[Callable[[Any], bytes], ...] = tuple(self._word(kind) for _, kind in self.fields)

    def _word(self, kind: str) -> Callable[[Any], bytes]:
        if kind == "bytes32":
            return _word_bytes32
        if kind.startswith("uint"):
            return _word_uint
        if kind == "bool":
            return _word_bool
        if kind == "address":
            return _word_address
        if kind == "string":
            return _word_string
        if kind == "bytes":
            return _word_bytes
        if kind.endswith("[]") and kind[:-2] in self.members:
            member = self.members[kind[:-2]]
            # Most ledger states carry no lock: the hash of the empty array is a constant.
            return lambda items: keccak256(b"".join(member.hash(item) for item in items)) if items else _EMPTY_HASH
        raise ValueError(f"{self.name}: no encoding for member type {kind!r}")

    @cached_property
    def encode_type(self) -> str:
        """``Name(type1 name1,...)`` followed by the referenced structs' own, sorted by name (EIP-712)."""
        own = f"{self.name}({','.join(f'{kind} {name}' for name, kind in self.fields)})"
        return own + "".join(self.members[name].encode_type for name in sorted(self.members))

    @cached_property
    def type_hash(self) -> bytes:
        return keccak256(self.encode_type.encode())

    def hash(self, values: Sequence[Any]) -> bytes:
        """``hashStruct``: the type hash and one 32-byte word per member, hashed."""
        words = b"".join(word(value) for word, value in zip(self._words, values, strict=True))
        return keccak256(self.type_hash + words)

    def types(self) -> dict[str, list[dict[str, str]]]:
        """The type and the structs it references, in eth-account's typed-data form."""
        types = {self.name: [{"name": name, "type": kind} for name, kind in self.fields]}
        for member in self.members.values():
            types.update(member.types())
        return types

    def message(self, values: Sequence[Any]) -> dict[str, Any]:
        """The values as an eth-account typed-data message (member name -> value)."""
        message: dict[str, Any] = {}
        for (name, kind), value in zip(self.fields, values, strict=True):
            member = self.members.get(kind[:-2]) if kind.endswith("[]") else None
            message[name] = [member.message(item) for item in value] if member else value
        return message

    def typed_data(self, values: Sequence[Any], domain: Domain) -> dict[str, Any]:
        """The whole typed-data document of one struct in ``domain`` (eth-account's ``full_message``)."""
        return {
            "types": {**EIP712_DOMAIN.types(), **self.types()},
            "primaryType": self.name,
            "domain": EIP712_DOMAIN.message(domain.as_tuple()),
            "message": self.message(values),
        }


# The structs of the protocol; contracts/modules/ledger_types.vy, virtual_types.vy and app_types.vy spell the same.
EIP712_DOMAIN = StructType(
    "EIP712Domain",
    [("name", "string"), ("version", "string"), ("chainId", "uint256"), ("verifyingContract", "address")],
)
CHANNEL_PARAMS = StructType(
    "ChannelParams",
    [
        ("participantA", "address"),
        ("participantB", "address"),
        ("asset", "address"),
        ("challengeDuration", "uint64"),
        ("nonce", "uint256"),
    ],
)
LOCK = StructType("Lock", [("channel", "bytes32"), ("amountA", "uint256"), ("amountB", "uint256")])
LEDGER_STATE = StructType(
    "LedgerState",
    [
        ("channel", "bytes32"),
        ("version", "uint64"),
        ("balanceA", "uint256"),
        ("balanceB", "uint256"),
        ("fundingA", "uint256"),
        ("fundingB", "uint256"),
        ("locks", "Lock[]"),
        ("isFinal", "bool"),
    ],
    [LOCK],
)
VIRTUAL_PARAMS = StructType(
    "VirtualParams",
    [
        ("alice", "address"),
        ("bob", "address"),
        ("ingrid", "address"),
        ("asset", "address"),
        ("ledgerAdjudicator", "address"),
        ("chainId", "uint256"),
        ("ledgerAlice", "bytes32"),
        ("ledgerBob", "bytes32"),
        ("fundingAlice", "uint256"),
        ("fundingBob", "uint256"),
        ("validity", "uint64"),
        ("challengeDuration", "uint64"),
        ("nonce", "uint256"),
    ],
)
VIRTUAL_STATE = StructType(
    "VirtualState",
    [
        ("channel", "bytes32"),
        ("version", "uint64"),
        ("balanceAlice", "uint256"),
        ("balanceBob", "uint256"),
        ("isFinal", "bool"),
    ],
)

APP_STATE = StructType(
    "AppState",
    [
        ("channel", "bytes32"),
        ("version", "uint64"),
        ("balanceA", "uint256"),
        ("balanceB", "uint256"),
        ("fundingA", "uint256"),
        ("fundingB", "uint256"),
        ("appData", "bytes"),
        ("isFinal", "bool"),
    ],
)


@dataclass(frozen=True)
class Domain:
    """The EIP-712 domain of one adjudicator deployment: signatures are bound to chain and address."""

    name: str
    version: str
    chain_id: int
    verifying_contract: str

    @classmethod
    def ledger(cls, chain_id: int, address: str) -> Domain:
        """The domain of a LedgerAdjudicator deployed at ``address`` on ``chain_id``."""
        return cls(LEDGER_DOMAIN_NAME, DOMAIN_VERSION, chain_id, to_checksum_address(address))

    @classmethod
    def virtual(cls, chain_id: int, address: str) -> Domain:
        """The domain of a VirtualAdjudicator deployed at ``address`` on ``chain_id``."""
        return cls(VIRTUAL_DOMAIN_NAME, DOMAIN_VERSION, chain_id, to_checksum_address(address))

    @classmethod
    def app(cls, chain_id: int, address: str) -> Domain:
        """The domain of an AppAdjudicator deployed at ``address`` on ``chain_id``."""
        return cls(APP_DOMAIN_NAME, DOMAIN_VERSION, chain_id, to_checksum_address(address))

    def describe(self) -> str:
        return f"{self.name} v{self.version} at {to_checksum_address(self.verifying_contract)} on chain {self.chain_id}"

    def as_tuple(self) -> tuple[str, str, int, str]:
        return (self.name, self.version, self.chain_id, to_checksum_address(self.verifying_contract))

    @cached_property
    def separator(self) -> bytes:
        return EIP712_DOMAIN.hash(self.as_tuple())

    @cached_property
    def _prefix(self) -> bytes:
        return b"\x19\x01" + self.separator

    def digest(self, struct_hash: bytes) -> bytes:
        """The digest a signer signs for a struct with this ``hashStruct``."""
        return keccak256(self._prefix + struct_hash)
