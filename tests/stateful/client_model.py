"""The client machine's model of the channels (client_machine.py): links, proposals in flight,
registrations, and the forgeries it tries; plain values and helpers, no actions."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from perun_vyper import (
    Domain,
    LedgerState,
    Signer,
    Update,
    VirtualState,
)
from tests.support.parties import (
    ALICE_KEY,
    BOB_KEY,
    INGRID_KEY,
)

KEYS = {"alice": ALICE_KEY, "bob": BOB_KEY, "ingrid": INGRID_KEY}
FUND_ALICE, FUND_BOB = 3 * 10**17, 10**17
# (party of side 0, party of side 1) of each link; the virtual channel's sides are Alice and Bob.
LINK_PARTIES = {
    "ab": ("alice", "bob"),
    "left": ("alice", "ingrid"),
    "right": ("ingrid", "bob"),
    "virtual": ("alice", "bob"),
}

# Forged updates sent to a receiver, by what they need: a valid next state from the forger, or anything.
NEXT_FORGERIES = ("stranger_key", "own_key", "flipped_signature", "other_split", "version_skip", "toward_proposer")
ANY_FORGERIES = ("rewrite", "wrong_channel", "wrong_type", "repeat_wrong_signature")
# Forged answers sent to a proposer with its proposal in flight.
COUNTERSIG_FORGERIES = ("stranger_key", "own_key", "flipped", "other_split", "other_update", "stale_wrong")
# Forged updates whose state is a valid next one: a receiver stopped by a registration refuses them
# (Unenforceable) before it looks at the signature.
REACHES_CHAIN_CHECK = ("stranger_key", "own_key", "flipped_signature", "other_split")

State = LedgerState | VirtualState


def split_of(state: State) -> tuple[int, int]:
    """(side 0's balance, side 1's balance)."""
    if isinstance(state, LedgerState):
        return state.balance_a, state.balance_b
    return state.balance_alice, state.balance_bob


def with_split(state: State, balance_0: int, balance_1: int, **changes: Any) -> State:
    if isinstance(state, LedgerState):
        return replace(state, balance_a=balance_0, balance_b=balance_1, **changes)
    return replace(state, balance_alice=balance_0, balance_bob=balance_1, **changes)


def moved(balances: tuple[int, int] | list[int], payer: int, amount: int) -> tuple[int, int]:
    """``balances`` after ``payer`` paid ``amount`` to the other side."""
    result = list(balances)
    result[payer] -= amount
    result[1 - payer] += amount
    return result[0], result[1]


def sign(state: State, key: bytes, domain: Domain) -> bytes:
    return Signer(key).sign_state(state, domain)


def flip(signature: bytes, index: int, bit: int) -> bytes:
    flipped = bytearray(signature)
    flipped[index] ^= 1 << bit
    return bytes(flipped)


@dataclass
class Flight:
    """A proposal in flight and the messages about it on the wire."""

    proposer: int
    update: Update
    expected: tuple[int, int]  # the balances the model expects it to carry
    final: bool
    to_receiver: Update | None  # the update on the wire (None: dropped or delivered)
    countersig: bytes | None = None  # the receiver's answer, once it accepted
    to_proposer: bytes | None = None  # the answer on the wire


@dataclass
class Registration:
    """What the chain says about one link: the registered state (both parties signed it), and whether
    the ledger channel concluded since."""

    state: State
    deadline: int
    concluded: bool = False

    @property
    def version(self) -> int:
        return self.state.version


@dataclass
class Link:
    """The model of one channel: what both parties agreed to, from completed updates only."""

    name: str
    kind: str  # "ledger" or "virtual"
    channel_id: bytes
    domain: Domain
    signers: tuple[str, str]
    total: int
    balances: tuple[int, int]
    locked: int = 0
    version: int = 0
    final: bool = False
    flight: Flight | None = None
    registration: Registration | None = None

    @property
    def parties(self) -> tuple[str, str]:
        return LINK_PARTIES[self.name]
