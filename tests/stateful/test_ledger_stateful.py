"""Stateful fuzzing of LedgerAdjudicator: three channels at once, an honest and an adversarial side each.

The model and the actions live in ledger_machine.py; this module only wires them to hypothesis. Rules
pick among the channels an action applies to *now* (preconditions say whether there is any), so no
example is wasted on a rejected draw.

The test runs once per token kind (TOKEN_KINDS): the plain TestToken with its blocklist, and the odd
tokens of contracts/test/ (no return value, fee on transfer, reverting on zero, re-entrant, returning
false), with the same invariants. The odd tokens get fewer examples outside the deep profile.
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

from perun_vyper import ETH, ChannelParams, LedgerState, compact, sign_state
from tests.stateful.chain_helpers import draw_by_kind
from tests.stateful.ledger_machine import (
    CHANNEL_SPECS,
    NEUTRAL_SENDERS,
    PARTICIPANTS,
    SENDERS,
    TOKEN_KINDS,
    LedgerMachine,
    TokenKind,
)

# Amounts in base units: up to 1 ETH (or 1e18 token units) per deposit keeps 30 steps far from any
# account running dry, and hypothesis still tries 1 and other edge values.
AMOUNT = st.integers(1, 10**18)
# The shortest challenge duration is 3600 s: a small step never ends a fresh dispute by itself.
SMALL_STEP = st.integers(1, 3599)

sender = st.sampled_from(SENDERS)

# Examples per odd token outside the deep profile (TestToken keeps the profile's own number).
ODD_TOKEN_EXAMPLES = 15


class LedgerStateMachine(LedgerMachine, RuleBasedStateMachine):
    @initialize(
        funding=st.lists(
            # (honest side's initial deposit, adversary's, does the adversary fund it)
            st.tuples(AMOUNT, st.integers(0, 10**18), st.sampled_from([True, True, True, False])),
            min_size=len(CHANNEL_SPECS),
            max_size=len(CHANNEL_SPECS),
        ),
        data=st.data(),
    )
    def open_channels(self, funding: list[tuple[int, int, bool]], data: st.DataObject) -> None:
        self.do_open_channels(funding)
        # A token that can fail does so from the start half the time: a rule alone seldom switches it
        # on before a token payout, in the few examples the odd tokens get.
        if self.token_kind.can_fail and data.draw(st.booleans(), label="token fails"):
            self.do_set_failing(True)

    # ---- funding and off-chain updates

    @precondition(lambda self: bool(self.missing_idx()))
    @rule(data=st.data())
    def fund_missing(self, data: st.DataObject) -> None:
        self.do_fund_missing(data.draw(st.sampled_from(self.missing_idx()), label="channel"))

    # Disputed and concluded channels stay eligible: a deposit into one must revert and change nothing.
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
        ci, kind, version = draw_by_kind(data, self.registrable(), lambda o: o[1], "register")
        if kind == "twin":
            self.do_register_twin(ci, who)
        else:
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

    @precondition(lambda self: self.token_kind.blocklist and bool(self.channels))
    @rule(who=st.sampled_from([*PARTICIPANTS, "watcher"]), is_blocked=st.booleans())
    def block_token_recipient(self, who: str, is_blocked: bool) -> None:
        # A blocked recipient makes the token payout fail: the adjudicator must credit it instead.
        self.do_set_blocked(who, is_blocked)

    @precondition(lambda self: self.token_kind.can_fail and bool(self.channels))
    @rule(fail=st.booleans())
    def token_fails(self, fail: bool) -> None:
        # While the token returns false, payouts are credited and deposits and withdraws revert.
        self.do_set_failing(fail)

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

    @invariant()
    def reentry_refused(self) -> None:
        if self.token_kind.reentrant:
            self.check_reentry()


def _deploy_token(kind: TokenKind, project, test_token, deployer, holders) -> object:
    if kind.name == "TestToken":
        return test_token
    token = deployer.deploy(getattr(project, kind.name))
    for holder in holders:
        token.mint(holder, 10**24, sender=deployer)
    return token


PROBE_DEPOSIT = 1


def _arm(chain, token, ledger, domain, deployer, alice, stranger) -> None:
    """Make every transfer first call the ledger: `register` of state 0 of a probe ETH channel.

    `register` holds the reentrancy lock. Sent by a transfer the ledger did not start, the same call goes
    through (the first one registers, every later one is a no-op), so a re-entry that got past the lock
    would show as a success. (`deposit` is outside the lock: it makes no external call, and re-entered
    into another ETH channel it is the same as a later deposit, so it cannot serve as the probe.) The
    probe's deposit stays in the ledger for the whole test: the machine counts it (`probe_eth`).
    """
    probe = ChannelParams(str(alice.address), str(stranger.address), ETH, 3600, 2**64)
    ledger.deposit(probe.channel_id, 0, value=PROBE_DEPOSIT, sender=alice)
    state = LedgerState.initial(probe.channel_id, PROBE_DEPOSIT, 0)
    sigs = [compact(sign_state(party.private_key, state, domain)) for party in (alice, stranger)]
    payload = ledger.register.encode_input(probe.as_tuple(), state.as_tuple(), *sigs)
    token.arm(ledger.address, payload, 0, sender=deployer)
    # The payload is valid: sent by a transfer the ledger did not start, it goes through.
    snapshot = chain.snapshot()
    token.transfer(stranger, 1, sender=alice)
    assert token.last_success() and ledger.dispute(probe.channel_id)[1] != 0
    chain.restore(snapshot)
    assert not token.last_success() and token.attempts() == 0
    assert tuple(ledger.dispute(probe.channel_id)) == (0, 0, b"\x00" * 32)


@pytest.mark.parametrize("kind", TOKEN_KINDS, ids=lambda kind: kind.name)
def test_ledger_channels(
    kind, project, chain, ledger, token, domain, deployer, alice, bob, ingrid, watcher, stranger
) -> None:
    token = _deploy_token(kind, project, token, deployer, (alice, bob, ingrid))
    # Approvals once, before the per-example snapshot, so token deposits are single transactions.
    for holder in (alice, bob, ingrid):
        token.approve(ledger.address, 2**256 - 1, sender=holder)
    if kind.reentrant:
        _arm(chain, token, ledger, domain, deployer, alice, stranger)
    # A subclass per kind: hypothesis keys its example database by the machine class.
    machine = type(f"LedgerStateMachine{kind.name}", (LedgerStateMachine,), {"token_kind": kind})
    machine.chain = chain
    machine.ledger = ledger
    machine.token = token
    machine.domain = domain
    machine.accounts = {
        "deployer": deployer,
        "alice": alice,
        "bob": bob,
        "ingrid": ingrid,
        "watcher": watcher,
        "stranger": stranger,
    }
    if kind.reentrant:
        machine.reentry_base = token.attempts()
        machine.probe_eth = PROBE_DEPOSIT
    run_settings = settings()
    if kind.name != "TestToken" and os.environ.get("HYPOTHESIS_PROFILE", "default") != "deep":
        run_settings = settings(max_examples=ODD_TOKEN_EXAMPLES)
    # Every block one second after the previous one, whatever the wall clock does: the model then
    # knows each transaction's timestamp and can aim at the deadline to the second.
    chain.provider.make_request("anvil_setBlockTimestampInterval", [1])
    try:
        run_state_machine_as_test(machine, settings=run_settings)
    finally:
        chain.provider.make_request("anvil_removeBlockTimestampInterval", [])
    if kind.reentrant:
        assert machine.reentries_refused > 0, "the token never tried to re-enter the ledger"
