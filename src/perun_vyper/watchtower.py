"""Watchtower: answers registrations of old states with the latest fully signed ones and concludes
ledger channels once their challenge period is over (docs/SPEC.md, section 10).

A ``Watchtower`` reads the channels and states of a ``Store`` and acts on-chain through Ape contract
objects of the two adjudicators, sending from one account (which pays only gas). ``poll`` does one
round and returns what it did as typed action records; ``run`` repeats it.

Each round, for every channel of the store, the watchtower reads the channel's on-chain state through
the adjudicators' views, so a watchtower started late (or restarted) still reacts to a registration it
never saw as an event. ``Registered`` events of the store's channels since the previous round are
reported as ``Observed``. Every transaction is preceded by the view checks that make it succeed; a
transaction that reverts anyway (a race with another sender) is reported as ``Failed`` and not
repeated while the on-chain situation stays the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ape.exceptions import ApeException

from .channel import ChannelParams
from .signing import compact
from .state import LedgerState, Lock
from .store import ChannelRecord, SignedState, Store
from .virtual import VirtualParams

Contract = Literal["ledger", "virtual"]


def _hex(value: bytes | str) -> str:
    """``0x``-prefixed lower-case hex of bytes (a channel id) or of a hex string (a transaction hash)."""
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return "0x" + bytes(value).hex()


@dataclass(frozen=True)
class Observed:
    """A ``Registered`` event of a store channel (not one of the watchtower's own transactions)."""

    contract: Contract
    channel: bytes
    version: int
    deadline: int
    block: int
    tx: str

    def __str__(self) -> str:
        return (
            f"observed   {self.contract} {_hex(self.channel)} registered v{self.version}"
            f" deadline={self.deadline} block={self.block} tx={self.tx}"
        )


@dataclass(frozen=True)
class Refuted:
    """A registered ledger state was replaced by the store's newer, non-final one (``register``)."""

    channel: bytes
    old_version: int
    new_version: int
    tx: str

    def __str__(self) -> str:
        return f"refuted    ledger {_hex(self.channel)} v{self.old_version} -> v{self.new_version} tx={self.tx}"


@dataclass(frozen=True)
class Closed:
    """A registered ledger state was answered with the store's final state (``close``): concluded at once."""

    channel: bytes
    old_version: int
    final_version: int
    payout_a: int
    payout_b: int
    tx: str

    def __str__(self) -> str:
        return (
            f"closed     ledger {_hex(self.channel)} v{self.old_version} -> final v{self.final_version}"
            f" payout_a={self.payout_a} payout_b={self.payout_b} tx={self.tx}"
        )


@dataclass(frozen=True)
class VirtualRegistered:
    """The store's latest virtual state was registered; ``old_version`` is None if nothing was registered."""

    channel: bytes
    old_version: int | None
    new_version: int
    tx: str

    def __str__(self) -> str:
        old = "none" if self.old_version is None else f"v{self.old_version}"
        return f"registered virtual {_hex(self.channel)} {old} -> v{self.new_version} tx={self.tx}"


@dataclass(frozen=True)
class Concluded:
    """A disputed ledger channel was concluded by its registered state after the deadline."""

    channel: bytes
    version: int
    payout_a: int
    payout_b: int
    tx: str

    def __str__(self) -> str:
        return (
            f"concluded  ledger {_hex(self.channel)} v{self.version}"
            f" payout_a={self.payout_a} payout_b={self.payout_b} tx={self.tx}"
        )


@dataclass(frozen=True)
class Failed:
    """A transaction the views said would succeed reverted (a race); not retried in the same situation."""

    channel: bytes
    operation: str
    reason: str
    tx: str | None

    def __str__(self) -> str:
        return f"failed     {self.operation} {_hex(self.channel)}: {self.reason} tx={self.tx or '-'}"


@dataclass(frozen=True)
class Waiting:
    """The watchtower cannot act on a channel now (or at all); reported once per reason."""

    channel: bytes
    reason: str

    def __str__(self) -> str:
        return f"waiting    {_hex(self.channel)}: {self.reason}"


def _reason(exc: Exception) -> str:
    """The revert reason of an Ape error (``ledger: stale version``), else its text."""
    return getattr(exc, "message", None) or str(exc) or type(exc).__name__


@dataclass(frozen=True)
class PollFailed:
    """A whole round failed (the node is unreachable, say); ``run`` reports it and polls again."""

    reason: str

    def __str__(self) -> str:
        return f"error      poll: {self.reason}"


Action = Observed | Refuted | Closed | VirtualRegistered | Concluded | Failed | Waiting | PollFailed


class Watchtower:
    """Guards the channels of ``store`` on the adjudicators ``ledger`` and ``virtual``, sending from ``sender``.

    ``start_block`` is the first block whose events are reported (default: the block after the current
    head); on-chain state is read for every channel regardless.
    """

    def __init__(self, store: Store, ledger: Any, virtual: Any, sender: Any, start_block: int | None = None) -> None:
        self.store = store
        self.ledger = ledger
        self.virtual = virtual
        self.sender = sender
        self._chain = ledger.chain_manager
        self.next_block = self._chain.blocks.height + 1 if start_block is None else start_block
        self._own_txs: set[str] = set()
        self._failed: set[tuple[Any, ...]] = set()
        self._waiting: dict[bytes, str] = {}
        self._block = self.next_block - 1

    # --- the loop -----------------------------------------------------------------------------------

    def poll(self) -> list[Action]:
        """One round: report new events, answer stale registrations, conclude what is due."""
        head = self._chain.blocks.head
        # Every view of this round reads the head block: consistent with its time and its events.
        self._block, now = int(head.number), int(head.timestamp)
        ledgers = self.store.channels("ledger")
        virtuals = {record.channel_id: record for record in self.store.channels("virtual")}
        actions: list[Action] = [*self._observe(int(head.number), {r.channel_id for r in ledgers} | set(virtuals))]
        # Virtual channels first: a ledger conclusion may wait for one to settle.
        for record in virtuals.values():
            actions += self._guarded(record.channel_id, self._watch_virtual, record, now)
        for record in ledgers:
            actions += self._guarded(record.channel_id, self._watch_ledger, record, now, virtuals)
        return actions

    def run(
        self,
        interval: float,
        stop_after: float | None = None,
        max_actions: int | None = None,
        on_action: Callable[[Action], None] | None = None,
    ) -> list[Action]:
        """Poll every ``interval`` seconds until ``stop_after`` seconds passed or ``max_actions`` were
        reported (forever if neither is given); returns every action, each also passed to ``on_action``."""
        started = time.monotonic()
        done: list[Action] = []
        while True:
            try:
                actions = self.poll()
            except (ApeException, OSError) as exc:  # the node is unreachable or failing: try again next round
                actions = [PollFailed(_reason(exc))]
            for action in actions:
                done.append(action)
                if on_action is not None:
                    on_action(action)
            if max_actions is not None and len(done) >= max_actions:
                return done
            if stop_after is not None and time.monotonic() - started + interval > stop_after:
                return done
            time.sleep(interval)

    # --- events -------------------------------------------------------------------------------------

    def _observe(self, head: int, channels: set[bytes]) -> list[Observed]:
        if self.next_block > head:
            return []
        found: list[Observed] = []
        for contract, adjudicator in (("ledger", self.ledger), ("virtual", self.virtual)):
            for log in adjudicator.Registered.range(self.next_block, head + 1):
                channel, tx = bytes(log.channel), _hex(log.transaction_hash)
                if channel in channels and tx not in self._own_txs:
                    found.append(
                        Observed(contract, channel, int(log.version), int(log.deadline), int(log.block_number), tx)
                    )
        self.next_block = head + 1
        return sorted(found, key=lambda action: action.block)

    # --- ledger channels ----------------------------------------------------------------------------

    def _watch_ledger(self, record: ChannelRecord, now: int, virtuals: dict[bytes, ChannelRecord]) -> list[Action]:
        channel, params = record.channel_id, record.params
        assert isinstance(params, ChannelParams)
        if self._view(self.ledger.holdings, channel)[2]:
            return []
        version, deadline, locks_hash = self._view(self.ledger.dispute, channel)
        version, deadline, locks_hash = int(version), int(deadline), bytes(locks_hash)
        if deadline == 0:
            return []
        latest = self.store.latest(channel)
        answered: list[Action] = []
        if latest is not None and latest.state.version > version:
            state = latest.state
            assert isinstance(state, LedgerState)
            if state.is_final:
                key = ("close", channel, state.version, version)
                if key not in self._failed:  # a final state closes even after the deadline
                    return self._close(params, latest, version, key)
            elif now < deadline:
                return self._refute(params, latest, version, deadline)
            else:  # too late to answer: conclude by the registered state, which at least releases the funds
                answered = self._wait(channel, f"latest v{state.version} came too late: the challenge period is over")
        elif now < deadline and (latest is None or latest.state.version < version):
            newest = "nothing" if latest is None else f"v{latest.state.version}"
            reason = f"registered v{version} is not in the store (latest: {newest}): nothing to answer"
            return self._wait(channel, reason)
        if now < deadline:
            return []
        return answered + self._conclude(params, locks_hash, version, virtuals)

    def _refute(self, params: ChannelParams, latest: SignedState, version: int, deadline: int) -> list[Action]:
        key = ("register", params.channel_id, latest.state.version, version, deadline)
        receipt, failure = self._send(key, self.ledger.register, params.as_tuple(), *self._args(latest))
        if receipt is None:
            return failure
        return [Refuted(params.channel_id, version, latest.state.version, _hex(receipt.txn_hash))]

    def _close(self, params: ChannelParams, latest: SignedState, version: int, key: tuple[Any, ...]) -> list[Action]:
        assert isinstance(latest.state, LedgerState) and latest.sig_a is not None and latest.sig_b is not None
        final = latest.state.final_tuple()
        receipt, failure = self._send(
            key, self.ledger.close, params.as_tuple(), final, compact(latest.sig_a), compact(latest.sig_b)
        )
        if receipt is None:
            return failure
        (event,) = receipt.decode_logs(self.ledger.Concluded)
        return [
            Closed(
                params.channel_id,
                version,
                latest.state.version,
                int(event.payout_a),
                int(event.payout_b),
                _hex(receipt.txn_hash),
            )
        ]

    def _conclude(
        self, params: ChannelParams, locks_hash: bytes, version: int, virtuals: dict[bytes, ChannelRecord]
    ) -> list[Action]:
        """Conclude by the registered outcome; only a registered state with locks (non-zero ``locks_hash``)
        needs the store: its locks, and each lock's virtual channel settled."""
        channel = params.channel_id
        locks: tuple[Lock, ...] = ()
        if locks_hash != bytes(32):
            state = self._find(channel, version, locks_hash)
            if state is None:
                return self._wait(
                    channel, f"cannot conclude: the locks of the registered v{version} are not in the store"
                )
            locks = state.locks
        locked: list[VirtualParams] = []
        for lock in locks:
            record = virtuals.get(lock.channel)
            if record is None:
                return self._wait(channel, f"cannot conclude: no virtual params for lock {_hex(lock.channel)}")
            assert isinstance(record.params, VirtualParams)
            if not self._view(self.virtual.settlement, record.params.as_tuple())[1]:
                return self._wait(channel, f"conclusion waits for virtual channel {_hex(lock.channel)} to settle")
            locked.append(record.params)
        key = ("conclude", channel, version, locks_hash)
        virtual_args = [vp.as_tuple() for vp in locked]
        lock_args = [lock.as_tuple() for lock in locks]
        receipt, failure = self._send(key, self.ledger.conclude, params.as_tuple(), lock_args, virtual_args)
        if receipt is None:
            return failure
        (event,) = receipt.decode_logs(self.ledger.Concluded)
        return [Concluded(channel, version, int(event.payout_a), int(event.payout_b), _hex(receipt.txn_hash))]

    def _find(self, channel: bytes, version: int, locks_hash: bytes) -> LedgerState | None:
        """The stored ledger state registered: this version, with locks of this hash."""
        signed = self.store.state(channel, version)
        if signed is None or not isinstance(signed.state, LedgerState) or signed.state.locks_hash() != locks_hash:
            return None
        return signed.state

    # --- virtual channels ---------------------------------------------------------------------------

    def _watch_virtual(self, record: ChannelRecord, now: int) -> list[Action]:
        channel, params = record.channel_id, record.params
        assert isinstance(params, VirtualParams)
        version, deadline, _, is_final = self._view(self.virtual.record, channel)
        version, deadline = int(version), int(deadline)
        if is_final:
            return []
        latest = self.store.latest(channel)
        if deadline != 0:
            if latest is None or latest.state.version <= version:
                return []
            if now >= deadline:
                return self._wait(channel, f"latest v{latest.state.version} came too late: the period is over")
            return self._register_virtual(params, latest, version, deadline)
        # Nothing registered: register only when a ledger dispute will need this channel settled, and only
        # with a state beyond the initial split (which is the outcome anyway from the expiry on).
        if latest is None or latest.state.version == 0 or now >= params.expiry:
            return []
        ledgers = (params.ledger_alice, params.ledger_bob)
        if all(int(self._view(self.ledger.dispute, ledger)[1]) == 0 for ledger in ledgers):
            return []
        if self.sender.address not in (params.alice, params.bob) and now < params.validity:
            reason = f"a ledger dispute waits for this channel; only Alice or Bob may register before {params.validity}"
            return self._wait(channel, reason)
        return self._register_virtual(params, latest, None, 0)

    def _register_virtual(
        self, params: VirtualParams, latest: SignedState, version: int | None, deadline: int
    ) -> list[Action]:
        key = ("register virtual", params.channel_id, latest.state.version, version, deadline)
        receipt, failure = self._send(key, self.virtual.register, params.as_tuple(), *self._args(latest))
        if receipt is None:
            return failure
        return [VirtualRegistered(params.channel_id, version, latest.state.version, _hex(receipt.txn_hash))]

    # --- sending --------------------------------------------------------------------------------------

    def _view(self, method: Any, *args: Any) -> Any:
        return method(*args, block_id=self._block)

    @staticmethod
    def _args(signed: SignedState) -> tuple[Any, ...]:
        assert signed.sig_a is not None and signed.sig_b is not None
        return signed.state.as_tuple(), compact(signed.sig_a), compact(signed.sig_b)

    def _send(self, key: tuple[Any, ...], method: Any, *args: Any) -> tuple[Any, list[Action]]:
        """Send unless the same transaction failed before in the same situation; a revert is reported."""
        if key in self._failed:
            return None, []
        try:
            # A revert found when estimating gas raises; one found after mining leaves a failed receipt.
            receipt = method(*args, sender=self.sender, raise_on_revert=False)
        except ApeException as exc:
            self._failed.add(key)
            return None, [Failed(key[1], str(key[0]), _reason(exc), None)]
        self._own_txs.add(_hex(receipt.txn_hash))
        if receipt.failed:
            self._failed.add(key)
            reason = _reason(receipt.error) if receipt.error is not None else "reverted"
            mined = receipt.block_number is not None and receipt.block_number >= 0
            return None, [Failed(key[1], str(key[0]), reason, _hex(receipt.txn_hash) if mined else None)]
        self._waiting.pop(key[1], None)
        return receipt, []

    def _guarded(self, channel: bytes, watch: Callable[..., list[Action]], *args: Any) -> list[Action]:
        """``watch(*args)``; a read that fails (node error) is reported once and the round goes on."""
        try:
            return watch(*args)
        except (ApeException, OSError) as exc:
            return self._wait(channel, f"cannot read the channel: {_reason(exc)}")

    def _wait(self, channel: bytes, reason: str) -> list[Action]:
        if self._waiting.get(channel) == reason:
            return []
        self._waiting[channel] = reason
        return [Waiting(channel, reason)]


def summary(actions: Sequence[Action]) -> str:
    """``"3 actions: 1 Observed, 1 Refuted, 1 Concluded"``, for the end of a run."""
    counts: dict[str, int] = {}
    for action in actions:
        counts[type(action).__name__] = counts.get(type(action).__name__, 0) + 1
    parts = ", ".join(f"{n} {name}" for name, n in counts.items())
    return f"{len(actions)} actions" + (f": {parts}" if parts else "")
