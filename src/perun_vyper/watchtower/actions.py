"""What a watchtower did, one typed record per action; each prints as one line of an operator's log."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar, Literal

Contract = Literal["ledger", "virtual"]


def hex_of(value: bytes | str) -> str:
    """``0x``-prefixed lower-case hex of bytes (a channel id) or of a hex string (a transaction hash)."""
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return "0x" + bytes(value).hex()


class _Line:
    """An action prints as one line of the log: its ``LINE`` filled with its fields, the channel id in
    hex and an absent value (no earlier version, no transaction) as ``none``."""

    LINE: ClassVar[str]

    def __str__(self) -> str:
        shown = {field.name: getattr(self, field.name) for field in fields(self)}  # type: ignore[arg-type]
        shown = {name: "none" if value is None else value for name, value in shown.items()}
        if "channel" in shown:
            shown["channel"] = hex_of(shown["channel"])
        return self.LINE.format(**shown)


@dataclass(frozen=True)
class Observed(_Line):
    """A ``Registered`` event of a store channel (not one of the watchtower's own transactions)."""

    LINE: ClassVar[str] = (
        "observed   {contract} {channel} registered v{version} deadline={deadline} block={block} tx={tx}"
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

    LINE: ClassVar[str] = "refuted    ledger {channel} v{old_version} -> v{new_version} tx={tx}"
    channel: bytes
    old_version: int
    new_version: int
    tx: str


@dataclass(frozen=True)
class Closed(_Line):
    """A registered ledger state was answered with the store's final state (``close``): concluded at once;
    ``payouts`` are sides A and B as the ``Concluded`` event reports them."""

    LINE: ClassVar[str] = (
        "closed     ledger {channel} v{old_version} -> final v{final_version}"
        " payout_a={payouts[0]} payout_b={payouts[1]} tx={tx}"
    )
    channel: bytes
    old_version: int
    final_version: int
    payouts: tuple[int, int]
    tx: str


@dataclass(frozen=True)
class VirtualRegistered(_Line):
    """The store's latest virtual state was registered; ``old_version`` is None if nothing was registered."""

    LINE: ClassVar[str] = "registered virtual {channel} v{new_version} replacing={old_version} tx={tx}"
    channel: bytes
    old_version: int | None
    new_version: int
    tx: str


@dataclass(frozen=True)
class Concluded(_Line):
    """A disputed ledger channel was concluded by its registered state after the deadline; ``payouts``
    are sides A and B."""

    LINE: ClassVar[str] = "concluded  ledger {channel} v{version} payout_a={payouts[0]} payout_b={payouts[1]} tx={tx}"
    channel: bytes
    version: int
    payouts: tuple[int, int]
    tx: str


@dataclass(frozen=True)
class Failed(_Line):
    """A transaction the views said would succeed reverted (a race); not retried in the same situation."""

    LINE: ClassVar[str] = "failed     {operation} {channel}: {reason} tx={tx}"
    channel: bytes
    operation: str
    reason: str
    tx: str | None


@dataclass(frozen=True)
class Waiting(_Line):
    """The watchtower cannot act on a channel now (or at all); reported once per reason."""

    LINE: ClassVar[str] = "waiting    {channel}: {reason}"
    channel: bytes
    reason: str


@dataclass(frozen=True)
class PollFailed(_Line):
    """A whole round failed (the node is unreachable, say); ``run`` reports it and polls again."""

    LINE: ClassVar[str] = "error      poll: {reason}"
    reason: str


Action = Observed | Refuted | Closed | VirtualRegistered | Concluded | Failed | Waiting | PollFailed
