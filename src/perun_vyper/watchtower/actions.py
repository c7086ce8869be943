"""What a watchtower did, one typed record per action; each prints as one line of an operator's log."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

from ..core.display import ETH_SYMBOL, amount, hex_of, utc, when

Contract = Literal["ledger", "virtual"]


class _Line:
    """An action prints as one line of the log: its ``LINE`` filled with its fields, the channel id in
    full hex and an absent value (no earlier version, no transaction) as ``none``. Fields that only
    serve the line (the round's time, an asset's unit) are left out of comparisons: the records stay the
    same machine values for tests and log readers."""

    LINE: ClassVar[str]

    def _shown(self) -> dict[str, Any]:
        shown = {field.name: getattr(self, field.name) for field in fields(self)}  # type: ignore[arg-type]
        shown = {name: "none" if value is None else value for name, value in shown.items()}
        if "channel" in shown:
            shown["channel"] = hex_of(shown["channel"])
        return shown

    def __str__(self) -> str:
        return self.LINE.format(**self._shown())


class _Payouts(_Line):
    """Payouts (sides A and B) in the channel's asset, units beside the base value."""

    payouts: tuple[int, int]
    symbol: str
    decimals: int

    def _shown(self) -> dict[str, Any]:
        shown = super()._shown()
        shown["payout_a"], shown["payout_b"] = (amount(p, self.symbol, self.decimals) for p in self.payouts)
        return shown


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
    now: int | None = field(default=None, compare=False)  # the block time of the round that saw it

    def _shown(self) -> dict[str, Any]:
        shown = super()._shown()
        shown["deadline"] = utc(self.deadline) if self.now is None else when(self.deadline, self.now)
        return shown


@dataclass(frozen=True)
class Refuted(_Line):
    """A registered ledger state was replaced by the store's newer, non-final one (``register``)."""

    LINE: ClassVar[str] = "refuted    ledger {channel} v{old_version} -> v{new_version} tx={tx}"
    channel: bytes
    old_version: int
    new_version: int
    tx: str


@dataclass(frozen=True)
class Closed(_Payouts):
    """A registered ledger state was answered with the store's final state (``close``): concluded at once;
    ``payouts`` are sides A and B as the ``Concluded`` event reports them."""

    LINE: ClassVar[str] = (
        "closed     ledger {channel} v{old_version} -> final v{final_version}"
        " payout_a={payout_a} payout_b={payout_b} tx={tx}"
    )
    channel: bytes
    old_version: int
    final_version: int
    payouts: tuple[int, int]
    tx: str
    symbol: str = field(default=ETH_SYMBOL, compare=False)
    decimals: int = field(default=18, compare=False)


@dataclass(frozen=True)
class VirtualRegistered(_Line):
    """The store's latest virtual state was registered; ``old_version`` is None if nothing was registered."""

    LINE: ClassVar[str] = "registered virtual {channel} v{new_version} replacing={old_version} tx={tx}"
    channel: bytes
    old_version: int | None
    new_version: int
    tx: str


@dataclass(frozen=True)
class Concluded(_Payouts):
    """A disputed ledger channel was concluded by its registered state after the deadline; ``payouts``
    are sides A and B."""

    LINE: ClassVar[str] = "concluded  ledger {channel} v{version} payout_a={payout_a} payout_b={payout_b} tx={tx}"
    channel: bytes
    version: int
    payouts: tuple[int, int]
    tx: str
    symbol: str = field(default=ETH_SYMBOL, compare=False)
    decimals: int = field(default=18, compare=False)


@dataclass(frozen=True)
class AppRegistered(VirtualRegistered):
    """The store's latest app state both signed was registered over an older one (or a move built on
    one); ``old_version`` is the agreed version it replaced."""

    LINE: ClassVar[str] = "registered app {channel} v{new_version} replacing={old_version} tx={tx}"


@dataclass(frozen=True)
class AppMoved(VirtualRegistered):
    """The watcher answered a disputed app channel with its party's move (``progress``) from
    ``old_version``."""

    LINE: ClassVar[str] = "moved      app {channel} v{old_version} -> v{new_version} tx={tx}"


@dataclass(frozen=True)
class AppConcluded(Concluded):
    """A disputed app channel was concluded by its registered (or last moved) state after the deadline;
    ``payouts`` are sides A and B as the ``Concluded`` event reports them."""

    LINE: ClassVar[str] = "concluded  app {channel} v{version} payout_a={payout_a} payout_b={payout_b} tx={tx}"


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


@dataclass(frozen=True)
class Leading(_Line):
    """A hub worker took the watchtower's lease (several workers share a store: one guards at a time)."""

    LINE: ClassVar[str] = "leading    worker {worker} guards the hub's channels (lease {lease:g}s)"
    worker: str
    lease: float


@dataclass(frozen=True)
class StandingBy(_Line):
    """A hub worker found the watchtower's lease held by another (it takes over if that one dies)."""

    LINE: ClassVar[str] = "standby    worker {worker}: {leader} guards the hub's channels"
    worker: str
    leader: str


Action = (
    Observed
    | Refuted
    | Closed
    | VirtualRegistered
    | Concluded
    | AppRegistered
    | AppMoved
    | AppConcluded
    | Failed
    | Waiting
    | PollFailed
    | Leading
    | StandingBy
)
