"""The ledger-channel methods of the hub protocol v1 (docs/API.md): a wallet's channels with the hub,
opened, funded on-chain, updated, closed and listed, and the hub's own payments to a wallet (proposed
here, countersigned by the wallet). Each method's channel work, chain calls included, runs in the
server's worker thread; the event loop only waits for it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from ..client import LedgerChannel
from ..core.codec import hexstr, unhex
from ..core.keys import verify_state
from ..core.protocol import SignedState, Update
from ..core.state import LedgerState
from ..errors import InvalidParams, RefusedUpdate, WalletUnavailable
from . import rpc, schema
from .onchain import close_final, fund_hub_side
from .session import Host, Methods, Notice, Session


class LedgerApi:
    """``channel.list``, ``ledger.propose_open``, ``ledger.update``, ``ledger.funded``, ``ledger.close``,
    ``ledger.proposals`` and ``ledger.countersign`` of one ``HubServer``, and the hub's ``pay``."""

    def __init__(self, server: Host) -> None:
        self.server = server
        # The hub's payments waiting for the wallet's countersignature: (channel, version) -> pay()'s future.
        self._answers: dict[tuple[bytes, int], asyncio.Future[SignedState]] = {}
        self._resolving: set[asyncio.Task[None]] = set()  # answers taken by another worker, being read

    def methods(self) -> Methods:
        return {
            "channel.list": (schema.NoParams, self._list, True),
            "ledger.propose_open": (schema.ProposeOpenParams, self._propose_open, True),
            "ledger.update": (schema.UpdateParams, self._update, True),
            "ledger.funded": (schema.ChannelRef, self._funded, True),
            "ledger.close": (schema.ChannelRef, self._close, True),
            "ledger.proposals": (schema.NoParams, self._proposals, True),
            "ledger.countersign": (schema.CountersignParams, self._countersign, True),
        }

    async def _list(self, session: Session, params: schema.NoParams) -> tuple[Any, Iterable[Notice]]:
        return await self.server.work(self._list_sync, session.address), ()

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
        return await self.server.work(self._open_sync, session.address, params), ()

    def _open_sync(self, user: str, msg: schema.ProposeOpenParams) -> schema.OpenResult:
        params = schema.params_from_msg(msg.params)
        if {params.participant_a, params.participant_b} != {user, self.server.hub.address}:
            raise InvalidParams(
                f"a channel with this hub has two participants, the hub ({self.server.hub.address}) and you ({user}), "
                "in either order"
            )
        self.server.policy.check_terms(params.asset, params.challenge_duration)
        deposits = (int(msg.deposit_a), int(msg.deposit_b))
        hub_deposit = deposits[params.side_of(self.server.hub.address)]
        if hub_deposit > self.server.policy.collateral:
            raise RefusedUpdate(
                f"the hub's side would hold {hub_deposit}; this hub puts at most {self.server.policy.collateral} into "
                "one channel (hub.info policy.collateral)"
            )
        initial = LedgerState.initial(params.channel_id, *deposits)
        signature = unhex(msg.signature)
        # Checked before anything is recorded: an unsigned proposal leaves no trace in the hub's store.
        verify_state(initial, self.server.ledger_domain, signature, user)
        hub = self.server.hub
        # Several workers: one opens a user's channels at a time (the count below stays true).
        with hub.serialised(f"open:{user}"):
            channel = hub.find(params.channel_id)
            if channel is None:
                if len(self._channels_of(user)) >= self.server.policy.max_channels_per_user:
                    raise RefusedUpdate(
                        f"you have {self.server.policy.max_channels_per_user} channels with this hub, its maximum "
                        "per user; close one first"
                    )
                channel = hub.open_channel(params, self.server.ledger_domain, *deposits)
            # A new channel: our version 0 is in flight and this merges the user's signature into it. A repeat
            # answers with the same countersignature; other deposits for the same parameters are refused.
            with hub.acting(params.channel_id):
                countersig = channel.accept(Update(initial, signature))
        return schema.OpenResult(hexstr(params.channel_id), hexstr(countersig))

    async def _update(self, session: Session, params: schema.UpdateParams) -> tuple[Any, Iterable[Notice]]:
        assert session.address is not None
        answer, latest, notices = await self.server.work(self._update_sync, session.address, params.update)
        if latest is None:
            return answer, ()
        notice = schema.ChannelUpdated(params.update.state.channel.lower(), schema.signed_to_msg(latest))
        return answer, [(session.address, "channel.updated", notice), *notices]

    def _update_sync(self, user: str, msg: schema.UpdateMsg) -> tuple[schema.UpdateResult, Any, list[Notice]]:
        channel_id = unhex(msg.state.channel)
        with self.server.hub.acting(channel_id):
            channel = self._channel_of(user, channel_id)
            before = channel.latest
            countersig = channel.accept(schema.update_from_msg(msg))
        if channel.latest == before:
            return schema.UpdateResult(hexstr(countersig)), None, []
        assert channel.latest is not None and isinstance(channel.latest.state, LedgerState)
        notices = self.server.after_update(None if before is None else before.state, channel.latest.state)
        return schema.UpdateResult(hexstr(countersig)), channel.latest, notices

    # --- on-chain funding and closing ------------------------------------------------------------------

    async def _funded(self, session: Session, params: schema.ChannelRef) -> tuple[Any, Iterable[Notice]]:
        return await self.server.work(self._funded_sync, session.address, unhex(params.channel)), ()

    def _funded_sync(self, user: str, channel_id: bytes) -> schema.FundedResult:
        # One worker at a time per channel: two answering ledger.funded at once must not both deposit.
        with self.server.hub.acting(channel_id):
            return self._fund(user, channel_id)

    def _fund(self, user: str, channel_id: bytes) -> schema.FundedResult:
        return fund_hub_side(self.server, self._channel_of(user, channel_id), "ledger")

    async def _close(self, session: Session, params: schema.ChannelRef) -> tuple[Any, Iterable[Notice]]:
        return await self.server.work(self._close_sync, session.address, unhex(params.channel)), ()

    def _close_sync(self, user: str, channel_id: bytes) -> schema.CloseResult:
        with self.server.hub.acting(channel_id):
            return self._close_channel(user, channel_id)

    def _close_channel(self, user: str, channel_id: bytes) -> schema.CloseResult:
        return close_final(self.server, self._channel_of(user, channel_id), "ledger")

    # --- the hub pays a wallet ------------------------------------------------------------------------

    async def pay(self, channel_id: bytes, amount: int, timeout: float) -> SignedState:
        """The hub pays ``amount`` to the wallet of ``channel_id``: proposes (signed, stored), pushes
        ``ledger.proposal`` to the wallet's connections and waits for ``ledger.countersign``."""
        update, user = await self.server.work(self._propose_payment_sync, channel_id, amount)
        key = (channel_id, update.version)
        future: asyncio.Future[SignedState] = asyncio.get_running_loop().create_future()
        self._answers[key] = future
        try:
            notice = schema.ProposalNotice(schema.update_to_msg(update))
            if not await self.server.notify(user, "ledger.proposal", notice):
                raise WalletUnavailable(
                    f"the wallet {user} of channel {hexstr(channel_id)} is not connected; the hub's proposal of "
                    f"version {update.version} stays in flight and completes when the wallet logs in and resumes"
                )
            try:
                return await asyncio.wait_for(future, timeout)
            except TimeoutError:
                raise WalletUnavailable(
                    f"the wallet {user} did not countersign version {update.version} of channel "
                    f"{hexstr(channel_id)} within {timeout:g}s; the proposal stays in flight until it resumes"
                ) from None
        finally:
            self._answers.pop(key, None)

    def answered_elsewhere(self, channel_id: bytes, version: int) -> None:
        """Another worker took the wallet's countersignature of our proposal ``version``: the waiting
        ``pay`` reads the state both signed from the store."""
        future = self._answers.get((channel_id, version))
        if future is None or future.done():
            return

        async def resolve() -> None:
            signed = await self.server.work(self.server.hub.store.state, channel_id, version)
            if signed is not None and signed.fully_signed and not future.done():
                future.set_result(signed)

        task = asyncio.ensure_future(resolve())
        self._resolving.add(task)
        task.add_done_callback(self._resolving.discard)

    def _propose_payment_sync(self, channel_id: bytes, amount: int) -> tuple[Update, str]:
        with self.server.hub.acting(channel_id):
            channel = self.server.hub.channel(channel_id)
            update = channel.propose_payment(amount)
        return update, channel.peer

    async def _proposals(self, session: Session, params: schema.NoParams) -> tuple[Any, Iterable[Notice]]:
        return await self.server.work(self._proposals_sync, session.address), ()

    def _proposals_sync(self, user: str) -> schema.ProposalsResult:
        pending = [channel.pending() for channel in self._channels_of(user)]
        # Version 0 is the wallet's own proposal (ledger.propose_open), never the hub's to push.
        return schema.ProposalsResult([schema.update_to_msg(u) for u in pending if u is not None and u.version > 0])

    async def _countersign(self, session: Session, params: schema.CountersignParams) -> tuple[Any, Iterable[Notice]]:
        assert session.address is not None
        signed, changed = await self.server.work(self._countersign_sync, session.address, params)
        future = self._answers.get((unhex(params.channel), params.version))
        if future is not None and not future.done():
            future.set_result(signed)
        elif changed:  # the pay() waiting for it may run in another worker
            await self.server.bus.answered(unhex(params.channel), params.version)
        latest = schema.signed_to_msg(signed)
        notices = [(session.address, "channel.updated", schema.ChannelUpdated(params.channel.lower(), latest))]
        return schema.CountersignResult(latest), notices if changed else ()

    def _countersign_sync(self, user: str, msg: schema.CountersignParams) -> tuple[SignedState, bool]:
        channel_id = unhex(msg.channel)
        with self.server.hub.acting(channel_id):
            return self._countersign_in(self._channel_of(user, channel_id), msg)

    def _countersign_in(self, channel: LedgerChannel, msg: schema.CountersignParams) -> tuple[SignedState, bool]:
        update, latest, signature = channel.pending(), channel.latest, unhex(msg.signature)
        if update is not None and update.version == msg.version:
            return channel.complete(update, signature), True  # verifies the countersignature first
        if latest is not None and latest.state.version == msg.version and msg.version > 0:
            return channel.complete(Update(latest.state, b""), signature), False  # a repeat: verified, same state
        held = "none" if latest is None else latest.state.version
        raise RefusedUpdate(
            f"the hub has no proposal of version {msg.version} in flight in channel {msg.channel.lower()} (latest "
            f"both signed: {held}); ledger.proposals lists what waits for your countersignature"
        )

    # --- channels (worker thread only) ----------------------------------------------------------------

    def _channels_of(self, user: str) -> list[LedgerChannel]:
        return self.server.hub.channels_with(user)

    def _channel_of(self, user: str, channel_id: bytes) -> LedgerChannel:
        channel = self.server.hub.find(channel_id)
        if channel is None or channel.peer != user:
            # The same answer for a channel of another user and for none: ids are not probed this way.
            raise rpc.RpcError(
                rpc.NOT_YOUR_CHANNEL,
                f"channel {hexstr(channel_id)} is not a channel of {user} with this hub; channel.list shows yours",
            )
        return channel
