"""Virtual channels (Alice - Ingrid - Bob): parameters, states, and the updates between states."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from eth_utils import is_address, to_checksum_address

from ..errors import InvalidParams, InvalidState
from .codec import VIRTUAL_PARAMS, VIRTUAL_STATE
from .constants import ETH, MAX_AMOUNT, MAX_CHALLENGE_DURATION, MAX_VERSION, MIN_CHALLENGE_DURATION


@dataclass(frozen=True)
class VirtualParams:
    """The fixed parameters of a virtual channel between Alice and Bob over Ingrid.

    ``ledger_alice`` is the Alice-Ingrid ledger channel, ``ledger_bob`` the Ingrid-Bob one. Both lock
    ``funding_alice`` for Alice's side (Ingrid stands in for Alice in ``ledger_bob``) and ``funding_bob``
    for Bob's side (Ingrid stands in for Bob in ``ledger_alice``). ``validity`` is a timestamp: before it
    only Alice and Bob may open a dispute; from ``validity + challenge_duration`` on, a channel nobody
    registered settles on its initial split.

    ``asset``, ``ledger_adjudicator`` and ``chain_id`` name where both ledger channels live: a lock follows
    the virtual outcome only in a ledger channel of that asset on that adjudicator and chain (SPEC 9.1), so
    Ingrid's two legs are worth the same and read the same virtual record. They are keyword-only.
    """

    alice: str
    bob: str
    ingrid: str
    ledger_alice: bytes
    ledger_bob: bytes
    funding_alice: int
    funding_bob: int
    validity: int
    challenge_duration: int = MIN_CHALLENGE_DURATION
    nonce: int = 0
    ledger_adjudicator: str = field(kw_only=True)
    chain_id: int = field(kw_only=True)
    asset: str = field(default=ETH, kw_only=True)

    def __post_init__(self) -> None:
        for name in ("asset", "ledger_adjudicator"):
            value = getattr(self, name)
            if not is_address(value):
                raise InvalidParams(f"{name} {value!r} is not an address")
            object.__setattr__(self, name, to_checksum_address(value))
        if int(self.ledger_adjudicator, 16) == 0:
            raise InvalidParams("ledger_adjudicator is the zero address; name the LedgerAdjudicator of both legs")
        if not 0 < self.chain_id < 2**256:
            raise InvalidParams("chain_id must be the positive chain id both legs live on")
        for name in ("alice", "bob", "ingrid"):
            value = getattr(self, name)
            if not is_address(value) or int(value, 16) == 0:
                raise InvalidParams(f"{name} {value!r} is not a non-zero address")
            object.__setattr__(self, name, to_checksum_address(value))
        if len({self.alice, self.bob, self.ingrid}) != 3:
            raise InvalidParams("alice, bob and ingrid must be three different addresses")
        if len(self.ledger_alice) != 32 or len(self.ledger_bob) != 32 or self.ledger_alice == self.ledger_bob:
            raise InvalidParams("ledger_alice and ledger_bob must be two different 32-byte ledger channel ids")
        for name in ("funding_alice", "funding_bob"):
            if not 0 <= getattr(self, name) <= MAX_AMOUNT:
                raise InvalidParams(f"{name} is outside [0, 2**120 - 1]")
        if not 0 <= self.validity < 2**64:
            raise InvalidParams("validity is a uint64 timestamp")
        if not MIN_CHALLENGE_DURATION <= self.challenge_duration <= MAX_CHALLENGE_DURATION:
            raise InvalidParams(
                f"challenge_duration {self.challenge_duration}s is outside "
                f"[{MIN_CHALLENGE_DURATION}, {MAX_CHALLENGE_DURATION}]"
            )
        if not 0 <= self.nonce < 2**256:
            raise InvalidParams("nonce must fit in a uint256")

    @cached_property
    def channel_id(self) -> bytes:
        """``hashStruct(params)``, the virtual channel id."""
        return VIRTUAL_PARAMS.hash(self.as_tuple())

    @property
    def total(self) -> int:
        return self.funding_alice + self.funding_bob

    @property
    def expiry(self) -> int:
        """From this timestamp an unregistered channel settles on its initial split."""
        return self.validity + self.challenge_duration

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.alice,
            self.bob,
            self.ingrid,
            self.asset,
            self.ledger_adjudicator,
            self.chain_id,
            self.ledger_alice,
            self.ledger_bob,
            self.funding_alice,
            self.funding_bob,
            self.validity,
            self.challenge_duration,
            self.nonce,
        )


@dataclass(frozen=True)
class VirtualState:
    """One version of a virtual channel, signed by Alice and Bob (never by Ingrid)."""

    channel: bytes
    version: int
    balance_alice: int
    balance_bob: int
    is_final: bool = False

    def __post_init__(self) -> None:
        if len(self.channel) != 32:
            raise InvalidState("channel must be the 32-byte virtual channel id (VirtualParams.channel_id)")
        if not 0 <= self.version <= MAX_VERSION:
            raise InvalidState(f"version {self.version} does not fit in a uint64")
        for name in ("balance_alice", "balance_bob"):
            if not 0 <= getattr(self, name) <= MAX_AMOUNT:
                raise InvalidState(f"{name} is outside [0, 2**120 - 1]")

    @classmethod
    def initial(cls, params: VirtualParams) -> VirtualState:
        return cls(params.channel_id, 0, params.funding_alice, params.funding_bob)

    def check_against(self, params: VirtualParams) -> None:
        """Raise InvalidState unless this state belongs to ``params`` and conserves its funding."""
        if self.channel != params.channel_id:
            raise InvalidState("the state belongs to another virtual channel")
        if self.balance_alice + self.balance_bob != params.total:
            raise InvalidState(
                f"balances {self.balance_alice} + {self.balance_bob} do not sum to the funding {params.total}"
            )

    def struct_hash(self) -> bytes:
        """EIP-712 ``hashStruct(state)``, as the virtual adjudicator computes it."""
        return VIRTUAL_STATE.hash(self.as_tuple())

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.channel, self.version, self.balance_alice, self.balance_bob, self.is_final)

    def pay(self, amount: int, from_alice: bool) -> VirtualState:
        """The next version with ``amount`` moved from Alice to Bob (or Bob to Alice)."""
        if amount <= 0:
            raise InvalidState("a payment must be a positive amount")
        if self.is_final:
            raise InvalidState("the state is final; no payment may follow it")
        payer = self.balance_alice if from_alice else self.balance_bob
        if payer < amount:
            raise InvalidState(f"the payer holds {payer}, cannot pay {amount}")
        delta = -amount if from_alice else amount
        return replace(
            self,
            version=self.version + 1,
            balance_alice=self.balance_alice + delta,
            balance_bob=self.balance_bob - delta,
        )

    def finalized(self) -> VirtualState:
        if self.is_final:
            raise InvalidState("the state is already final")
        return replace(self, version=self.version + 1, is_final=True)
