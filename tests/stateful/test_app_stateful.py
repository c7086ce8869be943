"""Stateful fuzzing of app channels (AppAdjudicator with the SLA app): the model and actions are in
app_machine.py; this module wires them to hypothesis. Invariants: conservation of funds, the registration
view, the bounds that make every dispute end, and (at every conclusion, and after each example, when the
honest party drives the channel to its end) that the honest party loses nothing."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.stateful.app_machine import CLIENT, PENALTY, PRICE, PROVIDER, AppMachine

# Enough for every request and penalty of the channel most of the time, and sometimes just short of it
# (hypothesis favours the low end), so that "client cannot pay" and "bond too small" are reached too.
FUND_CLIENT = st.integers(PRICE, 10**18)
FUND_PROVIDER = st.integers(PENALTY, 10**18)


class AppStateMachine(AppMachine, RuleBasedStateMachine):
    @initialize(fund_a=FUND_CLIENT, fund_b=FUND_PROVIDER, honest=st.sampled_from([CLIENT, PROVIDER]))
    def open_channel(self, fund_a: int, fund_b: int, honest: int) -> None:
        self.do_open(fund_a, fund_b, honest)

    @precondition(lambda self: self.offchain_possible())
    @rule(steps=st.integers(1, 4))
    def offchain_steps(self, steps: int) -> None:
        # Several at once: otherwise a registration usually comes before the second signed state, and
        # stale registrations (the refutation path) are rare.
        for _ in range(steps):
            if self.offchain_possible():
                self.do_offchain_step()

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def adversary_registers(self, data: st.DataObject) -> None:
        version = data.draw(st.integers(0, len(self.signed) - 1), label="version")
        self.do_register(version, ("alice", "bob")[1 - self.honest])

    @precondition(lambda self: self.turn() == 1 - self.honest)
    @rule(valid=st.sampled_from([True, True, False]))
    def adversary_moves(self, valid: bool) -> None:
        self.do_move(1 - self.honest, valid)

    @precondition(lambda self: self.in_period() and self.turn() != 1 - self.honest)
    @rule()
    def adversary_moves_out_of_turn(self) -> None:
        self.do_wrong_turn()

    @precondition(
        lambda self: (
            self.honest == CLIENT
            and (
                self.turn() == CLIENT
                or (self.open and self.dispute is None and self.offchain_possible() and not self.latest_pending())
            )
        )
    )
    @rule()
    def honest_client_forces_request(self) -> None:
        self.do_move(CLIENT, valid=True, force_register=self.dispute is None)

    @precondition(lambda self: self.honest_reaction_due())
    @rule()
    def honest_reacts(self) -> None:
        self.do_honest_react()

    @rule(step=st.integers(1, 2 * 3600))
    def time_passes(self, step: int) -> None:
        target = self.head_ts + step
        # The honest party watches the chain: it answers before a deadline passes.
        if self.honest_reaction_due() and target + 1 >= self.dispute.deadline:
            self.do_honest_react()
            target = max(target, self.head_ts + 1)
        self.do_mine_at(target)

    @precondition(lambda self: self.concludable())
    @rule(who=st.sampled_from(["alice", "bob", "watcher"]))
    def conclude(self, who: str) -> None:
        self.do_conclude(who)

    @precondition(lambda self: self.open and self.dispute is None)
    @rule()
    def cooperative_close(self) -> None:
        self.do_close()

    @invariant()
    def conservation(self) -> None:
        if self.params is not None:
            self.check_conservation()

    @invariant()
    def registration_view(self) -> None:
        if self.params is not None:
            self.check_view()

    @invariant()
    def dispute_bounds(self) -> None:
        self.check_dispute_bounds()

    def teardown(self) -> None:
        try:
            self.do_finish()
        finally:
            super().teardown()


def test_app_channels(chain, apps, sla, app_domain, alice, bob, watcher, deployer) -> None:
    AppStateMachine.chain = chain
    AppStateMachine.apps = apps
    AppStateMachine.sla = sla
    AppStateMachine.domain = app_domain
    AppStateMachine.accounts = {"alice": alice, "bob": bob, "watcher": watcher, "deployer": deployer}
    # Every block one second after the previous one: the model knows each deadline to the second.
    chain.provider.make_request("anvil_setBlockTimestampInterval", [1])
    try:
        run_state_machine_as_test(AppStateMachine)
    finally:
        chain.provider.make_request("anvil_removeBlockTimestampInterval", [])
