"""Model and actions of the ledger-channel state machine (hypothesis wiring: test_ledger_stateful.py).

The model is an independent re-statement of the adjudicator's rules: which registrations, closes and
conclusions it accepts, with which revert reason it refuses the others, and what it pays out. Every
action checks the chain against it at once; the invariants re-check all channels after every step.

Time is deterministic: the test runs Anvil with a block-timestamp interval of 1, so every mined
transaction lands exactly one second after the head, and the model knows the timestamp a transaction
will see (`next_ts`) before sending it. That is what lets the machine hit the deadline to the second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from eth_abi import encode
from hypothesis import event

from perun_vyper import ETH, ChannelParams, Domain, LedgerState, Lock, compact, sign_state
from tests.stateful import model
from tests.stateful.chain_helpers import ChainMachine
from tests.stateful.chain_helpers import selector as _selector
from tests.support.checks import concluded_payouts
from tests.support.constants import (
    CALL_CLOSE,
    LEDGER_CONCLUDED,
    LEDGER_DISPUTED,
    LEDGER_OTHER_CHANNEL,
    LEDGER_PERIOD_NOT_OVER,
    LEDGER_PERIOD_OVER,
    LEDGER_STALE,
    LEDGER_WRONG_SIGNER,
    LOCKS_NOT_REGISTERED,
    NO_DISPUTE,
    NOTHING_TO_WITHDRAW,
    TRANSFER_FAILED,
    ZERO_HASH,
)

# (name, side A, side B, asset kind, challenge duration, honest side). Channel 2 shares the pair of
# channel 0 on another asset, so their ids differ only by asset and nonce: nothing may leak between them.
CHANNEL_SPECS: tuple[tuple[str, str, str, str, int, int], ...] = (
    ("eth-alice-bob", "alice", "bob", "eth", 3600, 0),
    ("eth-bob-ingrid", "bob", "ingrid", "eth", 7200, 1),
    ("token-alice-bob", "alice", "bob", "token", 3600, 1),
)
PARTICIPANTS = ("alice", "bob", "ingrid")
SENDERS = ("deployer", "alice", "bob", "ingrid", "watcher", "stranger")
NEUTRAL_SENDERS = ("deployer", "watcher", "stranger")


@dataclass(frozen=True)
class TokenKind:
    """The channel token (a contract in contracts/test/) and what it does beyond a plain ERC20."""

    name: str
    # set_blocked(recipient, True): transfers to it revert "token: recipient blocked".
    blocklist: bool = False
    # Burnt from every transfer: a deposit credits, and a payout delivers, only what arrives.
    fee_bps: int = 0
    # set_fail(True): transfers move nothing and return false.
    can_fail: bool = False
    # arm(target, payload, value): every transfer first calls the ledger (re-entry attempt).
    reentrant: bool = False

    def arrives(self, amount: int) -> int:
        """What the recipient of a transfer of `amount` gets."""
        return amount - amount * self.fee_bps // 10_000


TOKEN_KINDS = (
    TokenKind("TestToken", blocklist=True),
    TokenKind("NoReturnToken"),
    TokenKind("FeeToken", fee_bps=100),
    # Never asked for zero: the ledger refuses zero deposits and skips zero payouts before the token.
    TokenKind("ZeroRevertToken"),
    TokenKind("ReentrantToken", reentrant=True),
    TokenKind("FalseToken", can_fail=True),
)


_HOLDINGS = _selector("holdings(bytes32)")
_DISPUTE = _selector("dispute(bytes32)")
_CREDITS = _selector("credits(address,address)")
_BALANCE_OF = _selector("balanceOf(address)")
_ATTEMPTS = _selector("attempts()")
_LAST_SUCCESS = _selector("last_success()")
_LAST_RESPONSE = _selector("last_response()")


@dataclass
class Channel:
    """What the participants and the model know about one channel."""

    name: str
    params: ChannelParams
    parties: tuple[Any, Any]
    honest: int
    deposits: list[int]
    # The adversary's part of the initial funding that it has not deposited yet.
    missing: int
    # Every non-final state both participants signed, oldest first (version == index).
    states: list[LedgerState]
    registered: LedgerState | None = None
    # The outcome the contract settled when `registered` was registered: both sides' payouts and whether
    # the state was funded then. Deposits are refused during a dispute, so conclusion pays exactly this.
    outcome: tuple[int, int, bool] | None = None
    deadline: int = 0
    concluded: bool = False
    payouts: tuple[int, int] | None = None
    # The honest side registered the latest state and nothing newer was signed since.
    honest_refuted: bool = False
    # Highest version seen on-chain in the current dispute (monotonicity check).
    seen_version: int = 0
    final: LedgerState | None = None

    @property
    def latest(self) -> LedgerState:
        return self.states[-1]

    @property
    def is_eth(self) -> bool:
        return self.params.is_eth

    @property
    def disputed(self) -> bool:
        return self.registered is not None and not self.concluded

    def refusal(self, token_fails: bool) -> str | None:
        """Why a deposit into this channel reverts now, if it does. A token channel is checked after the
        pull, so a failing token's reason comes first."""
        if token_fails and not self.is_eth:
            return TRANSFER_FAILED
        if self.concluded:
            return LEDGER_CONCLUDED
        if self.registered is not None:
            return LEDGER_DISPUTED
        return None

    def funded(self) -> bool:
        """Deposits cover what the latest state says each side funded (the refund rule is off)."""
        return model.funded(self.deposits, self.latest)


@dataclass
class Holding:
    """A participant's wallet balance in one asset and its credit at the adjudicator."""

    balance: int
    credit: int = 0


class LedgerMachine(ChainMachine):
    """The model and every action. Subclassed together with RuleBasedStateMachine by the test."""

    # Ape fixtures, set as class attributes by the test: hypothesis instantiates the machine itself.
    ledger: ClassVar[Any]
    token: ClassVar[Any]
    token_kind: ClassVar[TokenKind]
    domain: ClassVar[Domain]
    # ReentrantToken: its `attempts` when the test armed it, and re-entries refused over all examples.
    reentry_base: ClassVar[int] = 0
    # ETH the ledger holds outside the model's channels (the re-entry probe channel's deposit).
    probe_eth: ClassVar[int] = 0
    reentries_refused: ClassVar[int] = 0

    def __init__(self) -> None:
        # Each example starts from the same chain (ChainMachine snapshots): channels are opened inside it.
        super().__init__()
        self.channels: list[Channel] = []
        # (asset, owner) -> credit the model expects at the adjudicator.
        self.credits: dict[tuple[str, str], int] = {}
        self.blocked: set[str] = set()
        # FalseToken switched to failing.
        self.failing = False
        # Token transfers the ledger made or asked for (each one runs ReentrantToken's hook once).
        self.token_transfers = 0
        self._sigs: dict[bytes, tuple[bytes, bytes]] = {}

    # ------------------------------------------------------------------ chain access (raw, fast)

    def _holdings(self, ch: Channel) -> tuple[int, int, bool]:
        a, b, concluded = self._view(self.ledger.address, _HOLDINGS + ch.params.channel_id, ["uint256"] * 2 + ["bool"])
        return a, b, concluded

    def _dispute(self, ch: Channel) -> tuple[int, int, bytes]:
        version, deadline, locks_hash = self._view(
            self.ledger.address, _DISPUTE + ch.params.channel_id, ["uint64", "uint64", "bytes32"]
        )
        return version, deadline, locks_hash

    def _credit(self, asset: str, owner: str) -> int:
        data = _CREDITS + encode(["address", "address"], [asset, owner])
        return self._view(self.ledger.address, data, ["uint256"])[0]

    def _balance(self, asset: str, owner: str) -> int:
        if asset == ETH:
            return self._eth_balance(owner)
        return self._view(asset, _BALANCE_OF + encode(["address"], [owner]), ["uint256"])[0]

    def _asset(self, ch: Channel) -> str:
        return ch.params.asset

    def _all_views(self) -> tuple[Any, ...]:
        """Everything a refused transaction must leave as it was."""
        views: list[Any] = []
        for ch in self.channels:
            views += [self._holdings(ch), self._dispute(ch)]
        for asset in (ETH, str(self.token.address)):
            views.append(self._balance(asset, str(self.ledger.address)))
            views += [self._credit(asset, str(self.accounts[p].address)) for p in PARTICIPANTS]
        return tuple(views)

    def _signatures(self, state: LedgerState, ch: Channel) -> tuple[Any, Any]:
        """Both participants' compact (EIP-2098) signatures of `state`, as the adjudicator takes them."""
        key = state.struct_hash()
        if key not in self._sigs:
            self._sigs[key] = (
                compact(sign_state(ch.parties[0].private_key, state, self.domain)),
                compact(sign_state(ch.parties[1].private_key, state, self.domain)),
            )
        return self._sigs[key]

    def _signed(self, state: LedgerState, ch: Channel) -> tuple[Any, ...]:
        """The arguments of `register`."""
        return (ch.params.as_tuple(), state.as_tuple(), *self._signatures(state, ch))

    def _signed_final(self, state: LedgerState, ch: Channel) -> tuple[Any, ...]:
        """The arguments of `close`: the final state's fields and both signatures of the whole state."""
        return (ch.params.as_tuple(), state.final_tuple(), *self._signatures(state, ch))

    @staticmethod
    def _fields(state: LedgerState) -> tuple[int, int, int, int, int]:
        """A state's `FinalState` fields, final or not (what `close` would rebuild a final state from)."""
        return (state.version, state.balance_a, state.balance_b, state.funding_a, state.funding_b)

    def _forged(self, state: LedgerState, ch: Channel) -> tuple[Any, ...]:
        """Side A's real signature and the stranger's in place of side B's."""
        return (
            ch.params.as_tuple(),
            state.as_tuple(),
            compact(sign_state(ch.parties[0].private_key, state, self.domain)),
            compact(sign_state(self.accounts["stranger"].private_key, state, self.domain)),
        )

    def _stranger_sig(self, state: LedgerState) -> Any:
        """A well-formed signature by the stranger, for refusals decided before any signature is checked."""
        return compact(sign_state(self.accounts["stranger"].private_key, state, self.domain))

    def _unsigned(self, state: LedgerState, ch: Channel) -> tuple[Any, ...]:
        sig = self._stranger_sig(state)
        return (ch.params.as_tuple(), state.as_tuple(), sig, sig)

    def _unsigned_final(self, state: LedgerState, ch: Channel) -> tuple[Any, ...]:
        sig = self._stranger_sig(state)
        return (ch.params.as_tuple(), self._fields(state), sig, sig)

    def _add_state(self, ch: Channel, state: LedgerState) -> None:
        ch.states.append(state)
        # A newer state exists: whatever the honest side registered is no longer its best claim.
        ch.honest_refuted = False

    # ------------------------------------------------------------------ queries used by preconditions

    def open_channels_idx(self) -> list[int]:
        return [i for i, ch in enumerate(self.channels) if not ch.concluded]

    def disputed_idx(self) -> list[int]:
        return [i for i, ch in enumerate(self.channels) if ch.disputed]

    def in_period_idx(self) -> list[int]:
        return [i for i in self.disputed_idx() if self.next_ts < self.channels[i].deadline]

    def concludable_idx(self) -> list[int]:
        return [i for i in self.disputed_idx() if self.next_ts >= self.channels[i].deadline]

    def missing_idx(self) -> list[int]:
        return [i for i in self.open_channels_idx() if self.channels[i].missing]

    def payable(self) -> list[tuple[int, int]]:
        """(channel, paying side) pairs. The honest side signs updates only on a funded channel."""
        out = []
        for i in self.open_channels_idx():
            ch = self.channels[i]
            if ch.funded():
                out += [(i, side) for side, bal in enumerate((ch.latest.balance_a, ch.latest.balance_b)) if bal]
        return out

    def registrable(self) -> list[tuple[int, str, int]]:
        """(channel, kind, state index) registrations the contract accepts now.

        kind: "first" starts a dispute, "newer" replaces the registered state, "same" re-registers it (no-op),
        "twin" registers another state of the registered version with the same outcome (no-op).
        """
        out: list[tuple[int, str, int]] = []
        for i in self.open_channels_idx():
            ch = self.channels[i]
            if ch.registered is None:
                out += [(i, "first", v) for v in range(len(ch.states))]
            elif self.next_ts < ch.deadline:
                out.append((i, "same", ch.registered.version))
                out += [(i, "newer", v) for v in range(ch.registered.version + 1, len(ch.states))]
                if self._twin(ch) is not None and ch.outcome is not None and not ch.outcome[2]:
                    out.append((i, "twin", ch.registered.version))
        return out

    def invalid_registrations(self) -> list[tuple[int, str, int]]:
        """(channel, kind, state index) registrations the contract refuses now."""
        out: list[tuple[int, str, int]] = []
        for i, ch in enumerate(self.channels):
            if ch.concluded:
                out += [(i, "concluded", v) for v in range(len(ch.states))]
                continue
            out += [(i, "final", len(ch.states) - 1), (i, "other-channel", len(ch.states) - 1)]
            if ch.registered is None:
                out.append((i, "forged", len(ch.states) - 1))
            elif self.next_ts >= ch.deadline:
                out += [(i, "late", v) for v in range(len(ch.states))]
            else:
                out += [(i, "stale", v) for v in range(ch.registered.version)]
                out.append((i, "forged", len(ch.states) - 1))
                if self._twin(ch) is not None and ch.outcome is not None and ch.outcome[2]:
                    out.append((i, "same-version-other-outcome", ch.registered.version))
        return out

    @staticmethod
    def _twin(ch: Channel) -> LedgerState | None:
        """The registered state with both balances swapped (if they differ): the same version, signed by
        both. The honest side never signs two states of one version; this is the contract's rule for
        a repeated version: a no-op if the settled outcome is the same (an unfunded state pays the
        deposits back whatever its balances), "stale version" otherwise (a funded one)."""
        reg = ch.registered
        if reg is None or reg.balance_a == reg.balance_b:
            return None
        return LedgerState(reg.channel, reg.version, reg.balance_b, reg.balance_a, reg.funding_a, reg.funding_b)

    def invalid_conclusions(self) -> list[tuple[int, str, int]]:
        """(channel, kind, state index) conclude/close calls the contract refuses now."""
        out: list[tuple[int, str, int]] = []
        for i, ch in enumerate(self.channels):
            last = len(ch.states) - 1
            if ch.concluded:
                out += [(i, "conclude-concluded", last), (i, "close-concluded", last)]
                continue
            out.append((i, "close-not-final", last))
            if ch.registered is None:
                out.append((i, "no-dispute", last))
                continue
            out += [(i, "close-stale", v) for v in range(ch.registered.version)]
            if self.next_ts < ch.deadline:
                out.append((i, "early", ch.registered.version))
            else:
                out.append((i, "locks-not-registered", ch.registered.version))
        return out

    def open_deadlines(self) -> list[int]:
        return [self.channels[i].deadline for i in self.disputed_idx()]

    # ------------------------------------------------------------------ actions

    def do_open_channels(self, funding: Sequence[tuple[int, int, bool]]) -> None:
        """Open every channel: both sign state 0, the honest side funds, the adversary maybe not."""
        for nonce, ((name, a, b, kind, duration, honest), (honest_amount, adv_amount, adv_funds)) in enumerate(
            zip(CHANNEL_SPECS, funding, strict=True), start=1
        ):
            asset = ETH if kind == "eth" else str(self.token.address)
            parties = (self.accounts[a], self.accounts[b])
            params = ChannelParams(str(parties[0].address), str(parties[1].address), asset, duration, nonce)
            amounts = [0, 0]
            # State 0 accounts for what the deposits credit (a fee token credits less than was sent).
            amounts[honest], amounts[1 - honest] = self._arrives(kind, honest_amount), self._arrives(kind, adv_amount)
            ch = Channel(
                name,
                params,
                parties,
                honest,
                [0, 0],
                0,
                [LedgerState.initial(params.channel_id, amounts[0], amounts[1])],
            )
            self.channels.append(ch)
            self._signatures(ch.latest, ch)
            self._deposit(ch, honest, honest_amount)
            if adv_amount and adv_funds:
                self._deposit(ch, 1 - honest, adv_amount)
            else:
                ch.missing = adv_amount

    def _arrives(self, asset_kind: str, amount: int) -> int:
        return amount if asset_kind == "eth" else self.token_kind.arrives(amount)

    def _push_fails(self, who: str) -> bool:
        """Whether a token transfer to `who` fails now."""
        return (self.token_kind.blocklist and who in self.blocked) or self.failing

    def _deposit(self, ch: Channel, side: int, amount: int) -> int:
        """Deposit `amount`; returns what the channel is credited (what arrived)."""
        sender = ch.parties[side]
        if ch.is_eth:
            self.ledger.deposit(ch.params.channel_id, side, value=amount, sender=sender)
            arrived = amount
        else:
            self.ledger.deposit_token(ch.params.as_tuple(), side, amount, sender=sender)
            arrived = self.token_kind.arrives(amount)
            self.token_transfers += 1
        self.head_ts += 1
        ch.deposits[side] += arrived
        return arrived

    def _deposit_refused(self, ch: Channel, side: int, amount: int, reason: str) -> None:
        sender = self._name(ch.parties[side])
        event(f"deposit refused: {reason}")
        if ch.is_eth:
            self._expect_revert(sender, self.ledger.deposit, (ch.params.channel_id, side), reason, value=amount)
        else:
            self._expect_revert(sender, self.ledger.deposit_token, (ch.params.as_tuple(), side, amount), reason)

    def do_fund_missing(self, ci: int) -> None:
        """The adversary finally deposits its part of the initial state; during a dispute it is too late."""
        ch = self.channels[ci]
        reason = ch.refusal(self.failing)
        if reason:
            self._deposit_refused(ch, 1 - ch.honest, ch.missing, reason)
            return
        self._deposit(ch, 1 - ch.honest, ch.missing)
        ch.missing = 0

    def do_top_up(self, ci: int, side: int, amount: int, sign: bool) -> None:
        """Deposit on-chain, then (if `sign`) both sign the top-up; an unsigned one is paid back. Refused
        once the channel is disputed or concluded (and then nothing changes)."""
        ch = self.channels[ci]
        reason = ch.refusal(self.failing)
        if reason:
            self._deposit_refused(ch, side, amount, reason)
            return
        arrived = self._deposit(ch, side, amount)
        if sign:
            self._add_state(ch, ch.latest.top_up(arrived, side))

    def do_pay(self, ci: int, side: int, amount: int) -> None:
        ch = self.channels[ci]
        self._add_state(ch, ch.latest.pay(amount, side))

    def do_register(self, ci: int, version: int, sender: str) -> None:
        """Register a state the model says the contract accepts, by anyone, adversary included."""
        ch = self.channels[ci]
        state = ch.states[version]
        ts = self.next_ts
        receipt = self.ledger.register(*self._signed(state, ch), sender=self.accounts[sender])
        self.head_ts += 1
        events = [e for e in receipt.events if e.event_name == "Registered"]
        # The outcome is settled now, on the deposits as they are (frozen until the conclusion).
        outcome = (*model.base_payouts(ch.deposits, state), model.funded(ch.deposits, state))
        if ch.registered is None:
            ch.deadline = ts + ch.params.challenge_duration
            ch.registered, ch.outcome = state, outcome
            assert [(e.version, e.deadline) for e in events] == [(version, ch.deadline)]
        elif version == ch.registered.version:
            # Only the registered state itself has this version here: the same outcome, a silent no-op.
            assert state == ch.registered and outcome == ch.outcome
            assert not events, "re-registering the registered state must be a silent no-op"
        else:
            ch.registered, ch.outcome = state, outcome
            # The period is never extended by a later registration.
            assert [(e.version, e.deadline) for e in events] == [(version, ch.deadline)]
        if state == ch.latest and sender == self._name(ch.parties[ch.honest]):
            ch.honest_refuted = True

    def do_register_twin(self, ci: int, sender: str) -> None:
        """Register the registered state's twin (same version, balances swapped) while the registered state
        is unfunded: the settled outcome (each side's deposit back) is the same, so a silent no-op."""
        ch = self.channels[ci]
        twin = self._twin(ch)
        assert twin is not None and ch.outcome is not None and not ch.outcome[2]
        assert (*model.base_payouts(ch.deposits, twin), model.funded(ch.deposits, twin)) == ch.outcome
        event("register: same version, same outcome (unfunded)")
        before = self._all_views()
        receipt = self.ledger.register(*self._signed(twin, ch), sender=self.accounts[sender])
        self.head_ts += 1
        assert [e for e in receipt.events if e.event_name == "Registered"] == [], "a no-op must not log"
        assert self._all_views() == before, "a no-op changed the chain"

    def do_refute(self, ci: int) -> None:
        """The honest side answers a dispute with the latest state both signed."""
        ch = self.channels[ci]
        if ch.registered is None:
            event("honest registration: starts the dispute")
        else:
            event(f"honest registration: {'no-op' if ch.registered == ch.latest else 'refutes'}")
        self.do_register(ci, ch.latest.version, self._name(ch.parties[ch.honest]))
        assert ch.honest_refuted

    def do_register_invalid(self, ci: int, kind: str, version: int, sender: str) -> None:
        ch = self.channels[ci]
        state = ch.states[version]
        if kind == "concluded":
            self._expect_revert(sender, self.ledger.register, self._signed(state, ch), LEDGER_CONCLUDED)
        elif kind == "late":
            self._expect_revert(sender, self.ledger.register, self._signed(state, ch), LEDGER_PERIOD_OVER)
        elif kind == "stale":
            # Refused on the version alone, before any signature is checked: nobody needs to sign it.
            self._expect_revert(sender, self.ledger.register, self._unsigned(state, ch), LEDGER_STALE)
        elif kind == "same-version-other-outcome":
            twin = self._twin(ch)
            assert twin is not None and twin.version == ch.registered.version
            self._expect_revert(sender, self.ledger.register, self._signed(twin, ch), LEDGER_STALE)
        elif kind == "forged":
            # A state the honest side never signed: the next version, the adversary taking everything.
            total = state.funding_a + state.funding_b
            balances = (total, 0) if ch.honest == 1 else (0, total)
            fake = LedgerState(state.channel, ch.latest.version + 1, *balances, state.funding_a, state.funding_b)
            self._expect_revert(sender, self.ledger.register, self._forged(fake, ch), LEDGER_WRONG_SIGNER)
        elif kind == "final":
            self._expect_revert(sender, self.ledger.register, self._unsigned(state.finalized(), ch), CALL_CLOSE)
        elif kind == "other-channel":
            other = self.channels[(ci + 1) % len(self.channels)]
            args = (ch.params.as_tuple(), other.latest.as_tuple(), *self._signatures(other.latest, other))
            self._expect_revert(sender, self.ledger.register, args, LEDGER_OTHER_CHANNEL)
        else:
            raise AssertionError(kind)

    def do_conclude_invalid(self, ci: int, kind: str, version: int, sender: str) -> None:
        ch = self.channels[ci]
        state = ch.states[version]
        params = ch.params.as_tuple()
        conclude, close = self.ledger.conclude, self.ledger.close
        if kind == "conclude-concluded":
            self._expect_revert(sender, conclude, (params,), LEDGER_CONCLUDED)
        elif kind == "close-concluded":
            final = ch.final or state.finalized()
            self._expect_revert(sender, close, self._signed_final(final, ch), LEDGER_CONCLUDED)
        elif kind == "close-not-final":
            # The fields of a non-final state with both its signatures: `close` rebuilds a *final* state
            # from them, which nobody signed. Only a newer version gets as far as the signatures.
            args = (params, self._fields(state), *self._signatures(state, ch))
            stale = ch.registered is not None and state.version <= ch.registered.version
            self._expect_revert(sender, close, args, LEDGER_STALE if stale else LEDGER_WRONG_SIGNER)
        elif kind == "no-dispute":
            self._expect_revert(sender, conclude, (params,), NO_DISPUTE)
        elif kind == "close-stale":
            # Refused on the version alone, before any signature is checked: nobody needs to sign it.
            self._expect_revert(sender, close, self._unsigned_final(state.finalized(), ch), LEDGER_STALE)
        elif kind == "early":
            self._expect_revert(sender, conclude, (params,), LEDGER_PERIOD_NOT_OVER)
        elif kind == "locks-not-registered":
            # The registered state has no locks: a lock taking side A's whole balance is not the registered one.
            other = self.channels[(ci + 1) % len(self.channels)].params.channel_id
            lock = Lock(other, state.balance_a, 0)
            self._expect_revert(sender, conclude, (params, [lock.as_tuple()], []), LOCKS_NOT_REGISTERED)
        else:
            raise AssertionError(kind)

    def edge_idx(self) -> list[int]:
        """Disputed channels whose deadline is far enough ahead to place a transaction right before it."""
        return [i for i in self.disputed_idx() if self.channels[i].deadline - 2 > self.head_ts]

    def do_deadline_edge(self, ci: int, at_deadline: bool, action: str, sender: str) -> None:
        """One transaction exactly at the deadline or one second before it, outcome fixed by the spec.

        At deadline - 1 a registration still counts and conclude is early; at the deadline a
        registration is late and conclude goes through. Done in one step because any other
        transaction in between would move the clock past the edge.
        """
        ch = self.channels[ci]
        assert ch.registered is not None
        self.do_mine_at(ch.deadline - 1 if at_deadline else ch.deadline - 2)
        event(f"deadline edge: {action} {'at' if at_deadline else 'one second before'}")
        if action == "register" and at_deadline:
            self.do_register_invalid(ci, "late", ch.latest.version, sender)
        elif action == "register":
            self.do_register(ci, ch.latest.version, sender)
        elif at_deadline:
            self.do_conclude(ci, sender)
        else:
            self.do_conclude_invalid(ci, "early", ch.registered.version, sender)

    def do_close(self, ci: int, sender: str) -> None:
        """Cooperative close: both sign the latest state as final; allowed during a dispute too."""
        ch = self.channels[ci]
        final = ch.latest.finalized()
        ch.final = final
        expected = model.base_payouts(ch.deposits, final)
        self._settle(
            ch,
            final,
            expected,
            sender,
            lambda: self.ledger.close(*self._signed_final(final, ch), sender=self.accounts[sender]),
        )

    def do_request_close(self, ci: int, sender: str, cooperates: bool) -> None:
        """Close if the adversary co-signs the final state; otherwise the honest side disputes."""
        ch = self.channels[ci]
        if cooperates:
            self.do_close(ci, sender)
        elif ch.registered is None or self.next_ts < ch.deadline:
            event("close refused: honest side registers the latest state")
            self.do_refute(ci)
        else:
            event("close refused after the deadline: the registered state will be paid")

    def do_conclude(self, ci: int, sender: str) -> None:
        """Conclude by the outcome settled at registration; the registered state has no locks, so conclude
        takes nothing but the parameters."""
        ch = self.channels[ci]
        state, outcome = ch.registered, ch.outcome
        assert state is not None and outcome is not None
        if ch.honest_refuted:
            assert state == ch.latest, "the honest side's refutation was displaced"
        # Deposits were frozen by the dispute: the settled outcome is still what the state says now.
        assert outcome == (*model.base_payouts(ch.deposits, state), model.funded(ch.deposits, state))
        self._settle(
            ch,
            state,
            outcome[:2],
            sender,
            lambda: self.ledger.conclude(ch.params.as_tuple(), sender=self.accounts[sender]),
        )

    def credit_of(self, owner: str, asset_kind: str) -> int:
        asset = ETH if asset_kind == "eth" else str(self.token.address)
        return self.credits.get((asset, str(self.accounts[owner].address)), 0)

    def do_withdraw(self, owner: str, asset_kind: str, receiver: str) -> None:
        asset = ETH if asset_kind == "eth" else str(self.token.address)
        owner_addr = str(self.accounts[owner].address)
        receiver_addr = str(self.accounts[receiver].address)
        credit = self.credits.get((asset, owner_addr), 0)
        args = (asset, receiver_addr)
        fails = asset != ETH and self._push_fails(receiver)
        event(f"withdraw: {'credit' if credit else 'none'}, {'transfer fails' if fails else ''}")
        if credit == 0:
            self._expect_revert(owner, self.ledger.withdraw, args, NOTHING_TO_WITHDRAW)
        elif fails and self.failing:
            self._expect_revert(owner, self.ledger.withdraw, args, TRANSFER_FAILED)
        elif fails:
            # The token's own reason comes back through the adjudicator's extcall.
            self._expect_revert(owner, self.ledger.withdraw, args, "token: recipient blocked")
        else:
            before = self._balance(asset, receiver_addr)
            receipt = self.ledger.withdraw(asset, receiver_addr, sender=self.accounts[owner])
            self.head_ts += 1
            if asset == ETH:
                received = credit - (receipt.gas_used * receipt.gas_price if owner == receiver else 0)
            else:
                received = self.token_kind.arrives(credit)
                self.token_transfers += 1
            assert self._balance(asset, receiver_addr) - before == received
            self.credits[(asset, owner_addr)] = 0

    def do_set_blocked(self, who: str, is_blocked: bool) -> None:
        self.token.set_blocked(self.accounts[who].address, is_blocked, sender=self.accounts["deployer"])
        self.head_ts += 1
        if is_blocked:
            self.blocked.add(who)
        else:
            self.blocked.discard(who)

    def do_set_failing(self, fail: bool) -> None:
        self.token.set_fail(fail, sender=self.accounts["deployer"])
        self.head_ts += 1
        self.failing = fail

    # ------------------------------------------------------------------ conclusion

    def _name(self, account: Any) -> str:
        return next(name for name, acct in self.accounts.items() if acct.address == account.address)

    def _settle(self, ch: Channel, state: LedgerState, expected: tuple[int, int], sender: str, send: Any) -> None:
        """Conclude by `state` paying `expected`; check the event, what each side received, and the honest
        side's share."""
        asset = self._asset(ch)
        addrs = [str(p.address) for p in ch.parties]
        before = [Holding(self._balance(asset, a), self._credit(asset, a)) for a in addrs]
        # Funds are conserved: the payouts are exactly the channel's deposits.
        assert sum(expected) == sum(ch.deposits), f"{ch.name}: payouts {expected}, deposits {ch.deposits}"
        receipt = send()
        self.head_ts += 1
        events = concluded_payouts(self.ledger, receipt)
        assert events == [(ch.params.channel_id, state.version, *expected)], f"Concluded {events}, model {expected}"
        for side, addr in enumerate(addrs):
            after = Holding(self._balance(asset, addr), self._credit(asset, addr))
            # A participant sending the conclusion pays its fee; everything else it received is payout.
            fee = receipt.gas_used * receipt.gas_price if asset == ETH and self._name(ch.parties[side]) == sender else 0
            pushed_failed = asset != ETH and self._push_fails(self._name(ch.parties[side])) and expected[side] > 0
            credited = expected[side] if pushed_failed else 0
            assert after.credit - before[side].credit == credited
            # The ledger is debited the whole payout; a fee token delivers less of it.
            paid = expected[side] - credited
            received = paid if asset == ETH else self.token_kind.arrives(paid)
            assert after.balance - before[side].balance == received - fee
            if asset != ETH and expected[side]:
                self.token_transfers += 1
            if credited:
                self.credits[(asset, addr)] = self.credits.get((asset, addr), 0) + credited
        funded = model.funded(ch.deposits, state)
        # Coverage, shown by --hypothesis-show-statistics.
        how = "close" if state.is_final else ("conclude latest" if state == ch.latest else "conclude stale")
        event(f"settled: {how}, {'funded' if funded else 'refund'}, {'refuted' if ch.honest_refuted else ''}")
        if not ch.is_eth and any(expected[s] and self._push_fails(self._name(p)) for s, p in enumerate(ch.parties)):
            event("settled: token payout credited")
        ch.concluded, ch.payouts, ch.deposits = True, expected, [0, 0]
        ch.registered, ch.outcome, ch.deadline, ch.seen_version = None, None, 0, 0

        honest = ch.honest
        latest_balance = (ch.latest.balance_a, ch.latest.balance_b)[honest]
        if state.is_final or ch.honest_refuted or state == ch.latest:
            assert expected[honest] >= latest_balance, (
                f"{ch.name}: honest side got {expected[honest]} < {latest_balance} of the latest state"
            )
        # Nothing is paid twice.
        self._expect_revert("deployer", self.ledger.conclude, (ch.params.as_tuple(),), LEDGER_CONCLUDED)
        final = state if state.is_final else ch.latest.finalized()
        self._expect_revert("deployer", self.ledger.close, self._signed_final(final, ch), LEDGER_CONCLUDED)

    # ------------------------------------------------------------------ invariants

    def check_asset_balances(self) -> None:
        for asset, is_eth in ((ETH, True), (str(self.token.address), False)):
            held = sum(sum(ch.deposits) for ch in self.channels if ch.is_eth == is_eth and not ch.concluded)
            owed = sum(v for (a, _), v in self.credits.items() if a == asset)
            outside = self.probe_eth if is_eth else 0
            assert self._balance(asset, str(self.ledger.address)) == held + owed + outside, f"{asset} holdings drifted"

    def check_views(self) -> None:
        for ch in self.channels:
            if ch.concluded:
                assert self._holdings(ch) == (0, 0, True), ch.name
            else:
                assert self._holdings(ch) == (ch.deposits[0], ch.deposits[1], False), ch.name
            reg = ch.registered
            # The third value is the hash of the registered locks; these states have none.
            expected = (reg.version, ch.deadline, ZERO_HASH) if reg else (0, 0, ZERO_HASH)
            assert self._dispute(ch) == expected, ch.name
        for asset in (ETH, str(self.token.address)):
            for p in PARTICIPANTS:
                addr = str(self.accounts[p].address)
                assert self._credit(asset, addr) == self.credits.get((asset, addr), 0), (asset, p)

    def check_reentry(self) -> None:
        """ReentrantToken: every transfer tried to re-enter the ledger, and no attempt got through."""
        token = str(self.token.address)
        attempts = self._view(token, _ATTEMPTS, ["uint256"])[0] - self.reentry_base
        assert attempts == self.token_transfers, f"{attempts} re-entry attempts, {self.token_transfers} transfers"
        assert self._view(token, _LAST_SUCCESS, ["bool"]) == (False,), "a re-entrant call into the ledger succeeded"
        if attempts:
            # Refused by the reentrancy lock, which reverts without data (any check of the ledger has a reason).
            assert self._view(token, _LAST_RESPONSE, ["bytes"]) == (b"",), "re-entry refused by something else"
        type(self).reentries_refused = max(self.reentries_refused, attempts)

    def check_versions_monotone(self) -> None:
        """Read from the chain alone: within one dispute the registered version never goes down."""
        for ch in self.channels:
            version, deadline, _ = self._dispute(ch)
            if deadline == 0:
                ch.seen_version = 0
                continue
            assert version >= ch.seen_version, f"{ch.name}: registered version fell to {version}"
            ch.seen_version = version
