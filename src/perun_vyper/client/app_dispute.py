"""An app channel's open dispute as the chain holds it (docs/SPEC.md section 12).

``AppAdjudicator.registrations`` keeps one word per dispute: the hash of the registered (or last moved)
state's hash, its version, its deadline and the agreed version. Every call that acts on a dispute names
all four and the state itself, so a party rebuilds them from the adjudicator's events: a ``Registered``
event names a state both parties signed (our store holds it: we keep every state we sign), a
``Progressed`` event carries the move that leads from the previous state to the next. Nothing read from
the logs is used before it hashes to the word the adjudicator stores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.app import AppState, Move, Registration
from ..core.codec import hexstr
from ..errors import ChainUnavailable, RefusedUpdate


@dataclass(frozen=True)
class AppDispute:
    """An open dispute: the registered (or last moved) state and its registration, checked against the
    adjudicator's word. ``mover`` is the side whose move produced the state (None for a registration)."""

    state: AppState
    registration: Registration
    mover: int | None = None

    @property
    def deadline(self) -> int:
        return self.registration.deadline

    @property
    def agreed(self) -> int:
        return self.registration.agreed


# Blocks read at first, back from the head: one page of Ape's log queries (its providers' default page).
FIRST_WINDOW = 5_000


def _ordered_logs(contract: Any, channel: bytes, start: int, stop: int) -> list[Any]:
    """The channel's ``Registered``, ``Progressed`` and ``Concluded`` logs in chain order."""
    topics = {"channel": channel}
    logs = [
        log
        for event in (contract.Registered, contract.Progressed, contract.Concluded)
        for log in event.range(start, stop, search_topics=topics)
    ]
    return sorted(logs, key=lambda log: (int(log.block_number), int(log.log_index)))


def dispute_logs(contract: Any, channel: bytes, start_block: int, head: int) -> list[Any]:
    """The channel's logs up to ``head``, in chain order, read back from the head in windows that double
    until a window holds a ``Registered`` event (or ``start_block`` is reached). The current dispute starts
    at the last registration, so nothing before it is needed: a recent dispute costs one query however long
    the chain is, an old one a number of queries that grows with its age only."""
    stop, window = head + 1, FIRST_WINDOW
    found: list[Any] = []
    while stop > start_block:
        low = max(start_block, stop - window)
        found = _ordered_logs(contract, channel, low, stop) + found
        if any(log.event_name == "Registered" for log in found):
            break
        stop, window = low, window * 2
    return found


def read_dispute(
    contract: Any,
    channel: bytes,
    word: bytes,
    find: Callable[[int, bytes], AppState | None],
    start_block: int = 0,
) -> AppDispute | None:
    """The dispute the adjudicator ``contract`` holds for ``channel`` (its registration ``word``), rebuilt
    from its events (``dispute_logs``, none before ``start_block``); ``find(version, state_hash)`` returns a
    registered state from the caller's store. None when ``word`` is zero (no dispute open)."""
    if word == bytes(32):
        return None
    head = int(contract.chain_manager.blocks.head.number)
    current: AppDispute | None = None
    unknown: tuple[int, bytes] | None = None  # a registered state we do not hold (version, hash)
    for log in dispute_logs(contract, channel, start_block, head):
        name = log.event_name
        if name == "Concluded":
            current, unknown = None, None
        elif name == "Registered":
            version, state_hash = int(log.version), bytes(log.state_hash)
            state = find(version, state_hash)
            if state is None:
                current, unknown = None, (version, state_hash)
                continue
            unknown = None
            current = AppDispute(state, Registration(state_hash, version, int(log.deadline), version))
        elif current is not None:  # Progressed, from a state we know
            move = Move(int(log.mover), int(log.balance_a), int(log.balance_b), bytes(log.app_data))
            state = current.state.moved(move)
            registration = Registration(bytes(log.state_hash), state.version, int(log.deadline), current.agreed)
            current = AppDispute(state, registration, move.mover)
    if unknown is not None:
        raise RefusedUpdate(
            f"channel {hexstr(channel)} has version {unknown[0]} registered (state hash {hexstr(unknown[1])}), a "
            "state this store never signed; restore the store this channel's signatures were written to"
        )
    if (
        current is None
        or current.registration.stored() != word
        or current.state.struct_hash() != (current.registration.state_hash)
    ):
        raise ChainUnavailable(
            f"the events of channel {hexstr(channel)} since block {start_block} do not add up to the dispute the "
            "adjudicator stores (a reorg in progress, or the events start later); retry, or pass an earlier "
            "start_block"
        )
    return current
