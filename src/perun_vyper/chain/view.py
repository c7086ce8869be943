"""What the chain says about a channel, read the way a party must know it before it signs (SPEC 11.1).

A party never signs a state that the chain could no longer enforce. The dangerous moments are all fixed
on-chain: a ledger dispute whose deadline passed (registration closed), a concluded channel, a virtual
record that is registered or past its expiry. Every one of them is preceded by an on-chain event that
stays visible for at least a challenge duration (a registration) or is known in advance (an expiry), so
a view of the chain read at the current head block is enough to refuse in time.

The reads are plain ``eth_call``s at a block number (``latest`` for disputes and records; ``head -
confirmations`` for deposits, so a deposit a reorg could still drop is not counted as funding).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from ..errors import InvalidParams, Unenforceable

ZERO_HASH = bytes(32)


@dataclass(frozen=True)
class Head:
    """The block a view was read at."""

    number: int
    timestamp: int


@dataclass(frozen=True)
class LedgerStatus:
    """A ledger channel on-chain: deposits (at the trusted block), concluded flag and open dispute."""

    channel: bytes
    deposits: tuple[int, int]
    concluded: bool
    version: int = 0
    deadline: int = 0
    locks_hash: bytes = ZERO_HASH
    head: Head | None = None  # None: told by the caller (``observe``), not read

    @property
    def disputed(self) -> bool:
        return self.deadline != 0

    def describe(self) -> str:
        if self.concluded:
            return "concluded on-chain"
        if self.disputed:
            at = f" (head block time {self.head.timestamp})" if self.head is not None else ""
            return f"in dispute on-chain: version {self.version} registered, deadline {self.deadline}{at}"
        return f"open on-chain, deposits {self.deposits}"

    def require_open(self) -> None:
        """Refuse (``Unenforceable``) unless nothing was registered and nothing concluded: once a state is
        registered the channel ends on-chain, and a state signed now could outlive its deadline."""
        if self.concluded or self.disputed:
            raise Unenforceable(
                self.channel,
                self.describe(),
                "a registered or concluded ledger channel takes no new off-chain state; register the latest "
                "state both signed before the deadline (a watchtower does) and conclude",
            )


@dataclass(frozen=True)
class VirtualStatus:
    """A virtual channel's record on-chain (all zero while nobody registered it)."""

    channel: bytes
    version: int = 0
    deadline: int = 0
    balance_alice: int = 0
    is_final: bool = False
    head: Head | None = None

    @property
    def registered(self) -> bool:
        return self.deadline != 0

    def describe(self) -> str:
        if not self.registered:
            return "not registered on-chain"
        kind = "final " if self.is_final else ""
        return f"registered on-chain: {kind}version {self.version}, deadline {self.deadline}"


@dataclass(frozen=True)
class AppStatus:
    """An app channel on-chain: deposits (at the trusted block), concluded flag and the word of its open
    dispute (``AppAdjudicator.registrations``: zero while none is open)."""

    channel: bytes
    deposits: tuple[int, int]
    concluded: bool
    registration: bytes = ZERO_HASH
    head: Head | None = None

    @property
    def disputed(self) -> bool:
        return self.registration != ZERO_HASH

    def describe(self) -> str:
        if self.concluded:
            return "concluded on-chain"
        if self.disputed:
            return "in dispute on-chain (a state is registered)"
        return f"open on-chain, deposits {self.deposits}"

    def require_open(self) -> None:
        """Refuse (``Unenforceable``) once a state is registered or the channel concluded: a state signed
        off-chain after a registration might never be registered before the dispute ends (SPEC 12)."""
        if self.concluded or self.disputed:
            raise Unenforceable(
                self.channel,
                self.describe(),
                "a disputed or concluded app channel takes no new off-chain state; register the latest state both "
                "signed before the deadline, answer moves on-chain (AppWatcher) and conclude",
            )


class ChainReader:
    """Reads adjudicator views through the node an Ape contract object is connected to."""

    def __init__(self, contract: Any) -> None:
        self.address = to_checksum_address(str(contract.address))
        self._web3 = contract.provider.web3

    def head_number(self) -> int:
        return int(self._web3.provider.make_request("eth_blockNumber", [])["result"], 16)

    def head(self, number: int) -> Head:
        block = self._web3.eth.get_block(number)
        return Head(int(block["number"]), int(block["timestamp"]))

    def call(self, signature: str, arg_types: list[str], args: list[Any], out: list[str], block: int | str) -> Any:
        data = function_signature_to_4byte_selector(signature) + encode(arg_types, args)
        result = self._web3.eth.call({"to": self.address, "data": "0x" + data.hex()}, block)
        return decode(out, bytes(result))

    def holdings(self, channel: bytes, head: Head, confirmations: int) -> tuple[tuple[int, int], bool]:
        """The deposits ``confirmations`` blocks behind the head (a reorg cannot drop them) and the
        concluded flag at the head, of a ledger or app channel (the shared ``asset_holder``)."""
        holdings = ("holdings(bytes32)", ["bytes32"], [channel], ["uint256", "uint256", "bool"])
        at_head = self.call(*holdings, head.number)
        trusted = max(head.number - confirmations, 0)
        deposit_a, deposit_b, _ = at_head if trusted == head.number else self.call(*holdings, trusted)
        return (deposit_a, deposit_b), at_head[2]

    def ledger(self, channel: bytes, head: Head, confirmations: int) -> LedgerStatus:
        deposits, concluded = self.holdings(channel, head, confirmations)
        version, deadline, locks_hash = self.call(
            "dispute(bytes32)", ["bytes32"], [channel], ["uint64", "uint64", "bytes32"], head.number
        )
        return LedgerStatus(channel, deposits, concluded, version, deadline, locks_hash, head)

    def app(self, channel: bytes, head: Head, confirmations: int) -> AppStatus:
        deposits, concluded = self.holdings(channel, head, confirmations)
        (word,) = self.call("registrations(bytes32)", ["bytes32"], [channel], ["bytes32"], head.number)
        return AppStatus(channel, deposits, concluded, bytes(word), head)

    def virtual_adjudicator(self) -> str:
        return self.call("VIRTUAL_ADJUDICATOR()", [], [], ["address"], "latest")[0]

    def virtual(self, channel: bytes, head: Head) -> VirtualStatus:
        version, deadline, balance_alice, is_final = self.call(
            "record(bytes32)", ["bytes32"], [channel], ["uint64", "uint64", "uint256", "bool"], head.number
        )
        return VirtualStatus(channel, version, deadline, balance_alice, is_final, head)


class VirtualReader(ChainReader):
    """A reader of the virtual adjudicator a ledger adjudicator names (same node)."""

    def __init__(self, ledger: ChainReader) -> None:
        self.address = to_checksum_address(ledger.virtual_adjudicator())
        self._web3 = ledger._web3


# The time a party needs to get a registration mined, with margin: it signs no virtual state closer than
# this to the channel's expiry (after which an unregistered channel settles on its initial split).
REACTION_TIME = 1800


class ChainView:
    """One party's view of the chain for the channels it signs in (SPEC 11.1).

    With an adjudicator (an Ape contract object of the LedgerAdjudicator) every status is read at the
    current head block, once per block: deposits ``confirmations`` blocks behind the head, disputes,
    conclusion and virtual records at the head. ``max_head_age`` > 0 lets signing decisions use a head read
    at most that many seconds ago (a hub signing thousands of states per second; below the reaction time,
    so a registration seen late still leaves the whole challenge period, SPEC 11.1). Without an
    adjudicator the party knows only what it is told
    (``observe``, e.g. by its watchtower); a channel it was told nothing about counts as open, and no
    expiry is checked (there is no chain clock).
    """

    def __init__(
        self,
        adjudicator: Any = None,
        *,
        confirmations: int = 0,
        reaction_time: int = REACTION_TIME,
        max_head_age: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        if confirmations < 0 or reaction_time < 0:
            raise InvalidParams("confirmations and reaction_time are non-negative numbers (blocks, seconds)")
        if not 0 <= max_head_age < reaction_time:
            raise InvalidParams(
                f"max_head_age {max_head_age}s must be at least 0 and below the reaction time {reaction_time}s"
            )
        self.confirmations = confirmations
        self.reaction_time = reaction_time
        # A signing decision may use a head read at most this many seconds ago (0: read it for every one).
        self.max_head_age = max_head_age
        self._clock = clock
        self._read_at = 0.0
        self._reader = ChainReader(adjudicator) if adjudicator is not None else None
        self._virtual_reader: ChainReader | None = None
        self._told: dict[bytes, LedgerStatus | VirtualStatus | AppStatus] = {}
        self._cache: dict[bytes, LedgerStatus | VirtualStatus | AppStatus] = {}
        self._cached_head: Head | None = None
        self._pinned = 0

    @property
    def connected(self) -> bool:
        return self._reader is not None

    def observe(self, status: LedgerStatus | VirtualStatus | AppStatus) -> None:
        """Tell a view without a chain connection what the chain says about one channel."""
        self._told[status.channel] = status

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """Read the head once for every status read inside (one signing decision, one block)."""
        if self._reader is not None and self._pinned == 0:
            self._head(force=True)
        self._pinned += 1
        try:
            yield
        finally:
            self._pinned -= 1

    def refresh(self) -> None:
        """Forget the head read: the next status is read at the current head, whatever ``max_head_age``
        (after something this party expects to see on-chain, such as a deposit it was told of)."""
        self._cached_head = None
        self._cache.clear()

    def _head(self, force: bool = False) -> Head:
        assert self._reader is not None
        if self._pinned and not force and self._cached_head is not None:
            return self._cached_head
        now = self._clock()
        if self._cached_head is not None and now - self._read_at < self.max_head_age:
            return self._cached_head
        self._read_at = now
        number = self._reader.head_number()
        if self._cached_head is None or number != self._cached_head.number:
            self._cache.clear()
            self._cached_head = self._reader.head(number)
        return self._cached_head

    def ledger(self, channel: bytes) -> LedgerStatus:
        """The ledger channel's on-chain status (what it was told, without a chain connection)."""
        if self._reader is None:
            told = self._told.get(channel)
            return told if isinstance(told, LedgerStatus) else LedgerStatus(channel, (0, 0), False)
        head = self._head()
        cached = self._cache.get(channel)
        if not isinstance(cached, LedgerStatus):
            cached = self._cache[channel] = self._reader.ledger(channel, head, self.confirmations)
        return cached

    def app(self, channel: bytes) -> AppStatus:
        """The app channel's on-chain status, read from the adjudicator this view was made with (an
        AppAdjudicator), or what it was told without a chain connection."""
        if self._reader is None:
            told = self._told.get(channel)
            return told if isinstance(told, AppStatus) else AppStatus(channel, (0, 0), False)
        head = self._head()
        cached = self._cache.get(channel)
        if not isinstance(cached, AppStatus):
            cached = self._cache[channel] = self._reader.app(channel, head, self.confirmations)
        return cached

    def virtual(self, channel: bytes) -> VirtualStatus:
        """The virtual channel's on-chain record (read from the virtual adjudicator the ledger one names)."""
        if self._reader is None:
            told = self._told.get(channel)
            return told if isinstance(told, VirtualStatus) else VirtualStatus(channel)
        head = self._head()
        cached = self._cache.get(channel)
        if not isinstance(cached, VirtualStatus):
            if self._virtual_reader is None:
                self._virtual_reader = VirtualReader(self._reader)
            cached = self._cache[channel] = self._virtual_reader.virtual(channel, head)
        return cached

    def require_virtual_open(self, channel: bytes, expiry: int) -> VirtualStatus:
        """Refuse unless the virtual channel is unregistered and at least ``reaction_time`` from expiry."""
        status = self.virtual(channel)
        if status.registered:
            raise Unenforceable(
                channel,
                status.describe(),
                "a registered virtual channel takes no new state; answer with the latest state before its "
                "deadline and release the locks by its settled outcome",
            )
        if status.head is not None and status.head.timestamp + self.reaction_time >= expiry:
            raise Unenforceable(
                channel,
                f"{expiry - status.head.timestamp}s from its expiry {expiry} (reaction time {self.reaction_time}s)",
                "register the latest state Alice and Bob signed now, or close the channel with a final state",
            )
        return status
