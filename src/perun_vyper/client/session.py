"""Running updates between parties in one process (tests, the demo, a hub's local users); across
processes the same ``Update`` and countersignature travel over a transport instead."""

from __future__ import annotations

from ..core.protocol import SignedState, Update
from ..errors import RefusedUpdate
from .ledger import LedgerChannel
from .party import Party
from .virtual import VirtualChannel


def exchange(proposer: Party, receiver: Party, update: Update | None = None) -> SignedState:
    """Run one update between two parties in this process: ``update`` (default: the proposer's
    ``pending()``) is accepted by the receiver and completed by the proposer."""
    update = update if update is not None else proposer.pending()
    if update is None:
        raise RefusedUpdate("the proposer has no proposal in flight")
    return proposer.complete(update, receiver.accept(update))


def pay(payer: LedgerChannel | VirtualChannel, payee: LedgerChannel | VirtualChannel, amount: int) -> SignedState:
    """One off-chain payment between two in-process parties of the same channel."""
    return exchange(payer, payee, payer.propose_payment(amount))


def resume(first: Party, second: Party) -> None:
    """After a restart: send each side's proposal in flight again, so both hold the same latest state."""
    for proposer, receiver in ((first, second), (second, first)):
        if proposer.pending() is not None:
            exchange(proposer, receiver)
