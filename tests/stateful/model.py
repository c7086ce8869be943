"""The protocol's money rules in plain Python: the one oracle every stateful machine checks against.

Restated from docs/SPEC.md, independently of the package: nothing here calls into ``perun_vyper`` (its
``locks`` module, ``LedgerState.pay`` and the like are what these rules check, so they cannot be the
oracle). Pure functions of integers, addresses and channel ids; states and parameters are read by field
name only (``balance_a``, ``funding_alice``, ...), so any object with those fields will do.

- A registered ledger state pays its *base payouts*: if the deposits cover the state's funding, each side
  gets its balance plus whatever it deposited beyond its funding; otherwise nothing moved and each side
  gets its deposits back (the state's locks then move nothing either).
- A virtual channel between Alice and Bob through Ingrid is locked in two ledger channels: ``ledger_alice``
  (Alice and Ingrid) and ``ledger_bob`` (Ingrid and Bob). In each, the side that stands for Alice funds
  ``funding_alice`` and takes Alice's balance of the virtual outcome; the other side funds ``funding_bob``
  and takes Bob's balance. Alice stands for herself in ``ledger_alice`` and Ingrid stands for her in
  ``ledger_bob`` (Bob symmetrically), so Ingrid's two shares always add up to what she locked.
- A virtual channel settles on its registered state once that is final or its deadline passed; one
  nobody registered settles on the initial split (the fundings) from ``validity + challenge_duration`` on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Pair = tuple[int, int]


def funded(deposits: Pair, state: Any) -> bool:
    """Both sides deposited at least what ``state`` says they funded."""
    return deposits[0] >= state.funding_a and deposits[1] >= state.funding_b


def base_payouts(deposits: Pair, state: Any) -> Pair:
    """What conclusion pays each side of a ledger channel by ``state``, before its locks' shares."""
    deposit_a, deposit_b = deposits
    if not funded(deposits, state):
        return deposit_a, deposit_b
    return state.balance_a + deposit_a - state.funding_a, state.balance_b + deposit_b - state.funding_b


def alice_side(ledger: Any, vparams: Any) -> int:
    """The side (0 = A, 1 = B) of ledger channel ``ledger`` that stands for Alice of the virtual channel:
    Alice's own side in her ledger channel, Ingrid's side in Bob's."""
    sides = (ledger.participant_a, ledger.participant_b)
    if ledger.channel_id == vparams.ledger_alice:
        assert set(sides) == {vparams.alice, vparams.ingrid}, "not Alice's channel with Ingrid"
        return sides.index(vparams.alice)
    assert ledger.channel_id == vparams.ledger_bob, "the ledger channel is not a leg of the virtual channel"
    assert set(sides) == {vparams.ingrid, vparams.bob}, "not Ingrid's channel with Bob"
    return sides.index(vparams.ingrid)


def by_side(ledger: Any, vparams: Any, for_alice: int, for_bob: int) -> Pair:
    """(side A's part, side B's part) when Alice's side gets ``for_alice`` and the other side ``for_bob``."""
    return (for_alice, for_bob) if alice_side(ledger, vparams) == 0 else (for_bob, for_alice)


def lock_amounts(ledger: Any, vparams: Any) -> Pair:
    """What each side of ``ledger`` moves into the lock of the virtual channel."""
    return by_side(ledger, vparams, vparams.funding_alice, vparams.funding_bob)


def lock_split(ledger: Any, vparams: Any, outcome: Pair) -> Pair:
    """Each side's share of the lock in ``ledger`` by the virtual outcome ``(balance_alice, balance_bob)``."""
    assert sum(outcome) == vparams.funding_alice + vparams.funding_bob, "the outcome is not the locked total"
    return by_side(ledger, vparams, *outcome)


def after_lock(balances: Pair, ledger: Any, vparams: Any) -> Pair:
    """A ledger channel's balances once the virtual channel is locked in it (each side funds its part)."""
    moved = lock_amounts(ledger, vparams)
    result = (balances[0] - moved[0], balances[1] - moved[1])
    assert min(result) >= 0, f"balances {balances} cannot fund the lock {moved}"
    return result


def after_release(balances: Pair, ledger: Any, vparams: Any, outcome: Pair) -> Pair:
    """A ledger channel's balances once the lock is replaced by the virtual outcome (cooperative close)."""
    shares = lock_split(ledger, vparams, outcome)
    return balances[0] + shares[0], balances[1] + shares[1]


def virtual_settlement(vparams: Any, record: Any | None, deadline: int, ts: int) -> tuple[bool, int, int]:
    """(settled, balance_alice, balance_bob) of a virtual channel at time ``ts``: ``record`` is the registered
    state (None if nobody registered one) and ``deadline`` the end of its dispute."""
    if record is None:
        expiry = vparams.validity + vparams.challenge_duration
        return ts >= expiry, vparams.funding_alice, vparams.funding_bob
    return record.is_final or ts >= deadline, record.balance_alice, record.balance_bob


def ledger_payouts(deposits: Pair, state: Any, shares: Iterable[Pair] = ()) -> Pair:
    """Conclusion of a ledger channel by ``state``: its base payouts plus each lock's shares (a lock moves
    nothing in a state the deposits do not fund)."""
    payout_a, payout_b = base_payouts(deposits, state)
    if funded(deposits, state):
        for share_a, share_b in shares:
            payout_a, payout_b = payout_a + share_a, payout_b + share_b
    return payout_a, payout_b
