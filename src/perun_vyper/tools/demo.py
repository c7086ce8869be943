"""The hub network demo behind ``ape run demo``: deploy, open, pay, close, then a dispute with the hub
offline and a stale-state attack answered by the watchtower. Every balance is checked to the wei.

Roles (Ape test accounts): 0 deploys, 1 is Ingrid (the hub), 2 .. N+1 are the users, 9 the watchtower.
Each party keeps its own SQLite store in the demo directory, as separate processes would.

The checks compare on-chain ETH balances before and after each phase with what the protocol promises:
a user ends with its deposit plus what it received minus what it paid, minus exactly the fees of the
transactions it sent; Ingrid ends with her deposits back minus her fees (she neither gains nor loses
through a virtual channel).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..client import Hub, LedgerChannel, VirtualChannel, close_virtual_channel, exchange, open_virtual_channel, pay
from ..core import calls
from ..core.channel import ChannelParams
from ..core.codec import Domain
from ..core.constants import DOMAIN_VERSION, LEDGER_DOMAIN_NAME, MIN_CHALLENGE_DURATION, VIRTUAL_DOMAIN_NAME
from ..core.state import LedgerState
from ..core.virtual import VirtualParams
from ..errors import InvalidParams
from ..store import Store
from ..watchtower import Watchtower
from ..watchtower.actions import Concluded, Refuted

ETHER = 10**18
ETH_ADDRESS = "0x" + "00" * 20
DEPOSIT = 10 * ETHER  # each side of each ledger channel
VIRTUAL_FUNDING = ETHER  # each side of each virtual channel
MAX_PAYMENT = ETHER // 1000
INGRID, FIRST_USER, WATCHER = 1, 2, 9
MAX_USERS = WATCHER - FIRST_USER
NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace"]


@dataclass
class Phase:
    """One phase of the demo: its on-chain transactions and their gas."""

    name: str
    receipts: list[Any] = field(default_factory=list)
    note: str = ""

    @property
    def gas(self) -> int:
        return sum(int(r.gas_used) for r in self.receipts)


@dataclass
class Check:
    what: str
    expected: int
    actual: int

    @property
    def ok(self) -> bool:
        return self.expected == self.actual


@dataclass
class Result:
    phases: list[Phase] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    payments: int = 0
    payment_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def payments_per_second(self) -> float:
        return self.payments / self.payment_seconds if self.payment_seconds else 0.0


class Demo:
    """One run of the demo on a connected chain (Ape's ``chain``, ``project``, test ``accounts``)."""

    def __init__(
        self,
        project: Any,
        chain: Any,
        accounts: Any,
        directory: Path,
        users: int = 3,
        payments: int = 1000,
        seed: int = 1,
        echo: Callable[[str], None] = print,
        progress: Callable[[Iterable[int], int], Any] | None = None,
    ) -> None:
        if not 2 <= users <= MAX_USERS:
            raise InvalidParams(
                f"--users must be between 2 and {MAX_USERS} (test accounts {FIRST_USER}..{WATCHER - 1})"
            )
        if payments < 0:
            raise InvalidParams("--payments must be zero or more")
        self.project, self.chain = project, chain
        self.deployer, self.ingrid_account, self.watcher_account = accounts[0], accounts[INGRID], accounts[WATCHER]
        self.user_accounts = [accounts[FIRST_USER + i] for i in range(users)]
        self.names = NAMES[:users]
        self.directory = directory
        self.payment_count = payments
        self.random = random.Random(seed)
        self.echo = echo
        self.progress = progress
        self.result = Result()
        self.nonce = 0

    # --- helpers --------------------------------------------------------------------------------------

    def _phase(self, name: str) -> Phase:
        phase = Phase(name)
        self.result.phases.append(phase)
        self.echo(f"== {name}")
        return phase

    def _balance(self, account: Any) -> int:
        return int(self.chain.provider.get_balance(account.address))

    def _fees(self, phase: Phase, account: Any) -> int:
        sender = str(account.address).lower()
        return sum(int(r.total_fees_paid) for r in phase.receipts if str(r.sender).lower() == sender)

    def _check(self, what: str, expected: int, actual: int) -> None:
        check = Check(what, expected, actual)
        self.result.checks.append(check)
        if not check.ok:
            self.echo(f"   CHECK FAILED: {what}: expected {expected}, got {actual}")

    def _store(self, name: str) -> Store:
        return Store(self.directory / f"{name}.sqlite")

    def _ledger_params(self, user: Any) -> ChannelParams:
        self.nonce += 1
        return ChannelParams(str(user.address), str(self.ingrid_account.address), ETH_ADDRESS, 3600, self.nonce)

    def _open_ledger(self, phase: Phase, user: Any, name: str, store: Store) -> tuple[LedgerChannel, LedgerChannel]:
        """A funded ledger channel between ``user`` (side A) and Ingrid (side B): both sign version 0,
        both deposit, both confirm the deposits on-chain."""
        params = self._ledger_params(user)
        mine = LedgerChannel.open(
            params, self.domain, user.private_key, store, DEPOSIT, DEPOSIT, adjudicator=self.ledger
        )
        hers = self.hub.open_channel(params, self.domain, DEPOSIT, DEPOSIT)
        exchange(mine, hers)
        phase.receipts.append(mine.deposit(DEPOSIT, sender=user))
        phase.receipts.append(hers.deposit(DEPOSIT, sender=self.ingrid_account))
        mine.confirm_funding()
        hers.confirm_funding()
        funded = f"{DEPOSIT // ETHER} + {DEPOSIT // ETHER} ETH"
        self.echo(f"   {name}-ingrid ledger channel 0x{params.channel_id.hex()[:16]}.. funded {funded}")
        return mine, hers

    def _virtual_params(self, left: LedgerChannel, right: LedgerChannel) -> VirtualParams:
        self.nonce += 1
        return VirtualParams(
            left.address,
            right.address,
            self.hub.address,
            left.channel_id,
            right.channel_id,
            VIRTUAL_FUNDING,
            VIRTUAL_FUNDING,
            int(self.chain.pending_timestamp) + 3600,
            MIN_CHALLENGE_DURATION,
            self.nonce,
            asset=left.params.asset,
            ledger_adjudicator=str(self.ledger.address),
            chain_id=self.chain.chain_id,
        )

    def _close_ledger(self, phase: Phase, mine: LedgerChannel, hers: LedgerChannel, sender: Any) -> None:
        exchange(mine, hers, mine.propose_final())
        phase.receipts.append(mine.close(sender=sender))

    # --- phases ---------------------------------------------------------------------------------------

    def run(self) -> Result:
        self.deploy()
        self.cooperative()
        self.hub_offline()
        self.stale_state_attack()
        return self.result

    def deploy(self) -> None:
        phase = self._phase("deploy the adjudicators")
        self.virtual = self.deployer.deploy(self.project.VirtualAdjudicator)
        self.ledger = self.deployer.deploy(self.project.LedgerAdjudicator, self.virtual)
        phase.receipts += [self.chain.get_receipt(c.txn_hash) for c in (self.virtual, self.ledger)]
        chain_id = self.chain.chain_id
        self.domain = Domain(LEDGER_DOMAIN_NAME, DOMAIN_VERSION, chain_id, str(self.ledger.address))
        self.virtual_domain = Domain(VIRTUAL_DOMAIN_NAME, DOMAIN_VERSION, chain_id, str(self.virtual.address))
        self.hub = Hub(
            self.ingrid_account.private_key,
            self._store("ingrid"),
            virtual_domain=self.virtual_domain,
            max_validity=86_400,
            clock=lambda: int(self.chain.pending_timestamp),
            adjudicator=self.ledger,
        )
        self.stores = {name: self._store(name) for name in self.names}
        self.echo(f"   VirtualAdjudicator {self.virtual.address}, LedgerAdjudicator {self.ledger.address}")

    def cooperative(self) -> None:
        """Every user opens a ledger channel with Ingrid; virtual channels between neighbours on a ring;
        M payments; everything closed cooperatively."""
        accounts = [self.ingrid_account, *self.user_accounts]
        before = {str(a.address): self._balance(a) for a in accounts}
        opening = self._phase(f"open {len(self.names)} ledger channels with Ingrid")
        ledgers = [
            self._open_ledger(opening, user, name, self.stores[name])
            for user, name in zip(self.user_accounts, self.names, strict=True)
        ]

        virtual_phase = self._phase("open virtual channels (off-chain)")
        pairs = [(0, 1)] if len(self.names) == 2 else [(i, (i + 1) % len(self.names)) for i in range(len(self.names))]
        virtuals: list[tuple[int, int, VirtualChannel, VirtualChannel]] = []
        for a, b in pairs:
            params = self._virtual_params(ledgers[a][0], ledgers[b][0])
            va, vb = open_virtual_channel(
                self.hub, ledgers[a][0], ledgers[b][0], params, self.virtual_domain, adjudicator=self.virtual
            )
            virtuals.append((a, b, va, vb))
            self.echo(f"   {self.names[a]} <-> {self.names[b]} over Ingrid, {VIRTUAL_FUNDING // ETHER} + 1 ETH locked")
        virtual_phase.note = f"{len(virtuals)} virtual channels, no transaction"

        paying = self._phase(f"{self.payment_count} off-chain payments")
        net = [0] * len(self.names)
        started = time.perf_counter()
        steps = range(self.payment_count)
        iterator = self.progress(steps, self.payment_count) if self.progress else None
        for _ in iterator if iterator is not None else steps:
            a, b, va, vb = virtuals[self.random.randrange(len(virtuals))]
            amount = self.random.randint(1, MAX_PAYMENT)
            if self.random.random() < 0.5:
                pay(va, vb, amount)
                net[a], net[b] = net[a] - amount, net[b] + amount
            else:
                pay(vb, va, amount)
                net[a], net[b] = net[a] + amount, net[b] - amount
        self.result.payment_seconds = time.perf_counter() - started
        self.result.payments = self.payment_count
        paying.note = f"{self.result.payments_per_second:,.0f} payments/s, no transaction"

        closing = self._phase("close everything cooperatively")
        for _, _, va, vb in virtuals:
            close_virtual_channel(self.hub, va, vb)
        for (mine, hers), user in zip(ledgers, self.user_accounts, strict=True):
            self._close_ledger(closing, mine, hers, user)
        closing.note = f"{len(virtuals)} virtual channels released off-chain, {len(ledgers)} ledger closes"

        self._check_restart(ledgers, virtuals)
        parties = [("ingrid", self.ingrid_account, 0)] + [
            (n, u, net[i]) for i, (n, u) in enumerate(zip(self.names, self.user_accounts, strict=True))
        ]
        for name, account, gain in parties:
            fees = self._fees(opening, account) + self._fees(closing, account)
            self._check(
                f"cooperative: {name} ends with deposits back {'+' if gain >= 0 else '-'} "
                f"{abs(gain)} wei of payments - fees",
                before[str(account.address)] + gain - fees,
                self._balance(account),
            )

    def _check_restart(
        self,
        ledgers: list[tuple[LedgerChannel, LedgerChannel]],
        virtuals: list[tuple[int, int, VirtualChannel, VirtualChannel]],
    ) -> None:
        """Every channel, rebuilt from its owner's store file alone (as after a crash), holds the same
        latest fully signed state as the party that kept running."""
        live = [channel for pair in ledgers for channel in pair] + [ch for *_, va, vb in virtuals for ch in (va, vb)]
        same = 0
        for channel in live:
            reopened = Store(channel.store.path)
            try:
                same += reopened.latest(channel.channel_id) == channel.latest
            finally:
                reopened.close()
        self._check(
            f"restart: {len(live)} channels read back from the store files equal the live ones", len(live), same
        )

    def hub_offline(self) -> None:
        """Alice and Bob pay over a virtual channel; Ingrid goes offline; each gets their virtual balance
        on-chain alone (register the virtual state, register the ledger state, conclude)."""
        phase = self._phase("dispute with Ingrid offline")
        alice, bob = self.user_accounts[0], self.user_accounts[1]
        parties = [(self.names[0], alice), (self.names[1], bob), ("ingrid", self.ingrid_account)]
        before = {name: self._balance(account) for name, account in parties}
        left, _ = self._open_ledger(phase, alice, self.names[0], self.stores[self.names[0]])
        right, _ = self._open_ledger(phase, bob, self.names[1], self.stores[self.names[1]])
        params = self._virtual_params(left, right)
        va, vb = open_virtual_channel(self.hub, left, right, params, self.virtual_domain, adjudicator=self.virtual)
        moved = 0
        for i in range(10):
            amount = (i + 1) * ETHER // 100
            pay(va, vb, amount)
            moved += amount
        self.echo(f"   {self.names[0]} paid {self.names[1]} {moved} wei in 10 payments; Ingrid goes offline")
        phase.receipts.append(va.register(sender=alice))
        phase.receipts.append(left.register(sender=alice))
        phase.receipts.append(right.register(sender=bob))
        deadline = max(left.dispute()[1], right.dispute()[1], int(self.virtual.record(params.channel_id)[1]))
        self.chain.mine(timestamp=deadline + 1)
        phase.receipts.append(left.conclude(sender=alice))
        phase.receipts.append(right.conclude(sender=bob))
        phase.note = "virtual register, 2 ledger registers, 2 concludes"
        gains = {self.names[0]: -moved, self.names[1]: moved, "ingrid": 0}
        for name, account in parties:
            self._check(
                f"hub offline: {name} ends with {gains[name]:+} wei of virtual payments - fees",
                before[name] + gains[name] - self._fees(phase, account),
                self._balance(account),
            )

    def stale_state_attack(self) -> None:
        """Ingrid pays the last user three times, then registers the oldest state, which gave her more;
        the user is offline; the watchtower answers from the user's store and concludes."""
        phase = self._phase("stale-state attack answered by the watchtower")
        name, user = self.names[-1], self.user_accounts[-1]
        before = {name: self._balance(user), "ingrid": self._balance(self.ingrid_account)}
        mine, hers = self._open_ledger(phase, user, name, self.stores[name])
        first = pay(hers, mine, ETHER)
        for _ in range(2):
            pay(hers, mine, ETHER)
        latest = mine.state
        assert isinstance(latest, LedgerState) and isinstance(first.state, LedgerState)
        stale = first.state
        user_nonce = user.nonce
        tower = Watchtower(self.stores[name], self.ledger, self.virtual, self.watcher_account)
        tower.poll()  # catch up with the store's history before the attack
        attack = self.ledger.register(*calls.register(mine.params, first), sender=self.ingrid_account)
        phase.receipts.append(attack)
        self.echo(
            f"   Ingrid registers version {stale.version} (she holds {stale.balance_b} wei there); {name} is offline"
        )
        actions = tower.poll()
        for action in actions:
            self.echo(f"   watchtower: {action}")
        refuted = [a for a in actions if isinstance(a, Refuted)]
        self.chain.mine(timestamp=mine.dispute()[1] + 1)
        concluded = [a for a in tower.poll() if isinstance(a, Concluded)]
        for action in refuted + concluded:
            phase.receipts.append(self.chain.get_receipt(action.tx))
        if concluded:
            self.echo(f"   watchtower: {concluded[0]}")
        phase.note = "stale register, watchtower refute and conclude"
        self._check("attack: the watchtower refuted once", 1, len(refuted))
        self._check("attack: the watchtower concluded once", 1, len(concluded))
        self._check(f"attack: {name} sent no transaction", user_nonce, user.nonce)
        self._check(
            f"attack: {name} ends with the latest balance ({latest.balance_a} wei) - the deposit's fee",
            before[name] - DEPOSIT + latest.balance_a - self._fees(phase, user),
            self._balance(user),
        )
        self._check(
            f"attack: ingrid ends with the latest balance ({latest.balance_b} wei) - her fees",
            before["ingrid"] - DEPOSIT + latest.balance_b - self._fees(phase, self.ingrid_account),
            self._balance(self.ingrid_account),
        )


def summary_lines(result: Result) -> list[str]:
    """The summary table: phases with transactions and gas, throughput, checks."""
    lines = ["", f"{'phase':52} {'txs':>4} {'gas':>12}  notes", "-" * 100]
    for phase in result.phases:
        lines.append(f"{phase.name:52} {len(phase.receipts):>4} {phase.gas:>12,}  {phase.note}")
    lines.append("-" * 100)
    total_txs = sum(len(p.receipts) for p in result.phases)
    lines.append(f"{'total':52} {total_txs:>4} {sum(p.gas for p in result.phases):>12,}")
    lines.append("")
    lines.append(
        f"off-chain payments: {result.payments:,} in {result.payment_seconds:.2f} s = "
        f"{result.payments_per_second:,.0f} payments/s (sign, verify, persist on both sides)"
    )
    lines.append("")
    for check in result.checks:
        lines.append(f"[{'ok' if check.ok else 'FAILED'}] {check.what}")
    passed = sum(check.ok for check in result.checks)
    lines.append("")
    lines.append(f"{passed}/{len(result.checks)} checks passed" + ("" if result.ok else " -- DEMO FAILED"))
    return lines
