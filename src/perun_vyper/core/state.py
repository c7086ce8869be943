"""Ledger channel states and locks: validation, the updates that derive one state from another, EIP-712 hashing."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..errors import InvalidState
from .codec import LEDGER_STATE, LOCK, keccak256
from .constants import MAX_AMOUNT, MAX_LOCKS, MAX_VERSION


def check_amount(name: str, value: int) -> None:
    """Refuse (``InvalidState``) an amount outside what a channel holds: [0, ``MAX_AMOUNT``]."""
    if not 0 <= value <= MAX_AMOUNT:
        raise InvalidState(f"{name} = {value} is outside [0, 2**120 - 1]; amounts are in the asset's base unit")


@dataclass(frozen=True)
class Lock:
    """Funds a ledger channel sets aside for one virtual channel, from each of its sides."""

    channel: bytes
    amount_a: int
    amount_b: int

    def __post_init__(self) -> None:
        if len(self.channel) != 32:
            raise InvalidState("a lock's channel must be the 32-byte virtual channel id (VirtualParams.channel_id)")
        check_amount("lock amount_a", self.amount_a)
        check_amount("lock amount_b", self.amount_b)

    def struct_hash(self) -> bytes:
        return LOCK.hash(self.as_tuple())

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
            check_amount(name, getattr(self, name))
        if len(self.locks) > MAX_LOCKS:
            raise InvalidState(f"{len(self.locks)} locks; a ledger state carries at most {MAX_LOCKS}")
        for lock in self.locks:
            type(lock).__post_init__(lock)  # a lock object may come from anywhere
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
        return keccak256(b"".join(lock.struct_hash() for lock in self.locks))

    def struct_hash(self) -> bytes:
        """EIP-712 ``hashStruct(state)``, as the adjudicator computes it."""
        return LEDGER_STATE.hash(self.as_tuple())

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
