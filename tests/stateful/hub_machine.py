"""Model and actions of the hub state machine (hypothesis wiring: test_hub_stateful.py).

A hub network: Ingrid and three users (alice, bob, carol), each user with one ETH ledger channel with
Ingrid, and several virtual channels at once between pairs of users, each locked in both users' ledger
channels (``perun_vyper.open_virtual`` in both ledger states, signed by the ledger participants).

Honesty:
- every virtual channel has one honest endpoint; the other one may register any stale state;
- in every ledger channel the user is honest and Ingrid may register any stale ledger state;
- honest parties answer (register their latest state) whenever ``do_honest_answers`` runs: the
  ``honest_answers`` rule, and, in most big time jumps, right before the jump for every answer the jump
  would otherwise make too late. The model records who answered and whether it was in time;
- honest parties read the chain before they sign anything off-chain (SPEC 11.1: the adjudicators'
  ``dispute``, ``holdings`` and ``record`` views at the head block): a ledger user and Ingrid sign no
  lock or release in a ledger channel that is registered or concluded, and the honest endpoint of a
  virtual channel signs no new virtual state (payment, final) once its own ledger channel is registered
  or concluded or the virtual record is registered. What the chain says must be what the model says.
  A close refused by a registered leg after the endpoints signed the final state ends with Ingrid
  registering that final state instead (anyone may, at any time before expiry): both legs follow it.

The model restates the adjudicators' rules independently (which registrations and conclusions they
accept, with which revert reason they refuse the others, how a lock is split) and every action checks
the chain against it at once; the invariants re-check every channel after every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from eth_abi import encode
from hypothesis import event

from perun_vyper import (
    ETH,
    ChannelParams,
    Domain,
    LedgerState,
    Lock,
    VirtualParams,
    VirtualState,
    close_virtual,
    compact,
    open_virtual,
    sign_state,
)
from tests.stateful import model
from tests.stateful.chain_helpers import ChainMachine, selector
from tests.support.checks import concluded_payouts
from tests.support.constants import (
    LEDGER_CONCLUDED,
    LEDGER_DISPUTED,
    LEDGER_PERIOD_NOT_OVER,
    LEDGER_PERIOD_OVER,
    LEDGER_STALE,
    LOCKS_NOT_REGISTERED,
    NO_DISPUTE,
    ONLY_ENDPOINTS,
    PARAMS_NOT_LOCKS,
    VIRTUAL_CONCLUDED,
    VIRTUAL_EXPIRED,
    VIRTUAL_NOT_SETTLED,
    VIRTUAL_PERIOD_OVER,
    VIRTUAL_STALE,
    ZERO_HASH,
)

USERS = ("alice", "bob", "carol")
# (user, is the user side A, ledger challenge duration). Bob's channel is (Ingrid, Bob) so that locks
# are laid out in both orientations; his longer duration makes the deadlines of the channels differ.
LEDGER_SPECS: tuple[tuple[str, bool, int], ...] = (("alice", True, 3600), ("bob", False, 7200), ("carol", True, 3600))
# At most this many virtual channels locked in one ledger state at once (the contract allows 16): keeps
# room for the other actions in 30 steps.
MAX_OPEN_LOCKS = 4
VIRTUAL_DURATIONS = (3600, 5400)

_HOLDINGS = selector("holdings(bytes32)")
_DISPUTE = selector("dispute(bytes32)")
_CREDITS = selector("credits(address,address)")
_VIRTUAL_PARAMS_ABI = (
    "(address,address,address,address,address,uint256,bytes32,bytes32,uint256,uint256,uint64,uint64,uint256)"
)
_SETTLEMENT = selector(f"settlement({_VIRTUAL_PARAMS_ABI})")
_RECORD = selector("record(bytes32)")


def _balances(state: LedgerState) -> tuple[int, int]:
    return state.balance_a, state.balance_b


@dataclass
class Ledger:
    """One user's ledger channel with Ingrid."""

    user: str
    params: ChannelParams
    parties: tuple[str, str]
    user_side: int
    deposits: list[int]
    # Every state both signed, oldest first (version == index). All non-final: ledgers end by disputes.
    states: list[LedgerState]
    registered: LedgerState | None = None
    # Both sides' payouts before the lock shares, settled by the contract when `registered` was
    # registered (deposits are refused from then on, so conclusion pays exactly these plus the shares).
    base_outcome: tuple[int, int] | None = None
    registered_at: int = 0
    deadline: int = 0
    concluded: bool = False
    concluded_state: LedgerState | None = None
    payouts: tuple[int, int] | None = None
    # Who answered the current dispute with the latest state ("user" or "watcher"), if anybody.
    answered_by: str | None = None

    @property
    def latest(self) -> LedgerState:
        return self.states[-1]

    @property
    def ingrid_side(self) -> int:
        return 1 - self.user_side

    @property
    def live(self) -> bool:
        """Off-chain updates go on: no dispute, not concluded."""
        return self.registered is None and not self.concluded

    @property
    def disputed(self) -> bool:
        return self.registered is not None and not self.concluded

    def balance(self, side: int) -> int:
        return (self.latest.balance_a, self.latest.balance_b)[side]


@dataclass
class Virtual:
    """One virtual channel between users[0] (the params' alice) and users[1] (the params' bob)."""

    name: str
    params: VirtualParams
    users: tuple[str, str]
    ledgers: tuple[int, int]
    honest: int
    # Every non-final state both endpoints signed (version == index).
    states: list[VirtualState]
    final: VirtualState | None = None
    # The final state replaced the lock in both ledger channels (cooperative close off-chain).
    closed_offchain: bool = False
    # The on-chain record.
    record: VirtualState | None = None
    registered_at: int = 0
    deadline: int = 0
    # Who registered the honest endpoint's best state ("honest" or "watcher"), if anybody.
    answered_by: str | None = None
    # Outcome (balance_alice, balance_bob) each ledger channel split the lock by, read at its conclusion.
    outcomes: dict[int, tuple[int, int]] = field(default_factory=dict)

    @property
    def best(self) -> VirtualState:
        """The state the honest endpoint registers: the final one if signed, else the latest."""
        return self.final or self.states[-1]

    @property
    def expiry(self) -> int:
        return self.params.validity + self.params.challenge_duration

    @property
    def dishonest_user(self) -> str:
        return self.users[1 - self.honest]

    @property
    def honest_user(self) -> str:
        return self.users[self.honest]

    def settlement(self, ts: int) -> tuple[bool, int, int]:
        """The outcome the spec promises at time `ts`: (settled, balance_alice, balance_bob)."""
        return model.virtual_settlement(self.params, self.record, self.deadline, ts)

    def settle_bound(self) -> int:
        """When the outcome is settled at the latest, as things stand: the deadline of a registered
        channel (fixed by the first registration, never extended), or `validity + challenge_duration`
        for one nobody registered (no registration is possible from then on). Either way at most
        `validity + 2 * challenge_duration`."""
        return self.deadline if self.record is not None else self.expiry

    def answered_in_time(self) -> bool:
        """The honest endpoint's best state is what settles (or there was nothing to answer)."""
        if self.record is None:
            return self.best.version == 0
        return self.record.version == self.best.version


class HubMachine(ChainMachine):
    """The model and every action. Subclassed together with RuleBasedStateMachine by the test."""

    ledger: ClassVar[Any]
    virtual: ClassVar[Any]
    domain: ClassVar[Domain]
    virtual_domain: ClassVar[Domain]

    def __init__(self) -> None:
        super().__init__()
        self.ledgers: list[Ledger] = []
        self.virtuals: list[Virtual] = []
        self._sigs: dict[bytes, tuple[Any, Any]] = {}
        self._nonce = 0
        self.lock_owner: dict[bytes, int] = {}

    # ------------------------------------------------------------------ helpers

    def addr(self, who: str) -> str:
        return str(self.accounts[who].address)

    def _sign_pair(self, state: Any, keys: tuple[str, str], domain: Domain) -> tuple[Any, Any]:
        """Both signers' compact (EIP-2098) signatures of `state`, as the adjudicators take them."""
        key = state.struct_hash() + domain.digest(b"\x00" * 32)
        if key not in self._sigs:
            self._sigs[key] = tuple(compact(sign_state(self.accounts[k].private_key, state, domain)) for k in keys)  # type: ignore[assignment]
        return self._sigs[key]

    def _ledger_args(self, lg: Ledger, state: LedgerState) -> tuple[Any, ...]:
        return (lg.params.as_tuple(), state.as_tuple(), *self._sign_pair(state, lg.parties, self.domain))

    def _virtual_args(self, vc: Virtual, state: VirtualState) -> tuple[Any, ...]:
        return (vc.params.as_tuple(), state.as_tuple(), *self._sign_pair(state, vc.users, self.virtual_domain))

    def _holdings(self, lg: Ledger) -> tuple[int, int, bool]:
        a, b, concluded = self._view(self.ledger.address, _HOLDINGS + lg.params.channel_id, ["uint256"] * 2 + ["bool"])
        return a, b, concluded

    def _dispute(self, lg: Ledger) -> tuple[int, int, bytes]:
        version, deadline, locks_hash = self._view(
            self.ledger.address, _DISPUTE + lg.params.channel_id, ["uint64", "uint64", "bytes32"]
        )
        return version, deadline, locks_hash

    def _settlement(self, vc: Virtual) -> tuple[bytes, bool, int, int]:
        data = _SETTLEMENT + encode([_VIRTUAL_PARAMS_ABI], [vc.params.as_tuple()])
        channel, settled, ba, bb = self._view(self.virtual.address, data, ["bytes32", "bool", "uint256", "uint256"])
        return channel, settled, ba, bb

    def _record(self, vc: Virtual) -> tuple[int, int, int, bool]:
        version, deadline, ba, final = self._view(
            self.virtual.address, _RECORD + vc.params.channel_id, ["uint64", "uint64", "uint256", "bool"]
        )
        return version, deadline, ba, final

    def _credit(self, owner: str) -> int:
        return self._view(self.ledger.address, _CREDITS + encode(["address", "address"], [ETH, owner]), ["uint256"])[0]

    def _all_views(self) -> tuple[Any, ...]:
        views: list[Any] = [self._eth_balance(str(self.ledger.address))]
        for lg in self.ledgers:
            views += [self._holdings(lg), self._dispute(lg)]
        views += [self._record(vc) for vc in self.virtuals]
        return tuple(views)

    # ------------------------------------------------------------------ setup

    def do_open_ledgers(self, funding: list[tuple[int, int]]) -> None:
        """Each user and Ingrid sign state 0 of their channel and both deposit."""
        for nonce, ((user, user_first, duration), (user_amount, ingrid_amount)) in enumerate(
            zip(LEDGER_SPECS, funding, strict=True), start=1
        ):
            parties = (user, "ingrid") if user_first else ("ingrid", user)
            amounts = (user_amount, ingrid_amount) if user_first else (ingrid_amount, user_amount)
            params = ChannelParams(self.addr(parties[0]), self.addr(parties[1]), ETH, duration, nonce)
            lg = Ledger(
                user,
                params,
                parties,
                0 if user_first else 1,
                [0, 0],
                [LedgerState.initial(params.channel_id, *amounts)],
            )
            self.ledgers.append(lg)
            self._sign_pair(lg.latest, parties, self.domain)
            for side in (0, 1):
                self.ledger.deposit(params.channel_id, side, value=amounts[side], sender=self.accounts[parties[side]])
                self.head_ts += 1
                lg.deposits[side] += amounts[side]

    # ------------------------------------------------------------------ queries for preconditions

    def ledger_of(self, user: str) -> int:
        return USERS.index(user)

    def open_room(self) -> list[tuple[str, str]]:
        """Ordered user pairs that may open one more virtual channel now (balances checked by the caller)."""
        out = []
        for u1 in USERS:
            for u2 in USERS:
                if u1 == u2:
                    continue
                l1, l2 = self.ledgers[self.ledger_of(u1)], self.ledgers[self.ledger_of(u2)]
                if (
                    l1.live
                    and l2.live
                    and len(l1.latest.locks) < MAX_OPEN_LOCKS
                    and len(l2.latest.locks) < MAX_OPEN_LOCKS
                ):
                    out.append((u1, u2))
        return out

    def funding_caps(self, u1: str, u2: str) -> tuple[int, int]:
        """Most each side may lock: Alice's funding comes from u1 (left) and Ingrid (right), Bob's from
        Ingrid (left) and u2 (right)."""
        l1, l2 = self.ledgers[self.ledger_of(u1)], self.ledgers[self.ledger_of(u2)]
        cap_alice = min(l1.balance(l1.user_side), l2.balance(l2.ingrid_side))
        cap_bob = min(l1.balance(l1.ingrid_side), l2.balance(l2.user_side))
        return cap_alice, cap_bob

    def signable_idx(self) -> list[int]:
        """Virtual channels the endpoints would still sign in off-chain, as far as the model's off-chain
        life goes: not final, before validity (so the expiry is more than the reaction time away). Whether
        the honest endpoint signs is what the chain says (``virtual_refusal``): attempts are made anyway."""
        return [i for i, vc in enumerate(self.virtuals) if vc.final is None and self.next_ts < vc.params.validity]

    def payable(self) -> list[tuple[int, bool]]:
        out = []
        for i in self.signable_idx():
            s = self.virtuals[i].states[-1]
            out += [(i, from_alice) for from_alice, bal in ((True, s.balance_alice), (False, s.balance_bob)) if bal]
        return out

    def pay_options(self) -> tuple[list[tuple[int, bool]], list[tuple[int, bool]]]:
        """Payments the honest endpoint signs, by the model (the chain must agree), and those it refuses."""
        options = self.payable()
        signed = [option for option in options if self.honest_signs(option[0])]
        return signed, [option for option in options if option not in signed]

    def closable_idx(self) -> list[int]:
        """Cooperative close off-chain of an unregistered virtual channel, whatever its ledger channels: the
        parties read the chain before signing (``do_close_virtual``)."""
        return [i for i in self.signable_idx() if self.virtuals[i].record is None]

    def fast_closable_idx(self) -> list[int]:
        """Endpoints may register a final state until the record is final or its window closed."""
        out = []
        for i, vc in enumerate(self.virtuals):
            if vc.record is None:
                if self.next_ts < vc.expiry and (vc.final is not None or self.next_ts < vc.params.validity):
                    out.append(i)
            elif not vc.record.is_final and self.next_ts < vc.deadline and vc.final is not None:
                out.append(i)
        return out

    def virtual_registrations(self) -> list[tuple[int, int]]:
        """(virtual channel, version) a dishonest endpoint may try (accepted, no-op or refused)."""
        return [(i, v) for i, vc in enumerate(self.virtuals) for v in range(len(vc.states))]

    def ledger_registrations(self) -> list[tuple[int, int]]:
        return [(i, v) for i, lg in enumerate(self.ledgers) for v in range(len(lg.states))]

    def ledger_conclusions(self) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        for i, lg in enumerate(self.ledgers):
            if lg.concluded:
                out.append((i, "concluded"))
            elif lg.registered is None:
                out.append((i, "no dispute"))
            elif self.next_ts < lg.deadline:
                out.append((i, "early"))
            else:
                out.append((i, "conclude"))
                if lg.registered.locks:
                    out += [(i, "no virtual params"), (i, "locks left out")]
                if self._other_locks(lg) is not None:
                    out.append((i, "other locks"))
        return out

    @staticmethod
    def _other_locks(lg: Ledger) -> LedgerState | None:
        """The newest signed state whose (non-empty) locks are not the registered state's."""
        assert lg.registered is not None
        others = [s for s in lg.states if s.locks and s.locks != lg.registered.locks]
        return others[-1] if others else None

    def deposit_refusals(self) -> list[tuple[int, str]]:
        """(ledger, reason) for every ledger channel that refuses deposits now: disputed or concluded."""
        out = []
        for i, lg in enumerate(self.ledgers):
            if lg.concluded:
                out.append((i, LEDGER_CONCLUDED))
            elif lg.registered is not None:
                out.append((i, LEDGER_DISPUTED))
        return out

    def obligations(self, horizon: int | None = None) -> list[tuple[str, int]]:
        """What the honest parties must answer now: ("virtual" | "ledger", index).

        Without a horizon: every stale registration still open, and every locked virtual channel nobody
        registered whose off-chain life is over (validity passed, or a ledger channel under it is in a
        dispute, so no cooperative close can follow). With a horizon (the time a jump lands on): only
        what the jump would put out of reach.
        """
        ts = self.next_ts
        out: list[tuple[str, int]] = []
        for i, vc in enumerate(self.virtuals):
            if vc.record is not None:
                stale = not vc.record.is_final and vc.record.version < vc.best.version and ts < vc.deadline
                if stale and (horizon is None or horizon >= vc.deadline):
                    out.append(("virtual", i))
            elif not vc.closed_offchain and ts < vc.expiry:
                done_off_chain = ts >= vc.params.validity or not all(self.ledgers[li].live for li in vc.ledgers)
                if (horizon is None and done_off_chain) or (horizon is not None and horizon >= vc.expiry):
                    out.append(("virtual", i))
        for i, lg in enumerate(self.ledgers):
            stale = lg.disputed and lg.registered != lg.latest and ts < lg.deadline
            if stale and (horizon is None or horizon >= lg.deadline):
                out.append(("ledger", i))
        return out

    def times_of_interest(self) -> list[int]:
        """Validities, expiries and deadlines still ahead."""
        out: set[int] = set()
        for vc in self.virtuals:
            if vc.record is None:
                out.update((vc.params.validity, vc.expiry))
            elif not vc.record.is_final:
                out.add(vc.deadline)
        out.update(self.ledger_deadlines())
        return sorted(t for t in out if t > self.next_ts)

    def ledger_deadlines(self) -> list[int]:
        return [lg.deadline for lg in self.ledgers if lg.disputed and lg.deadline > self.next_ts]

    # ------------------------------------------------------------------ what honest parties read before signing

    def ledger_refusal(self, li: int) -> str | None:
        """Why an honest party of ledger channel ``li`` signs no off-chain update in it now, from the chain
        (``dispute`` and ``holdings`` at the head block), or None. The model must say the same."""
        lg = self.ledgers[li]
        deadline, concluded = self._dispute(lg)[1], self._holdings(lg)[2]
        reason = "concluded" if concluded else ("registered" if deadline else None)
        assert (reason is None) == lg.live, f"ledger {lg.user}: the chain says {reason or 'open'}, model live {lg.live}"
        return reason

    def honest_signs(self, vi: int) -> bool:
        """What ``virtual_refusal`` will read, from the model alone (for drawing actions)."""
        vc = self.virtuals[vi]
        return vc.record is None and self.ledgers[vc.ledgers[vc.honest]].live

    def virtual_refusal(self, vi: int) -> str | None:
        """Why the honest endpoint of virtual channel ``vi`` signs no new virtual state now (its own ledger
        channel registered or concluded, or the virtual record registered), from the chain, or None."""
        vc = self.virtuals[vi]
        reason = self.ledger_refusal(vc.ledgers[vc.honest])
        if reason is not None:
            return f"own ledger {reason}"
        deadline = self._record(vc)[1]
        assert (deadline == 0) == (vc.record is None), f"{vc.name}: the chain's record is not the model's"
        return "record registered" if deadline else None

    # ------------------------------------------------------------------ off-chain actions

    def do_open_virtual(self, u1: str, u2: str, fa: int, fb: int, validity_in: int, duration: int, honest: int) -> None:
        li1, li2 = self.ledger_of(u1), self.ledger_of(u2)
        l1, l2 = self.ledgers[li1], self.ledgers[li2]
        self._nonce += 1
        params = VirtualParams(
            self.addr(u1),
            self.addr(u2),
            self.addr("ingrid"),
            l1.params.channel_id,
            l2.params.channel_id,
            fa,
            fb,
            self.next_ts + validity_in,
            duration,
            self._nonce,
            ledger_adjudicator=str(self.ledger.address),
            chain_id=self.chain.chain_id,
        )
        # Ingrid and both users read the chain before they sign the locks (open_room offers live legs only).
        assert self.ledger_refusal(li1) is None and self.ledger_refusal(li2) is None
        vc = Virtual(
            f"v{len(self.virtuals)} {u1}>{u2}", params, (u1, u2), (li1, li2), honest, [VirtualState.initial(params)]
        )
        # The endpoints sign the initial state first, then the ledger participants lock the funds.
        self._sign_pair(vc.states[0], vc.users, self.virtual_domain)
        for lg in (l1, l2):
            locked = open_virtual(lg.latest, lg.params, params)
            # The package's lock against the oracle: each side funds its part, nothing else changes.
            assert locked.locks == (*lg.latest.locks, Lock(params.channel_id, *model.lock_amounts(lg.params, params)))
            assert (locked.balance_a, locked.balance_b) == model.after_lock(_balances(lg.latest), lg.params, params)
            assert (locked.version, locked.funding_a, locked.funding_b, locked.is_final) == (
                lg.latest.version + 1,
                lg.latest.funding_a,
                lg.latest.funding_b,
                False,
            )
            self._add_ledger_state(lg, locked)
        self.lock_owner[params.channel_id] = len(self.virtuals)
        self.virtuals.append(vc)

    def _add_ledger_state(self, lg: Ledger, state: LedgerState) -> None:
        lg.states.append(state)
        self._sign_pair(state, lg.parties, self.domain)

    def do_pay(self, vi: int, from_alice: bool, amount: int) -> None:
        """A virtual payment, if the honest endpoint signs it (the other one signs anything)."""
        vc = self.virtuals[vi]
        reason = self.virtual_refusal(vi)
        if reason is not None:
            event(f"virtual payment refused by the honest endpoint: {reason}")
            return
        if not self.ledgers[vc.ledgers[1 - vc.honest]].live:
            event("virtual payment while the other endpoint's ledger channel is registered or concluded")
        vc.states.append(vc.states[-1].pay(amount, from_alice))
        self._sign_pair(vc.states[-1], vc.users, self.virtual_domain)

    def do_close_virtual(self, vi: int) -> None:
        """Both endpoints sign a final state (if the honest one does); both ledger channels replace the lock
        by its outcome if both are open on-chain (Ingrid checks both, each user its own), otherwise Ingrid
        registers the final state she was shown by the user whose leg is open."""
        vc = self.virtuals[vi]
        reason = self.virtual_refusal(vi)
        if reason is not None:
            event(f"virtual close refused by the honest endpoint: {reason}")
            return
        vc.final = vc.states[-1].finalized()
        self._sign_pair(vc.final, vc.users, self.virtual_domain)
        legs = [self.ledger_refusal(li) for li in vc.ledgers]
        if any(legs):
            assert self.virtual_register_outcome(vc, vc.final, "ingrid") is None
            event("virtual close: a leg is registered, Ingrid registers the final state instead")
            self._virtual_register_ok(vc, vc.final, "ingrid")
            assert self._settlement(vc)[1], "a registered final state must settle at once"
            return
        outcome = (vc.final.balance_alice, vc.final.balance_bob)
        for li in vc.ledgers:
            lg = self.ledgers[li]
            released = close_virtual(lg.latest, lg.params, vc.params, vc.final)
            # The package's release against the oracle: the lock goes, each side takes its share.
            assert released.locks == tuple(k for k in lg.latest.locks if k.channel != vc.params.channel_id)
            expected = model.after_release(_balances(lg.latest), lg.params, vc.params, outcome)
            assert (released.balance_a, released.balance_b) == expected
            assert (released.version, released.is_final) == (lg.latest.version + 1, False)
            self._add_ledger_state(lg, released)
        vc.closed_offchain = True

    # ------------------------------------------------------------------ virtual channels on-chain

    def _virtual_register_ok(self, vc: Virtual, state: VirtualState, sender: str) -> None:
        ts = self.next_ts
        receipt = self.virtual.register(*self._virtual_args(vc, state), sender=self.accounts[sender])
        self.head_ts += 1
        events = [
            (e.version, e.deadline, e.balance_alice, e.balance_bob, e.is_final)
            for e in receipt.events
            if e.event_name == "Registered"
        ]
        if vc.record is not None and state == vc.record:
            assert not events, "re-registering the registered virtual state must be a silent no-op"
            return
        if vc.record is None:
            vc.registered_at, vc.deadline = ts, ts + vc.params.challenge_duration
        vc.record = state
        expected = (state.version, vc.deadline, state.balance_alice, state.balance_bob, state.is_final)
        assert events == [expected], f"{vc.name}: Registered {events}, model {expected}"

    def virtual_register_outcome(self, vc: Virtual, state: VirtualState, sender: str) -> str | None:
        """None if the contract accepts (or no-ops) the registration now, else its revert reason."""
        ts = self.next_ts
        if vc.record is None:
            # A final state both endpoints signed may be registered by anyone at any time before expiry.
            if sender not in vc.users and not state.is_final and ts < vc.params.validity:
                return ONLY_ENDPOINTS
            if ts >= vc.expiry:
                return VIRTUAL_EXPIRED
            return None
        if vc.record.is_final:
            return VIRTUAL_CONCLUDED
        if ts >= vc.deadline:
            return VIRTUAL_PERIOD_OVER
        if state.version < vc.record.version:
            return VIRTUAL_STALE
        return None

    def virtual_registration_kind(self, vi: int, version: int) -> str:
        vc = self.virtuals[vi]
        state = vc.states[version]
        reason = self.virtual_register_outcome(vc, state, vc.dishonest_user)
        if reason:
            return reason
        if state == vc.record:
            return "no-op"
        return "accepted latest" if state == vc.best else "accepted stale"

    def do_virtual_register(self, vi: int, version: int, sender: str) -> None:
        """Anyone but the honest side registers a state (any version): accepted, no-op or refused."""
        vc = self.virtuals[vi]
        state = vc.states[version]
        reason = self.virtual_register_outcome(vc, state, sender)
        kind = "refused" if reason else ("no-op" if state == vc.record else "accepted")
        event(f"virtual register by {'endpoint' if sender in vc.users else sender}: {kind}")
        if reason:
            self._expect_revert(sender, self.virtual.register, self._virtual_args(vc, state), reason)
        else:
            self._virtual_register_ok(vc, state, sender)

    def do_fast_close(self, vi: int, by_alice: bool) -> None:
        """An endpoint registers a final state both signed: the outcome settles at once."""
        vc = self.virtuals[vi]
        if vc.final is None:
            reason = self.virtual_refusal(vi)
            if reason is not None:
                # The honest endpoint signs no final state: it registers its latest state instead.
                event(f"virtual fast close refused by the honest endpoint: {reason}")
                self.do_virtual_register(vi, len(vc.states) - 1, vc.honest_user)
                return
            vc.final = vc.states[-1].finalized()
        sender = vc.users[0 if by_alice else 1]
        assert self.virtual_register_outcome(vc, vc.final, sender) is None
        event(f"virtual fast close: {'after off-chain close' if vc.closed_offchain else 'on-chain only'}")
        self._virtual_register_ok(vc, vc.final, sender)
        assert self._settlement(vc)[1], "a registered final state must settle at once"

    def do_third_party_initial(self, vi: int, sender: str) -> None:
        """Ingrid or a stranger registers the initial state: only from validity on, before expiry."""
        vc = self.virtuals[vi]
        state = vc.states[0]
        reason = self.virtual_register_outcome(vc, state, sender)
        event(f"third-party initial registration: {reason or 'accepted'}")
        if reason:
            self._expect_revert(sender, self.virtual.register, self._virtual_args(vc, state), reason)
        else:
            self._virtual_register_ok(vc, state, sender)

    # ------------------------------------------------------------------ ledger channels on-chain

    def ledger_register_outcome(self, lg: Ledger, state: LedgerState) -> str | None:
        if lg.concluded:
            return LEDGER_CONCLUDED
        if lg.registered is None:
            return None
        if self.next_ts >= lg.deadline:
            return LEDGER_PERIOD_OVER
        if state.version < lg.registered.version:
            return LEDGER_STALE
        return None

    def ledger_registration_kind(self, li: int, version: int) -> str:
        lg = self.ledgers[li]
        state = lg.states[version]
        reason = self.ledger_register_outcome(lg, state)
        if reason:
            return reason
        if state == lg.registered:
            return "no-op"
        return "accepted latest" if state == lg.latest else "accepted stale"

    def _ledger_register_ok(self, lg: Ledger, state: LedgerState, sender: str) -> None:
        ts = self.next_ts
        receipt = self.ledger.register(*self._ledger_args(lg, state), sender=self.accounts[sender])
        self.head_ts += 1
        events = [(e.version, e.deadline) for e in receipt.events if e.event_name == "Registered"]
        if lg.registered == state:
            # The same state, the same outcome (the deposits cannot have changed): a no-op.
            assert lg.base_outcome == model.base_payouts(lg.deposits, state)
            assert not events, "re-registering the registered ledger state must be a silent no-op"
            return
        if lg.registered is None:
            lg.registered_at, lg.deadline = ts, ts + lg.params.challenge_duration
        # The outcome is settled now, on the deposits as they are.
        lg.registered, lg.base_outcome = state, model.base_payouts(lg.deposits, state)
        assert events == [(state.version, lg.deadline)], f"ledger {lg.user}: Registered {events}"

    def do_ledger_register(self, li: int, version: int) -> None:
        """Ingrid registers a ledger state of her choice (stale or the latest)."""
        lg = self.ledgers[li]
        state = lg.states[version]
        reason = self.ledger_register_outcome(lg, state)
        stale = "latest" if state == lg.latest else "stale"
        event(f"ledger register by ingrid ({stale}): {reason or ('no-op' if state == lg.registered else 'accepted')}")
        if reason:
            self._expect_revert("ingrid", self.ledger.register, self._ledger_args(lg, state), reason)
        else:
            self._ledger_register_ok(lg, state, "ingrid")

    def do_deposit_refused(self, li: int, reason: str, side: int, amount: int) -> None:
        """A participant tops up a disputed or concluded ledger channel (Ingrid, say, to change the outcome
        of a registered state): refused, nothing changes."""
        lg = self.ledgers[li]
        event(f"ledger deposit refused: {reason}")
        self._expect_revert(lg.parties[side], self.ledger.deposit, (lg.params.channel_id, side), reason, value=amount)

    def answer_by(self, kind: str, i: int) -> int:
        """When an obligation goes out of reach: a transaction must be mined before this time."""
        if kind == "virtual":
            vc = self.virtuals[i]
            return vc.deadline if vc.record is not None else vc.expiry
        return self.ledgers[i].deadline

    def do_honest_answers(self, horizon: int | None, use_watcher: bool) -> None:
        """Honest parties (or the watchtower) register their latest state for every obligation, the most
        urgent first. Each answer is mined a second after the previous one, so with several obligations
        due at once the last ones may come too late: those are missed, like an offline party's."""
        for kind, i in sorted(self.obligations(horizon), key=lambda o: self.answer_by(*o)):
            if self.next_ts >= self.answer_by(kind, i):
                event(f"honest answer: {kind} missed, the other answers took the time")
                continue
            if kind == "virtual":
                vc = self.virtuals[i]
                # The watchtower may answer an open dispute, register a final state at any time, or open a
                # dispute from validity on.
                watcher_ok = vc.record is not None or vc.best.is_final or self.next_ts >= vc.params.validity
                sender = "watcher" if use_watcher and watcher_ok else vc.honest_user
                assert self.virtual_register_outcome(vc, vc.best, sender) is None
                kind_of = "refutes" if vc.record else "opens dispute"
                event(f"honest answer: virtual, {kind_of}, by {'watcher' if sender == 'watcher' else 'endpoint'}")
                self._virtual_register_ok(vc, vc.best, sender)
                vc.answered_by = "watcher" if sender == "watcher" else "honest"
            else:
                lg = self.ledgers[i]
                sender = "watcher" if use_watcher else lg.user
                assert self.ledger_register_outcome(lg, lg.latest) is None
                event("honest answer: ledger")
                self._ledger_register_ok(lg, lg.latest, sender)
                lg.answered_by = "watcher" if use_watcher else "user"

    # ------------------------------------------------------------------ conclusion

    def lock_shares(self, lg: Ledger, li: int, state: LedgerState, ts: int) -> list[tuple[int, int, int]]:
        """(virtual index, share of side A, share of side B) of every lock, by the model's outcome (model.py)."""
        out = []
        for lock in state.locks:
            vi = self.lock_owner[lock.channel]
            vc = self.virtuals[vi]
            assert li in vc.ledgers
            _, ba, bb = vc.settlement(ts)
            out.append((vi, *model.lock_split(lg.params, vc.params, (ba, bb))))
        return out

    def _virtual_args_of(self, state: LedgerState) -> list[Any]:
        return [self.virtuals[self.lock_owner[lock.channel]].params.as_tuple() for lock in state.locks]

    def do_ledger_conclude(self, li: int, kind: str, sender: str) -> None:
        lg = self.ledgers[li]
        state = lg.registered or lg.latest
        args = (lg.params.as_tuple(), state.locks_tuple(), self._virtual_args_of(state))
        if kind == "locks left out":
            self._expect_revert(sender, self.ledger.conclude, (args[0], [], []), LOCKS_NOT_REGISTERED)
            return
        if kind == "other locks":
            other = self._other_locks(lg)
            assert other is not None
            other_args = (args[0], other.locks_tuple(), self._virtual_args_of(other))
            self._expect_revert(sender, self.ledger.conclude, other_args, LOCKS_NOT_REGISTERED)
            return
        if kind == "concluded":
            self._expect_revert(sender, self.ledger.conclude, args, LEDGER_CONCLUDED)
            return
        if kind == "no dispute":
            self._expect_revert(sender, self.ledger.conclude, args, NO_DISPUTE)
            return
        if kind == "early":
            self._expect_revert(sender, self.ledger.conclude, args, LEDGER_PERIOD_NOT_OVER)
            return
        if kind == "no virtual params":
            self._expect_revert(sender, self.ledger.conclude, (*args[:2], []), PARAMS_NOT_LOCKS)
            return
        ts = self.next_ts
        unsettled = [lock for lock in state.locks if not self.virtuals[self.lock_owner[lock.channel]].settlement(ts)[0]]
        event(f"ledger conclude: {'blocked by unsettled virtual' if unsettled else 'ok'}, {len(state.locks)} locks")
        if unsettled:
            self._expect_revert(sender, self.ledger.conclude, args, VIRTUAL_NOT_SETTLED)
            return
        # The outcomes the ledger channel will read, from the chain; they must be the model's.
        chain_outcomes = {}
        for lock in state.locks:
            vi = self.lock_owner[lock.channel]
            # The view runs at the head block (`head_ts`), the conclude one second later: a deadline of
            # exactly `ts` is unsettled in the view and settled for the conclude; the outcome is the same.
            _, settled, ba, bb = self._settlement(self.virtuals[vi])
            assert settled == self.virtuals[vi].settlement(self.head_ts)[0]
            assert (True, ba, bb) == self.virtuals[vi].settlement(ts)
            chain_outcomes[vi] = (ba, bb)
        shares = self.lock_shares(lg, li, state, ts)
        # The outcome settled at registration, which the deposits (frozen since) still give, plus the
        # lock shares by the settled virtual outcomes. Every state here is funded (no top-ups).
        assert (
            lg.base_outcome is not None
            and lg.base_outcome == model.base_payouts(lg.deposits, state)
            and model.funded(lg.deposits, state)
        )
        expected = model.ledger_payouts(lg.deposits, state, [share[1:] for share in shares])
        assert sum(expected) == sum(lg.deposits), f"ledger {lg.user}: payouts {expected} != deposits"
        addrs = [self.addr(p) for p in lg.parties]
        before = [self._eth_balance(a) for a in addrs]
        receipt = self.ledger.conclude(*args, sender=self.accounts[sender])
        self.head_ts += 1
        events = concluded_payouts(self.ledger, receipt)
        assert events == [(lg.params.channel_id, state.version, *expected)], f"ledger {lg.user}: Concluded {events}"
        for side, a in enumerate(addrs):
            fee = receipt.gas_used * receipt.gas_price if lg.parties[side] == sender else 0
            assert self._eth_balance(a) - before[side] == expected[side] - fee, "payout not received"
        lg.concluded, lg.concluded_state, lg.payouts = True, state, events[0][2:]
        lg.deposits, lg.base_outcome = [0, 0], None
        for vi, outcome in chain_outcomes.items():
            self.virtuals[vi].outcomes[li] = outcome
        in_time = state == lg.latest
        event(f"ledger concluded: {'latest' if in_time else 'stale'} state, answered by {lg.answered_by}")
        # Nothing is paid twice.
        self._expect_revert(sender, self.ledger.conclude, args, LEDGER_CONCLUDED)

    # ------------------------------------------------------------------ invariants

    def check_funds(self) -> None:
        """The ledger holds exactly the deposits of unconcluded channels plus the credits (none here:
        every payout goes to an EOA)."""
        credits = sum(self._credit(self.addr(p)) for p in ("ingrid", *USERS))
        assert credits == 0
        held = sum(sum(lg.deposits) for lg in self.ledgers if not lg.concluded)
        assert self._eth_balance(str(self.ledger.address)) == held + credits, "ETH holdings drifted"
        for lg in self.ledgers:
            expected = (0, 0, True) if lg.concluded else (lg.deposits[0], lg.deposits[1], False)
            assert self._holdings(lg) == expected, lg.user

    def check_ledger_disputes(self) -> None:
        """A ledger dispute ends by its deadline: `dispute()` shows deadline == first registration +
        challenge duration (never extended). Conclusion may also wait for the locked virtual channels,
        each settled by its own bound (`Virtual.settle_bound`): once the head is past all of them,
        conclusion is open (the model's precondition for a successful conclude)."""
        for lg in self.ledgers:
            version, deadline, locks_hash = self._dispute(lg)
            if not lg.disputed:
                assert (version, deadline, locks_hash) == (0, 0, ZERO_HASH), lg.user
                continue
            assert lg.registered is not None
            # The hash of the registered locks, which conclude must be given; zero without locks.
            funded_locks = lg.registered.locks and model.funded(lg.deposits, lg.registered)
            expected_hash = lg.registered.locks_hash() if funded_locks else ZERO_HASH
            assert (version, locks_hash) == (lg.registered.version, expected_hash), lg.user
            assert deadline == lg.registered_at + lg.params.challenge_duration == lg.deadline, lg.user
            locked = [self.virtuals[self.lock_owner[k.channel]] for k in lg.registered.locks]
            bounds = [deadline] + [vc.settle_bound() for vc in locked]
            if self.head_ts >= max(bounds):
                for vc in locked:
                    assert self._settlement(vc)[1], f"ledger {lg.user}: {vc.name} not settled by its bound"

    def check_virtuals(self) -> None:
        """settlement() and record() against the model, and the bound on every virtual dispute:
        registered => settled from its deadline (= first registration + challenge duration) on, or at
        once if final; unregistered => settled on the initial split from validity + challenge_duration on."""
        ts = self.head_ts
        for vc in self.virtuals:
            channel, settled, ba, bb = self._settlement(vc)
            assert channel == vc.params.channel_id
            assert (settled, ba, bb) == vc.settlement(ts), f"{vc.name}: settlement {(settled, ba, bb)}"
            version, deadline, rec_alice, final = self._record(vc)
            if vc.record is None:
                assert (version, deadline, final) == (0, 0, False), vc.name
                assert settled == (ts >= vc.expiry), f"{vc.name}: unregistered channel not settled at expiry"
            else:
                assert (version, deadline, rec_alice, final) == (
                    vc.record.version,
                    vc.deadline,
                    vc.record.balance_alice,
                    vc.record.is_final,
                ), vc.name
                assert deadline == vc.registered_at + vc.params.challenge_duration, vc.name
                # The first registration happened before expiry, so every dispute ends by
                # validity + 2 * challenge_duration at the latest.
                assert deadline < vc.expiry + vc.params.challenge_duration, vc.name
                assert settled == (final or ts >= deadline), f"{vc.name}: registered channel not settled at deadline"
            if settled and vc.record is not None and vc.answered_in_time():
                # The honest endpoint answered in time: the outcome gives it its latest balance.
                outcome = (ba, bb)[vc.honest]
                best = (vc.best.balance_alice, vc.best.balance_bob)[vc.honest]
                assert outcome >= best, f"{vc.name}: honest endpoint settled at {outcome} < {best}"

    def check_neutral(self) -> None:
        """Both ledger channels that concluded with a lock of a virtual channel used the same outcome,
        and Ingrid's net over the two locks is zero: she takes bob's balance where she locked his
        funding (alice's channel) and alice's where she locked hers (bob's channel)."""
        for vc in self.virtuals:
            if len(vc.outcomes) < 2:
                continue
            out_left, out_right = vc.outcomes[vc.ledgers[0]], vc.outcomes[vc.ledgers[1]]
            event("neutrality checked: both ledger channels concluded with the lock")
            assert out_left == out_right, f"{vc.name}: the two ledger channels split it differently"
            net = (out_left[1] - vc.params.funding_bob) + (out_right[0] - vc.params.funding_alice)
            assert net == 0, f"{vc.name}: Ingrid's net over the locks is {net}"

    def check_honest_payouts(self) -> None:
        """A user that answered its ledger dispute in time (the latest state concluded) receives at
        least its latest ledger balance plus, for each lock, its latest virtual balance where it is the
        honest endpoint and answered in time (otherwise the outcome actually used)."""
        for li, lg in enumerate(self.ledgers):
            if not lg.concluded or lg.concluded_state != lg.latest:
                continue
            assert lg.payouts is not None
            # Deposits equal the funding of every state here (no top-ups), so no refund term.
            bound = (lg.latest.balance_a, lg.latest.balance_b)[lg.user_side]
            for lock in lg.latest.locks:
                vc = self.virtuals[self.lock_owner[lock.channel]]
                end = vc.ledgers.index(li)
                if vc.honest == end and vc.answered_in_time():
                    bound += (vc.best.balance_alice, vc.best.balance_bob)[end]
                else:
                    bound += vc.outcomes[li][end]
            got = lg.payouts[lg.user_side]
            assert got >= bound, f"ledger {lg.user}: honest user got {got} < {bound}"

    def check_ingrid_overall(self) -> None:
        """When every ledger channel concluded on its latest state, Ingrid got back exactly her deposits."""
        if self.ledgers and all(lg.concluded and lg.concluded_state == lg.latest for lg in self.ledgers):
            got = sum(lg.payouts[lg.ingrid_side] for lg in self.ledgers if lg.payouts)
            put = sum((lg.states[0].funding_a, lg.states[0].funding_b)[lg.ingrid_side] for lg in self.ledgers)
            assert got == put, f"Ingrid is not neutral: paid {got}, deposited {put}"
            event("all ledgers concluded on their latest state")
