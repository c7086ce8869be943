"""A wallet's virtual channels through a hub (docs/API.md, "Virtual channels"): ``VirtualWallet``, the part
of ``HubClient`` that opens, pays over and closes virtual channels with another wallet of the same hub,
and answers the other wallet's messages as they arrive.

Every virtual state is signed end to end by Alice and Bob and checked by ``VirtualChannel`` (the rules of
SPEC 9-11, the same as in-process); the hub only relays. What this wallet signs is committed to its store
before the signature leaves, and its own proposals are stored before they are sent, so ``resume`` can send
again whatever was in flight.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import Any

import msgspec

from ..client import LedgerChannel, VirtualChannel
from ..core.codec import Domain, hexstr, unhex
from ..core.constants import ETH, MIN_CHALLENGE_DURATION
from ..core.protocol import SignedState, Update
from ..core.virtual import VirtualParams, VirtualState
from ..errors import HubUnavailable, InvalidParams, PerunError, RefusedUpdate
from ..store import ChannelStore
from . import schema
from . import virtual_schema as vs

log = logging.getLogger(__name__)

AcceptPolicy = Callable[[VirtualParams], bool]


def receive_only(params: VirtualParams) -> bool:
    """The default policy for proposals: accept a virtual channel that locks none of our own funds."""
    return params.funding_bob == 0


class VirtualWallet:
    """Virtual channels of ``HubClient`` (mixed into it; the attributes below are the client's)."""

    address: str
    store: ChannelStore
    timeout: float
    channels: dict[bytes, LedgerChannel]
    virtual_domain: Domain | None
    accept_virtual: AcceptPolicy
    clock: Callable[[], float]
    info: schema.InfoResult | None

    @property
    def hub(self) -> str: ...

    async def call(self, method: str, params: Any = None) -> msgspec.Raw: ...

    def _init_virtual(self) -> None:
        self.virtuals: dict[bytes, VirtualChannel] = {}
        self._expected: dict[tuple[Any, ...], asyncio.Future[Any]] = {}
        self._side_tasks: set[asyncio.Task[Any]] = set()
        for record in self.store.channels("virtual"):
            params = record.params
            if record.owner != self.address or not isinstance(params, VirtualParams):
                continue
            own_ledger = params.ledger_alice if params.alice == self.address else params.ledger_bob
            if own_ledger in self.channels:
                self.virtuals[record.channel_id] = VirtualChannel.restore(self.channels[own_ledger], record.channel_id)

    def virtual(self, channel_id: bytes) -> VirtualChannel:
        try:
            return self.virtuals[channel_id]
        except KeyError:
            raise RefusedUpdate(f"virtual channel {hexstr(channel_id)} is not in this wallet's store") from None

    def _domain(self) -> Domain:
        if self.virtual_domain is None:
            raise InvalidParams(
                "this wallet has no virtual adjudicator configured; pass virtual_domain= to HubClient to use "
                "virtual channels"
            )
        return self.virtual_domain

    # --- as Alice -------------------------------------------------------------------------------------

    async def open_virtual(
        self,
        peer: str,
        amount: int,
        peer_amount: int = 0,
        *,
        validity: int | None = None,
        challenge_duration: int = MIN_CHALLENGE_DURATION,
        nonce: int | None = None,
    ) -> VirtualChannel:
        """Open a virtual channel with ``peer`` (another wallet of this hub, connected): this wallet is Alice
        and puts in ``amount``, the peer ``peer_amount``. Returns once both ledger channels hold its lock, so
        payments can start. ``validity`` defaults to half the hub's maximum ahead."""
        domain = self._domain()
        assert self.info is not None
        asset = ETH
        own = next(
            (ch for ch in self.channels.values() if ch.params.asset == asset and ch.latest and not ch.state.is_final),
            None,
        )
        if own is None:
            raise RefusedUpdate("this wallet has no open ledger channel with the hub to fund a virtual channel from")
        route = msgspec.json.decode(
            await self.call("virtual.route", {"peer": peer, "asset": asset}), type=vs.RouteResult
        )
        if not route.channels:
            raise RefusedUpdate(f"{peer} has no open ledger channel in {asset} with this hub")
        if validity is None:
            validity = int(self.clock()) + self.info.policy.max_validity // 2
        params = VirtualParams(
            self.address,
            peer,
            self.hub,
            own.channel_id,
            unhex(route.channels[0]),
            amount,
            peer_amount,
            validity,
            challenge_duration,
            secrets.randbits(128) if nonce is None else nonce,
            ledger_adjudicator=own.domain.verifying_contract,
            chain_id=own.domain.chain_id,
            asset=asset,
        )
        channel = VirtualChannel.open(own, params, domain)
        self.virtuals[params.channel_id] = channel
        initial = channel.pending()
        assert initial is not None
        accepted = self._expect("accepted", params.channel_id)
        ready = self._expect("ready", params.channel_id)
        await self.call(
            "virtual.propose",
            {"params": vs.vparams_to_msg(params), "signature": hexstr(initial.signature)},
        )
        channel.complete(initial, await self._wait(accepted, f"{peer} to accept the virtual channel"))
        await self._lock(own, params)
        await self._wait(ready, f"{peer} to lock its ledger channel")
        return channel

    async def _lock(self, ledger: LedgerChannel, params: VirtualParams) -> SignedState:
        update = ledger.propose_lock(params)
        result = await self.call("ledger.update", {"update": schema.update_to_msg(update)})
        return ledger.complete(update, unhex(msgspec.json.decode(result, type=schema.UpdateResult).signature))

    # --- both endpoints -------------------------------------------------------------------------------

    async def pay_virtual(self, channel_id: bytes, amount: int) -> SignedState:
        """Pay ``amount`` to the other endpoint of the virtual channel; returns the state both signed. A
        refusal raises ``RefusedUpdate`` with the peer's reason and leaves the proposal in flight."""
        channel = self.virtual(channel_id)
        return await self._send_virtual(channel, channel.propose_payment(amount))

    async def _send_virtual(self, channel: VirtualChannel, update: Update) -> SignedState:
        answer = self._expect("countersig", channel.channel_id, update.version)
        await self.call("virtual.send", {"channel": hexstr(channel.channel_id), "update": vs.vupdate_to_msg(update)})
        signature = await self._wait(answer, "the other endpoint to countersign")
        return channel.complete(update, signature)

    async def close_virtual(self, channel_id: bytes) -> SignedState:
        """Close the virtual channel off-chain (SPEC 9.6): the final state signed by both endpoints, then the
        release in our ledger channel, countersigned by the hub once it holds both endpoints' releases.
        Returns our ledger channel's state after the release."""
        channel = self.virtual(channel_id)
        if not channel.state.is_final:
            await self._send_virtual(channel, channel.propose_final())
        return await self._release(channel)

    async def _release(self, channel: VirtualChannel) -> SignedState:
        ledger = channel.ledger
        pending = ledger.pending()
        update = (
            pending
            if pending is not None and pending.release is not None
            else ledger.propose_release(channel.channel_id)
        )
        return await self._send_release(ledger, update)

    async def _send_release(self, ledger: LedgerChannel, update: Update) -> SignedState:
        countersigned = self._expect("ledger", ledger.channel_id, update.version)
        result = msgspec.json.decode(
            await self.call("virtual.close", {"release": vs.release_to_msg(update)}), type=vs.CloseVirtualResult
        )
        if result.signature is not None:
            self._expected.pop(("ledger", ledger.channel_id, update.version), None)
            return ledger.complete(update, unhex(result.signature))
        await self._wait(countersigned, "the other endpoint's release")
        assert ledger.latest is not None
        return ledger.latest

    # --- incoming (the client's handler task, in arrival order) ---------------------------------------

    def virtual_handlers(self) -> dict[str, Callable[[Any], Any]]:
        return {
            "virtual.proposed": self._on_proposed,
            "virtual.accepted": self._on_accepted,
            "virtual.locked": self._on_locked,
            "virtual.message": self._on_message,
            "ledger.countersigned": self._on_countersigned,
        }

    async def _on_proposed(self, raw: Any) -> None:
        msg = msgspec.convert(raw, vs.VirtualProposed)
        params = vs.vparams_from_msg(msg.params)
        ledger = self.channels.get(params.ledger_bob)
        if params.bob != self.address or params.ingrid != self.hub or ledger is None:
            log.warning("ignored a virtual channel proposal that is not for this wallet's channel with the hub")
            return
        if not self.accept_virtual(params):
            log.info("declined virtual channel %s (accept policy)", hexstr(params.channel_id))
            return
        channel = self.virtuals.get(params.channel_id) or VirtualChannel.open(ledger, params, self._domain())
        self.virtuals[params.channel_id] = channel
        signature = channel.accept(Update(VirtualState.initial(params), unhex(msg.signature)))
        await self.call("virtual.accept", {"channel": hexstr(params.channel_id), "signature": hexstr(signature)})

    async def _on_accepted(self, raw: Any) -> None:
        msg = msgspec.convert(raw, vs.VirtualAccepted)
        self._resolve(("accepted", unhex(msg.channel)), unhex(msg.signature))

    async def _on_locked(self, raw: Any) -> None:
        msg = msgspec.convert(raw, vs.VirtualLocked)
        channel_id = unhex(msg.channel)
        channel = self.virtuals.get(channel_id)
        if channel is None:
            return
        if msg.leg == "bob":
            self._resolve(("ready", channel_id), True)
        elif channel.params.bob == self.address and not channel.ledger_holds_lock():
            await self._lock(channel.ledger, channel.params)

    async def _on_message(self, raw: Any) -> None:
        msg = msgspec.convert(raw, vs.VirtualMessage)
        channel_id = unhex(msg.channel)
        channel = self.virtuals.get(channel_id)
        if msg.countersignature is not None:
            signature = unhex(msg.countersignature.signature)
            self._resolve(("countersig", channel_id, msg.countersignature.version), signature)
            return
        if msg.refusal is not None:
            for key in [key for key in self._expected if key[:2] == ("countersig", channel_id)]:
                self._fail(key, RefusedUpdate(f"{msg.sender} refused the update: {msg.refusal}"))
            return
        if channel is None or msg.update is None:
            return
        reply: dict[str, Any] = {"channel": msg.channel}
        try:
            update = vs.vupdate_from_msg(msg.update)
            signature = channel.accept(update)
            reply["countersignature"] = {"version": update.version, "signature": hexstr(signature)}
        except PerunError as exc:
            reply["refusal"] = str(exc)[:512]
            update = None
        await self.call("virtual.send", reply)
        if update is not None and update.state.is_final:
            self._spawn(self._release(channel))

    async def _on_countersigned(self, raw: Any) -> None:
        msg = msgspec.convert(raw, vs.LedgerCountersigned)
        ledger = self.channels.get(unhex(msg.channel))
        pending = None if ledger is None else ledger.pending()
        if ledger is None or pending is None or pending.version != msg.version:
            return
        ledger.complete(pending, unhex(msg.signature))  # verifies the hub's signature
        self._resolve(("ledger", ledger.channel_id, msg.version), True)

    # --- waiting ----------------------------------------------------------------------------------------

    def _expect(self, *key: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        # A wait may be abandoned (the request before it failed): its failure is then nobody's to report.
        future.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._expected[key] = future
        return future

    def _resolve(self, key: tuple[Any, ...], value: Any) -> None:
        future = self._expected.pop(key, None)
        if future is not None and not future.done():
            future.set_result(value)

    def _fail(self, key: tuple[Any, ...], exc: Exception) -> None:
        future = self._expected.pop(key, None)
        if future is not None and not future.done():
            future.set_exception(exc)

    async def _wait(self, future: asyncio.Future[Any], what: str) -> Any:
        try:
            return await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            raise HubUnavailable(
                f"waited {self.timeout:g}s for {what}; the proposal stays in flight: resume() later"
            ) from None
        finally:
            for key, value in list(self._expected.items()):
                if value is future:
                    del self._expected[key]

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_done)

    def _side_done(self, task: asyncio.Task[Any]) -> None:
        self._side_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("virtual channel background step failed: %s", task.exception())
