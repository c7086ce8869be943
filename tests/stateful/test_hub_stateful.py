"""Stateful fuzzing of a hub network: Ingrid, three users, their ledger channels and virtual channels.

The model and the actions live in hub_machine.py; this module only wires them to hypothesis. Rules
pick among the channels an action applies to *now* (preconditions say whether there is any), so no
example is wasted on a rejected draw.
"""

from __future__ import annotations

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.stateful.chain_helpers import draw_by_kind
from tests.stateful.hub_machine import HubMachine
from tests.stateful.hub_model import LEDGER_SPECS, USERS, VIRTUAL_DURATIONS

# Up to 1 ETH per deposit: 30 steps never run an account dry, and hypothesis still tries 1 wei.
AMOUNT = st.integers(1, 10**18)
# A small step never ends a dispute or a validity period by itself (all durations are >= 3600 s).
SMALL_STEP = st.integers(1, 1800)
# Honest parties are online in four of five big time jumps (and whenever `honest_answers` fires).
ONLINE = st.sampled_from([True, True, True, True, False])
CONCLUDERS = st.sampled_from(["watcher", "stranger", "ingrid", *USERS])


class HubStateMachine(HubMachine, RuleBasedStateMachine):
    def _open_virtual(self, data: st.DataObject) -> None:
        u1, u2 = data.draw(st.sampled_from(self.open_room()), label="pair")
        cap_alice, cap_bob = self.funding_caps(u1, u2)
        self.do_open_virtual(
            u1,
            u2,
            data.draw(st.integers(0, cap_alice), label="funding alice"),
            data.draw(st.integers(0, cap_bob), label="funding bob"),
            data.draw(st.integers(600, 4 * 3600), label="validity in"),
            data.draw(st.sampled_from(VIRTUAL_DURATIONS), label="duration"),
            data.draw(st.integers(0, 1), label="honest endpoint"),
        )

    # The first virtual channel opens with the network, so that short examples still have one (one
    # initialize rule: hypothesis runs several in any order).
    @initialize(
        funding=st.lists(st.tuples(AMOUNT, AMOUNT), min_size=len(LEDGER_SPECS), max_size=len(LEDGER_SPECS)),
        data=st.data(),
    )
    def open_network(self, funding: list[tuple[int, int]], data: st.DataObject) -> None:
        self.do_open_ledgers(funding)
        self._open_virtual(data)

    # ---- off-chain

    @precondition(lambda self: bool(self.open_room()))
    @rule(data=st.data())
    def open_virtual(self, data: st.DataObject) -> None:
        self._open_virtual(data)

    # Mostly payments the honest endpoint signs; one in four draws (if any) one it refuses once it reads
    # the chain (its own ledger channel or the virtual record registered): nothing changes.
    @precondition(lambda self: bool(self.pay_options()[0]))
    @rule(data=st.data())
    def pay(self, data: st.DataObject) -> None:
        signed, refused = self.pay_options()
        kind = data.draw(st.sampled_from(["signed"] * 3 + (["refused"] if refused else [])), label="honest endpoint")
        vi, from_alice = data.draw(st.sampled_from(signed if kind == "signed" else refused), label="virtual, payer")
        latest = self.virtuals[vi].states[-1]
        balance = latest.balance_alice if from_alice else latest.balance_bob
        self.do_pay(vi, from_alice, data.draw(st.integers(1, balance), label="amount"))

    @precondition(lambda self: bool(self.closable_idx()))
    @rule(data=st.data())
    def close_virtual_off_chain(self, data: st.DataObject) -> None:
        self.do_close_virtual(data.draw(st.sampled_from(self.closable_idx()), label="virtual"))

    # ---- virtual channels on-chain

    @precondition(lambda self: bool(self.fast_closable_idx()))
    @rule(data=st.data(), by_alice=st.booleans(), cooperates=st.sampled_from([True, False, False]))
    def fast_close(self, data: st.DataObject, by_alice: bool, cooperates: bool) -> None:
        """An endpoint registers a final state. If none is signed yet it asks the other endpoint to sign
        one; on a refusal (the likelier draw: a final state ends the channel, and the honest endpoint
        signs none once its ledger channel is registered) the honest endpoint opens a dispute with its
        latest state instead."""
        vi = data.draw(st.sampled_from(self.fast_closable_idx()), label="virtual")
        vc = self.virtuals[vi]
        if vc.final is not None or cooperates:
            self.do_fast_close(vi, by_alice)
        else:
            event("virtual fast close refused: honest endpoint disputes")
            self.do_virtual_register(vi, len(vc.states) - 1, vc.honest_user)

    def _dishonest_options(self) -> list[tuple[int, int, str]]:
        options = [(vi, v, self.virtual_registration_kind(vi, v)) for vi, v in self.virtual_registrations()]
        # A repeat of the registered state only alongside something else to try.
        return options if any(o[2] != "no-op" for o in options) else []

    @precondition(lambda self: bool(self._dishonest_options()))
    @rule(data=st.data())
    def dishonest_virtual_register(self, data: st.DataObject) -> None:
        """The dishonest endpoint registers an old (or the latest) state; outcome kind drawn first."""
        options = self._dishonest_options()
        vi, version, _ = draw_by_kind(data, options, lambda o: o[2], "dishonest virtual register")
        self.do_virtual_register(vi, version, self.virtuals[vi].dishonest_user)

    @precondition(lambda self: bool(self.virtuals))
    @rule(data=st.data(), who=st.sampled_from(["ingrid", "stranger"]))
    def third_party_registers_initial(self, data: st.DataObject, who: str) -> None:
        self.do_third_party_initial(data.draw(st.integers(0, len(self.virtuals) - 1), label="virtual"), who)

    @precondition(lambda self: bool(self.obligations()))
    @rule(use_watcher=st.booleans())
    def honest_answers(self, use_watcher: bool) -> None:
        self.do_honest_answers(None, use_watcher)

    # ---- ledger channels on-chain

    @precondition(lambda self: bool(self.ledgers))
    @rule(data=st.data())
    def ingrid_registers_ledger(self, data: st.DataObject) -> None:
        """Ingrid registers a stale or the latest ledger state; outcome kind drawn first."""
        options = [(li, v, self.ledger_registration_kind(li, v)) for li, v in self.ledger_registrations()]
        li, version, _ = draw_by_kind(data, options, lambda o: o[2], "ingrid ledger register")
        self.do_ledger_register(li, version)

    @precondition(lambda self: any(kind == "conclude" for _, kind in self.ledger_conclusions()))
    @rule(data=st.data(), who=CONCLUDERS)
    def conclude_ledger(self, data: st.DataObject, who: str) -> None:
        """Conclude a ledger dispute past its deadline: pays out, or refused while a lock is unsettled."""
        options = [li for li, kind in self.ledger_conclusions() if kind == "conclude"]
        self.do_ledger_conclude(data.draw(st.sampled_from(options), label="ledger"), "conclude", who)

    @precondition(lambda self: bool(self.ledgers))
    @rule(data=st.data(), who=CONCLUDERS)
    def invalid_ledger_conclude(self, data: st.DataObject, who: str) -> None:
        options = [o for o in self.ledger_conclusions() if o[1] != "conclude"]
        if not options:
            return
        li, kind = draw_by_kind(data, options, lambda o: o[1], "invalid ledger conclude")
        self.do_ledger_conclude(li, kind, who)

    @precondition(lambda self: bool(self.deposit_refusals()))
    @rule(data=st.data(), side=st.integers(0, 1), amount=AMOUNT)
    def deposit_into_disputed_or_concluded(self, data: st.DataObject, side: int, amount: int) -> None:
        """A top-up once a ledger channel is disputed (its outcome is settled) or concluded: refused."""
        li, reason = data.draw(st.sampled_from(self.deposit_refusals()), label="ledger")
        self.do_deposit_refused(li, reason, side, amount)

    # ---- time

    @rule(data=st.data(), online=ONLINE, use_watcher=st.booleans())
    def time_passes(self, data: st.DataObject, online: bool, use_watcher: bool) -> None:
        """A small step, a jump to one second before / exactly at a validity, expiry or deadline, or past
        all of them. Online honest parties first answer whatever the jump would put out of reach."""
        options: list[tuple[str, int]] = [("small step", self.head_ts + data.draw(SMALL_STEP, label="dt"))]
        times = self.times_of_interest()
        if times:
            extra = data.draw(st.integers(0, 7200), label="extra")
            options.append(("past everything", max(times) + extra))
            # Mine at t - 2 (the next transaction runs at t - 1) or at t - 1 (it runs at t).
            options += [("to t - 1", t - 2) for t in times if t - 2 > self.head_ts]
            options += [("to t", t - 1) for t in times if t - 1 > self.head_ts]
        if self.ledger_deadlines():
            # Until the last ledger deadline only: conclusion may still wait for a locked virtual channel.
            options.append(("to the last ledger deadline", max(self.ledger_deadlines()) - 1))
        _, target = draw_by_kind(data, options, lambda o: o[0], "time")
        if online:
            self.do_honest_answers(target + 1, use_watcher)
        elif self.obligations(target + 1):
            event("time: honest parties offline, an answer is missed")
        self.do_mine_at(max(target, self.head_ts + 1))

    # ---- invariants (no-ops before the network exists)

    @invariant()
    def funds_conserved(self) -> None:
        if self.ledgers:
            self.check_funds()

    @invariant()
    def virtual_outcomes_and_bounds(self) -> None:
        self.check_virtuals()

    @invariant()
    def ledger_disputes_end(self) -> None:
        self.check_ledger_disputes()

    @invariant()
    def ingrid_neutral(self) -> None:
        self.check_neutral()
        self.check_ingrid_overall()

    @invariant()
    def honest_users_paid(self) -> None:
        self.check_honest_payouts()

    @invariant()
    def clock_matches_model(self) -> None:
        self.check_clock()


def test_hub_network(
    accounts, chain, ledger, virtual, domain, virtual_domain, deployer, alice, bob, ingrid, watcher, stranger
) -> None:
    HubStateMachine.chain = chain
    HubStateMachine.ledger = ledger
    HubStateMachine.virtual = virtual
    HubStateMachine.domain = domain
    HubStateMachine.virtual_domain = virtual_domain
    HubStateMachine.accounts = {
        "deployer": deployer,
        "alice": alice,
        "bob": bob,
        "carol": accounts[6],
        "ingrid": ingrid,
        "watcher": watcher,
        "stranger": stranger,
    }
    # Every block one second after the previous one: the model knows each transaction's timestamp.
    chain.provider.make_request("anvil_setBlockTimestampInterval", [1])
    try:
        run_state_machine_as_test(HubStateMachine)
    finally:
        chain.provider.make_request("anvil_removeBlockTimestampInterval", [])
