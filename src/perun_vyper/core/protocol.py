"""The off-chain protocol's messages and its rules, as pure functions (no store, no chain, no keys).

A party signs a new state only if it follows its latest fully signed state by one of these changes:

| change | ledger channel | virtual channel |
|---|---|---|
| payment | funds move from the proposer to the receiver; funding and locks unchanged | the same |
| top-up | each side's balance rises by exactly its new deposits (which must be on-chain) | - |
| lock | ``open_virtual`` of a virtual channel the party agreed to | - |
| release | ``close_virtual`` by a final virtual state signed by Alice and Bob | - |
| final | funding unchanged, no locks, the receiver's balance not lower | the same |

Always: the same channel, version = latest + 1, nothing after a final state. ``perun_vyper.client`` adds
what needs the store or the chain (which virtual channels were agreed to, the deposits on-chain, the
order of Ingrid's signatures).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import InvalidState, RefusedUpdate
from .channel import ChannelParams
from .codec import Domain, hexstr
from .keys import verify
from .locks import close_virtual, open_virtual
from .state import LedgerState
from .virtual import VirtualParams, VirtualState

Change = Literal["payment", "top-up", "lock", "release", "final"]


@dataclass(frozen=True)
class SignedState:
    """A state with the signatures held so far: side A / Alice first, side B / Bob second."""

    state: LedgerState | VirtualState
    sig_a: bytes | None
    sig_b: bytes | None

    @property
    def fully_signed(self) -> bool:
        return self.sig_a is not None and self.sig_b is not None

    def signatures(self) -> tuple[bytes, bytes]:
        """Both signatures; refuses a state one side has not signed."""
        if self.sig_a is None or self.sig_b is None:
            raise InvalidState(f"version {self.state.version} is not signed by both sides")
        return self.sig_a, self.sig_b


@dataclass(frozen=True)
class VirtualFinal:
    """A final virtual state with Alice's and Bob's signatures: the evidence a release update carries."""

    state: VirtualState
    sig_alice: bytes
    sig_bob: bytes


@dataclass(frozen=True)
class Update:
    """A proposed state with the proposer's signature; the receiver answers with its countersignature."""

    state: LedgerState | VirtualState
    signature: bytes
    release: VirtualFinal | None = None

    @property
    def channel(self) -> bytes:
        return self.state.channel

    @property
    def version(self) -> int:
        return self.state.version


def check_sequence(old: LedgerState | VirtualState, new: LedgerState | VirtualState) -> None:
    """Same channel, the next version, nothing after a final state."""
    if new.channel != old.channel:
        raise RefusedUpdate(
            f"the update is for channel {hexstr(new.channel)}, not {hexstr(old.channel)}; hand it to that channel"
        )
    if old.is_final:
        raise RefusedUpdate(
            f"version {old.version} is final and nothing is signed after a final state; close the channel on-chain"
        )
    if new.version != old.version + 1:
        raise RefusedUpdate(
            f"version {new.version} does not follow the latest fully signed version {old.version} "
            f"(expected {old.version + 1}); resynchronise from the latest state both signed"
        )


def _balances(state: LedgerState) -> tuple[int, int]:
    return state.balance_a, state.balance_b


def classify_ledger_update(old: LedgerState, new: LedgerState, proposer: int) -> tuple[Change, bytes | None]:
    """The kind of change from ``old`` to ``new`` proposed by side ``proposer`` (0 = A, 1 = B), and for a
    lock or release the virtual channel id it concerns. RefusedUpdate if it is none of the allowed kinds.

    Conservation and bounds are the states' own invariants (``LedgerState`` refuses to exist without them).
    """
    check_sequence(old, new)
    receiver = 1 - proposer
    old_balance, new_balance = _balances(old)[receiver], _balances(new)[receiver]
    same_funding = (old.funding_a, old.funding_b) == (new.funding_a, new.funding_b)
    if new.is_final:
        if new.locks or old.locks:
            raise RefusedUpdate(
                "a final state cannot carry locks (the adjudicator refuses to close it); "
                "release every virtual channel of the ledger channel first"
            )
        if not same_funding:
            raise RefusedUpdate("a final state must keep the funding of the state before it; top up in its own update")
        if new_balance < old_balance:
            raise RefusedUpdate(
                f"the final state lowers the receiver's balance from {old_balance} to {new_balance}; "
                "finalise the latest balances as they are"
            )
        return "final", None
    if new.locks == old.locks:
        if same_funding:
            if new_balance < old_balance:
                raise RefusedUpdate(
                    f"the update lowers the receiver's balance from {old_balance} to {new_balance}; "
                    "in a payment only the proposer's balance goes down"
                )
            if new_balance == old_balance:
                raise RefusedUpdate("the update changes no balance; propose a payment of a positive amount")
            return "payment", None
        deltas = (new.funding_a - old.funding_a, new.funding_b - old.funding_b)
        balance_deltas = (new.balance_a - old.balance_a, new.balance_b - old.balance_b)
        if min(deltas) < 0 or deltas != balance_deltas:
            raise RefusedUpdate(
                f"funding changes by {deltas} and balances by {balance_deltas}; a top-up raises one side's "
                "funding and that side's balance by the same amount, and funding never goes down"
            )
        return "top-up", None
    if len(new.locks) == len(old.locks) + 1 and new.locks[:-1] == old.locks:
        return "lock", new.locks[-1].channel
    if len(new.locks) == len(old.locks) - 1:
        removed = [lock for lock in old.locks if lock not in new.locks]
        if len(removed) == 1 and tuple(lock for lock in old.locks if lock != removed[0]) == new.locks:
            return "release", removed[0].channel
    raise RefusedUpdate(
        "the update is neither a payment, a top-up, a lock, a release nor a final state; propose one change per update"
    )


def check_lock(params: ChannelParams, old: LedgerState, new: LedgerState, virtual: VirtualParams) -> None:
    """``new`` must be exactly ``open_virtual(old, params, virtual)``."""
    try:
        expected = open_virtual(old, params, virtual)
    except InvalidState as exc:
        raise RefusedUpdate(f"the lock cannot be added: {exc}") from exc
    if new != expected:
        raise RefusedUpdate(
            f"the lock update is not the virtual channel {hexstr(virtual.channel_id)}'s funding moved from the "
            "balances into its lock; build it with open_virtual"
        )


def check_release(
    params: ChannelParams, old: LedgerState, new: LedgerState, virtual: VirtualParams, final: VirtualState
) -> None:
    """``new`` must be exactly ``close_virtual(old, params, virtual, final)`` (signatures checked elsewhere)."""
    try:
        expected = close_virtual(old, params, virtual, final)
    except InvalidState as exc:
        raise RefusedUpdate(f"the lock cannot be released: {exc}") from exc
    if new != expected:
        raise RefusedUpdate(
            f"the release is not the lock of {hexstr(virtual.channel_id)} replaced by the final virtual balances "
            f"({final.balance_alice}, {final.balance_bob}); build it with close_virtual"
        )


def check_virtual_update(params: VirtualParams, old: VirtualState, new: VirtualState, proposer: int) -> Change:
    """A virtual update by ``proposer`` (0 = Alice, 1 = Bob): a payment to the other, or the final state."""
    check_sequence(old, new)
    if new.balance_alice + new.balance_bob != params.total:
        raise RefusedUpdate(
            f"balances {new.balance_alice} + {new.balance_bob} do not sum to the virtual channel's funding "
            f"{params.total}; a virtual state must conserve it"
        )
    old_balance = (old.balance_alice, old.balance_bob)[1 - proposer]
    new_balance = (new.balance_alice, new.balance_bob)[1 - proposer]
    if new_balance < old_balance:
        raise RefusedUpdate(
            f"the update lowers the receiver's balance from {old_balance} to {new_balance}; "
            "in a payment only the proposer's balance goes down"
        )
    if new.is_final:
        return "final"
    if new_balance == old_balance:
        raise RefusedUpdate("the update changes no balance; propose a payment of a positive amount")
    return "payment"


def verify_final(virtual: VirtualParams, evidence: VirtualFinal, domain: Domain) -> None:
    """Refuse (``RefusedUpdate``, ``InvalidSignature``) unless ``evidence`` is a final state of ``virtual``
    that conserves its funding, signed by Alice and Bob in the virtual adjudicator's ``domain``: what a
    release carries, and what anyone may register to settle the virtual record at once."""
    final = evidence.state
    if final.channel != virtual.channel_id:
        raise RefusedUpdate(
            f"the final state is of virtual channel {hexstr(final.channel)}, not {hexstr(virtual.channel_id)}"
        )
    if not final.is_final:
        raise RefusedUpdate("release a lock only by a final virtual state; have Alice and Bob sign one")
    if final.balance_alice + final.balance_bob != virtual.total:
        raise RefusedUpdate("the final virtual state does not conserve the virtual channel's funding")
    digest = domain.digest(final.struct_hash())
    verify(digest, evidence.sig_alice, virtual.alice)
    verify(digest, evidence.sig_bob, virtual.bob)
