"""The model and actions of the app-channel machine (test_app_stateful.py): one SLA channel between a client
(Alice, side A) and a provider (Bob, side B), one of them honest and watching the chain, the other free to
register stale states, force moves, send moves the app refuses, or go silent.

The honest party follows docs/SPEC.md section 12: it answers every registration of a state older than its
latest one by registering that state, and (as provider) answers every request registered or forced
on-chain, always before the deadline. Time is deterministic (block-timestamp interval 1, as in
chain_helpers.py), so the model knows every deadline before the transaction that sets it.

The invariants the machine checks after every step:
- conservation: the adjudicator holds exactly the deposits of the unconcluded channel;
- the view matches the model: `registrations(channel)` commits to the state the model says is registered;
- every dispute ends: a registration's deadline is one challenge duration after the action that set it,
  and a dispute has at most (versions both signed) + 2 * (requests) + 1 actions;
- the honest party never loses: at conclusion it receives at least what its latest state both signed
  gives it (a client less the price of each answer it received on-chain, a provider more).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

from hypothesis import event

from perun_vyper import compact, sign_state
from perun_vyper.core.app import NO_REGISTRATION, AppParams, AppState, Move, Registration
from perun_vyper.core.codec import Domain
from perun_vyper.core.sla import SlaData, request, respond
from tests.stateful.chain_helpers import ChainMachine

DURATION = 3600
PRICE = 10**15
PENALTY = 10**17
REQUESTS = 3
CLIENT, PROVIDER = 0, 1
ROLES = ("alice", "bob")


@dataclass
class OnChain:
    """The dispute as the model sees it."""

    state: AppState
    deadline: int
    agreed: int  # the version of the last registered state both signed
    actions: int = 1


class AppMachine(ChainMachine):
    apps: ClassVar[Any]
    sla: ClassVar[Any]
    domain: ClassVar[Domain]

    def __init__(self) -> None:
        super().__init__()
        self.params: AppParams | None = None
        self.honest = CLIENT
        self.signed: list[AppState] = []  # every state both signed, by version
        self.dispute: OnChain | None = None
        self.concluded: tuple[int, int] | None = None
        self.deposits = 0
        self.answers_on_chain = 0  # provider answers mined (each costs the client the price)
        self.nonce = 0

    # ------------------------------------------------------------------ helpers

    def _sig(self, state: AppState, side: int) -> tuple[bytes, bytes]:
        return compact(sign_state(self.accounts[ROLES[side]].private_key, state, self.domain))

    def _both(self, state: AppState) -> tuple:
        return state.as_tuple(), self._sig(state, 0), self._sig(state, 1)

    def _registration(self) -> Registration:
        if self.dispute is None:
            return NO_REGISTRATION
        return Registration.of(self.dispute.state, self.dispute.deadline, self.dispute.agreed)

    def _all_views(self) -> tuple[Any, ...]:
        return (
            bytes(self.apps.registrations(self.params.channel_id)),
            tuple(self.apps.holdings(self.params.channel_id)),
            self._eth_balance(self.apps.address),
        )

    @property
    def latest(self) -> AppState:
        return self.signed[-1]

    @property
    def open(self) -> bool:
        return self.params is not None and self.concluded is None

    def in_period(self) -> bool:
        return self.open and self.dispute is not None and self.next_ts < self.dispute.deadline

    def turn(self) -> int | None:
        """Whose move the registered state waits for (None: nobody can move)."""
        if not self.in_period():
            return None
        data = SlaData.decode(self.dispute.state.app_data)
        if data.pending:
            return PROVIDER
        state = self.dispute.state
        if data.requests_left and state.balance_a >= data.price and state.balance_b >= data.penalty:
            return CLIENT
        return None

    def _next_move(self, state: AppState, side: int) -> AppState:
        tag = state.version.to_bytes(32, "big")
        word = bytes([0x40 + side]) + tag[1:]
        return request(state, word) if side == CLIENT else respond(state, word)

    # ------------------------------------------------------------------ actions

    def do_open(self, fund_a: int, fund_b: int, honest: int) -> None:
        self.honest = honest
        self.params = AppParams(
            str(self.accounts["alice"].address),
            str(self.accounts["bob"].address),
            str(self.sla.address),
            challenge_duration=DURATION,
            nonce=2**70 + self.nonce,
        )
        data = SlaData(PRICE, PENALTY, REQUESTS).encode()
        self.signed = [AppState.initial(self.params.channel_id, fund_a, fund_b, data)]
        for side, amount in ((0, fund_a), (1, fund_b)):
            if amount == 0:
                continue
            self.apps.deposit(self.params.channel_id, side, value=amount, sender=self.accounts[ROLES[side]])
            self.head_ts += 1
        self.deposits = fund_a + fund_b

    def latest_pending(self) -> bool:
        return SlaData.decode(self.latest.app_data).pending

    def offchain_possible(self) -> bool:
        if not self.open or self.dispute is not None:
            return False
        data = SlaData.decode(self.latest.app_data)
        return data.pending or (
            data.requests_left > 0 and self.latest.balance_a >= PRICE and self.latest.balance_b >= PENALTY
        )

    def do_offchain_step(self) -> None:
        """The next request or answer, both sign (each side checks it against the app first)."""
        state = self.latest
        side = PROVIDER if SlaData.decode(state.app_data).pending else CLIENT
        nxt = self._next_move(state, side)
        assert self.sla.valid_transition(self.params.as_tuple(), state.as_tuple(), nxt.as_tuple(), side)
        self.signed.append(nxt)

    def do_register(self, version: int, sender: str) -> None:
        """Register a state both signed: the expected outcome, success or the exact refusal."""
        state = self.signed[version]
        args = (self.params.as_tuple(), *self._both(state), self._registration().as_tuple())
        if self.concluded is not None:
            return self._expect_revert(sender, self.apps.register, args, "ledger: channel concluded")
        if self.dispute is not None and self.next_ts >= self.dispute.deadline:
            return self._expect_revert(sender, self.apps.register, args, "app: challenge period over")
        if self.dispute is not None and version <= self.dispute.agreed:
            return self._expect_revert(sender, self.apps.register, args, "app: stale version")
        self.apps.register(*args, sender=self.accounts[sender])
        event("register: " + ("refutes" if self.dispute else "opens"))
        self.head_ts += 1
        deadline = self.head_ts if state.is_final else self.head_ts + DURATION
        actions = self.dispute.actions + 1 if self.dispute else 1
        self.dispute = OnChain(state, deadline, version, actions)

    def do_move(self, side: int, valid: bool, force_register: bool = False) -> None:
        """``side`` moves (a request or an answer). An invalid move (the penalty taken twice) must be
        refused by the app with its reason and change nothing."""
        base = self.latest if force_register else self.dispute.state
        nxt = self._next_move(base, side)
        if not valid:
            # One unit more to one side (conserved, so only the app can refuse it); towards A unless B
            # holds nothing after the move (a bond of exactly the penalty).
            shift = 1 if nxt.balance_b >= 1 else -1
            nxt = replace(nxt, balance_a=nxt.balance_a + shift, balance_b=nxt.balance_b - shift)
        move = Move.between(base, nxt, side).as_tuple()
        sig = self._sig(nxt, side)
        sender = ROLES[side]
        if force_register:
            args = (self.params.as_tuple(), *self._both(base), self._registration().as_tuple(), move, sig)
            method = self.apps.register_and_progress
        else:
            args = (self.params.as_tuple(), base.as_tuple(), self.dispute.deadline, self.dispute.agreed, move, sig)
            method = self.apps.progress
        if not valid:
            event("move: refused (wrong balances)")
            return self._expect_revert(sender, method, args, "sla: wrong balances")
        method(*args, sender=self.accounts[sender])
        event(f"move: {'answer' if side == PROVIDER else 'request'}{' with registration' if force_register else ''}")
        self.head_ts += 1
        actions = (self.dispute.actions if self.dispute else 0) + (2 if force_register else 1)
        agreed = base.version if force_register else self.dispute.agreed
        self.dispute = OnChain(nxt, self.head_ts + DURATION, agreed, actions)
        if side == PROVIDER:
            self.answers_on_chain += 1

    def do_wrong_turn(self) -> None:
        """The adversary moves out of turn: the app refuses with its reason, nothing changes."""
        side = 1 - self.honest
        base = self.dispute.state
        data = SlaData.decode(base.app_data)
        pending = data.pending
        nxt = replace(base, version=base.version + 1)
        move = Move.between(base, nxt, side).as_tuple()
        args = (
            self.params.as_tuple(),
            base.as_tuple(),
            self.dispute.deadline,
            self.dispute.agreed,
            move,
            self._sig(nxt, side),
        )
        if side == CLIENT:
            reason = "sla: request pending" if pending else "sla: not a request"
            if not pending and data.requests_left == 0:
                reason = "sla: no requests left"
        else:
            reason = "sla: not a response" if pending else "sla: no request pending"
        event(f"move out of turn: {reason}")
        self._expect_revert(ROLES[side], self.apps.progress, args, reason)

    def do_finish(self) -> None:
        """Drive the channel to its end as the honest party would, then check its outcome: the
        adversary refuses to close, the honest party registers its latest state, answers what it must,
        and anyone concludes once a period passes. Ends within the dispute bound."""
        if not self.open:
            return
        if self.dispute is None:
            self.do_register(self.latest.version, ROLES[self.honest])
        for _ in range(len(self.signed) + 2 * REQUESTS + 2):
            if self.honest_reaction_due():
                self.do_honest_react()
                continue
            if self.next_ts < self.dispute.deadline:
                self.do_mine_at(self.dispute.deadline - 1)
            self.do_conclude("watcher")
            return
        raise AssertionError("the dispute did not end within its bound")

    def honest_reaction_due(self) -> bool:
        """The honest party has something to answer in the running period."""
        if not self.in_period():
            return False
        return self.dispute.agreed < self.latest.version or (self.honest == PROVIDER and self.turn() == PROVIDER)

    def do_honest_react(self) -> None:
        if self.dispute.agreed < self.latest.version:
            self.do_register(self.latest.version, ROLES[self.honest])
        elif self.honest == PROVIDER and self.turn() == PROVIDER:
            self.do_move(PROVIDER, valid=True)

    def concludable(self) -> bool:
        return self.open and self.dispute is not None and self.next_ts >= self.dispute.deadline

    def do_conclude(self, sender: str) -> None:
        state = self.dispute.state
        receipt = self.apps.conclude(
            self.params.as_tuple(),
            state.as_tuple(),
            self.dispute.deadline,
            self.dispute.agreed,
            sender=self.accounts[sender],
        )
        self.head_ts += 1
        [log] = receipt.decode_logs(self.apps.Concluded)
        self.concluded = (log.payout_a, log.payout_b)
        assert self.concluded == (state.balance_a, state.balance_b)
        event(f"concluded after {self.dispute.actions} dispute actions")
        self.check_honest_outcome()

    def do_close(self) -> None:
        final = self.latest.finalized()
        self.apps.close(self.params.as_tuple(), *self._both(final), sender=self.accounts["watcher"])
        self.head_ts += 1
        self.concluded = (final.balance_a, final.balance_b)
        self.check_honest_outcome()

    # ------------------------------------------------------------------ invariants

    def check_conservation(self) -> None:
        held = 0 if self.concluded is not None else self.deposits
        assert self._eth_balance(self.apps.address) == held

    def check_view(self) -> None:
        stored = bytes(self.apps.registrations(self.params.channel_id))
        expected = self._registration().stored() if self.dispute and self.concluded is None else bytes(32)
        assert stored == expected

    def check_dispute_bounds(self) -> None:
        if self.dispute is None:
            return
        # Each action's deadline is one duration after it (or at once for a final state).
        assert self.dispute.deadline <= self.head_ts + DURATION
        assert self.dispute.actions <= len(self.signed) + 2 * REQUESTS + 1

    def check_honest_outcome(self) -> None:
        payout = self.concluded[self.honest]
        latest = self.latest
        pending = SlaData.decode(latest.app_data).pending
        if self.honest == PROVIDER:
            assert payout >= latest.balance_b, (payout, latest)
        else:
            # The client's own latest: the penalty it holds for a pending request is not yet its own.
            own = latest.balance_a - (PENALTY if pending else 0)
            assert payout >= own - PRICE * self.answers_on_chain, (payout, latest, self.answers_on_chain)
