"""Model and actions of the watchtower state machine (hypothesis wiring: test_watchtower_stateful.py).

The promise under test (docs/SPEC.md, sections 4 and 10): an honest party that is offline, guarded by a
``Watchtower`` that polls often enough, ends with its latest balance, whatever the counterparty
registers and whenever.

- Alice is honest and sends nothing after funding; Ingrid is the adversary; the watchtower polls from
  the ``watcher`` account on Alice's ``Store``, which holds every state both signed.
- The model restates what the adjudicator accepts (with the exact revert reason) and what the
  watchtower must do in each round; every poll is compared action by action, the timestamp of each
  watchtower transaction included.
- The duty cycle: the head never gets more than ``D_min - n`` seconds past the head of the last poll,
  ``D_min`` the shortest challenge duration and ``n`` the number of channels (the spec's "once per
  challenge duration, minus the time to get a transaction mined": a round sends at most one transaction
  per channel, each a second after the previous one). That bound is tight: a registration a second
  after a poll, answered by the last transaction of a poll at the end of the cycle, lands at
  ``deadline - 1``. All time counts, the adversary's transactions (a second each) included: on duty,
  the adversary cannot act once its transaction would land past the cycle (otherwise a few of them
  right at the end of it reach a deadline the watcher never got to see coming).
- Where the watcher may be late (drawn per example), a separate rule jumps past the duty cycle and the
  adversary may act past it. A channel with a stale registration pending when time moves past the cycle
  is *exposed*: for it only the weak invariant holds (funds conserved, paid by the state registered
  at conclusion, exactly as the model says); every other channel must pay Alice exactly her balance in
  the latest state she holds.

Time is deterministic: Anvil mines each transaction one second after the head (chain_helpers.py).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from eth_abi import decode
from hexbytes import HexBytes
from hypothesis import event

from perun_vyper import (
    ETH,
    ChannelParams,
    ChannelRecord,
    Domain,
    LedgerState,
    Lock,
    SignedState,
    Store,
    compact,
    sign_state,
)
from perun_vyper.watchtower import Action, Watchtower
from perun_vyper.watchtower.actions import Closed, Concluded, Failed, Observed, Refuted, Waiting
from tests.stateful import model
from tests.stateful.chain_helpers import ChainMachine, selector
from tests.support.checks import concluded_payouts
from tests.support.constants import (
    CALL_CLOSE,
    LEDGER_CONCLUDED,
    LEDGER_DISPUTED,
    LEDGER_PERIOD_NOT_OVER,
    LEDGER_PERIOD_OVER,
    LEDGER_STALE,
    LEDGER_WRONG_SIGNER,
    LOCKS_NOT_REGISTERED,
    NO_DISPUTE,
    ZERO_HASH,
)

HONEST = "alice"
ADVERSARY = "ingrid"
_HOLDINGS = selector("holdings(bytes32)")
_DISPUTE = selector("dispute(bytes32)")
_VIEW_TYPES = (["uint256", "uint256", "bool"], ["uint64", "uint64", "bytes32"])
# Channel nonces far from the ones other test modules draw (tests/conftest.py counts from 1).
NONCE_BASE = 7_000_000


@dataclass
class Guarded:
    """One Alice-Ingrid channel: what both signed, what the chain holds, what the model expects."""

    params: ChannelParams
    honest: int  # Alice's side
    # Both sides' deposits so far (Ingrid may top up her side while the channel takes deposits).
    deposits: tuple[int, int]
    # Every non-final state both signed, oldest first (version == index).
    states: list[LedgerState]
    # The final state both signed after states[-1], if any (then it is the store's latest).
    final: LedgerState | None
    registered: LedgerState | None = None
    deadline: int = 0
    concluded: bool = False
    payouts: tuple[int, int] | None = None
    # Time moved past the duty cycle while a stale registration was pending: only the weak invariant holds.
    exposed: bool = False
    # The watchtower's last Waiting reason for this channel (each reason is reported once).
    waiting: str | None = None
    # Transactions of the watchtower that reverted: (operation, latest version, registered version, deadline).
    failed: set[tuple[Any, ...]] = field(default_factory=set)

    @property
    def cid(self) -> bytes:
        return self.params.channel_id

    @property
    def latest(self) -> LedgerState:
        """What the honest party's store calls latest."""
        return self.final or self.states[-1]

    @property
    def disputed(self) -> bool:
        return self.registered is not None and not self.concluded

    @property
    def stale_pending(self) -> bool:
        """A registration the watchtower must still answer."""
        return self.disputed and self.registered.version < self.latest.version


@dataclass(frozen=True)
class Reading:
    """The chain at one block, as the invariants see it."""

    head_ts: int
    ledger_balance: int
    alice: tuple[int, int]  # balance, nonce
    watcher: tuple[int, int]
    holdings: tuple[tuple[Any, ...], ...]  # per channel, in the model's order
    disputes: tuple[tuple[Any, ...], ...]


class WatchtowerMachine(ChainMachine):
    """The model and every action. Subclassed together with RuleBasedStateMachine by the test."""

    # Ape fixtures, set as class attributes by the test: hypothesis instantiates the machine itself.
    ledger: ClassVar[Any]
    virtual: ClassVar[Any]
    domain: ClassVar[Domain]
    tmp_root: ClassVar[Path]

    def __init__(self) -> None:
        super().__init__()
        self.channels: list[Guarded] = []
        self.dir = Path(tempfile.mkdtemp(dir=self.tmp_root))
        self.store = Store(self.dir / "alice.db")
        self.tower: Watchtower | None = None
        self.late_allowed = False
        # Head timestamp at the start of the last poll, and the longest allowed gap between two polls.
        self.last_poll = self.head_ts
        self.max_gap = 0
        # Adversary registrations with an event since the last poll, as the watchtower must report them.
        self.unobserved: list[Observed] = []
        self._sigs: dict[bytes, tuple[bytes, bytes]] = {}
        self._reading: tuple[str, Reading] | None = None
        self.ledger_base = self._eth_balance(str(self.ledger.address))
        self.alice_base = self.alice_nonce = 0
        self.alice_paid = 0
        self.watcher_base = self.watcher_nonce = 0
        self.watcher_fees = self.watcher_txs = 0

    # ------------------------------------------------------------------ chain access (raw, fast)

    def _address(self, name: str) -> str:
        return str(self.accounts[name].address)

    def _read(self) -> Reading:
        """Everything the invariants look at, in one JSON-RPC batch at the head block (cached per block:
        nothing changes on-chain without a new block)."""
        head = self.rpc("eth_getBlockByNumber", ["latest", False])
        if self._reading is not None and self._reading[0] == head["hash"]:
            return self._reading[1]
        block = head["number"]
        ledger = str(self.ledger.address)
        calls: list[tuple[str, list[Any]]] = [("eth_getBalance", [ledger, block])]
        for name in (HONEST, "watcher"):
            calls += [("eth_getBalance", [self._address(name), block])]
            calls += [("eth_getTransactionCount", [self._address(name), block])]
        for ch in self.channels:
            for sel in (_HOLDINGS, _DISPUTE):
                calls.append(("eth_call", [{"to": ledger, "data": "0x" + (sel + ch.cid).hex()}, block]))
        responses = self.chain.provider.web3.provider.make_batch_request(calls)
        assert isinstance(responses, list), responses
        results = [r["result"] for r in responses]
        views = [decode(_VIEW_TYPES[i % 2], bytes(HexBytes(raw))) for i, raw in enumerate(results[5:])]
        reading = Reading(
            int(head["timestamp"], 16),
            int(results[0], 16),
            (int(results[1], 16), int(results[2], 16)),
            (int(results[3], 16), int(results[4], 16)),
            tuple(tuple(v) for v in views[0::2]),
            tuple(tuple(v) for v in views[1::2]),
        )
        self._reading = (head["hash"], reading)
        return reading

    def _all_views(self) -> tuple[Any, ...]:
        """What a refused transaction must leave as it was (the sender's own balance and nonce aside)."""
        r = self._read()
        return r.ledger_balance, r.alice[0], r.watcher, r.holdings, r.disputes

    def _signatures(self, ch: Guarded, state: LedgerState) -> tuple[bytes, bytes]:
        """Both participants' 65-byte signatures (what the store holds)."""
        key = state.struct_hash()
        if key not in self._sigs:
            keys = [self.accounts[HONEST].private_key, self.accounts[ADVERSARY].private_key]
            if ch.honest == 1:
                keys.reverse()
            self._sigs[key] = (sign_state(keys[0], state, self.domain), sign_state(keys[1], state, self.domain))
        return self._sigs[key]

    def _compact(self, ch: Guarded, state: LedgerState) -> tuple[Any, Any]:
        sig_a, sig_b = self._signatures(ch, state)
        return compact(sig_a), compact(sig_b)

    def _signed(self, ch: Guarded, state: LedgerState) -> tuple[Any, ...]:
        """The arguments of `register`."""
        return (ch.params.as_tuple(), state.as_tuple(), *self._compact(ch, state))

    def _signed_fields(self, ch: Guarded, state: LedgerState) -> tuple[Any, ...]:
        """The arguments of `close` for `state`'s fields and its signatures, final or not: `close` rebuilds
        a final state from the fields, so the signatures of a non-final state do not verify."""
        fields = (state.version, state.balance_a, state.balance_b, state.funding_a, state.funding_b)
        return (ch.params.as_tuple(), fields, *self._compact(ch, state))

    # ------------------------------------------------------------------ setup

    def do_open(self, specs: list[tuple[int, int, int, int, list[tuple[int, int]], bool]], late_allowed: bool) -> None:
        """Open, fund and fill each channel; store everything both signed; start the watchtower.

        A spec is (challenge duration, Alice's side, Alice's deposit, Ingrid's deposit, payments as
        (payer side, amount numerator out of 2**32 of the payer's balance), whether a final state follows).
        """
        for index, (duration, honest, alice_amount, ingrid_amount, payments, final) in enumerate(specs):
            names = (HONEST, ADVERSARY) if honest == 0 else (ADVERSARY, HONEST)
            params = ChannelParams(self._address(names[0]), self._address(names[1]), ETH, duration, NONCE_BASE + index)
            deposits = (alice_amount, ingrid_amount) if honest == 0 else (ingrid_amount, alice_amount)
            states = [LedgerState.initial(params.channel_id, *deposits)]
            for payer, share in payments:
                balances = (states[-1].balance_a, states[-1].balance_b)
                if balances[payer] == 0:
                    payer = 1 - payer  # Alice always deposits something: one side can pay
                states.append(states[-1].pay(max(1, balances[payer] * share >> 32), payer))
            ch = Guarded(params, honest, deposits, states, states[-1].finalized() if final else None)
            self.channels.append(ch)
            for side, amount in enumerate(deposits):
                if amount:
                    self.ledger.deposit(params.channel_id, side, value=amount, sender=self.accounts[names[side]])
                    self.head_ts += 1
            self.store.add_channel(
                ChannelRecord(params.channel_id, "ledger", params, self.domain, self._address(HONEST))
            )
            for state in [*states, *([ch.final] if ch.final else [])]:
                self.store.save_state(params.channel_id, SignedState(state, *self._signatures(ch, state)))
            event(f"setup: {len(payments)} payments, latest {'final' if final else 'not final'}")
        # The watchtower visits the store's channels in the store's order: the model follows it.
        order = [record.channel_id for record in self.store.channels("ledger")]
        self.channels.sort(key=lambda ch: order.index(ch.cid))
        self.late_allowed = late_allowed
        self.max_gap = min(ch.params.challenge_duration for ch in self.channels) - len(self.channels)
        self.tower = Watchtower(self.store, self.ledger, self.virtual, self.accounts["watcher"])
        self.last_poll = self.head_ts
        reading = self._read()
        self.alice_base, self.alice_nonce = reading.alice
        self.watcher_base, self.watcher_nonce = reading.watcher
        event(f"setup: {len(self.channels)} channels, watcher {'may be late' if late_allowed else 'on duty'}")

    # ------------------------------------------------------------------ the adversary

    def register_options(self) -> list[tuple[int, str, LedgerState]]:
        """(channel, kind, state) for every registration Ingrid can attempt, kinds by expected outcome."""
        out: list[tuple[int, str, LedgerState]] = []
        for i, ch in enumerate(self.channels):
            if ch.final is not None:
                out.append((i, "final state", ch.final))
            for state in ch.states:
                out.append((i, self._register_kind(ch, state), state))
        return out

    def _register_kind(self, ch: Guarded, state: LedgerState) -> str:
        if ch.concluded:
            return "after conclusion"
        if ch.registered is None:
            return "opens with the latest" if state == ch.latest else "opens with a stale state"
        if self.next_ts >= ch.deadline:
            return "after the deadline"
        if state.version < ch.registered.version:
            return "older than registered"
        if state == ch.registered:
            return "the registered state again"
        return "replaces with the latest" if state == ch.latest else "replaces with a stale state"

    def do_adversary_register(self, ci: int, kind: str, state: LedgerState) -> None:
        ch = self.channels[ci]
        self._time_moves_to(self.next_ts, "adversary transaction")
        reasons = {
            "final state": CALL_CLOSE,
            "after conclusion": LEDGER_CONCLUDED,
            "after the deadline": LEDGER_PERIOD_OVER,
            "older than registered": LEDGER_STALE,
        }
        if kind in reasons:
            self._expect_revert(ADVERSARY, self.ledger.register, self._signed(ch, state), reasons[kind])
            return
        ts = self.next_ts
        receipt = self.ledger.register(*self._signed(ch, state), sender=self.accounts[ADVERSARY])
        self.head_ts += 1
        events = [(e.channel, e.version, e.deadline) for e in receipt.decode_logs(self.ledger.Registered)]
        if kind == "the registered state again":
            assert events == [], "re-registering the registered state must be a silent no-op"
            return
        if ch.registered is None:
            ch.deadline = ts + ch.params.challenge_duration
        ch.registered = state
        assert events == [(ch.cid, state.version, ch.deadline)]  # the deadline is never extended
        tx = str(receipt.txn_hash).lower()
        self.unobserved.append(Observed("ledger", ch.cid, state.version, ch.deadline, receipt.block_number, tx))

    def close_options(self) -> list[tuple[int, str, int]]:
        """(channel, kind, version) for Ingrid's close attempts."""
        out: list[tuple[int, str, int]] = []
        for i, ch in enumerate(self.channels):
            out += [(i, "not final", s.version) for s in ch.states]
            out += [(i, "forged final", v) for v in range(1, ch.latest.version + 2)]
            if ch.final is not None and ch.registered is not None:
                # Having lost the dispute, the adversary closes with the final state after all.
                out.append((i, "the signed final", ch.final.version))
        return out

    @staticmethod
    def _close_refusal(ch: Guarded, version: int) -> str:
        """Why `close` refuses a state of `version` whose signatures do not verify as a final state's."""
        if ch.concluded:
            return LEDGER_CONCLUDED
        if ch.registered is not None and version <= ch.registered.version:
            return LEDGER_STALE  # checked before the signatures
        return LEDGER_WRONG_SIGNER

    def do_adversary_close(self, ci: int, kind: str, version: int) -> None:
        ch = self.channels[ci]
        self._time_moves_to(self.next_ts, "adversary transaction")
        if kind == "not final":
            # A non-final state cannot be expressed to `close`: its fields with its real signatures make
            # a final state nobody signed.
            reason = self._close_refusal(ch, version)
            event(f"adversary close: non-final state, {reason}")
            self._expect_revert(ADVERSARY, self.ledger.close, self._signed_fields(ch, ch.states[version]), reason)
            return
        if kind == "forged final":
            # Everything to Ingrid, signed by Ingrid for both sides: Alice never signed it.
            total = sum(ch.deposits)
            balances = (0, total) if ch.honest == 0 else (total, 0)
            state = LedgerState(ch.cid, version, *balances, *ch.deposits, is_final=True)
            sig = compact(sign_state(self.accounts[ADVERSARY].private_key, state, self.domain))
            args = (ch.params.as_tuple(), state.final_tuple(), sig, sig)
            reason = self._close_refusal(ch, version)
            event(f"adversary close: forged final, {reason}")
            self._expect_revert(ADVERSARY, self.ledger.close, args, reason)
            return
        assert kind == "the signed final" and ch.final is not None
        final_args = (ch.params.as_tuple(), ch.final.final_tuple(), *self._compact(ch, ch.final))
        if ch.concluded:
            self._expect_revert(ADVERSARY, self.ledger.close, final_args, LEDGER_CONCLUDED)
            return
        receipt = self.ledger.close(*final_args, sender=self.accounts[ADVERSARY])
        self.head_ts += 1
        events = concluded_payouts(self.ledger, receipt)
        assert events == [(ch.cid, ch.final.version, *self.payouts(ch, ch.final))]
        self._settled(ch, ch.final, "adversary closes with the signed final")

    def conclude_options(self) -> list[tuple[int, str, list[Any]]]:
        """(channel, kind, locks argument). The registered states have no locks: conclude takes none, and
        a lock the adversary makes up (taking Alice's whole balance) is not the registered one."""
        out: list[tuple[int, str, list[Any]]] = []
        for i, ch in enumerate(self.channels):
            if ch.concluded:
                out.append((i, "after conclusion", []))
            elif ch.registered is None:
                out.append((i, "no dispute", []))
            elif self.next_ts < ch.deadline:
                out.append((i, "early", []))
            else:
                out.append((i, "the registered outcome", []))
                balance = (ch.registered.balance_a, ch.registered.balance_b)[ch.honest]
                amounts = (balance, 0) if ch.honest == 0 else (0, balance)
                out.append((i, "made-up locks", [Lock(ch.cid, *amounts).as_tuple()]))
        return out

    def do_adversary_conclude(self, ci: int, kind: str, locks: list[Any]) -> None:
        ch = self.channels[ci]
        self._time_moves_to(self.next_ts, "adversary transaction")
        reasons = {
            "after conclusion": LEDGER_CONCLUDED,
            "no dispute": NO_DISPUTE,
            "early": LEDGER_PERIOD_NOT_OVER,
            "made-up locks": LOCKS_NOT_REGISTERED,
        }
        args = (ch.params.as_tuple(), locks, [])
        if kind in reasons:
            self._expect_revert(ADVERSARY, self.ledger.conclude, args, reasons[kind])
            return
        state = ch.registered
        assert kind == "the registered outcome" and state is not None and locks == []
        receipt = self.ledger.conclude(*args, sender=self.accounts[ADVERSARY])
        self.head_ts += 1
        events = concluded_payouts(self.ledger, receipt)
        assert events == [(ch.cid, state.version, *self.payouts(ch, state))]
        self._settled(ch, state, "adversary concludes")

    def deposit_options(self) -> list[tuple[int, str]]:
        """(channel, expected outcome) of a top-up by Ingrid for her own side."""
        out = []
        for i, ch in enumerate(self.channels):
            if ch.concluded:
                out.append((i, LEDGER_CONCLUDED))
            elif ch.registered is not None:
                out.append((i, LEDGER_DISPUTED))
            else:
                out.append((i, "accepted"))
        return out

    def do_adversary_deposit(self, ci: int, kind: str, amount: int) -> None:
        """Ingrid tops up her side. Before a dispute it only adds to what she gets back; once a state is
        registered its outcome is settled and deposits are refused (nothing changes)."""
        ch = self.channels[ci]
        self._time_moves_to(self.next_ts, "adversary transaction")
        side = 1 - ch.honest
        args = (ch.cid, side)
        event(f"adversary deposit: {kind}")
        if kind != "accepted":
            self._expect_revert(ADVERSARY, self.ledger.deposit, args, kind, value=amount)
            return
        receipt = self.ledger.deposit(*args, value=amount, sender=self.accounts[ADVERSARY])
        self.head_ts += 1
        deposits = list(ch.deposits)
        deposits[side] += amount
        ch.deposits = (deposits[0], deposits[1])
        assert [(e.channel, e.deposits) for e in receipt.decode_logs(self.ledger.Deposited)] == [
            (ch.cid, ch.deposits[0] | ch.deposits[1] << 120)
        ]

    # ------------------------------------------------------------------ time

    def duty_limit(self) -> int:
        """The latest head timestamp a jump may reach while the watcher keeps its duty cycle."""
        return self.last_poll + self.max_gap

    def open_deadlines(self) -> list[int]:
        return [ch.deadline for ch in self.channels if ch.disputed]

    def adversary_may_act(self) -> bool:
        """On duty, the adversary's transactions (a second each) stay inside the duty cycle too."""
        return self.late_allowed or self.next_ts <= self.duty_limit()

    def _time_moves_to(self, timestamp: int, what: str) -> None:
        """Bookkeeping before the head moves to `timestamp`: beyond the duty cycle, a stale registration
        pending now may win (its channel is exposed); that only happens where the watcher may be late."""
        if timestamp <= self.duty_limit():
            return
        assert self.late_allowed, f"{what} beyond the duty cycle in an example where the watcher is on duty"
        for ch in self.channels:
            if ch.stale_pending and not ch.exposed:
                ch.exposed = True
                event(f"watcher late: {what} beyond the duty cycle with a stale registration pending")

    def do_late_jump(self, timestamp: int) -> None:
        """The watcher is offline until `timestamp`."""
        if timestamp <= self.duty_limit():
            event("watcher late: jump still within the duty cycle")
        self._time_moves_to(timestamp, "jump")
        self.do_mine_at(timestamp)

    # ------------------------------------------------------------------ the watchtower

    @staticmethod
    def payouts(ch: Guarded, state: LedgerState) -> tuple[int, int]:
        """The spec's payout rule (deposits always cover the states here: the normal case)."""
        assert model.funded(ch.deposits, state)
        return model.base_payouts(ch.deposits, state)

    def _expect_round(self, ch: Guarded, now: int, tx_ts: int) -> tuple[list[Action], bool | None, Any]:
        """What one poll must do for `ch`: the actions (transactions with tx=""), whether a transaction
        is sent (True: it succeeds, False: it reverts, None: none), and the settlement to apply after
        the poll was compared (state, how) or None. Updates the rest of the model."""
        if not ch.disputed:
            return [], None, None
        assert ch.registered is not None
        registered, latest = ch.registered, ch.latest
        actions: list[Action] = []
        if latest.version > registered.version:
            if latest.is_final and ("close", latest.version, registered.version) not in ch.failed:
                # Closes even after the deadline, as long as nobody concluded.
                event(f"poll: closed with the final state {'before' if now < ch.deadline else 'after'} the deadline")
                closed = Closed(ch.cid, registered.version, latest.version, self.payouts(ch, latest), "")
                return [closed], True, (latest, "watcher closes")
            if now < ch.deadline:
                key = ("register", latest.version, registered.version, ch.deadline)
                if key in ch.failed:
                    return [], None, None
                if tx_ts < ch.deadline:
                    edge = tx_ts == ch.deadline - 1
                    event("poll: refuted, " + ("mined at deadline - 1" if edge else "mined before deadline - 1"))
                    ch.registered, ch.waiting = latest, None
                    return [Refuted(ch.cid, registered.version, latest.version, "")], True, None
                # The head was before the deadline, the answer is mined at it: too late (a race with time).
                event("poll: answer mined at the deadline, reverts")
                ch.failed.add(key)
                return [Failed(ch.cid, "register", LEDGER_PERIOD_OVER, "")], False, None
            reason = f"latest v{latest.version} came too late: the challenge period is over"
            if ch.waiting != reason:
                ch.waiting = reason
                actions.append(Waiting(ch.cid, reason))
        if now < ch.deadline:
            return actions, None, None
        event("poll: concluded " + ("by the latest state" if registered == latest else "by a stale state"))
        concluded = Concluded(ch.cid, registered.version, self.payouts(ch, registered), "")
        ch.waiting = None
        return [*actions, concluded], True, (registered, "watcher concludes")

    def do_poll(self) -> None:
        assert self.tower is not None
        now = self.head_ts
        gap = now - self.last_poll
        if gap > self.max_gap:
            event("poll: after a gap beyond the duty cycle")
        elif gap == self.max_gap:
            event("poll: at the very end of the duty cycle")
        self.last_poll = now
        expected: list[Action] = sorted(self.unobserved, key=lambda a: a.block)
        self.unobserved = []
        sent: list[bool] = []  # outcome of each watchtower transaction, in order
        settlements: list[tuple[Guarded, LedgerState, str]] = []
        for ch in self.channels:
            actions, outcome, settlement = self._expect_round(ch, now, now + len(sent) + 1)
            expected += actions
            if outcome is not None:
                sent.append(outcome)
            if settlement is not None:
                settlements.append((ch, *settlement))
        actual = self.tower.poll()
        with_tx = (Refuted, Closed, Concluded, Failed)
        assert [replace(a, tx="") if isinstance(a, with_tx) else a for a in actual] == expected, (
            f"watchtower did {actual}, model expected {expected}"
        )
        txs = [a.tx for a in actual if isinstance(a, with_tx)]
        for k, (tx, ok) in enumerate(zip(txs, sent, strict=True), start=1):
            assert tx is not None, "every watchtower transaction here is mined"
            receipt = self._receipt(tx)
            block = self.rpc("eth_getBlockByNumber", [receipt["blockNumber"], False])
            assert receipt["from"].lower() == self._address("watcher").lower()
            assert int(receipt["status"], 16) == int(ok)
            assert int(block["timestamp"], 16) == now + k
            self.watcher_fees += int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
        self.watcher_txs += len(txs)
        self.head_ts = now + len(txs)
        for ch, state, how in settlements:
            self._settled(ch, state, how)
        if not actual:
            event("poll: nothing to do")

    # ------------------------------------------------------------------ conclusion

    def _settled(self, ch: Guarded, state: LedgerState, how: str) -> None:
        """The model's side of a conclusion by `state`; the honest party's share is checked here."""
        assert not ch.concluded
        ch.concluded, ch.payouts = True, self.payouts(ch, state)
        self.alice_paid += ch.payouts[ch.honest]
        latest_share = (ch.latest.balance_a, ch.latest.balance_b)[ch.honest]
        stale = state.version < ch.latest.version and not state.is_final
        event(f"settled: {how}, {'stale state (watcher late)' if stale else 'latest state'}")
        if not ch.exposed:
            # The promise: with the watcher on duty, Alice gets exactly her latest balance.
            assert ch.payouts[ch.honest] == latest_share, (
                f"{how}: Alice got {ch.payouts[ch.honest]}, her latest state gives her {latest_share}"
            )
            assert not stale

    def finish(self) -> None:
        """Teardown: the watcher polls, time runs past every deadline, it polls again; every dispute ended."""
        self.do_poll()
        deadlines = self.open_deadlines()
        if deadlines:
            # Nothing is registered in between: every stale registration was answered (or is exposed).
            self.do_mine_at(max(max(deadlines), self.head_ts + 1))
            self.do_poll()
        for ch in self.channels:
            if ch.registered is not None:
                assert ch.concluded, "a dispute did not end"
        self.check_all()

    def teardown(self) -> None:
        try:
            # Only after a clean run: a failure in flight must not be masked by a follow-up one.
            if sys.exc_info()[0] is None and self.tower is not None:
                self.finish()
        finally:
            self.store.close()
            shutil.rmtree(self.dir, ignore_errors=True)
            super().teardown()

    # ------------------------------------------------------------------ invariants

    def check_funds(self) -> None:
        held = sum(sum(ch.deposits) for ch in self.channels if not ch.concluded)
        assert self._read().ledger_balance == self.ledger_base + held, "ETH holdings drifted"

    def check_views(self) -> None:
        reading = self._read()
        for ch, holdings, dispute in zip(self.channels, reading.holdings, reading.disputes, strict=True):
            if ch.concluded:
                assert (holdings, dispute) == ((0, 0, True), (0, 0, ZERO_HASH))
                continue
            assert holdings == (*ch.deposits, False)
            reg = ch.registered
            # The third value is the registered locks' hash: zero, these states have no locks.
            assert dispute == ((reg.version, ch.deadline, ZERO_HASH) if reg else (0, 0, ZERO_HASH))

    def check_honest(self) -> None:
        """Alice sends nothing, and her balance moves by her payouts only."""
        assert self._read().alice == (self.alice_base + self.alice_paid, self.alice_nonce)

    def check_watcher(self) -> None:
        """The watcher pays the fees of its own transactions and receives nothing."""
        assert self._read().watcher == (self.watcher_base - self.watcher_fees, self.watcher_nonce + self.watcher_txs)

    def check_clock(self) -> None:
        assert self._read().head_ts == self.head_ts

    def check_all(self) -> None:
        self.check_funds()
        self.check_views()
        self.check_honest()
        self.check_watcher()
        self.check_clock()
