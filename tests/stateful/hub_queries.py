"""The hub machine's queries (hub_machine.py): which actions are possible now, what the honest parties owe,
and what they read on-chain before they sign anything."""

from __future__ import annotations

from perun_vyper import (
    LedgerState,
)
from tests.stateful.hub_model import (
    MAX_OPEN_LOCKS,
    USERS,
    Ledger,
)
from tests.support.constants import (
    LEDGER_CONCLUDED,
    LEDGER_DISPUTED,
)


class HubQueries:
    """Preconditions, obligations and honest reads; mixed into HubMachine."""

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
