"""Ledger channel states: validation, EIP-712 struct hashing and the typed-data form."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from eth_abi import encode
from eth_utils import keccak

from .constants import MAX_AMOUNT, MAX_LOCKS, MAX_VERSION
from .errors import InvalidState

LOCK_TYPE = "Lock(bytes32 channel,uint256 amountA,uint256 amountB)"
LEDGER_STATE_TYPE = (
    "LedgerState(bytes32 channel,uint64 version,uint256 balanceA,uint256 balanceB,"
    "uint256 fundingA,uint256 fundingB,Lock[] locks,bool isFinal)" + LOCK_TYPE
)
LOCK_TYPE_HASH = keccak(text=LOCK_TYPE)
LEDGER_STATE_TYPE_HASH = keccak(text=LEDGER_STATE_TYPE)

# eth-account typed-data description of the types above.
LEDGER_STATE_TYPES: dict[str, list[dict[str, str]]] = {
    "LedgerState": [
        {"name": "channel", "type": "bytes32"},
        {"name": "version", "type": "uint64"},
        {"name": "balanceA", "type": "uint256"},
        {"name": "balanceB", "type": "uint256"},
        {"name": "fundingA", "type": "uint256"},
        {"name": "fundingB", "type": "uint256"},
        {"name": "locks", "type": "Lock[]"},
        {"name": "isFinal", "type": "bool"},
    ],
    "Lock": [
        {"name": "channel", "type": "bytes32"},
        {"name": "amountA", "type": "uint256"},
        {"name": "amountB", "type": "uint256"},
    ],
}


def _check_amount(name: str, value: int) -> None:
    if not 0 <= value <= MAX_AMOUNT:
        raise InvalidState(f"{name} = {value} is outside [0, 2**120 - 1]; amounts are in the asset's base unit")


@dataclass(frozen=True)
class Lock:
    """Funds a ledger channel sets aside for one virtual channel, from each of its sides."""

    channel: bytes
    amount_a: int
    amount_b: int

    def struct_hash(self) -> bytes:
        return keccak(
            encode(
                ["bytes32", "bytes32", "uint256", "uint256"],
                [LOCK_TYPE_HASH, self.channel, self.amount_a, self.amount_b],
            )
        )

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.channel, self.amount_a, self.amount_b)


@dataclass(frozen=True)
class LedgerState:
    """One version of a ledger channel. ``funding_*`` are the cumulative deposits the state accounts for.

    Conservation: ``balance_a + balance_b + locked == funding_a + funding_b``. A deposit the state does
    not account for (a top-up made after it was signed) is paid back to its side at conclusion.
    """

    channel: bytes
    version: int
    balance_a: int
    balance_b: int
    funding_a: int
    funding_b: int
    locks: tuple[Lock, ...] = ()
    is_final: bool = False

    def __post_init__(self) -> None:
        if len(self.channel) != 32:
            raise InvalidState("channel must be the 32-byte channel id (ChannelParams.channel_id)")
        if not 0 <= self.version <= MAX_VERSION:
            raise InvalidState(f"version {self.version} does not fit in a uint64")
        for name in ("balance_a", "balance_b", "funding_a", "funding_b"):
            _check_amount(name, getattr(self, name))
        if len(self.locks) > MAX_LOCKS:
            raise InvalidState(f"{len(self.locks)} locks; a ledger state carries at most {MAX_LOCKS}")
        for lock in self.locks:
            _check_amount("lock amount_a", lock.amount_a)
            _check_amount("lock amount_b", lock.amount_b)
        if self.balance_a + self.balance_b + self.locked != self.funding_a + self.funding_b:
            raise InvalidState(
                f"balances {self.balance_a} + {self.balance_b} + locked {self.locked} do not sum to the "
                f"funding {self.funding_a} + {self.funding_b}; a state must conserve the channel's funds"
            )

    @property
    def locked(self) -> int:
        return sum(lock.amount_a + lock.amount_b for lock in self.locks)

    def locks_hash(self) -> bytes:
        """EIP-712 hash of the ``Lock[]`` (what the adjudicator's ``dispute`` view reports while a funded
        state with locks is registered)."""
        return keccak(b"".join(lock.struct_hash() for lock in self.locks))

    def struct_hash(self) -> bytes:
        """EIP-712 ``hashStruct(state)``, as the adjudicator's ``state_hash`` computes it."""
        locks_hash = self.locks_hash()
        return keccak(
            encode(
                ["bytes32", "bytes32", "uint64", "uint256", "uint256", "uint256", "uint256", "bytes32", "bool"],
                [
                    LEDGER_STATE_TYPE_HASH,
                    self.channel,
                    self.version,
                    self.balance_a,
                    self.balance_b,
                    self.funding_a,
                    self.funding_b,
                    locks_hash,
                    self.is_final,
                ],
            )
        )

    def message(self) -> dict[str, Any]:
        """The state as an eth-account typed-data message."""
        return {
            "channel": self.channel,
            "version": self.version,
            "balanceA": self.balance_a,
            "balanceB": self.balance_b,
            "fundingA": self.funding_a,
            "fundingB": self.funding_b,
            "locks": [{"channel": lk.channel, "amountA": lk.amount_a, "amountB": lk.amount_b} for lk in self.locks],
            "isFinal": self.is_final,
        }

    def as_tuple(self) -> tuple[Any, ...]:
        """The ABI tuple the adjudicator takes."""
        return (
            self.channel,
            self.version,
            self.balance_a,
            self.balance_b,
            self.funding_a,
            self.funding_b,
            [lock.as_tuple() for lock in self.locks],
            self.is_final,
        )

    def final_tuple(self) -> tuple[int, int, int, int, int]:
        """The ``FinalState`` tuple ``close`` takes: the contract rebuilds the signed state from it with this
        channel's id, no locks and ``is_final`` set."""
        if not self.is_final:
            raise InvalidState("only a final state closes a channel; sign `finalized()` first")
        if self.locks:
            raise InvalidState("a final state has no locks; settle the virtual channels first")
        return (self.version, self.balance_a, self.balance_b, self.funding_a, self.funding_b)

    def locks_tuple(self) -> list[tuple[Any, ...]]:
        """The ``Lock[]`` argument of ``conclude``."""
        return [lock.as_tuple() for lock in self.locks]

    def pay(self, amount: int, from_side: int) -> LedgerState:
        """The next version with ``amount`` moved from ``from_side`` to the other side."""
        if amount <= 0:
            raise InvalidState("a payment must be a positive amount")
        if self.is_final:
            raise InvalidState("the state is final; no update may follow it")
        balances = [self.balance_a, self.balance_b]
        if balances[from_side] < amount:
            raise InvalidState(f"side {from_side} holds {balances[from_side]}, cannot pay {amount}")
        balances[from_side] -= amount
        balances[1 - from_side] += amount
        return replace(self, version=self.version + 1, balance_a=balances[0], balance_b=balances[1])

    def top_up(self, amount: int, side: int) -> LedgerState:
        """The next version accounting for a deposit of ``amount`` by ``side`` (made on-chain first)."""
        if amount <= 0:
            raise InvalidState("a top-up must be a positive amount")
        if self.is_final:
            raise InvalidState("the state is final; no update may follow it")
        if side == 0:
            return replace(
                self, version=self.version + 1, balance_a=self.balance_a + amount, funding_a=self.funding_a + amount
            )
        return replace(
            self, version=self.version + 1, balance_b=self.balance_b + amount, funding_b=self.funding_b + amount
        )

    def finalized(self) -> LedgerState:
        """The next version, final: what both sign to close cooperatively."""
        if self.is_final:
            raise InvalidState("the state is already final")
        return replace(self, version=self.version + 1, is_final=True)

    @classmethod
    def initial(cls, channel: bytes, deposit_a: int, deposit_b: int) -> LedgerState:
        """Version 0: each side owns what it is about to deposit. Both sign it before funding."""
        return cls(channel, 0, deposit_a, deposit_b, deposit_a, deposit_b)
