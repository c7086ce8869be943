"""The hub machine's invariants (hub_machine.py): funds, disputes and virtual settlements against the model,
neutrality of Ingrid and the payouts of honest users."""

from __future__ import annotations

from hypothesis import event

from tests.stateful import model
from tests.stateful.hub_model import (
    USERS,
)
from tests.support.constants import (
    ZERO_HASH,
)


class HubChecks:
    """Invariants, checked after every step; mixed into HubMachine."""

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
