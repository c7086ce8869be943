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
from typing import Any

from ape.exceptions import ApeException

from ..core import calls
from ..core.channel import ChannelParams
from ..core.display import AssetUnits, hex_of, plural, utc
from ..core.protocol import SignedState
from ..core.state import LedgerState, Lock
from ..core.virtual import VirtualParams
from ..store import ChannelRecord, ChannelStore
from .actions import (
    Action,
    Closed,
    Concluded,
    Failed,
    Observed,
    PollFailed,
    Refuted,
    VirtualRegistered,
    Waiting,
)


def _reason(exc: Exception) -> str:
    """The revert reason of an Ape error (``ledger: stale version``), else its text."""
    return getattr(exc, "message", None) or str(exc) or type(exc).__name__


class Watchtower:
    """Guards the channels of ``store`` on the adjudicators ``ledger`` and ``virtual``, sending from ``sender``.

    ``start_block`` is the first block whose events are reported (default: the block after the current
    head); on-chain state is read for every channel regardless.
    """

    def __init__(
        self, store: ChannelStore, ledger: Any, virtual: Any, sender: Any, start_block: int | None = None
    ) -> None:
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
        self._units = AssetUnits(self._call)

    # --- the loop -----------------------------------------------------------------------------------

    def poll(self) -> list[Action]:
        """One round: report new events, answer stale registrations, conclude what is due."""
        head = self._chain.blocks.head
        # Every view of this round reads the head block: consistent with its time and its events.
        self._block, now = int(head.number), int(head.timestamp)
        ledgers = self.store.channels("ledger")
        virtuals = {record.channel_id: record for record in self.store.channels("virtual")}
        channels = {r.channel_id for r in ledgers} | set(virtuals)
        actions: list[Action] = [*self._observe(int(head.number), now, channels)]
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
        return run_rounds(self.poll, interval, stop_after, max_actions, on_action)

    # --- events -------------------------------------------------------------------------------------

    def _observe(self, head: int, now: int, channels: set[bytes]) -> list[Observed]:
        if self.next_block > head:
            return []
        found: list[Observed] = []
        for contract, adjudicator in (("ledger", self.ledger), ("virtual", self.virtual)):
            for log in adjudicator.Registered.range(self.next_block, head + 1):
                channel, tx = bytes(log.channel), hex_of(log.transaction_hash)
                if channel in channels and tx not in self._own_txs:
                    version, deadline, block = int(log.version), int(log.deadline), int(log.block_number)
                    found.append(Observed(contract, channel, version, deadline, block, tx, now=now))
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
        receipt, failure = self._send(key, self.ledger.register, *calls.register(params, latest))
        if receipt is None:
            return failure
        return [Refuted(params.channel_id, version, latest.state.version, hex_of(receipt.txn_hash))]

    def _close(self, params: ChannelParams, latest: SignedState, version: int, key: tuple[Any, ...]) -> list[Action]:
        assert isinstance(latest.state, LedgerState)
        receipt, failure = self._send(key, self.ledger.close, *calls.close(params, latest))
        if receipt is None:
            return failure
        (event,) = receipt.decode_logs(self.ledger.Concluded)
        payouts = (int(event.payout_a), int(event.payout_b))
        symbol, decimals = self._units.of(params.asset)
        tx = hex_of(receipt.txn_hash)
        return [Closed(params.channel_id, version, latest.state.version, payouts, tx, symbol, decimals)]

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
                return self._wait(channel, f"cannot conclude: no virtual params for lock {hex_of(lock.channel)}")
            assert isinstance(record.params, VirtualParams)
            if not self._view(self.virtual.settlement, record.params.as_tuple())[1]:
                return self._wait(channel, f"conclusion waits for virtual channel {hex_of(lock.channel)} to settle")
            locked.append(record.params)
        key = ("conclude", channel, version, locks_hash)
        receipt, failure = self._send(key, self.ledger.conclude, *calls.conclude(params, locks, locked))
        if receipt is None:
            return failure
        (event,) = receipt.decode_logs(self.ledger.Concluded)
        payouts = (int(event.payout_a), int(event.payout_b))
        symbol, decimals = self._units.of(params.asset)
        return [Concluded(channel, version, payouts, hex_of(receipt.txn_hash), symbol, decimals)]

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
            # An absolute time: a reason is reported again only when it changes.
            reason = (
                f"a ledger dispute waits for this channel; only Alice or Bob may register before {utc(params.validity)}"
            )
            return self._wait(channel, reason)
        return self._register_virtual(params, latest, None, 0)

    def _register_virtual(
        self, params: VirtualParams, latest: SignedState, version: int | None, deadline: int
    ) -> list[Action]:
        key = ("register virtual", params.channel_id, latest.state.version, version, deadline)
        receipt, failure = self._send(key, self.virtual.register, *calls.register(params, latest))
        if receipt is None:
            return failure
        return [VirtualRegistered(params.channel_id, version, latest.state.version, hex_of(receipt.txn_hash))]

    # --- sending --------------------------------------------------------------------------------------

    def _view(self, method: Any, *args: Any) -> Any:
        return method(*args, block_id=self._block)

    def _call(self, address: str, data: bytes) -> bytes:
        """A plain ``eth_call`` (a token's ``symbol()``, ``decimals()``: for display only)."""
        web3 = self._chain.provider.web3
        return bytes(web3.eth.call({"to": address, "data": "0x" + data.hex()}, self._block))

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
        self._own_txs.add(hex_of(receipt.txn_hash))
        if receipt.failed:
            self._failed.add(key)
            reason = _reason(receipt.error) if receipt.error is not None else "reverted"
            mined = receipt.block_number is not None and receipt.block_number >= 0
            return None, [Failed(key[1], str(key[0]), reason, hex_of(receipt.txn_hash) if mined else None)]
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


def run_rounds(
    poll: Callable[[], list[Action]],
    interval: float,
    stop_after: float | None = None,
    max_actions: int | None = None,
    on_action: Callable[[Action], None] | None = None,
) -> list[Action]:
    """``poll`` every ``interval`` seconds (``Watchtower.run``; ``ape run watch`` with app channels polls
    both watchers in one round); a round the node fails is reported as ``PollFailed`` and tried again."""
    started = time.monotonic()
    done: list[Action] = []
    while True:
        try:
            actions = poll()
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


def summary(actions: Sequence[Action]) -> str:
    """``"3 actions: 1 Observed, 1 Refuted, 1 Concluded"`` (``"1 action: ..."``, ``"0 actions"``), for the
    end of a run."""
    counts: dict[str, int] = {}
    for action in actions:
        counts[type(action).__name__] = counts.get(type(action).__name__, 0) + 1
    parts = ", ".join(f"{n} {name}" for name, n in counts.items())
    return plural(len(actions), "action") + (f": {parts}" if parts else "")
