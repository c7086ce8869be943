"""A wallet's side of the hub protocol v1 (docs/API.md): ``HubClient`` connects to a hub, logs in with the
channel key, and runs its ledger (and, ``wallet_app``, app) channels with the hub, in its own ``Store``.

The wallet trusts nothing the hub sends without checking it: the hub's chain id and LedgerAdjudicator
must be the ones the wallet was configured with (a state signed for another deployment is worthless), and
every countersignature is verified (``LedgerChannel.accept`` / ``complete``) before it is stored. What the
hub reports in ``channel.list`` and ``channel.updated`` is information, never a state the wallet signs on.

Each proposal is committed to the store before it is sent, so after a lost connection ``resume()`` sends
again whatever is in flight and the hub answers as before (docs/SPEC.md section 11, "Durability").

With ``adjudicator=`` (the LedgerAdjudicator as an Ape contract object) the wallet's channels read the
chain before signing (deposits, disputes: SPEC 11.1) and can deposit and close on-chain; those chain calls
block the wallet's event loop (a wallet serves one user, not many connections).

The hub's own proposals (``ledger.proposal``, the hub paying the wallet) are answered automatically:
``LedgerChannel.accept`` checks every rule and stores the state both signed before the countersignature
leaves (``ledger.countersign``); a refused proposal is kept in ``refused``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from ..chain import signer_of
from ..chain.accounts import Key
from ..client import LedgerChannel
from ..client.app import Rules
from ..core.channel import ChannelParams
from ..core.codec import Domain, hexstr, unhex
from ..core.constants import ETH, MIN_CHALLENGE_DURATION
from ..core.protocol import SignedState, Update
from ..core.state import LedgerState
from ..errors import HubError, HubUnavailable, InvalidParams, PerunError, RefusedUpdate
from ..store import ChannelStore
from . import schema
from .auth import login_message, personal_digest
from .wallet_app import AppWallet
from .wallet_virtual import AcceptPolicy, VirtualWallet, receive_only

log = logging.getLogger(__name__)

MAX_NOTIFICATIONS = 1000  # the newest pushes kept for the application to read (``HubClient.notifications``)


class _Response(msgspec.Struct):
    jsonrpc: str
    id: int | str | None = None
    result: msgspec.Raw = msgspec.Raw(b"null")
    error: dict[str, Any] | None = None
    method: str | None = None
    params: msgspec.Raw = msgspec.Raw(b"null")


class HubClient(VirtualWallet, AppWallet):
    """One wallet (``key``) with one hub at ``url``. ``ledger_domain`` names the chain and LedgerAdjudicator
    the wallet trusts; ``connect`` refuses a hub that announces another one.

    Use as ``async with HubClient(...) as client`` (connects and logs in), or ``connect()``, ``login()`` and
    ``close()``. Hub notifications arrive in ``notifications`` as ``(method, params)`` (the newest 1,000)."""

    def __init__(
        self,
        url: str,
        key: Key,
        store: ChannelStore,
        ledger_domain: Domain,
        *,
        timeout: float = 30.0,
        max_frame_bytes: int = 1024 * 1024,
        adjudicator: Any = None,
        confirmations: int = 0,
        virtual_domain: Domain | None = None,
        accept_virtual: AcceptPolicy = receive_only,
        clock: Callable[[], float] = time.time,
        app_domain: Domain | None = None,
        app_adjudicator: Any = None,
        app_rules: dict[str, Rules] | None = None,
    ) -> None:
        self.url = url
        self.virtual_domain = virtual_domain
        self.accept_virtual = accept_virtual
        self.clock = clock
        self._signer = signer_of(key)
        self.store = store
        self.ledger_domain = ledger_domain
        self.timeout = timeout
        self.max_frame_bytes = max_frame_bytes
        self.info: schema.InfoResult | None = None
        self.notifications: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=MAX_NOTIFICATIONS)
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[_Response]] = {}
        self.refused: list[tuple[schema.UpdateMsg, PerunError]] = []  # hub proposals this wallet refused
        self._chain: dict[str, Any] = {"adjudicator": adjudicator, "confirmations": confirmations}
        self.channels: dict[bytes, LedgerChannel] = {}
        for record in store.channels("ledger"):
            if record.owner == self.address:
                self.channels[record.channel_id] = LedgerChannel.restore(
                    store, record.channel_id, self._signer, **self._chain
                )
        self._init_virtual()
        self._init_apps(app_domain, app_adjudicator, app_rules or {})
        # The hub's pushes this wallet answers, one at a time in arrival order (a handler task).
        self._handlers = {**self.virtual_handlers(), "ledger.proposal": self._answer_proposal}
        self._inbox: asyncio.Queue[tuple[str, Any]] | None = None
        self._handler: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        return self._signer.address

    @property
    def hub(self) -> str:
        if self.info is None:
            raise HubUnavailable("not connected; call connect() first")
        return self.info.hub

    # --- connection -----------------------------------------------------------------------------------

    async def connect(self) -> schema.InfoResult:
        """Open the connection and check the hub's chain and adjudicator against ours."""
        self._ws = await connect(self.url, max_size=self.max_frame_bytes, compression=None)
        self._reader = asyncio.create_task(self._read(self._ws))
        self._inbox = asyncio.Queue()
        self._handler = asyncio.create_task(self._handle(self._inbox))
        info = msgspec.json.decode(await self.call("hub.info"), type=schema.InfoResult)
        if info.protocol != schema.PROTOCOL:
            raise HubError(0, f"the hub speaks protocol {info.protocol}; this wallet speaks {schema.PROTOCOL}")
        if (info.chain_id, info.ledger_adjudicator.lower()) != (
            self.ledger_domain.chain_id,
            self.ledger_domain.verifying_contract.lower(),
        ):
            raise InvalidParams(
                f"the hub uses LedgerAdjudicator {info.ledger_adjudicator} on chain {info.chain_id}, this wallet "
                f"{self.ledger_domain.verifying_contract} on chain {self.ledger_domain.chain_id}; states signed "
                "for another deployment would not be enforceable"
            )
        if self.virtual_domain is not None and info.virtual_adjudicator.lower() != (
            self.virtual_domain.verifying_contract.lower()
        ):
            raise InvalidParams(
                f"the hub uses VirtualAdjudicator {info.virtual_adjudicator}, this wallet "
                f"{self.virtual_domain.verifying_contract}; virtual states signed for another one are not enforceable"
            )
        self._check_app_hub(info)
        self.info = info
        return info

    async def login(self) -> None:
        """Prove control of the channel key; the connection then acts for this address only."""
        challenge = msgspec.json.decode(
            await self.call("auth.challenge", {"address": self.address}), type=schema.ChallengeResult
        )
        expected = login_message(
            self.hub, self.ledger_domain.chain_id, self.address, challenge.nonce, challenge.expires
        )
        if challenge.message != expected:
            raise HubError(0, "the hub's login message is not the documented one; not signing it")
        signature = self._signer.sign(personal_digest(challenge.message))
        await self.call("auth.login", {"nonce": challenge.nonce, "signature": hexstr(signature)})

    async def close(self) -> None:
        """Close the connection (the pushes received so far are answered first, within ``timeout``)."""
        if self._inbox is not None and self._ws is not None:
            try:
                await asyncio.wait_for(self._inbox.join(), self.timeout)
            except TimeoutError:
                log.warning("closing with hub pushes unanswered; resume() answers them after reconnecting")
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        for task in (self._handler, *self._side_tasks):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (self._handler, *self._side_tasks) if t is not None), return_exceptions=True)
        self._ws = self._reader = self._handler = None

    async def __aenter__(self) -> HubClient:
        await self.connect()
        await self.login()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def call(self, method: str, params: Any = None) -> msgspec.Raw:
        """One request; its raw result, or ``HubError`` with the hub's code, message and data."""
        if self._ws is None:
            raise HubUnavailable("not connected; call connect() first")
        request_id = next(self._ids)
        future: asyncio.Future[_Response] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            body["params"] = params
        try:
            await self._ws.send(msgspec.json.encode(body).decode())
            response = await asyncio.wait_for(future, self.timeout)
        except ConnectionClosed as exc:
            raise HubUnavailable(f"the connection to {self.url} closed ({exc}); reconnect and resume()") from None
        finally:
            self._waiting.pop(request_id, None)
        if response.error is not None:
            error = response.error
            raise HubError(int(error.get("code", 0)), str(error.get("message", "")), error.get("data"))
        return response.result

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                try:
                    message = msgspec.json.decode(frame, type=_Response)
                except msgspec.DecodeError:
                    continue  # not ours to crash on; the request it answers times out
                if message.method is not None:
                    note = (message.method, msgspec.json.decode(message.params))
                    if message.method in self._handlers and self._inbox is not None:
                        # Answered by the handler task, in arrival order: it waits for the hub's answers,
                        # which this loop reads.
                        self._inbox.put_nowait(note)
                    if self.notifications.full():
                        self.notifications.get_nowait()  # nobody reads them: keep the newest only
                    self.notifications.put_nowait(note)
                elif isinstance(message.id, int) and message.id in self._waiting:
                    future = self._waiting[message.id]
                    if not future.done():
                        future.set_result(message)
        except ConnectionClosed:
            pass
        finally:
            # Every wait ends now, for an answer or for a peer's message through the hub: neither can come.
            closed = f"the connection to {self.url} closed; reconnect and resume()"
            for future in [*self._waiting.values(), *self._expected.values()]:
                if not future.done():
                    future.set_exception(HubUnavailable(closed))

    async def _handle(self, inbox: asyncio.Queue[tuple[str, Any]]) -> None:
        """Answer the hub's pushes one at a time, in arrival order; a bad one is logged, never fatal."""
        while True:
            method, params = await inbox.get()
            try:
                await self._handlers[method](params)
            except (PerunError, msgspec.ValidationError) as exc:
                log.warning("%s not handled: %s", method, exc)
            finally:
                inbox.task_done()

    # --- channels -------------------------------------------------------------------------------------

    def channel(self, channel_id: bytes) -> LedgerChannel:
        try:
            return self.channels[channel_id]
        except KeyError:
            raise RefusedUpdate(f"channel {hexstr(channel_id)} is not in this wallet's store") from None

    async def open_channel(
        self,
        deposit: int,
        hub_deposit: int,
        *,
        asset: str = ETH,
        challenge_duration: int = MIN_CHALLENGE_DURATION,
        nonce: int | None = None,
    ) -> LedgerChannel:
        """Agree a new ledger channel (this wallet side A, the hub side B) and both signatures of version 0.
        Deposits come next (``deposit`` then ``funded``, or off-chain ``confirm_funding``); nothing beyond
        version 0 is signed before."""
        params = ChannelParams(
            self.address, self.hub, asset, challenge_duration, secrets.randbits(128) if nonce is None else nonce
        )
        channel = LedgerChannel.open(
            params, self.ledger_domain, self._signer, self.store, deposit, hub_deposit, **self._chain
        )
        self.channels[channel.channel_id] = channel
        await self._send_open(channel)
        return channel

    async def _send_open(self, channel: LedgerChannel) -> SignedState:
        update = channel.pending()
        assert update is not None and isinstance(update.state, LedgerState) and update.version == 0
        result = await self.call(
            "ledger.propose_open",
            {
                "params": schema.params_to_msg(channel.params),
                "depositA": str(update.state.funding_a),
                "depositB": str(update.state.funding_b),
                "signature": hexstr(update.signature),
            },
        )
        answer = msgspec.json.decode(result, type=schema.OpenResult)
        # Verifies the hub's signature of version 0 before storing it.
        channel.accept(Update(update.state, unhex(answer.signature)))
        assert channel.latest is not None
        return channel.latest

    async def pay(self, channel_id: bytes, amount: int) -> SignedState:
        """Pay ``amount`` to the hub; returns the state both signed. A refusal leaves the proposal in flight
        (``pending()``): send it again (``resume``) or settle on-chain."""
        channel = self.channel(channel_id)
        return await self._send_update(channel, channel.propose_payment(amount))

    async def _send_update(self, channel: LedgerChannel, update: Update) -> SignedState:
        result = await self.call("ledger.update", {"update": schema.update_to_msg(update)})
        answer = msgspec.json.decode(result, type=schema.UpdateResult)
        return channel.complete(update, unhex(answer.signature))  # verifies the countersignature

    async def resume(self) -> list[SignedState]:
        """Send again every proposal in flight (after a restart or a lost connection), then countersign the
        hub's proposals that waited for this wallet (``ledger.proposals``); returns what both sides then hold."""
        done = []
        for channel in self.channels.values():
            update = channel.pending()
            if update is None:
                continue
            if update.version == 0:
                done.append(await self._send_open(channel))
            elif update.release is not None:
                done.append(await self._send_release(channel, update))
            else:
                done.append(await self._send_update(channel, update))
        proposals = msgspec.json.decode(await self.call("ledger.proposals"), type=schema.ProposalsResult)
        for msg in proposals.updates:
            done.append(await self.countersign(msg))
        for virtual in self.virtuals.values():
            update = virtual.pending()
            if update is not None and update.version > 0:
                done.append(await self._send_virtual(virtual, update))
        return done

    # --- the hub's proposals --------------------------------------------------------------------------

    async def countersign(self, msg: schema.UpdateMsg) -> SignedState:
        """Accept a proposal of the hub (every rule checked, the state stored both signed) and send the
        countersignature; a refusal raises before anything is signed."""
        update = schema.update_from_msg(msg)
        channel = self.channel(update.state.channel)
        countersig = channel.accept(update)
        await self.call(
            "ledger.countersign",
            {"channel": msg.state.channel, "version": update.version, "signature": hexstr(countersig)},
        )
        assert channel.latest is not None
        return channel.latest

    async def _answer_proposal(self, params: Any) -> None:
        try:
            msg = msgspec.convert(params, schema.ProposalNotice).update
        except msgspec.ValidationError:
            return  # not a proposal this wallet can read; resume() asks for it again
        try:
            await self.countersign(msg)
        except PerunError as exc:
            self.refused.append((msg, exc))

    # --- on-chain -------------------------------------------------------------------------------------

    def deposit(self, channel_id: bytes, amount: int, sender: Any) -> Any:
        """Deposit ``amount`` for this wallet's side from the Ape account ``sender``; the receipt."""
        return self.channel(channel_id).deposit(amount, sender)

    async def funded(self, channel_id: bytes) -> schema.FundedResult:
        """Tell the hub this wallet's deposit is on-chain; the hub then deposits its side (once)."""
        result = await self.call("ledger.funded", {"channel": hexstr(channel_id)})
        return msgspec.json.decode(result, type=schema.FundedResult)

    async def top_up(self, channel_id: bytes, amount: int) -> SignedState:
        """Account for ``amount`` more deposited on-chain for this wallet's side (``deposit`` first)."""
        channel = self.channel(channel_id)
        return await self._send_update(channel, channel.propose_top_up(amount))

    async def finalize(self, channel_id: bytes) -> SignedState:
        """The final state with the latest balances, both signed: what closes the channel at once."""
        channel = self.channel(channel_id)
        return await self._send_update(channel, channel.propose_final())

    async def close_channel(self, channel_id: bytes) -> str | None:
        """Ask the hub to ``close`` with the final state (``finalize`` first): its tx hash, None if closed."""
        result = await self.call("ledger.close", {"channel": hexstr(channel_id)})
        return msgspec.json.decode(result, type=schema.CloseResult).tx

    def close_on_chain(self, channel_id: bytes, sender: Any) -> Any:
        """Close on-chain without the hub, from the Ape account ``sender``: the final state both signed."""
        return self.channel(channel_id).close(sender)

    async def hub_channels(self) -> list[schema.ChannelEntry]:
        """The hub's view of this wallet's channels (``channel.list``), as information."""
        return msgspec.json.decode(await self.call("channel.list"), type=schema.ListResult).channels
