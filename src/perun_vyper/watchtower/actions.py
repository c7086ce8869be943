"""What a watchtower did, one typed record per action; each prints as one line of an operator's log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

Contract = Literal["ledger", "virtual"]


def hex_of(value: bytes | str) -> str:
    """``0x``-prefixed lower-case hex of bytes (a channel id) or of a hex string (a transaction hash)."""
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return "0x" + bytes(value).hex()


class _Line:
    """An action prints as one line of the log: its ``LINE`` with the record as ``a`` and the channel id
    in hex as ``channel``."""

    LINE: ClassVar[str]

    def __str__(self) -> str:
        channel = getattr(self, "channel", None)
        return self.LINE.format(a=self, channel=hex_of(channel) if channel is not None else "")


@dataclass(frozen=True)
class Observed(_Line):
    """A ``Registered`` event of a store channel (not one of the watchtower's own transactions)."""

    LINE: ClassVar[str] = (
        "observed   {a.contract} {channel} registered v{a.version} deadline={a.deadline} block={a.block} tx={a.tx}"
    )
    contract: Contract
    channel: bytes
    version: int
    deadline: int
    block: int
    tx: str


@dataclass(frozen=True)
class Refuted(_Line):
    """A registered ledger state was replaced by the store's newer, non-final one (``register``)."""

    LINE: ClassVar[str] = "refuted    ledger {channel} v{a.old_version} -> v{a.new_version} tx={a.tx}"
    channel: bytes
    old_version: int
    new_version: int
    tx: str


@dataclass(frozen=True)
class Closed(_Line):
    """A registered ledger state was answered with the store's final state (``close``): concluded at once."""

    LINE: ClassVar[str] = (
        "closed     ledger {channel} v{a.old_version} -> final v{a.final_version}"
        " payout_a={a.payout_a} payout_b={a.payout_b} tx={a.tx}"
    )
    channel: bytes
    old_version: int
    final_version: int
    payout_a: int
    payout_b: int
    tx: str


@dataclass(frozen=True)
class VirtualRegistered(_Line):
    """The store's latest virtual state was registered; ``old_version`` is None if nothing was registered."""

    LINE: ClassVar[str] = "registered virtual {channel} {a.old} -> v{a.new_version} tx={a.tx}"
    channel: bytes
    old_version: int | None
    new_version: int
    tx: str

    @property
    def old(self) -> str:
        return "none" if self.old_version is None else f"v{self.old_version}"


@dataclass(frozen=True)
class Concluded(_Line):
    """A disputed ledger channel was concluded by its registered state after the deadline."""

    LINE: ClassVar[str] = (
        "concluded  ledger {channel} v{a.version} payout_a={a.payout_a} payout_b={a.payout_b} tx={a.tx}"
    )
    channel: bytes
    version: int
    payout_a: int
    payout_b: int
    tx: str


@dataclass(frozen=True)
class Failed(_Line):
    """A transaction the views said would succeed reverted (a race); not retried in the same situation."""

    LINE: ClassVar[str] = "failed     {a.operation} {channel}: {a.reason} tx={a.shown_tx}"
    channel: bytes
    operation: str
    reason: str
    tx: str | None

    @property
    def shown_tx(self) -> str:
        return self.tx or "-"


@dataclass(frozen=True)
class Waiting(_Line):
    """The watchtower cannot act on a channel now (or at all); reported once per reason."""

    LINE: ClassVar[str] = "waiting    {channel}: {a.reason}"
    channel: bytes
    reason: str


@dataclass(frozen=True)
class PollFailed(_Line):
    """A whole round failed (the node is unreachable, say); ``run`` reports it and polls again."""

    LINE: ClassVar[str] = "error      poll: {a.reason}"
    reason: str


Action = Observed | Refuted | Closed | VirtualRegistered | Concluded | Failed | Waiting | PollFailed
