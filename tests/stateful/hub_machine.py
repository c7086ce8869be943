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
from tests.stateful.chain_helpers import ChainMachine
from tests.stateful.hub_checks import HubChecks
from tests.stateful.hub_model import (
    CREDITS,
    DISPUTE,
    HOLDINGS,
    LEDGER_SPECS,
    RECORD,
    SETTLEMENT,
    VIRTUAL_PARAMS_ABI,
    Ledger,
    Virtual,
    balances,
)
from tests.stateful.hub_queries import HubQueries
from tests.support.checks import concluded_payouts
from tests.support.constants import (
    LEDGER_CONCLUDED,
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
)


class HubMachine(HubQueries, HubChecks, ChainMachine):
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
        a, b, concluded = self._view(self.ledger.address, HOLDINGS + lg.params.channel_id, ["uint256"] * 2 + ["bool"])
        return a, b, concluded

    def _dispute(self, lg: Ledger) -> tuple[int, int, bytes]:
        version, deadline, locks_hash = self._view(
            self.ledger.address, DISPUTE + lg.params.channel_id, ["uint64", "uint64", "bytes32"]
        )
        return version, deadline, locks_hash

    def _settlement(self, vc: Virtual) -> tuple[bytes, bool, int, int]:
        data = SETTLEMENT + encode([VIRTUAL_PARAMS_ABI], [vc.params.as_tuple()])
        channel, settled, ba, bb = self._view(self.virtual.address, data, ["bytes32", "bool", "uint256", "uint256"])
        return channel, settled, ba, bb

    def _record(self, vc: Virtual) -> tuple[int, int, int, bool]:
        version, deadline, ba, final = self._view(
            self.virtual.address, RECORD + vc.params.channel_id, ["uint64", "uint64", "uint256", "bool"]
        )
        return version, deadline, ba, final

    def _credit(self, owner: str) -> int:
        return self._view(self.ledger.address, CREDITS + encode(["address", "address"], [ETH, owner]), ["uint256"])[0]

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
            assert (locked.balance_a, locked.balance_b) == model.after_lock(balances(lg.latest), lg.params, params)
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
            expected = model.after_release(balances(lg.latest), lg.params, vc.params, outcome)
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
