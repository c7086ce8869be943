"""The app channel watcher: guards one party's app channels on the AppAdjudicator (docs/SPEC.md 12.6).

Each ``poll`` reads every channel's open dispute (``AppChannel.dispute``: rebuilt from the events and
checked against the adjudicator's word) and does at most one thing per channel:

- the deadline passed: ``conclude`` (anyone may; the watcher does not wait for the winner to);
- our store holds a state both signed that is newer than the registered one (or than the state the
  moves started from): ``register`` it, which also discards every move built on the stale one;
- otherwise ``answer(channel, dispute)`` may return our move from the disputed state (the SLA provider's
  response to a request forced on-chain, say): ``progress`` with it.

A transaction that reverts (a race with the other side) is reported as ``Failed`` and not repeated while
the on-chain registration stays the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ape.exceptions import ApeException

from ..client.app import AppChannel
from ..client.app_dispute import AppDispute
from ..core.app import AppState
from ..core.display import AssetUnits, hex_of
from ..core.sla import PROVIDER, SlaData, respond
from ..errors import PerunError
from ..store import ChannelStore
from .actions import Action, AppConcluded, AppMoved, AppRegistered, Failed, Waiting

Answer = Callable[[AppChannel, AppDispute], AppState | None]
"""Our move in a dispute: the state to move to from ``dispute.state``, or None to let the period run."""


def sla_provider(response_to: Callable[[bytes], bytes]) -> Answer:
    """The SLA provider's answer: when a request is pending in the disputed state, respond with
    ``response_to(request)`` (32 non-zero bytes)."""

    def _answer(channel: AppChannel, dispute: AppDispute) -> AppState | None:
        if channel.side != PROVIDER or dispute.state.is_final:
            return None
        data = SlaData.decode(dispute.state.app_data)
        return respond(dispute.state, response_to(data.request)) if data.pending else None

    return _answer


class AppWatcher:
    """Guards ``channels`` (one party's ``AppChannel`` objects, each with its adjudicator; or a function
    that gives them, called every round), sending from ``sender`` (an Ape account; it pays only gas)."""

    def __init__(
        self,
        channels: Sequence[AppChannel] | Callable[[], Sequence[AppChannel]],
        sender: Any,
        answer: Answer | None = None,
    ) -> None:
        self.channels = channels if callable(channels) else (lambda fixed=list(channels): fixed)
        self.sender = sender
        self.answer = answer
        self._failed: set[tuple[str, bytes, bytes]] = set()
        self._waiting: dict[bytes, str] = {}
        self._asset_units: AssetUnits | None = None

    def poll(self) -> list[Action]:
        """One round over every channel; returns what was done."""
        actions: list[Action] = []
        for channel in self.channels():
            try:
                actions += self._watch(channel)
            except (ApeException, OSError, PerunError) as exc:
                actions += self._wait(channel.channel_id, f"cannot act on the channel: {_reason(exc)}")
        return actions

    def _watch(self, channel: AppChannel) -> list[Action]:
        dispute = channel.dispute()
        if dispute is None:
            return []
        contract = channel.adjudicator
        now = int(contract.chain_manager.blocks.head.timestamp)
        word = dispute.registration.stored()
        channel_id = channel.channel_id
        if now >= dispute.deadline:
            receipt, failed = self._send(("conclude", channel_id, word), channel.conclude, current=dispute)
            if receipt is None:
                return failed
            event = receipt.decode_logs(contract.Concluded)[0]
            payouts = (int(event.payout_a), int(event.payout_b))
            symbol, decimals = self._units(contract).of(channel.params.asset)
            tx = hex_of(receipt.txn_hash)
            return [AppConcluded(channel_id, dispute.state.version, payouts, tx, symbol, decimals)]
        latest = channel.latest
        if latest is not None and latest.state.version > dispute.agreed and latest.state != dispute.state:
            receipt, failed = self._send(("register", channel_id, word), channel.register, current=dispute)
            if receipt is None:
                return failed
            return [AppRegistered(channel_id, dispute.agreed, latest.state.version, hex_of(receipt.txn_hash))]
        move = self.answer(channel, dispute) if self.answer is not None else None
        if move is None:
            return []  # the other side's turn, or nobody's: the period runs, conclude at its deadline
        receipt, failed = self._send(("progress", channel_id, word), channel.progress, move, current=dispute)
        if receipt is None:
            return failed
        return [AppMoved(channel_id, dispute.state.version, move.version, hex_of(receipt.txn_hash))]

    def _send(
        self, key: tuple[str, bytes, bytes], method: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> tuple[Any, list[Action]]:
        """Send unless the same transaction failed before against the same registration."""
        if key in self._failed:
            return None, []
        try:
            receipt = method(*args, sender=self.sender, **kwargs)
        except (ApeException, PerunError) as exc:
            self._failed.add(key)
            return None, [Failed(key[1], key[0], _reason(exc), None)]
        self._waiting.pop(key[1], None)
        return receipt, []

    def _units(self, contract: Any) -> AssetUnits:
        """The display units of the channels' assets (a token's symbol and decimals, read once)."""
        if self._asset_units is None:
            web3 = contract.provider.web3
            self._asset_units = AssetUnits(
                lambda address, data: bytes(web3.eth.call({"to": address, "data": "0x" + data.hex()}))
            )
        return self._asset_units

    def _wait(self, channel: bytes, reason: str) -> list[Action]:
        if self._waiting.get(channel) == reason:
            return []
        self._waiting[channel] = reason
        return [Waiting(channel, reason)]


def _reason(exc: Exception) -> str:
    return getattr(exc, "message", None) or str(exc) or type(exc).__name__


def store_watcher(store: ChannelStore, adjudicator: Any, sender: Any, start_block: int = 0) -> AppWatcher:
    """An ``AppWatcher`` over every app channel of ``store`` (read again each round, as watch-only views:
    it refutes and concludes, and makes no move), for ``ape run watch``."""

    def channels() -> list[AppChannel]:
        return [
            AppChannel.watch(store, record.channel_id, adjudicator, start_block=start_block)
            for record in store.channels("app")
        ]

    return AppWatcher(channels, sender)
