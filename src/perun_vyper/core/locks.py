"""Ledger-state updates that lock funds for a virtual channel and release them, with the checks
that keep Ingrid neutral and every ledger channel conserving its funds.

In the Alice-Ingrid channel the side that locks Alice's virtual funding (and receives her virtual
balance) is Alice, the other is Ingrid; in the Ingrid-Bob channel it is Ingrid, and the other is Bob.
The adjudicator applies the same rule on-chain (``LedgerAdjudicator._split_lock``).
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import InvalidState
from .channel import ChannelParams
from .codec import Domain
from .constants import MAX_LOCKS
from .state import LedgerState, Lock
from .virtual import VirtualParams, VirtualState


def roles(ledger: ChannelParams, virtual: VirtualParams) -> tuple[int, int]:
    """(side receiving Alice's virtual balance, side receiving Bob's) in this ledger channel."""
    if ledger.channel_id == virtual.ledger_alice:
        left, right = virtual.alice, virtual.ingrid
    elif ledger.channel_id == virtual.ledger_bob:
        left, right = virtual.ingrid, virtual.bob
    else:
        raise InvalidState("the virtual channel is not funded by this ledger channel")
    if (ledger.participant_a, ledger.participant_b) == (left, right):
        return 0, 1
    if (ledger.participant_a, ledger.participant_b) == (right, left):
        return 1, 0
    raise InvalidState("the ledger channel's participants are not the virtual channel's for this leg")


def _check_asset(ledger: ChannelParams, virtual: VirtualParams) -> None:
    if ledger.asset != virtual.asset:
        raise InvalidState(f"the ledger channel holds {ledger.asset}, the virtual channel {virtual.asset}")


def check_leg(ledger: ChannelParams, domain: Domain, virtual: VirtualParams) -> None:
    """Refuse a ledger channel whose lock would not follow the virtual outcome on-chain: another asset,
    another ledger adjudicator or another chain than the virtual channel names (the adjudicator's
    ``_split_lock`` returns such a lock unsplit). ``domain`` is the ledger channel's EIP-712 domain."""
    _check_asset(ledger, virtual)
    if (domain.verifying_contract.lower(), domain.chain_id) != (virtual.ledger_adjudicator.lower(), virtual.chain_id):
        raise InvalidState(
            f"the ledger channel lives on {domain.verifying_contract} (chain {domain.chain_id}), the virtual "
            f"channel names {virtual.ledger_adjudicator} (chain {virtual.chain_id})"
        )


def lock_for(ledger: ChannelParams, virtual: VirtualParams) -> Lock:
    """The lock this ledger channel carries for ``virtual``: amounts in ledger-side order."""
    alice_side, _ = roles(ledger, virtual)
    if alice_side == 0:
        return Lock(virtual.channel_id, virtual.funding_alice, virtual.funding_bob)
    return Lock(virtual.channel_id, virtual.funding_bob, virtual.funding_alice)


def open_virtual(state: LedgerState, ledger: ChannelParams, virtual: VirtualParams) -> LedgerState:
    """The next ledger state, with the virtual channel's funding moved from the balances into a lock."""
    if state.is_final:
        raise InvalidState("the ledger state is final; no lock may be added")
    if state.channel != ledger.channel_id:
        raise InvalidState("the state belongs to another ledger channel")
    if any(lock.channel == virtual.channel_id for lock in state.locks):
        raise InvalidState("this virtual channel is already locked in the ledger channel")
    _check_asset(ledger, virtual)
    if len(state.locks) >= MAX_LOCKS:
        raise InvalidState(f"the ledger state already carries {MAX_LOCKS} locks, the most it may")
    lock = lock_for(ledger, virtual)
    if state.balance_a < lock.amount_a or state.balance_b < lock.amount_b:
        raise InvalidState(
            f"balances ({state.balance_a}, {state.balance_b}) cannot cover the lock ({lock.amount_a}, {lock.amount_b})"
        )
    return replace(
        state,
        version=state.version + 1,
        balance_a=state.balance_a - lock.amount_a,
        balance_b=state.balance_b - lock.amount_b,
        locks=(*state.locks, lock),
    )


def split(
    lock: Lock, ledger: ChannelParams, virtual: VirtualParams, balance_alice: int, balance_bob: int
) -> tuple[int, int]:
    """(share of side A, share of side B) of a lock for a virtual outcome; mirrors the contract. The caller
    checks that the ledger channel is on the adjudicator and chain the virtual channel names (``check_leg``):
    elsewhere the contract returns the lock unsplit."""
    try:
        alice_side, _ = roles(ledger, virtual)
    except InvalidState:
        return lock.amount_a, lock.amount_b
    if lock != lock_for(ledger, virtual) or ledger.asset != virtual.asset:
        return lock.amount_a, lock.amount_b
    return (balance_alice, balance_bob) if alice_side == 0 else (balance_bob, balance_alice)


def close_virtual(
    state: LedgerState, ledger: ChannelParams, virtual: VirtualParams, final: VirtualState
) -> LedgerState:
    """The next ledger state with the lock replaced by the virtual channel's final outcome.

    Refuses anything but a final state of this virtual channel that conserves its funding: applying
    the same final state to both ledger channels is what keeps Ingrid neutral.
    """
    if state.channel != ledger.channel_id:
        raise InvalidState("the state belongs to another ledger channel")
    if not final.is_final:
        raise InvalidState("release a lock only with a final virtual state signed by Alice and Bob")
    final.check_against(virtual)
    remaining = tuple(lock for lock in state.locks if lock.channel != virtual.channel_id)
    if len(remaining) == len(state.locks):
        raise InvalidState("the ledger state carries no lock for this virtual channel")
    lock = next(lock for lock in state.locks if lock.channel == virtual.channel_id)
    if lock != lock_for(ledger, virtual):
        raise InvalidState("the lock does not match the virtual channel's funding")
    share_a, share_b = split(lock, ledger, virtual, final.balance_alice, final.balance_bob)
    return replace(
        state,
        version=state.version + 1,
        balance_a=state.balance_a + share_a,
        balance_b=state.balance_b + share_b,
        locks=remaining,
    )
