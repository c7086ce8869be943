"""The network phases of ``ape run demo``, each user a ``HubClient`` talking to the hub process over
WebSocket: open and fund ledger channels, virtual channels on a ring, payments, cooperative closes; a
dispute with the hub offline (SIGSTOP); a stale registration the hub's watchtower refutes.

Every balance is checked to the wei against the chain: a user ends with its deposit plus what it received
minus what it paid, minus the fees of the transactions it sent; Ingrid (the hub process, which sends her
deposits, the cooperative closes and her watchtower's transactions) ends with her deposits back minus the
fees of the transactions her account sent in the phase, found on-chain by sender.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..client import LedgerChannel, VirtualChannel
from ..core import calls
from ..core.codec import hexstr
from ..core.display import amount, hex_of, plural
from ..core.state import LedgerState
from ..core.virtual import VirtualParams
from ..errors import HubUnavailable
from ..node import HubClient
from ..store import Store
from .demo_hub import HubProcess, Pacer
from .demo_report import Check, Phase, Result

ETHER = 10**18
DEPOSIT = 10 * ETHER  # each side of each ledger channel
VIRTUAL_FUNDING = ETHER  # each side of each virtual channel
MAX_PAYMENT = ETHER // 1000
WAIT = 30.0  # seconds: the longest the demo waits for the hub or a wallet before it gives up


def accept_demo_channels(params: VirtualParams) -> bool:
    """The users' policy for virtual channels proposed to them: the demo's, 1 ETH from each side."""
    return params.funding_alice == VIRTUAL_FUNDING and params.funding_bob == VIRTUAL_FUNDING


class Phases:
    """The phases; ``Demo`` sets up what they use (the chain, the contracts, the hub process, the users)."""

    chain: Any
    ledger: Any
    virtual: Any
    ingrid_account: Any
    user_accounts: list[Any]
    names: list[str]
    clients: list[HubClient]
    hub: HubProcess
    hub_store_path: Any
    result: Result
    echo: Callable[[str], None]
    progress: Callable[[Iterable[int], int], Any] | None
    payment_count: int
    watch_interval: float

    def _pick(self, count: int) -> int: ...

    def _amount(self) -> int: ...

    # --- helpers --------------------------------------------------------------------------------------

    def _phase(self, name: str) -> Phase:
        self.hub.drain()
        phase = Phase(name, start_block=int(self.chain.blocks.head.number))
        self.result.phases.append(phase)
        self.echo(f"== {name}")
        return phase

    def _finish(self, phase: Phase) -> None:
        """The phase's transactions: every one mined since it began, whoever sent it (the hub's too)."""
        self.hub.drain()
        web3 = self.chain.provider.web3
        for number in range(phase.start_block + 1, int(self.chain.blocks.head.number) + 1):
            for tx in web3.eth.get_block(number)["transactions"]:
                phase.receipts.append(self.chain.get_receipt(hex_of(bytes(tx))))

    def _balance(self, account: Any) -> int:
        return int(self.chain.provider.get_balance(account.address))

    def _check(self, what: str, expected: int, actual: int) -> None:
        check = Check(what, expected, actual)
        self.result.checks.append(check)
        if not check.ok:
            self.echo(f"   CHECK FAILED: {what}: expected {expected}, got {actual}")

    async def _open_ledger(self, user: int) -> LedgerChannel:
        """A ledger channel of ``user`` (side A) with the hub: both sign version 0 over the API, the user
        deposits on-chain, ``ledger.funded`` makes the hub deposit its side."""
        client, account, name = self.clients[user], self.user_accounts[user], self.names[user]
        channel = await client.open_channel(DEPOSIT, DEPOSIT)
        client.deposit(channel.channel_id, DEPOSIT, account)
        funded = await client.funded(channel.channel_id)
        by_hub = f"the hub's deposit {hex_of(funded.deposit_tx)}" if funded.deposit_tx else "no deposit by the hub"
        self.echo(
            f"   {name}-ingrid ledger channel {hexstr(channel.channel_id)} funded with {amount(DEPOSIT)} "
            f"from each side ({by_hub})"
        )
        return channel

    async def _open_virtual(self, alice: int, bob: int) -> VirtualChannel:
        channel = await self.clients[alice].open_virtual(self.clients[bob].address, VIRTUAL_FUNDING, VIRTUAL_FUNDING)
        self.echo(
            f"   {self.names[alice]} <-> {self.names[bob]} over Ingrid, {amount(VIRTUAL_FUNDING)} locked from each side"
        )
        return channel

    async def _released(self, user: int, virtual_id: bytes) -> None:
        """Wait until the user's ledger channel no longer holds the lock of ``virtual_id`` (its wallet sends
        its release by itself once it countersigned the final virtual state)."""
        ledger = self.clients[user].virtual(virtual_id).ledger
        end = time.monotonic() + WAIT
        while ledger.pending() is not None or any(
            lock.channel == virtual_id for lock in getattr(ledger.state, "locks", ())
        ):
            if time.monotonic() > end:
                raise HubUnavailable(f"{self.names[user]}'s release of a virtual channel was not done within {WAIT:g}s")
            await asyncio.sleep(0.01)

    async def _hub_line(self, start: str, channel: bytes) -> str:
        """The hub's next output line starting with ``start`` about ``channel`` (its watchtower's log)."""
        channel_hex = hexstr(channel)
        return await asyncio.to_thread(
            self.hub.until, lambda line: line.startswith(start) and channel_hex in line, start.strip(), WAIT
        )

    # --- phases ---------------------------------------------------------------------------------------

    async def cooperative(self) -> None:
        """Every user opens a ledger channel with Ingrid; virtual channels between neighbours on a ring;
        M payments; everything closed cooperatively through the hub."""
        users = range(len(self.names))
        accounts = [self.ingrid_account, *self.user_accounts]
        before = {str(a.address): self._balance(a) for a in accounts}
        opening = self._phase(f"open {len(self.names)} ledger channels with Ingrid")
        ledgers = [await self._open_ledger(i) for i in users]
        self._finish(opening)

        virtual_phase = self._phase("open virtual channels (off-chain)")
        pairs = [(0, 1)] if len(self.names) == 2 else [(i, (i + 1) % len(self.names)) for i in users]
        virtuals = [(a, b, (await self._open_virtual(a, b)).channel_id) for a, b in pairs]
        self._finish(virtual_phase)
        virtual_phase.note = f"{plural(len(virtuals), 'virtual channel')}, no transaction"

        paying = self._phase(f"{self.payment_count} off-chain payments")
        net = [0] * len(self.names)
        limits = self.clients[0].info.limits if self.clients[0].info else None
        pacer = Pacer(limits.rate_per_second, limits.burst, len(self.names)) if limits else None
        started = time.perf_counter()
        steps = range(self.payment_count)
        iterator = self.progress(steps, self.payment_count) if self.progress else None
        for _ in iterator if iterator is not None else steps:
            a, b, virtual_id = virtuals[self._pick(len(virtuals))]
            value = self._amount()
            payer, payee = (a, b) if self._pick(2) == 0 else (b, a)
            if pacer is not None:
                await pacer.take(payer, payee)
            await self.clients[payer].pay_virtual(virtual_id, value)
            net[payer], net[payee] = net[payer] - value, net[payee] + value
        self.result.payment_seconds = time.perf_counter() - started
        self.result.payments = self.payment_count
        self._finish(paying)
        self.result.paced_seconds = pacer.waited if pacer is not None else 0.0
        paying.note = f"{self.result.payments_per_second:,.0f} payments/s over WebSocket, no transaction"

        closing = self._phase("close everything cooperatively")
        for a, b, virtual_id in virtuals:
            await self.clients[a].close_virtual(virtual_id)
            await self._released(b, virtual_id)
        for user, channel in zip(users, ledgers, strict=True):
            await self.clients[user].finalize(channel.channel_id)
            await self.clients[user].close_channel(channel.channel_id)  # the hub sends close
        self._finish(closing)
        closing.note = (
            f"{plural(len(virtuals), 'virtual channel')} released off-chain, "
            f"{plural(len(ledgers), 'ledger close')} by the hub"
        )

        self._check_restart(ledgers, [(a, b, v) for a, b, v in virtuals])
        phases = (opening, virtual_phase, paying, closing)
        parties = [("ingrid", self.ingrid_account, 0)] + [(self.names[i], self.user_accounts[i], net[i]) for i in users]
        for name, account, gain in parties:
            fees = sum(phase.fees(str(account.address)) for phase in phases)
            self._check(
                f"cooperative: {name} ends with its deposits back {'plus' if gain >= 0 else 'minus'} "
                f"{amount(abs(gain))} of payments, minus its fees",
                before[str(account.address)] + gain - fees,
                self._balance(account),
            )

    def _check_restart(self, ledgers: list[LedgerChannel], virtuals: list[tuple[int, int, bytes]]) -> None:
        """Every channel, read back from the store files alone (as after a crash: each wallet's, and the
        hub's for the ledger channels), holds the same latest fully signed state as the live wallet."""
        expected: list[tuple[Any, Any]] = []  # (store path, live channel)
        hub_store = self.hub_store_path
        for user, ledger in enumerate(ledgers):
            expected += [(self.clients[user].store.path, ledger), (hub_store, ledger)]
        for a, b, virtual_id in virtuals:
            for user in (a, b):
                expected.append((self.clients[user].store.path, self.clients[user].virtual(virtual_id)))
        same = 0
        for path, channel in expected:
            reopened = Store(path)
            try:
                same += reopened.latest(channel.channel_id) == channel.latest
            finally:
                reopened.close()
        self._check(
            f"restart: {len(expected)} channel states read back from the store files (the wallets' and the "
            "hub's) equal the live ones",
            len(expected),
            same,
        )

    async def hub_offline(self) -> None:
        """Alice and Bob pay over a virtual channel; the hub process is stopped (SIGSTOP); each gets their
        virtual balance on-chain alone (register the virtual state, register the ledger state, conclude);
        then the hub continues (SIGCONT) and its watchtower finds nothing to answer."""
        phase = self._phase("dispute with Ingrid offline")
        alice, bob = self.user_accounts[0], self.user_accounts[1]
        parties = [(self.names[0], alice), (self.names[1], bob), ("ingrid", self.ingrid_account)]
        before = {name: self._balance(account) for name, account in parties}
        left = await self._open_ledger(0)
        right = await self._open_ledger(1)
        virtual_id = (await self._open_virtual(0, 1)).channel_id
        moved = 0
        for i in range(10):
            value = (i + 1) * ETHER // 100
            await self.clients[0].pay_virtual(virtual_id, value)
            moved += value
        self.hub.pause()
        self.echo(f"   {self.names[0]} paid {self.names[1]} {amount(moved)} in 10 payments; the hub process is stopped")
        on_chain = VirtualChannel.restore(left, virtual_id, adjudicator=self.virtual)
        on_chain.register(sender=alice)
        left.register(sender=alice)
        right.register(sender=bob)
        deadline = max(left.dispute()[1], right.dispute()[1], int(self.virtual.record(virtual_id)[1]))
        self.chain.mine(timestamp=deadline + 1)
        left.conclude(sender=alice)
        right.conclude(sender=bob)
        self.echo(f"   {self.names[0]} and {self.names[1]} registered and concluded alone; the hub continues")
        self.hub.resume()
        await asyncio.to_thread(self.hub.watch, 4 * self.watch_interval)  # its watchtower catches up
        self._finish(phase)
        phase.note = "virtual register, 2 ledger registers, 2 concludes"
        gains = {self.names[0]: -moved, self.names[1]: moved, "ingrid": 0}
        for name, account in parties:
            self._check(
                f"hub offline: {name} ends with {'plus' if gains[name] >= 0 else 'minus'} "
                f"{amount(abs(gains[name]))} of virtual payments, minus its fees",
                before[name] + gains[name] - phase.fees(str(account.address)),
                self._balance(account),
            )

    async def stale_state_attack(self) -> None:
        """The last user pays the hub three times, then registers the oldest state, which gave it more; the
        hub's watchtower (in the hub process) answers with the latest state and concludes after the
        deadline."""
        phase = self._phase("stale-state attack answered by the hub's watchtower")
        user = len(self.names) - 1
        name, account, client = self.names[user], self.user_accounts[user], self.clients[user]
        before = {name: self._balance(account), "ingrid": self._balance(self.ingrid_account)}
        first_line = len(self.hub.lines)
        channel = await self._open_ledger(user)
        for _ in range(3):
            await client.pay(channel.channel_id, ETHER)
        latest, stale = channel.state, client.store.state(channel.channel_id, 1)
        assert isinstance(latest, LedgerState) and stale is not None and isinstance(stale.state, LedgerState)
        self.ledger.register(*calls.register(channel.params, stale), sender=account)
        self.echo(
            f"   {name} registers version {stale.state.version}, where it holds {amount(stale.state.balance_a)}; "
            f"in version {latest.version} it holds {amount(latest.balance_a)}"
        )
        refuted = await self._hub_line("refuted ", channel.channel_id)
        heard = await self._heard_dispute(client, channel.channel_id)
        self.echo(f"   {name}'s wallet {'heard' if heard else 'did not hear'} chain.disputed from the hub")
        self.chain.mine(timestamp=channel.dispute()[1] + 1)
        concluded = await self._hub_line("concluded ", channel.channel_id)
        await asyncio.to_thread(self.hub.watch, 2 * self.watch_interval)
        self._finish(phase)
        phase.note = f"stale register by {name}, the hub's refute and conclude"
        lines = self.hub.lines[first_line:]
        channel_hex = hexstr(channel.channel_id)
        self._check(
            "attack: the hub's watchtower refuted once",
            1,
            sum(line.startswith("refuted ") and channel_hex in line for line in lines),
        )
        self._check(
            "attack: the hub's watchtower concluded once",
            1,
            sum(line.startswith("concluded ") and channel_hex in line for line in lines),
        )
        answers = {line.rsplit("tx=", 1)[1].lower() for line in (refuted, concluded)}
        self._check(
            "attack: the refute and the conclusion were sent from Ingrid's account",
            2,
            sum(
                hex_of(r.txn_hash) in answers and str(r.sender).lower() == str(self.ingrid_account.address).lower()
                for r in phase.receipts
            ),
        )
        self._check(
            f"attack: {name} ends with the latest balance, {amount(latest.balance_a)}, minus its fees",
            before[name] - DEPOSIT + latest.balance_a - phase.fees(str(account.address)),
            self._balance(account),
        )
        self._check(
            f"attack: ingrid ends with the latest balance, {amount(latest.balance_b)}, minus her fees",
            before["ingrid"] - DEPOSIT + latest.balance_b - phase.fees(str(self.ingrid_account.address)),
            self._balance(self.ingrid_account),
        )

    async def _heard_dispute(self, client: HubClient, channel: bytes) -> bool:
        """Whether the wallet received ``chain.disputed`` for ``channel`` (within a few seconds)."""
        end = time.monotonic() + 5
        while (left := end - time.monotonic()) > 0:
            try:
                method, params = await asyncio.wait_for(client.notifications.get(), left)
            except TimeoutError:
                return False
            if method == "chain.disputed" and params.get("channel") == hexstr(channel):
                return True
        return False
