"""Hub service tests: a real HubServer on 127.0.0.1 (ephemeral port) in the test's own event loop, with the
ledger channels off-chain (no adjudicator: deposits are told with ``confirm_funding``), so no chain is used.

Tests are plain functions that ``run`` a coroutine (``asyncio.run``); no pytest plugin is needed."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from perun_vyper import ChannelStore, Hub, Signer
from perun_vyper.core.codec import hexstr
from perun_vyper.node import HubClient, HubServer, Limits, Policy
from perun_vyper.node.auth import personal_digest
from tests.support.apps import app_domain, apps, sla, sla_data  # noqa: F401 (fixtures of the app tests)
from tests.support.constants import E
from tests.support.parties import INGRID_KEY, LEDGER_DOMAIN, MAX_VALIDITY, NOW, VIRTUAL_DOMAIN

POLICY = Policy(collateral=2 * E)


def run(coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
    """Run one test scenario in a fresh event loop, bounded in time."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Clock:
    """The server's clock (login challenges expire by it), moved by hand."""

    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def hub(store_at) -> Hub:
    return Hub(
        INGRID_KEY, store_at("ingrid"), virtual_domain=VIRTUAL_DOMAIN, max_validity=MAX_VALIDITY, clock=lambda: NOW
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def serving(hub, clock):
    """``async with serving(limits=...) as server``: the hub served on an ephemeral port."""

    @asynccontextmanager
    async def _serving(limits: Limits | None = None, policy: Policy = POLICY) -> AsyncIterator[HubServer]:
        async with HubServer(hub, LEDGER_DOMAIN, policy, limits, clock=clock) as server:
            yield server

    return _serving


def wallet(server: HubServer, key: bytes, store: ChannelStore) -> HubClient:
    return HubClient(server.url, key, store, LEDGER_DOMAIN)


async def call(ws: ClientConnection, method: str, params: Any = None, request_id: Any = 1) -> dict[str, Any]:
    """One raw request and its answer (a dict with ``result`` or ``error``)."""
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        body["params"] = params
    await ws.send(json.dumps(body))
    return json.loads(await ws.recv())


async def login(ws: ClientConnection, key: bytes) -> dict[str, Any]:
    """Log a raw connection in as ``key``'s address; the answer to ``auth.login``."""
    signer = Signer(key)
    challenge = (await call(ws, "auth.challenge", {"address": signer.address}))["result"]
    signature = signer.sign(personal_digest(challenge["message"]))
    return await call(ws, "auth.login", {"nonce": challenge["nonce"], "signature": hexstr(signature)})


@asynccontextmanager
async def raw(server: HubServer, key: bytes | None = None) -> AsyncIterator[ClientConnection]:
    """A raw WebSocket to the server, logged in as ``key`` if given."""
    async with connect(server.url, max_size=None) as ws:
        if key is not None:
            assert "result" in await login(ws, key)
        yield ws


@asynccontextmanager
async def worker_blocked(server: HubServer) -> AsyncIterator[threading.Event]:
    """Hold the hub's worker thread (channel work queues up behind it) until the block ends."""
    release = threading.Event()
    blocker = asyncio.ensure_future(server.work(release.wait))
    try:
        yield release
    finally:
        release.set()
        await blocker


def error_of(answer: dict[str, Any]) -> tuple[int, str]:
    assert "result" not in answer, answer
    return answer["error"]["code"], answer["error"]["message"]


@pytest.fixture
def chain_hub(store_at, ingrid, ledger, virtual_domain, chain) -> Hub:
    """Ingrid's ``Hub`` on the test's Anvil: it reads the LedgerAdjudicator before signing (chain time as
    its clock for validity); the server sends from her Ape account."""
    return Hub(
        ingrid.private_key,
        store_at("ingrid-chain"),
        virtual_domain=virtual_domain,
        max_validity=MAX_VALIDITY,
        clock=lambda: chain.pending_timestamp,
        adjudicator=ledger,
    )
