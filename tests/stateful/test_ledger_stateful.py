"""Stateful fuzzing of LedgerAdjudicator: three channels at once, an honest and an adversarial side each.

The model and the actions live in ledger_machine.py; this module only wires them to hypothesis. Rules
pick among the channels an action applies to *now* (preconditions say whether there is any), so no
example is wasted on a rejected draw.
"""

from __future__ import annotations

from chain_helpers import draw_by_kind
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from ledger_machine import CHANNEL_SPECS, NEUTRAL_SENDERS, PARTICIPANTS, SENDERS, LedgerMachine

# Amounts in base units: up to 1 ETH (or 1e18 token units) per deposit keeps 30 steps far from any
# account running dry, and hypothesis still tries 1 and other edge values.
AMOUNT = st.integers(1, 10**18)
# The shortest challenge duration is 3600 s: a small step never ends a fresh dispute by itself.
SMALL_STEP = st.integers(1, 3599)

sender = st.sampled_from(SENDERS)


class LedgerStateMachine(LedgerMachine, RuleBasedStateMachine):
    @initialize(
        funding=st.lists(
            # (honest side's initial deposit, adversary's, does the adversary fund it)
            st.tuples(AMOUNT, st.integers(0, 10**18), st.sampled_from([True, True, True, False])),
            min_size=len(CHANNEL_SPECS),
            max_size=len(CHANNEL_SPECS),
        )
    )
    def open_channels(self, funding: list[tuple[int, int, bool]]) -> None:
        self.do_open_channels(funding)

    # ---- funding and off-chain updates

    @precondition(lambda self: bool(self.missing_idx()))
    @rule(data=st.data())
    def fund_missing(self, data: st.DataObject) -> None:
        self.do_fund_missing(data.draw(st.sampled_from(self.missing_idx()), label="channel"))

    # Concluded channels stay eligible: a deposit into one must revert.
    @rule(ci=st.integers(0, len(CHANNEL_SPECS) - 1), side=st.integers(0, 1), amount=AMOUNT, sign=st.booleans())
    def top_up(self, ci: int, side: int, amount: int, sign: bool) -> None:
        self.do_top_up(ci, side, amount, sign)

    @precondition(lambda self: bool(self.payable()))
    @rule(data=st.data())
    def pay(self, data: st.DataObject) -> None:
        ci, side = data.draw(st.sampled_from(self.payable()), label="channel, paying side")
        latest = self.channels[ci].latest
        balance = (latest.balance_a, latest.balance_b)[side]
        self.do_pay(ci, side, data.draw(st.integers(1, balance), label="amount"))

    # ---- disputes

    @precondition(lambda self: bool(self.registrable()))
    @rule(data=st.data(), who=sender)
    def register(self, data: st.DataObject, who: str) -> None:
        ci, _, version = draw_by_kind(data, self.registrable(), lambda o: o[1], "register")
        self.do_register(ci, version, who)

    @precondition(lambda self: bool(self.in_period_idx()))
    @rule(data=st.data())
    def refute(self, data: st.DataObject) -> None:
        self.do_refute(data.draw(st.sampled_from(self.in_period_idx()), label="channel"))

    @precondition(lambda self: bool(self.channels))
    @rule(data=st.data(), who=sender)
    def invalid_call(self, data: st.DataObject, who: str) -> None:
        """A registration, conclusion or close the contract must refuse: exact reason, nothing changed."""
        options = [("register", *o) for o in self.invalid_registrations()]
        options += [("conclude", *o) for o in self.invalid_conclusions()]
        call, ci, kind, version = draw_by_kind(data, options, lambda o: f"{o[0]} {o[2]}", "invalid call")
        if call == "register":
            self.do_register_invalid(ci, kind, version, who)
        else:
            self.do_conclude_invalid(ci, kind, version, who)

    # ---- time: one rule, so that time does not take three times the share of any other action

    @rule(data=st.data())
    def time_passes(self, data: st.DataObject) -> None:
        options: list[tuple[str, int]] = [("small step", self.head_ts + data.draw(SMALL_STEP, label="dt"))]
        if self.open_deadlines():
            # Mined after the last deadline, so every open dispute is concludable afterwards.
            extra = data.draw(st.integers(0, 2 * 7200), label="extra")
            options.append(("past every deadline", max(max(self.open_deadlines()), self.head_ts + 1) + extra))
        for deadline in self.open_deadlines():
            if deadline - 2 > self.head_ts:
                # The next transaction lands at deadline - 1 (last second to refute) or at the deadline.
                options += [("to deadline - 1", deadline - 2), ("to deadline", deadline - 1)]
        _, timestamp = draw_by_kind(data, options, lambda o: o[0], "time")
        self.do_mine_at(timestamp)

    @precondition(lambda self: bool(self.edge_idx()))
    @rule(data=st.data(), at_deadline=st.booleans(), action=st.sampled_from(["register", "conclude"]), who=sender)
    def deadline_edge(self, data: st.DataObject, at_deadline: bool, action: str, who: str) -> None:
        ci = data.draw(st.sampled_from(self.edge_idx()), label="channel")
        self.do_deadline_edge(ci, at_deadline, action, who)

    # ---- conclusion

    @precondition(lambda self: bool(self.open_channels_idx()))
    @rule(data=st.data(), who=st.sampled_from(NEUTRAL_SENDERS), cooperates=st.sampled_from([True, False, False]))
    def close(self, data: st.DataObject, who: str, cooperates: bool) -> None:
        """The honest side asks to close; if the adversary refuses to sign, it registers the latest state.

        Refusal is the likelier draw: a cooperative close ends the channel, and 30 steps over three
        channels leave few steps for disputes if every request succeeds.
        """
        self.do_request_close(data.draw(st.sampled_from(self.open_channels_idx()), label="channel"), who, cooperates)

    @precondition(lambda self: bool(self.concludable_idx()))
    @rule(data=st.data(), who=sender)
    def conclude(self, data: st.DataObject, who: str) -> None:
        self.do_conclude(data.draw(st.sampled_from(self.concludable_idx()), label="channel"), who)

    @rule(data=st.data(), to_self=st.booleans())
    def withdraw(self, data: st.DataObject, to_self: bool) -> None:
        options = [(owner, asset) for owner in PARTICIPANTS for asset in ("eth", "token")]
        owner, asset = draw_by_kind(
            data, options, lambda o: "credit" if self.credit_of(*o) else "no credit", "withdraw"
        )
        self.do_withdraw(owner, asset, owner if to_self else "watcher")

    @precondition(lambda self: bool(self.channels))
    @rule(who=st.sampled_from([*PARTICIPANTS, "watcher"]), is_blocked=st.booleans())
    def block_token_recipient(self, who: str, is_blocked: bool) -> None:
        # A blocked recipient makes the token payout fail: the adjudicator must credit it instead.
        self.do_set_blocked(who, is_blocked)

    # ---- invariants (no-ops before the channels exist)

    @invariant()
    def asset_balances(self) -> None:
        if self.channels:
            self.check_asset_balances()

    @invariant()
    def views_match_model(self) -> None:
        if self.channels:
            self.check_views()

    @invariant()
    def registered_version_monotone(self) -> None:
        if self.channels:
            self.check_versions_monotone()

    @invariant()
    def clock_matches_model(self) -> None:
        self.check_clock()


def test_ledger_channels(chain, ledger, token, domain, deployer, alice, bob, ingrid, watcher, stranger) -> None:
    # Approvals once, before the per-example snapshot, so token deposits are single transactions.
    for holder in (alice, bob, ingrid):
        token.approve(ledger.address, 2**256 - 1, sender=holder)
    LedgerStateMachine.chain = chain
    LedgerStateMachine.ledger = ledger
    LedgerStateMachine.token = token
    LedgerStateMachine.domain = domain
    LedgerStateMachine.accounts = {
        "deployer": deployer,
        "alice": alice,
        "bob": bob,
        "ingrid": ingrid,
        "watcher": watcher,
        "stranger": stranger,
    }
    # Every block one second after the previous one, whatever the wall clock does: the model then
    # knows each transaction's timestamp and can aim at the deadline to the second.
    chain.provider.make_request("anvil_setBlockTimestampInterval", [1])
    try:
        run_state_machine_as_test(LedgerStateMachine)
    finally:
        chain.provider.make_request("anvil_removeBlockTimestampInterval", [])
