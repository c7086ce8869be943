"""The ledger-channel methods of the hub protocol v1 (docs/API.md): a wallet's channels with the hub,
opened, updated and listed. Each method's channel work runs in the server's worker thread."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eth_utils import to_checksum_address

from ..client import LedgerChannel
from ..core.channel import ChannelParams
from ..core.codec import hexstr, unhex
from ..core.keys import verify_state
from ..core.protocol import Update
from ..core.state import LedgerState
from ..errors import InvalidParams, RefusedUpdate
from . import rpc, schema
from .session import Host, Methods, Notice, Session


class LedgerApi:
    """``channel.list``, ``ledger.propose_open``, ``ledger.update`` of one ``HubServer``."""

    def __init__(self, server: Host) -> None:
        self.server = server

    def methods(self) -> Methods:
        return {
            "channel.list": (schema.NoParams, self._list, True),
            "ledger.propose_open": (schema.ProposeOpenParams, self._propose_open, True),
            "ledger.update": (schema.UpdateParams, self._update, True),
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
        self._check_policy(params)
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
        channel = self.server.hub.channels.get(params.channel_id)
        if channel is None:
            if len(self._channels_of(user)) >= self.server.policy.max_channels_per_user:
                raise RefusedUpdate(
                    f"you have {self.server.policy.max_channels_per_user} channels with this hub, its maximum per "
                    "user; close one first"
                )
            channel = self.server.hub.open_channel(params, self.server.ledger_domain, *deposits)
        # A new channel: our version 0 is in flight and this merges the user's signature into it. A repeat
        # answers with the same countersignature; other deposits for the same parameters are refused.
        countersig = channel.accept(Update(initial, signature))
        return schema.OpenResult(hexstr(params.channel_id), hexstr(countersig))

    def _check_policy(self, params: ChannelParams) -> None:
        policy = self.server.policy
        if params.asset not in {to_checksum_address(asset) for asset in policy.assets}:
            raise RefusedUpdate(f"this hub opens channels in {', '.join(policy.assets)} only, not {params.asset}")
        if not policy.min_challenge_duration <= params.challenge_duration <= policy.max_challenge_duration:
            raise RefusedUpdate(
                f"challenge duration {params.challenge_duration}s is outside this hub's "
                f"[{policy.min_challenge_duration}, {policy.max_challenge_duration}]"
            )

    async def _update(self, session: Session, params: schema.UpdateParams) -> tuple[Any, Iterable[Notice]]:
        assert session.address is not None
        answer, latest, notices = await self.server.work(self._update_sync, session.address, params.update)
        if latest is None:
            return answer, ()
        notice = schema.ChannelUpdated(params.update.state.channel.lower(), schema.signed_to_msg(latest))
        return answer, [(session.address, "channel.updated", notice), *notices]

    def _update_sync(self, user: str, msg: schema.UpdateMsg) -> tuple[schema.UpdateResult, Any, list[Notice]]:
        channel = self._channel_of(user, unhex(msg.state.channel))
        before = channel.latest
        countersig = channel.accept(schema.update_from_msg(msg))
        if channel.latest == before:
            return schema.UpdateResult(hexstr(countersig)), None, []
        assert channel.latest is not None and isinstance(channel.latest.state, LedgerState)
        notices = self.server.after_update(None if before is None else before.state, channel.latest.state)
        return schema.UpdateResult(hexstr(countersig)), channel.latest, notices

    # --- channels (worker thread only) ----------------------------------------------------------------

    def _channels_of(self, user: str) -> list[LedgerChannel]:
        return [channel for channel in self.server.hub.channels.values() if channel.peer == user]

    def _channel_of(self, user: str, channel_id: bytes) -> LedgerChannel:
        channel = self.server.hub.channels.get(channel_id)
        if channel is None or channel.peer != user:
            # The same answer for a channel of another user and for none: ids are not probed this way.
            raise rpc.RpcError(
                rpc.NOT_YOUR_CHANNEL,
                f"channel {hexstr(channel_id)} is not a channel of {user} with this hub; channel.list shows yours",
            )
        return channel
