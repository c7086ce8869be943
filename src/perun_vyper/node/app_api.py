"""The app-channel methods of the hub protocol v1 (docs/API.md 11): a wallet's app channels with the hub,
opened, funded on-chain, moved, closed and listed. The hub countersigns a wallet's move only if the app
accepts it (``AppChannel``: its rules in Python, then the app contract) and the chain could still enforce
it; when its service moves next (the SLA provider's response), the hub's own move comes back in the same
answer, signed and stored first, and waits for ``app.countersign``.

Each method's channel work runs in the server's worker thread under the channel's lock (``AppHub.acting``);
the event loop only waits for it. An answer leaves only after the store committed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..client.app import AppChannel
from ..client.app_hub import AppHub
from ..core.app import AppState
from ..core.codec import hexstr, unhex
from ..core.keys import verify_state
from ..core.protocol import SignedState, Update
from ..errors import InvalidParams, RefusedUpdate
from . import app_schema as msgs
from . import rpc, schema
from .onchain import close_final, fund_hub_side
from .session import Host, Methods, Notice, Session


class AppApi:
    """``app.list``, ``app.propose_open``, ``app.update``, ``app.countersign``, ``app.proposals``,
    ``app.funded`` and ``app.close`` of one ``HubServer``."""

    def __init__(self, server: Host, apps: AppHub | None) -> None:
        self.server = server
        self.apps = apps

    def methods(self) -> Methods:
        return {
            "app.list": (schema.NoParams, self._list, True),
            "app.propose_open": (msgs.AppOpenParams, self._propose_open, True),
            "app.update": (msgs.AppUpdateParams, self._update, True),
            "app.countersign": (schema.CountersignParams, self._countersign, True),
            "app.proposals": (schema.NoParams, self._proposals, True),
            "app.funded": (schema.ChannelRef, self._funded, True),
            "app.close": (schema.ChannelRef, self._close, True),
        }

    def _hub(self) -> AppHub:
        if self.apps is None:
            raise RefusedUpdate(
                "this hub serves no app channels (hub.info lists no appAdjudicator); use a hub whose operator "
                "started it with an AppAdjudicator and at least one app"
            )
        return self.apps

    # --- listing and opening ----------------------------------------------------------------------------

    async def _list(self, session: Session, params: schema.NoParams) -> tuple[Any, Iterable[Notice]]:
        return await self.server.work(self._list_sync, session.address), ()

    def _list_sync(self, user: str) -> msgs.AppListResult:
        channels = self._hub().channels_with(user) if self.apps is not None else []
        return msgs.AppListResult(
            [
                msgs.AppChannelEntry(
                    hexstr(channel.channel_id),
                    msgs.params_to_msg(channel.params),
                    None if channel.latest is None else msgs.signed_to_msg(channel.latest),
                )
                for channel in channels
            ]
        )

    async def _propose_open(self, session: Session, params: msgs.AppOpenParams) -> tuple[Any, Iterable[Notice]]:
        return await self.server.work(self._open_sync, session.address, params), ()

    def _open_sync(self, user: str, msg: msgs.AppOpenParams) -> schema.OpenResult:
        apps = self._hub()
        params = msgs.params_from_msg(msg.params)
        if {params.participant_a, params.participant_b} != {user, apps.address}:
            raise InvalidParams(
                f"an app channel with this hub has two participants, the hub ({apps.address}) and you ({user}), "
                "in either order"
            )
        service = apps.service(params.app)
        self.server.policy.check_terms(params.asset, params.challenge_duration)
        deposits = (int(msg.deposit_a), int(msg.deposit_b))
        hub_side = params.funding_params.side_of(apps.address)
        hub_deposit = deposits[hub_side]
        policy = self.server.policy
        if hub_deposit > policy.collateral:
            raise RefusedUpdate(
                f"the hub's side would hold {hub_deposit}; this hub puts at most {policy.collateral} into one "
                "channel (hub.info policy.collateral)"
            )
        initial = AppState.initial(params.channel_id, *deposits, unhex(msg.app_data))
        service.terms(initial, hub_side)
        signature = unhex(msg.signature)
        # Checked before anything is recorded: an unsigned proposal leaves no trace in the hub's store.
        verify_state(initial, apps.domain, signature, user)
        with self.server.hub.serialised(f"open-app:{user}"):
            channel = apps.find(params.channel_id)
            if channel is None:
                if len(apps.channels_with(user)) >= policy.max_channels_per_user:
                    raise RefusedUpdate(
                        f"you have {policy.max_channels_per_user} app channels with this hub, its maximum per user; "
                        "close one first"
                    )
                channel = apps.open_channel(params, *deposits, initial.app_data)
            with apps.acting(params.channel_id):
                countersig = channel.accept(Update(initial, signature))
        return schema.OpenResult(hexstr(params.channel_id), hexstr(countersig))

    # --- moves ----------------------------------------------------------------------------------------

    async def _update(self, session: Session, params: msgs.AppUpdateParams) -> tuple[Any, Iterable[Notice]]:
        return await self.server.work(self._update_sync, session.address, params.update), ()

    def _update_sync(self, user: str, msg: msgs.AppUpdateMsg) -> msgs.AppUpdateResult:
        channel_id = unhex(msg.state.channel)
        apps = self._hub()
        with apps.acting(channel_id):
            channel = self._channel_of(user, channel_id)
            countersig = channel.accept(msgs.update_from_msg(msg))
        # Our own move, if the service makes one now: signed and committed before it is sent. A repeat of
        # the wallet's update finds it in flight already and sends it again.
        with apps.acting(channel_id):
            pending = channel.pending()
            if pending is None:
                move = apps.answer(channel)
                pending = None if move is None else channel.propose_move(move)
        reply = None if pending is None or pending.version == 0 else msgs.update_to_msg(pending)
        return msgs.AppUpdateResult(hexstr(countersig), reply)

    async def _countersign(self, session: Session, params: schema.CountersignParams) -> tuple[Any, Iterable[Notice]]:
        return await self.server.work(self._countersign_sync, session.address, params), ()

    def _countersign_sync(self, user: str, msg: schema.CountersignParams) -> msgs.AppCountersignResult:
        channel_id = unhex(msg.channel)
        with self._hub().acting(channel_id):
            channel = self._channel_of(user, channel_id)
            update, latest, signature = channel.pending(), channel.latest, unhex(msg.signature)
            signed: SignedState
            if update is not None and update.version == msg.version and msg.version > 0:
                signed = channel.complete(update, signature)  # verifies the countersignature first
            elif latest is not None and latest.state.version == msg.version and msg.version > 0:
                signed = channel.complete(Update(latest.state, b""), signature)  # a repeat: verified
            else:
                held = "none" if latest is None else latest.state.version
                raise RefusedUpdate(
                    f"the hub has no move of version {msg.version} in flight in app channel {msg.channel.lower()} "
                    f"(latest both signed: {held}); app.proposals lists what waits for your countersignature"
                )
        return msgs.AppCountersignResult(msgs.signed_to_msg(signed))

    async def _proposals(self, session: Session, params: schema.NoParams) -> tuple[Any, Iterable[Notice]]:
        return await self.server.work(self._proposals_sync, session.address), ()

    def _proposals_sync(self, user: str) -> msgs.AppProposalsResult:
        channels = self._hub().channels_with(user)
        pending = [channel.pending() for channel in channels]
        return msgs.AppProposalsResult([msgs.update_to_msg(u) for u in pending if u is not None and u.version > 0])

    # --- on-chain funding and closing ------------------------------------------------------------------

    async def _funded(self, session: Session, params: schema.ChannelRef) -> tuple[Any, Iterable[Notice]]:
        return await self.server.work(self._funded_sync, session.address, unhex(params.channel)), ()

    def _funded_sync(self, user: str, channel_id: bytes) -> schema.FundedResult:
        # One worker at a time per channel: two answering app.funded at once must not both deposit.
        with self._hub().acting(channel_id):
            return fund_hub_side(self.server, self._channel_of(user, channel_id), "app")

    async def _close(self, session: Session, params: schema.ChannelRef) -> tuple[Any, Iterable[Notice]]:
        return await self.server.work(self._close_sync, session.address, unhex(params.channel)), ()

    def _close_sync(self, user: str, channel_id: bytes) -> schema.CloseResult:
        with self._hub().acting(channel_id):
            return close_final(self.server, self._channel_of(user, channel_id), "app")

    def _channel_of(self, user: str, channel_id: bytes) -> AppChannel:
        channel = self._hub().find(channel_id)
        if channel is None or channel.peer != user:
            raise rpc.RpcError(
                rpc.NOT_YOUR_CHANNEL,
                f"app channel {hexstr(channel_id)} is not a channel of {user} with this hub; app.list shows yours",
            )
        return channel
