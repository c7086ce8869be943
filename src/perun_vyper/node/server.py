"""Ingrid as a service: the hub protocol v1 (docs/API.md) over WebSocket, one JSON-RPC 2.0 object per text
frame, every channel operation through ``Hub`` and ``LedgerChannel``.

Concurrency. The event loop only reads frames, checks limits and sessions, and writes answers. All
channel work (checks, signatures, store writes; chain reads once an adjudicator is attached) runs in one
worker thread, in arrival order: ``Store`` is one SQLite connection and ``Hub``/``LedgerChannel`` keep
memory that is not thread-safe, so one thread serialises every channel without locks, and the loop never
blocks on the store. A request handed to the worker is finished even if its connection drops, and the
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
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from typing import Any

from eth_utils import to_canonical_address, to_checksum_address
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ..client import Hub, LedgerChannel
from ..core.channel import ChannelParams
from ..core.codec import Domain, hexstr, unhex
from ..core.keys import recover, verify_state
from ..core.protocol import Update
from ..core.state import LedgerState
from ..errors import InvalidParams, InvalidSignature, RefusedUpdate
from . import rpc, schema
from .auth import Challenge, login_message, personal_digest
from .session import Limits, Policy, Session

log = logging.getLogger(__name__)


Notice = tuple[str, str, Any]  # (address, method, params) sent after the answer
Handler = Callable[[Session, Any], Awaitable[tuple[Any, Iterable[Notice]]]]


class HubServer:
    """Serves ``hub`` (Ingrid's channels and store) to wallets. ``ledger_domain`` is the EIP-712 domain of
    the LedgerAdjudicator the channels live on; ``clock`` gives seconds (login challenges expire by it)."""

    def __init__(
        self,
        hub: Hub,
        ledger_domain: Domain,
        policy: Policy,
        limits: Limits | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.hub = hub
        self.ledger_domain = ledger_domain
        self.policy = policy
        self.limits = limits or Limits()
        self.clock = clock
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-channels")
        self._server: Server | None = None
        self._sessions: dict[str, set[Session]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._hide = tuple({str(hub.store.path.resolve()), str(hub.store.path)})
        self._methods: dict[str, tuple[type, Handler, bool]] = {
            "hub.info": (schema.NoParams, self._info, False),
            "auth.challenge": (schema.ChallengeParams, self._challenge, False),
            "auth.login": (schema.LoginParams, self._login, False),
            "channel.list": (schema.NoParams, self._list, True),
            "ledger.propose_open": (schema.ProposeOpenParams, self._propose_open, True),
            "ledger.update": (schema.UpdateParams, self._update, True),
        }
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
        )

    # --- lifecycle ------------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen (port 0: an ephemeral port) and return the ``ws://`` URL."""
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
        self.worker.shutdown(wait=True)

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
                self._sessions.get(session.address, set()).discard(session)

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
            for other in list(self._sessions.get(address, ())):
                if other is not session:
                    await other.send(rpc.notification(method, params))

    async def work(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` in the worker thread, after the channel work queued before it: how anything
        outside a request (an operator, a test, a chain watcher) touches the hub's channels."""
        return await asyncio.get_running_loop().run_in_executor(self.worker, functools.partial(fn, *args))

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
        self._sessions.setdefault(challenge.address, set()).add(session)
        return schema.LoginResult(challenge.address), ()

    def _require_fresh(self, session: Session) -> None:
        if session.address is not None:
            raise rpc.RpcError(
                rpc.AUTH_FAILED,
                f"this connection is logged in as {session.address} and acts for that address only; "
                "open another connection for another address",
            )

    async def _list(self, session: Session, params: schema.NoParams) -> tuple[Any, Iterable[Notice]]:
        return await self.work(self._list_sync, session.address), ()

    def _list_sync(self, user: str) -> schema.ListResult:
        entries = [
            schema.ChannelEntry(
                hexstr(channel.channel_id),
                schema.params_to_msg(channel.params),
                None if channel.latest is None else schema.signed_to_msg(channel.latest),
            )
            for channel in self._channels_of(user)
        ]
        return schema.ListResult(entries)

    async def _propose_open(self, session: Session, params: schema.ProposeOpenParams) -> tuple[Any, Iterable[Notice]]:
        return await self.work(self._open_sync, session.address, params), ()

    def _open_sync(self, user: str, msg: schema.ProposeOpenParams) -> schema.OpenResult:
        params = schema.params_from_msg(msg.params)
        if {params.participant_a, params.participant_b} != {user, self.hub.address}:
            raise InvalidParams(
                f"a channel with this hub has two participants, the hub ({self.hub.address}) and you ({user}), "
                "in either order"
            )
        self._check_policy(params)
        deposits = (int(msg.deposit_a), int(msg.deposit_b))
        hub_deposit = deposits[params.side_of(self.hub.address)]
        if hub_deposit > self.policy.collateral:
            raise RefusedUpdate(
                f"the hub's side would hold {hub_deposit}; this hub puts at most {self.policy.collateral} into "
                "one channel (hub.info policy.collateral)"
            )
        initial = LedgerState.initial(params.channel_id, *deposits)
        signature = unhex(msg.signature)
        # Checked before anything is recorded: an unsigned proposal leaves no trace in the hub's store.
        verify_state(initial, self.ledger_domain, signature, user)
        channel = self.hub.channels.get(params.channel_id)
        if channel is None:
            if len(self._channels_of(user)) >= self.policy.max_channels_per_user:
                raise RefusedUpdate(
                    f"you have {self.policy.max_channels_per_user} channels with this hub, its maximum per user; "
                    "close one first"
                )
            channel = self.hub.open_channel(params, self.ledger_domain, *deposits)
        # A new channel: our version 0 is in flight and this merges the user's signature into it. A repeat
        # answers with the same countersignature; other deposits for the same parameters are refused.
        countersig = channel.accept(Update(initial, signature))
        return schema.OpenResult(hexstr(params.channel_id), hexstr(countersig))

    def _check_policy(self, params: ChannelParams) -> None:
        policy = self.policy
        if params.asset not in {to_checksum_address(asset) for asset in policy.assets}:
            raise RefusedUpdate(f"this hub opens channels in {', '.join(policy.assets)} only, not {params.asset}")
        if not policy.min_challenge_duration <= params.challenge_duration <= policy.max_challenge_duration:
            raise RefusedUpdate(
                f"challenge duration {params.challenge_duration}s is outside this hub's "
                f"[{policy.min_challenge_duration}, {policy.max_challenge_duration}]"
            )

    async def _update(self, session: Session, params: schema.UpdateParams) -> tuple[Any, Iterable[Notice]]:
        assert session.address is not None
        answer, latest = await self.work(self._update_sync, session.address, params.update)
        if latest is None:
            return answer, ()
        notice = schema.ChannelUpdated(params.update.state.channel.lower(), schema.signed_to_msg(latest))
        return answer, [(session.address, "channel.updated", notice)]

    def _update_sync(self, user: str, msg: schema.UpdateMsg) -> tuple[schema.UpdateResult, Any]:
        channel = self._channel_of(user, unhex(msg.state.channel))
        before = channel.latest
        countersig = channel.accept(schema.update_from_msg(msg))
        changed = channel.latest if channel.latest != before else None
        return schema.UpdateResult(hexstr(countersig)), changed

    # --- channels (worker thread only) ----------------------------------------------------------------

    def _channels_of(self, user: str) -> list[LedgerChannel]:
        return [channel for channel in self.hub.channels.values() if channel.peer == user]

    def _channel_of(self, user: str, channel_id: bytes) -> LedgerChannel:
        channel = self.hub.channels.get(channel_id)
        if channel is None or channel.peer != user:
            # The same answer for a channel of another user and for none: ids are not probed this way.
            raise rpc.RpcError(
                rpc.NOT_YOUR_CHANNEL,
                f"channel {hexstr(channel_id)} is not a channel of {user} with this hub; channel.list shows yours",
            )
        return channel
