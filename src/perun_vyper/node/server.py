"""Ingrid as a service: the hub protocol v1 (docs/API.md) over WebSocket, one JSON-RPC 2.0 object per text
frame, every channel operation through ``Hub`` and ``LedgerChannel``.

Concurrency. The event loop only reads frames, checks limits and sessions, and writes answers. All
channel work (checks, signatures, store writes; chain reads once an adjudicator is attached) runs in one
worker thread, in arrival order: the store is one connection and ``Hub``/``LedgerChannel`` keep memory
that is not thread-safe, so one thread serialises every channel of this process, and the loop never
blocks on the store. Several such processes (workers) may share one PostgreSQL store: then each channel
operation runs under the channel's lock in the database with the channel read again under it
(``Hub.acting``), and notifications reach wallets connected to other workers through ``bus.py``
(docs/SCALING.md). A request handed to the worker is finished even if its connection drops, and the
answer leaves only after the store committed (``LedgerChannel.accept``): a wallet that lost the answer
re-sends the same update and gets the same countersignature.

Nothing a client sends crashes the server or reaches it as a traceback: every refusal is a JSON-RPC error
(codes in ``rpc``), anything unexpected is logged here and answered with INTERNAL_ERROR.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from importlib.metadata import version
from typing import Any

import psycopg
from eth_utils import to_canonical_address, to_checksum_address
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ..client import Hub
from ..client.app_hub import AppHub
from ..core.codec import Domain, hexstr, unhex
from ..core.keys import recover
from ..core.protocol import SignedState
from ..errors import InvalidSignature
from . import rpc, schema
from .app_api import AppApi
from .auth import Challenge, login_message, personal_digest
from .bus import Bus
from .ledger_api import LedgerApi
from .session import Limits, Methods, Notice, Policy, Session
from .virtual_api import VirtualApi
from .worker import ChannelWorker

log = logging.getLogger(__name__)


class HubServer:
    """Serves ``hub`` (Ingrid's channels and store) to wallets. ``ledger_domain`` is the EIP-712 domain of
    the LedgerAdjudicator the channels live on; ``clock`` gives seconds (login challenges expire by it).
    ``account`` is the Ape account Ingrid sends her transactions from (her deposits, ``ledger.close``);
    with it, ``hub`` is built with ``adjudicator=`` so every signature is checked against the chain."""

    def __init__(
        self,
        hub: Hub,
        ledger_domain: Domain,
        policy: Policy,
        limits: Limits | None = None,
        *,
        clock: Callable[[], float] = time.time,
        account: Any = None,
        bus: Bus | None = None,
        apps: AppHub | None = None,
    ) -> None:
        self.hub = hub
        # Several workers sharing one PostgreSQL store reach each other's wallets through it (bus.py).
        self.bus = bus or Bus()
        self.account = account
        self.ledger_domain = ledger_domain
        self.policy = policy
        self.limits = limits or Limits()
        self.clock = clock
        self.worker = ChannelWorker()
        self._server: Server | None = None
        self._sessions: dict[str, set[Session]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._hide = _places(hub.store)
        self._methods: Methods = {
            "hub.info": (schema.NoParams, self._info, False),
            "auth.challenge": (schema.ChallengeParams, self._challenge, False),
            "auth.login": (schema.LoginParams, self._login, False),
        }
        self.ledger = LedgerApi(self)
        self.virtual = VirtualApi(self)
        self._methods.update(self.ledger.methods())
        self._methods.update(self.virtual.methods())
        self.app = AppApi(self, apps)
        self._methods.update(self.app.methods())
        self.info = schema.InfoResult(
            schema.PROTOCOL,
            hub.address,
            ledger_domain.chain_id,
            to_checksum_address(ledger_domain.verifying_contract),
            to_checksum_address(hub.virtual_domain.verifying_contract),
            schema.PolicyMsg(
                str(policy.collateral),
                [to_checksum_address(asset) for asset in policy.assets],
                policy.min_challenge_duration,
                policy.max_challenge_duration,
                policy.max_channels_per_user,
                hub.max_validity,
            ),
            schema.LimitsMsg(
                self.limits.max_request_bytes,
                self.limits.max_frame_bytes,
                self.limits.max_in_flight,
                self.limits.rate_per_second,
                self.limits.burst,
                self.limits.challenge_seconds,
            ),
            f"perun_vyper/{version('perun_vyper')}",
            None if apps is None else to_checksum_address(apps.domain.verifying_contract),
            [] if apps is None else list(apps.services),
        )

    # --- lifecycle ------------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen (port 0: an ephemeral port) and return the ``ws://`` URL."""
        await self.bus.start(self._deliver, lambda: [address for address, held in self._sessions.items() if held])
        self.bus.on_answer(self.ledger.answered_elsewhere)
        self._server = await serve(self._connection, host, port, max_size=self.limits.max_frame_bytes, compression=None)
        return self.url

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the server is not started")
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"ws://{host}:{port}"

    async def close(self) -> None:
        """Stop listening, close every connection, finish the work already handed to the worker."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.bus.close()
        self.worker.shutdown()

    @property
    def busy(self) -> int:
        """Requests received and not answered yet, over all connections."""
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait until every request received so far is answered (or its connection gone)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> HubServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- frames ---------------------------------------------------------------------------------------

    async def _connection(self, ws: ServerConnection) -> None:
        loop = asyncio.get_running_loop()
        session = Session(ws, tokens=float(self.limits.burst), refilled=loop.time())
        try:
            async for frame in ws:
                await self._receive(session, frame, loop.time())
        except ConnectionClosed:
            pass
        except Exception:  # pragma: no cover - a bug here must not take the server down
            log.exception("connection handler failed")
        finally:
            if session.address is not None:
                held = self._sessions.get(session.address, set())
                held.discard(session)
                if not held:
                    self._sessions.pop(session.address, None)
                    await self.bus.announce(session.address, False)

    async def _receive(self, session: Session, frame: str | bytes, now: float) -> None:
        admitted = session.take_token(now, self.limits)
        try:
            if isinstance(frame, bytes):
                raise rpc.InvalidFrame(rpc.INVALID_REQUEST, "binary frames are not accepted; send JSON text frames")
            size = len(frame) if len(frame) * 4 <= self.limits.max_request_bytes else len(frame.encode())
            if size > self.limits.max_request_bytes:
                raise rpc.InvalidFrame(
                    rpc.REQUEST_TOO_LARGE,
                    f"the request is {size} bytes; this hub takes at most {self.limits.max_request_bytes}",
                )
            request = rpc.parse_request(frame)
            if not admitted:
                raise rpc.InvalidFrame(rpc.RATE_LIMITED, self._rate_message(), request.id)
            if session.in_flight >= self.limits.max_in_flight:
                raise rpc.InvalidFrame(
                    rpc.RATE_LIMITED,
                    f"{session.in_flight} requests of this connection are not answered yet (at most "
                    f"{self.limits.max_in_flight}); wait for answers before sending more",
                    request.id,
                )
        except rpc.InvalidFrame as err:
            if not admitted and err.code != rpc.RATE_LIMITED:
                err = rpc.InvalidFrame(rpc.RATE_LIMITED, self._rate_message(), err.request_id)
            await session.send(rpc.error(err.request_id, err))
            return
        session.in_flight += 1
        task = asyncio.create_task(self._handle(session, request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _rate_message(self) -> str:
        return (
            f"too many requests: this connection may send {self.limits.rate_per_second:g} per second "
            f"(bursts of {self.limits.burst}); slow down"
        )

    async def _handle(self, session: Session, request: rpc.Request) -> None:
        notices: Iterable[Notice] = ()
        try:
            entry = self._methods.get(request.method)
            if entry is None:
                raise rpc.RpcError(
                    rpc.METHOD_NOT_FOUND,
                    f"unknown method {request.method[:64]!r}; this hub speaks protocol {schema.PROTOCOL} "
                    f"({', '.join(sorted(self._methods))})",
                )
            params_type, handler, needs_login = entry
            if needs_login and session.address is None:
                raise rpc.RpcError(rpc.UNAUTHENTICATED, f"{request.method} needs a login; call auth.challenge first")
            value, notices = await handler(session, rpc.decode_params(request, params_type))
            frame = rpc.result(request.id, value)
        except rpc.RpcError as err:
            frame = rpc.error(request.id, err)
        except psycopg.OperationalError as exc:
            # The shared store's database went away (a restart, a failover): what this request began was
            # rolled back, and the next request opens a new connection.
            log.warning("%s: the store's database is unavailable (%s)", request.method, str(exc).strip())
            frame = rpc.error(
                request.id,
                rpc.RpcError(rpc.INTERNAL_ERROR, "the hub's database is unavailable; nothing was written: retry later"),
            )
        except Exception as exc:
            mapped = rpc.from_exception(exc, self._hide)
            if mapped is None:
                log.exception("%s failed", request.method)
                mapped = rpc.RpcError(
                    rpc.INTERNAL_ERROR, "internal error (logged by the hub); nothing was half-written: retry later"
                )
            frame = rpc.error(request.id, mapped)
        finally:
            session.in_flight -= 1
        await session.send(frame)
        for address, method, params in notices:
            await self.notify(address, method, params, skip=session)

    def online(self, address: str) -> bool:
        """Whether a connection is logged in as ``address`` now (to this worker or, several workers
        sharing a store, to another one)."""
        return bool(self._sessions.get(address)) or self.bus.online_elsewhere(address)

    def after_update(self, before: Any, after: Any) -> list[Notice]:
        """Notifications owed once the hub countersigned ``after`` in a ledger channel (worker thread)."""
        return self.virtual.lock_notices(before, after)

    async def notify(self, address: str, method: str, params: Any, *, skip: Session | None = None) -> bool:
        """Send a notification to every connection logged in as ``address`` (but ``skip``), here or at
        another worker; whether one was there. A notification is information: a wallet that was away
        learns the same by asking."""
        sessions = [other for other in list(self._sessions.get(address, ())) if other is not skip]
        frame = rpc.notification(method, params)
        for other in sessions:
            await other.send(frame)
        elsewhere = self.bus.online_elsewhere(address)
        if elsewhere:
            await self.bus.send(address, frame.decode())
        return bool(sessions) or elsewhere

    async def _deliver(self, address: str, frame: str) -> None:
        """A notification another worker received for ``address``: sent to this worker's connections."""
        data = frame.encode()
        for session in list(self._sessions.get(address, ())):
            await session.send(data)

    async def work(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` in the worker thread, after the channel work queued before it: how anything
        outside a request (an operator, a test, a chain watcher) touches the hub's channels."""
        return await self.worker.submit(functools.partial(fn, *args))

    async def pay(self, channel_id: bytes, amount: int, *, timeout: float = 30.0) -> SignedState:
        """The hub pays ``amount`` to the wallet of ``channel_id`` (an operator's call): returns the state
        both signed, or raises ``WalletUnavailable`` leaving the proposal in flight (docs/API.md 7)."""
        return await self.ledger.pay(channel_id, amount, timeout)

    # --- methods --------------------------------------------------------------------------------------

    async def _info(self, session: Session, params: schema.NoParams) -> tuple[Any, Iterable[Notice]]:
        return self.info, ()

    async def _challenge(self, session: Session, params: schema.ChallengeParams) -> tuple[Any, Iterable[Notice]]:
        self._require_fresh(session)
        address = to_checksum_address(params.address)
        nonce = hexstr(secrets.token_bytes(32))
        expires = int(self.clock()) + self.limits.challenge_seconds
        message = login_message(self.hub.address, self.ledger_domain.chain_id, address, nonce, expires)
        session.challenge = Challenge(address, nonce, expires, message)  # replaces an earlier one
        return schema.ChallengeResult(nonce, expires, message), ()

    async def _login(self, session: Session, params: schema.LoginParams) -> tuple[Any, Iterable[Notice]]:
        self._require_fresh(session)
        challenge, session.challenge = session.challenge, None  # used once, whatever the outcome
        if challenge is None or challenge.nonce != params.nonce.lower():
            raise rpc.RpcError(
                rpc.AUTH_FAILED,
                "unknown or used challenge: a challenge is valid once, on the connection that asked for it; "
                "call auth.challenge again",
            )
        if self.clock() >= challenge.expires:
            raise rpc.RpcError(
                rpc.AUTH_FAILED, f"the challenge expired at {challenge.expires}; call auth.challenge again"
            )
        try:
            signer = recover(personal_digest(challenge.message), unhex(params.signature))
        except InvalidSignature as exc:
            raise rpc.RpcError(rpc.AUTH_FAILED, f"the login signature is malformed: {exc}") from None
        if signer != to_canonical_address(challenge.address):
            raise rpc.RpcError(
                rpc.AUTH_FAILED,
                f"the challenge was signed by {to_checksum_address(signer)}, not {challenge.address}; sign the "
                "message with the channel key of the address you log in as",
            )
        session.address = challenge.address
        held = self._sessions.setdefault(challenge.address, set())
        held.add(session)
        if len(held) == 1:
            await self.bus.announce(challenge.address, True)
        return schema.LoginResult(challenge.address), ()

    def _require_fresh(self, session: Session) -> None:
        if session.address is not None:
            raise rpc.RpcError(
                rpc.AUTH_FAILED,
                f"this connection is logged in as {session.address} and acts for that address only; "
                "open another connection for another address",
            )


def _places(store: Any) -> tuple[str, ...]:
    """What error texts must not show a wallet: where the hub's store is (its path, or its URL)."""
    places = {str(store.target), str(store.location)}
    path = getattr(store, "path", None)
    if path is not None:
        places.add(str(path.resolve()))
    return tuple(sorted(places, key=len, reverse=True))  # "url (schema s)" is hidden before "url"
