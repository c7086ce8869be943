"""What the workers of one hub tell each other, through the PostgreSQL store they share (LISTEN/NOTIFY):
notifications for wallets connected to another worker, who is connected where, and which of the hub's
proposals a wallet answered.

Any worker serves any wallet, so the wallet a notification is for (``virtual.proposed``,
``virtual.message``, ``virtual.locked``, ``ledger.countersigned``, ``ledger.proposal``, ``chain.disputed``)
may be connected to another worker. ``notify`` hands it to the bus, and the worker that holds the
wallet's connection sends it. Each worker announces the addresses it has logged in (``presence``), so
``online`` answers for the whole hub; a worker that dies stops renewing its lease (``worker:<id>``,
renewed by ``HubGuard``) and its addresses are forgotten at the next ``prune``.

What the bus is not: a channel of record. A notification is information (docs/API.md): one lost when a
worker dies is learnt by the wallet on its next ``channel.list``/``ledger.proposals``; nothing signed
depends on one. PostgreSQL delivers a NOTIFY only after its transaction commits and refuses payloads over
8000 bytes: a larger notification is logged and dropped (the wallet learns the same by asking).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import psycopg

log = logging.getLogger(__name__)

CHANNEL = "perun_hub"  # the LISTEN/NOTIFY channel of a hub's workers
MAX_PAYLOAD = 7900  # PostgreSQL's limit is 8000 bytes, less a margin for the envelope's quoting


class Bus:
    """The bus of a hub with one worker: nobody else to tell."""

    worker = "single"

    async def start(self, deliver: Callable[[str, str], Awaitable[None]], local: Callable[[], Iterable[str]]) -> None:
        """Begin listening: ``deliver(address, frame)`` sends a frame to this worker's connections of
        ``address``; ``local()`` lists the addresses logged in here (announced again to a new worker)."""

    async def close(self) -> None:
        """Stop listening."""

    def online_elsewhere(self, address: str) -> bool:
        return False

    async def send(self, address: str, frame: str) -> None:
        """Hand ``frame`` to the worker(s) holding a connection of ``address``."""

    async def announce(self, address: str, online: bool) -> None:
        """Tell the other workers that ``address`` logged in here (or that its last connection left)."""

    async def answered(self, channel: bytes, version: int) -> None:
        """Tell the other workers that the wallet countersigned the hub's proposal ``version``."""

    def on_answer(self, callback: Callable[[bytes, int], None]) -> None:
        """Call ``callback(channel, version)`` when another worker reports an answer."""

    def prune(self, live: Iterable[str]) -> None:
        """Forget the addresses of workers not in ``live`` (their lease lapsed: they died)."""


class PostgresBus(Bus):
    """The bus of several workers sharing the PostgreSQL store at ``url``; ``worker`` names this one."""

    def __init__(self, url: str, worker: str) -> None:
        self.url = url
        self.worker = worker
        self._listen: Any = None
        self._publish: Any = None
        self._publish_lock = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None
        self._deliver: Callable[[str, str], Awaitable[None]] | None = None
        self._local: Callable[[], Iterable[str]] = list
        self._elsewhere: dict[str, set[str]] = {}  # address -> the other workers it is logged in to
        self._answer_callbacks: list[Callable[[bytes, int], None]] = []

    async def start(self, deliver: Callable[[str, str], Awaitable[None]], local: Callable[[], Iterable[str]]) -> None:
        self._deliver, self._local = deliver, local
        await self._subscribe()
        self._reader = asyncio.create_task(self._read())

    async def _subscribe(self) -> None:
        self._listen = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        await self._listen.execute(f"LISTEN {CHANNEL}")
        await self._post({"kind": "hello"})  # the others announce their addresses to us

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        for connection in (self._listen, self._publish):
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close()

    def online_elsewhere(self, address: str) -> bool:
        return bool(self._elsewhere.get(address))

    async def send(self, address: str, frame: str) -> None:
        if self.online_elsewhere(address):
            await self._post({"kind": "frame", "to": address, "frame": frame})

    async def announce(self, address: str, online: bool) -> None:
        await self._post({"kind": "presence", "address": address, "online": online})

    async def answered(self, channel: bytes, version: int) -> None:
        await self._post({"kind": "answered", "channel": channel.hex(), "version": version})

    def on_answer(self, callback: Callable[[bytes, int], None]) -> None:
        self._answer_callbacks.append(callback)

    def prune(self, live: Iterable[str]) -> None:
        alive = set(live)
        for address in list(self._elsewhere):
            self._elsewhere[address] &= alive
            if not self._elsewhere[address]:
                del self._elsewhere[address]

    async def _post(self, message: dict[str, Any]) -> None:
        payload = json.dumps({"from": self.worker, **message}, separators=(",", ":"))
        if len(payload.encode()) > MAX_PAYLOAD:
            log.warning("a %s of %d bytes is too large for the bus; dropped", message.get("kind"), len(payload))
            return
        try:
            async with self._publish_lock:
                if self._publish is None or self._publish.broken or self._publish.closed:
                    self._publish = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
                await self._publish.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
        except psycopg.Error as exc:  # the database is away: the wallet learns the same by asking
            log.warning("the bus could not publish a %s: %s", message.get("kind"), exc)

    async def _read(self) -> None:
        """Deliver what the other workers post; a lost connection is opened again (once a second)."""
        while True:
            try:
                async for notice in self._listen.notifies():
                    try:
                        await self._receive(json.loads(notice.payload))
                    except Exception:  # pragma: no cover - one bad message must not stop the bus
                        log.exception("bus message dropped")
            except psycopg.Error as exc:
                log.warning("the bus lost its connection (%s); listening again in 1 s", exc)
            await asyncio.sleep(1)
            with contextlib.suppress(psycopg.Error):
                await self._listen.close()
            try:
                await self._subscribe()
            except psycopg.Error as exc:
                log.warning("the bus cannot listen yet (%s)", exc)

    async def _receive(self, message: dict[str, Any]) -> None:
        origin = message.get("from")
        if origin == self.worker:
            return
        kind = message.get("kind")
        if kind == "frame" and self._deliver is not None:
            await self._deliver(message["to"], message["frame"])
        elif kind == "presence":
            holders = self._elsewhere.setdefault(message["address"], set())
            if message["online"]:
                holders.add(origin)
            else:
                holders.discard(origin)
                if not holders:
                    del self._elsewhere[message["address"]]
        elif kind == "hello":
            # A worker (re)started: whatever it announced before it died is void; it announces afresh.
            for address in list(self._elsewhere):
                self._elsewhere[address].discard(origin)
                if not self._elsewhere[address]:
                    del self._elsewhere[address]
            for address in list(self._local()):
                await self.announce(address, True)
        elif kind == "answered":
            for callback in self._answer_callbacks:
                callback(bytes.fromhex(message["channel"]), int(message["version"]))
