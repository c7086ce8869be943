"""Stateful test of the watchtower's promise: an honest party that is offline, guarded by a watchtower
polling at least once per challenge period, ends with its latest balance, whatever the counterparty
registers and whenever.

The model and the actions live in watchtower_machine.py; this module only wires them to hypothesis.
Each example opens one or two funded ETH channels between Alice (honest, offline) and Ingrid (the
adversary), with 1 to 8 payments both signed and maybe a final state; Alice's store holds them all.
Ingrid registers, closes, concludes and tops up her side whatever she likes (a top-up is refused once a
state is registered: its outcome is settled); time passes; the watchtower polls.

- ``time_passes`` keeps the duty cycle (watchtower_machine.py): the watchtower always polls in time, and
  every channel then pays Alice exactly her latest balance.
- ``time_passes_watcher_late`` (only in examples drawn as "watcher may be late") breaks it; a channel
  with a stale registration pending at such a jump is only held to conservation of funds and to the
  payout of the state registered when it concluded.
- The teardown lets every open dispute run out with the watchtower polling, and checks each ended.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings
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
from tests.stateful.watchtower_machine import WatchtowerMachine

DURATIONS = st.sampled_from([3600, 7200])
# A payment moves this share (out of 2**32) of the payer's balance, at least 1 wei.
PAYMENT = st.tuples(st.integers(0, 1), st.integers(0, 2**32))
CHANNEL = st.tuples(
    DURATIONS,
    st.integers(0, 1),  # Alice's side
    st.integers(1, 10**18),  # Alice's deposit
    st.integers(0, 10**18),  # Ingrid's deposit
    st.lists(PAYMENT, min_size=1, max_size=8),
    st.sampled_from([False, False, True]),  # a final state follows the last payment
)

# The default profile's 50 examples take about a minute. An example of the deep profile's 60 steps takes
# ~0.85 s, so its 1000 would take a quarter of an hour: a deep run does DEEP_EXAMPLES (~6 minutes).
DEEP_EXAMPLES = 400


class WatchtowerStateMachine(WatchtowerMachine, RuleBasedStateMachine):
    @initialize(channels=st.lists(CHANNEL, min_size=1, max_size=2), late=st.booleans())
    def open_channels(self, channels: list, late: bool) -> None:
        self.do_open(channels, late)

    # ---- the adversary

    @precondition(lambda self: self.adversary_may_act())
    @rule(data=st.data())
    def adversary_registers(self, data: st.DataObject) -> None:
        ci, kind, state = draw_by_kind(data, self.register_options(), lambda o: o[1], "adversary register")
        self.do_adversary_register(ci, kind, state)

    # One rule for both ways to end a channel: most attempts revert, and as two rules they crowd out the rest.
    @precondition(lambda self: self.adversary_may_act())
    @rule(data=st.data())
    def adversary_closes_or_concludes(self, data: st.DataObject) -> None:
        options = [("close", *o) for o in self.close_options()]
        if any(ch.registered for ch in self.channels):  # before, every conclusion is "no dispute"
            options += [("conclude", *o) for o in self.conclude_options()]
        call, ci, kind, arg = draw_by_kind(data, options, lambda o: f"{o[0]} {o[2]}", "adversary")
        if call == "close":
            self.do_adversary_close(ci, kind, arg)
        else:
            self.do_adversary_conclude(ci, kind, arg)

    @precondition(lambda self: self.adversary_may_act())
    @rule(data=st.data(), amount=st.integers(1, 10**18))
    def adversary_deposits(self, data: st.DataObject, amount: int) -> None:
        """Ingrid tops up her own side: accepted before a dispute, refused during one or after conclusion."""
        ci, kind = draw_by_kind(data, self.deposit_options(), lambda o: o[1], "adversary deposit")
        self.do_adversary_deposit(ci, kind, amount)

    # ---- time and the watchtower

    @precondition(lambda self: self.duty_limit() > self.head_ts)
    @rule(data=st.data())
    def time_passes(self, data: st.DataObject) -> None:
        """Up to half the shortest challenge duration per step, never beyond the duty cycle."""
        budget = self.duty_limit() - self.head_ts
        half = min(ch.params.challenge_duration for ch in self.channels) // 2
        options = [("small step", self.head_ts + data.draw(st.integers(1, min(budget, half)), label="dt"))]
        options.append(("to the end of the duty cycle", self.duty_limit()))
        _, timestamp = draw_by_kind(data, options, lambda o: o[0], "time")
        self.do_mine_at(timestamp)

    # Late only matters while a stale registration waits for an answer: that is when the rule runs.
    @precondition(lambda self: self.late_allowed and any(ch.stale_pending for ch in self.channels))
    @rule(data=st.data())
    def time_passes_watcher_late(self, data: st.DataObject) -> None:
        """The watcher is offline for longer than its duty cycle allows (the weak invariant's variant)."""
        longest = max(ch.params.challenge_duration for ch in self.channels)
        beyond = max(self.duty_limit(), self.head_ts) + 1
        options = [("past the duty cycle", beyond + data.draw(st.integers(0, longest), label="extra"))]
        for deadline in self.open_deadlines():
            # The next poll sees the head at deadline - 2 (answer mined at deadline - 1), at deadline - 1
            # (answer mined at the deadline: reverts) or at the deadline (too late: conclude).
            options += [(f"head at deadline - {d}", deadline - d) for d in (2, 1, 0) if deadline - d > self.head_ts]
            options.append(("past the deadline", max(deadline, self.head_ts) + 1 + data.draw(st.integers(0, longest))))
        _, timestamp = draw_by_kind(data, options, lambda o: o[0], "late")
        self.do_late_jump(timestamp)
        # Half the time the watcher polls as soon as it is back, before anybody else acts: the race at the
        # deadline (an answer mined at it reverts) needs exactly that.
        if data.draw(st.booleans(), label="polls at once"):
            self.do_poll()

    # A poll with nothing disputed does nothing: it runs only when the duty cycle needs it.
    @precondition(lambda self: self.open_deadlines() or self.head_ts >= self.duty_limit())
    @rule()
    def watcher_polls(self) -> None:
        self.do_poll()

    # ---- invariants

    @invariant()
    def funds_conserved(self) -> None:
        if self.channels:
            self.check_funds()

    @invariant()
    def views_match_model(self) -> None:
        self.check_views()

    @invariant()
    def honest_party_sends_nothing(self) -> None:
        if self.channels:
            self.check_honest()

    @invariant()
    def watcher_pays_only_fees(self) -> None:
        if self.channels:
            self.check_watcher()

    @invariant()
    def clock_matches_model(self) -> None:
        self.check_clock()


@pytest.mark.usefixtures("no_source_tracebacks")
def test_watchtower_guards_offline_party(
    chain, ledger, virtual, domain, deployer, alice, ingrid, watcher, tmp_path
) -> None:
    WatchtowerStateMachine.chain = chain
    WatchtowerStateMachine.ledger = ledger
    WatchtowerStateMachine.virtual = virtual
    WatchtowerStateMachine.domain = domain
    WatchtowerStateMachine.tmp_root = tmp_path
    WatchtowerStateMachine.accounts = {"deployer": deployer, "alice": alice, "ingrid": ingrid, "watcher": watcher}
    run_settings = settings()
    if os.environ.get("HYPOTHESIS_PROFILE") == "deep":
        run_settings = settings(max_examples=DEEP_EXAMPLES)
    # Every block one second after the previous one: the model knows each transaction's timestamp.
    chain.provider.make_request("anvil_setBlockTimestampInterval", [1])
    try:
        run_state_machine_as_test(WatchtowerStateMachine, settings=run_settings)
    finally:
        chain.provider.make_request("anvil_removeBlockTimestampInterval", [])
