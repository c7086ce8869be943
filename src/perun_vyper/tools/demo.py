"""The hub network demo behind ``ape run demo``, in the real architecture: the hub (Ingrid) runs as its own
process (``ape run hub``, with its watchtower), every user is a ``HubClient`` of it over WebSocket.
Phases: deploy, open, pay, close, then a dispute with the hub offline and a stale-state attack the hub's
watchtower answers. Every balance is checked to the wei (``demo_phases``).

Roles (Ape test accounts): 0 deploys, 1 is Ingrid (the hub process sends from it), 2 .. N+1 are the users.
Each party keeps its own SQLite store in the demo directory: ``ingrid.sqlite`` is the hub process's,
``<user>.sqlite`` each wallet's.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..core.codec import Domain
from ..core.constants import DOMAIN_VERSION, LEDGER_DOMAIN_NAME, VIRTUAL_DOMAIN_NAME
from ..errors import HubUnavailable, InvalidParams, PerunError
from ..node import HubClient
from ..store import Store
from .demo_hub import HubProcess
from .demo_phases import DEPOSIT, MAX_PAYMENT, Phases, accept_demo_channels
from .demo_report import Check, Phase, Result, summary_lines

__all__ = ["Check", "Demo", "Phase", "Result", "summary_lines"]

INGRID, FIRST_USER, LAST_USER = 1, 2, 8
MAX_USERS = LAST_USER - FIRST_USER + 1
NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace"]
MAX_VALIDITY = 86_400  # the hub's --max-validity: how long a virtual channel may keep its collateral


class Demo(Phases):
    """One run of the demo on a connected local chain (Ape's ``chain``, ``project``, test ``accounts``)."""

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
        watch_interval: float = 0.3,
        hub_log_level: str = "WARNING",
    ) -> None:
        if not 2 <= users <= MAX_USERS:
            raise InvalidParams(f"--users must be between 2 and {MAX_USERS} (test accounts {FIRST_USER}..{LAST_USER})")
        if payments < 0:
            raise InvalidParams("--payments must be zero or more")
        self.project, self.chain = project, chain
        self.deployer, self.ingrid_account = accounts[0], accounts[INGRID]
        self.user_accounts = [accounts[FIRST_USER + i] for i in range(users)]
        self.names = NAMES[:users]
        self.directory = directory
        self.hub_store_path = directory / "ingrid.sqlite"
        self.payment_count = payments
        self.random = random.Random(seed)
        self.echo = echo
        self.progress = progress
        self.watch_interval = watch_interval
        self.hub_log_level = hub_log_level  # Ape's --verbosity for the hub process
        self.result = Result(parties=[("deployer", str(self.deployer.address)), *self._party_addresses()])
        self.clients: list[HubClient] = []

    def _party_addresses(self) -> list[tuple[str, str]]:
        parties = [("ingrid", self.ingrid_account), *zip(self.names, self.user_accounts, strict=True)]
        return [(name, str(account.address)) for name, account in parties]

    def store_accounts(self) -> list[tuple[str, int]]:
        """Each store's name (``<name>.sqlite``) and the test account index of its owner."""
        return [("ingrid", INGRID), *((name, FIRST_USER + i) for i, name in enumerate(self.names))]

    def _pick(self, count: int) -> int:
        return self.random.randrange(count)

    def _amount(self) -> int:
        return self.random.randint(1, MAX_PAYMENT)

    def run(self) -> Result:
        """Every phase; the hub process is stopped with SIGTERM at the end and killed on any failure."""
        try:
            return asyncio.run(self._run())
        except PerunError as exc:
            code = self.hub.exit_code if hasattr(self, "hub") else None
            if code is not None and not str(exc).startswith("the hub process"):
                raise HubUnavailable(f"the hub process ended unexpectedly (exit code {code}); then: {exc}") from exc
            raise
        finally:
            if hasattr(self, "hub"):
                self.hub.kill()

    async def _run(self) -> Result:
        self.deploy()
        try:
            await self._connect()
            await self.cooperative()
            await self.hub_offline()
            await self.stale_state_attack()
            await self._disconnect()
            self.echo("== stop the hub (SIGTERM)")
            self.hub.stop()
        finally:
            await self._disconnect()
        return self.result

    def deploy(self) -> None:
        phase = self._phase_without_hub("deploy the adjudicators")
        self.virtual = self.deployer.deploy(self.project.VirtualAdjudicator)
        self.ledger = self.deployer.deploy(self.project.LedgerAdjudicator, self.virtual)
        phase.receipts += [self.chain.get_receipt(c.txn_hash) for c in (self.virtual, self.ledger)]
        chain_id = self.chain.chain_id
        self.domain = Domain(LEDGER_DOMAIN_NAME, DOMAIN_VERSION, chain_id, str(self.ledger.address))
        self.virtual_domain = Domain(VIRTUAL_DOMAIN_NAME, DOMAIN_VERSION, chain_id, str(self.virtual.address))
        self.echo(f"   VirtualAdjudicator {self.virtual.address}, LedgerAdjudicator {self.ledger.address}")
        self.hub = HubProcess(self._hub_command(), Path(self.project.path), self._hub_env(), self.echo)
        self.echo(f"   starting the hub: ape run hub --network {self.chain.provider.uri} --account TEST::{INGRID} ..")
        url = self.hub.start()
        self.echo(f"   the hub listens on {url}, its store is {self.hub_store_path.name}")

    def _phase_without_hub(self, name: str) -> Phase:
        phase = Phase(name)
        self.result.phases.append(phase)
        self.echo(f"== {name}")
        return phase

    def _hub_command(self) -> list[str]:
        return [
            str(Path(sys.executable).with_name("ape")), "run", "hub",
            "--network", str(self.chain.provider.uri), "--account", f"TEST::{INGRID}",
            "--store", str(self.hub_store_path), "--listen", "127.0.0.1:0",
            "--ledger", str(self.ledger.address), "--virtual", str(self.virtual.address),
            "--collateral", str(DEPOSIT), "--max-validity", str(MAX_VALIDITY),
            "--watch-interval", str(self.watch_interval), "--verbosity", self.hub_log_level,
        ]  # fmt: skip

    def _hub_env(self) -> dict[str, str]:
        # Its own Ape data folder in the demo directory: Ape caches contract types per address of an
        # ad-hoc network on disk, and the demo's addresses repeat on every fresh chain.
        return {
            **os.environ,
            "APE_DATA_FOLDER": str(self.directory / "hub-ape-data"),
            "PYTHONUNBUFFERED": "1",
            "PYTHONWARNINGS": "ignore",
        }

    async def _connect(self) -> None:
        """Each user's wallet: its own store, connected to the hub and logged in with its key."""
        for name, account in zip(self.names, self.user_accounts, strict=True):
            client = HubClient(
                self.hub.url,
                account.private_key,
                Store(self.directory / f"{name}.sqlite"),
                self.domain,
                adjudicator=self.ledger,
                virtual_domain=self.virtual_domain,
                accept_virtual=accept_demo_channels,
                clock=lambda: int(self.chain.pending_timestamp),
            )
            self.clients.append(client)
            await client.connect()
            await client.login()
        self.echo(f"   {len(self.clients)} wallets connected and logged in: {', '.join(self.names)}")

    async def _disconnect(self) -> None:
        clients, self.clients = self.clients, []
        for client in clients:
            try:
                await asyncio.wait_for(client.close(), 10)
            finally:
                client.store.close()
