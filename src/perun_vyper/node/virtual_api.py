"""The virtual-channel methods of the hub protocol v1 (docs/API.md, "Virtual channels").

Alice and Bob each have a ledger channel with the hub. Opening a virtual channel between them runs the
order of SPEC 9.7 across the network: Alice proposes (``virtual.propose``: the hub agrees to fund it and
relays the proposal), Bob signs version 0 (``virtual.accept``, relayed), Alice locks her ledger channel
(``ledger.update``), the hub tells Bob (``virtual.locked``), Bob locks his (``ledger.update``; the hub's
ledger channel refuses it before Alice's lock is in), and the hub tells both (``virtual.locked`` with leg
``bob``). Payments go from wallet to wallet through ``virtual.send``: the hub forwards them and never
signs or stores a virtual state. Closing: each endpoint sends its release with the final state
(``virtual.close``); the hub keeps the first in its store (``hold_release``: it survives a restart, and
the second may reach another worker) and countersigns both together when the second arrives
(``Hub.accept_releases``), answering the second caller and notifying the first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eth_utils import to_checksum_address

from ..core.codec import hexstr, unhex
from ..core.keys import verify_state
from ..core.locks import lock_for, roles
from ..core.protocol import Update
from ..core.state import LedgerState
from ..core.virtual import VirtualParams, VirtualState
from ..errors import PerunError, RefusedUpdate
from . import rpc
from . import virtual_schema as vs
from .session import Host, Methods, Notice, Session


class VirtualApi:
    """``virtual.list``, ``virtual.route``, ``virtual.propose``, ``virtual.accept``, ``virtual.send``,
    ``virtual.close``."""

    def __init__(self, server: Host) -> None:
        self.server = server
        # Endpoints (alice, bob) of the virtual channels the hub agreed to, so relaying a message needs no
        # store read; filled in the worker thread, read in the event loop (whole-key dict operations).
        self._endpoints: dict[bytes, tuple[str, str]] = {}

    def methods(self) -> Methods:
        return {
            "virtual.list": (vs.Empty, self._list, True),
            "virtual.route": (vs.RouteParams, self._route, True),
            "virtual.propose": (vs.ProposeVirtualParams, self._propose, True),
            "virtual.accept": (vs.AcceptVirtualParams, self._accept, True),
            "virtual.send": (vs.SendParams, self._send, True),
            "virtual.close": (vs.CloseVirtualParams, self._close, True),
        }

    # --- open -----------------------------------------------------------------------------------------

    async def _list(self, session: Session, msg: vs.Empty) -> tuple[Any, Iterable[Notice]]:
        return await self.server.work(self._list_sync, session.address), ()

    def _list_sync(self, user: str) -> vs.VirtualListResult:
        entries = [
            vs.VirtualEntry(hexstr(params.channel_id), vs.vparams_to_msg(params))
            for params in self.server.hub.virtuals(user)
        ]
        return vs.VirtualListResult(entries)

    async def _route(self, session: Session, msg: vs.RouteParams) -> tuple[Any, Iterable[Notice]]:
        return await self.server.work(self._route_sync, to_checksum_address(msg.peer), msg.asset), ()

    def _route_sync(self, peer: str, asset: str) -> vs.RouteResult:
        hub = self.server.hub
        channels = [
            hexstr(channel.channel_id)
            for channel in hub.channels_with(peer)
            if channel.params.asset.lower() == asset.lower()
            and channel.latest is not None
            and not channel.latest.state.is_final
        ]
        return vs.RouteResult(channels)

    async def _propose(self, session: Session, msg: vs.ProposeVirtualParams) -> tuple[Any, Iterable[Notice]]:
        params = vs.vparams_from_msg(msg.params)
        user = session.address
        if params.alice != user:
            raise RefusedUpdate(f"the proposer of a virtual channel is its Alice: params.alice must be {user}")
        self._require_online(params.bob)
        await self.server.work(self._propose_sync, user, params, unhex(msg.signature))
        notice = vs.VirtualProposed(msg.params, msg.signature)
        return vs.ChannelResult(hexstr(params.channel_id)), [(params.bob, "virtual.proposed", notice)]

    def _propose_sync(self, user: str, params: VirtualParams, signature: bytes) -> None:
        hub = self.server.hub
        # The legs' balances below are read under their locks (several workers: as committed last).
        with hub.acting(params.ledger_alice, params.ledger_bob):
            self._agree(user, params, signature)
        self._endpoints[params.channel_id] = (params.alice, params.bob)

    def _agree(self, user: str, params: VirtualParams, signature: bytes) -> None:
        hub = self.server.hub
        leg = hub.find(params.ledger_alice)
        if leg is None or leg.peer != user:
            raise rpc.RpcError(
                rpc.NOT_YOUR_CHANNEL,
                f"ledgerAlice {hexstr(params.ledger_alice)} is not a channel of {user} with this hub",
            )
        # Checked before the hub records anything: an unsigned proposal leaves no trace.
        verify_state(VirtualState.initial(params), hub.virtual_domain, signature, user)
        if self._agreed(params.channel_id) is None:
            self._require_room(params)
            hub.agree_virtual(params)

    def _require_room(self, params: VirtualParams) -> None:
        """Both legs must hold the locks now (each side's balance at least its part), so that Alice does not
        lock her funds for a channel whose second lock the hub's channel with Bob would then refuse."""
        for ledger_id in (params.ledger_alice, params.ledger_bob):
            leg = self.server.hub.channel(ledger_id)
            if leg.latest is None:
                raise RefusedUpdate(f"ledger channel {hexstr(ledger_id)} holds no signed state yet")
            side_alice, side_bob = roles(leg.params, params)
            state = leg.latest.state
            balances = (state.balance_a, state.balance_b)
            for side, need, name in (
                (side_alice, params.funding_alice, "fundingAlice"),
                (side_bob, params.funding_bob, "fundingBob"),
            ):
                if balances[side] < need:
                    raise RefusedUpdate(
                        f"ledger channel {hexstr(ledger_id)} cannot lock {name} {need}: the side that funds it "
                        f"holds {balances[side]}; ask for less or top up first"
                    )

    async def _accept(self, session: Session, msg: vs.AcceptVirtualParams) -> tuple[Any, Iterable[Notice]]:
        params = await self.server.work(self._accept_sync, session.address, unhex(msg.channel), unhex(msg.signature))
        notice = vs.VirtualAccepted(msg.channel, msg.signature)
        return vs.Empty(), [(params.alice, "virtual.accepted", notice)]

    def _accept_sync(self, user: str, channel: bytes, signature: bytes) -> VirtualParams:
        params = self._agreed(channel)
        if params is None or params.bob != user:
            raise self._not_yours(channel, user)
        verify_state(VirtualState.initial(params), self.server.hub.virtual_domain, signature, user)
        return params

    def lock_notices(self, before: LedgerState | None, after: LedgerState) -> list[Notice]:
        """After the hub countersigned ``after`` in one of its ledger channels: a lock of a virtual channel it
        agreed to that is new in ``after`` is announced to the endpoints that act next (worker thread)."""
        known = set() if before is None else set(before.locks)
        ledger_params = self.server.hub.channel(after.channel).params
        notices: list[Notice] = []
        for lock in after.locks:
            if lock in known:
                continue
            params = self._agreed(lock.channel)
            if params is None:
                continue
            if lock != lock_for(ledger_params, params):
                continue
            leg = "alice" if after.channel == params.ledger_alice else "bob"
            notice = vs.VirtualLocked(hexstr(params.channel_id), leg)
            targets = (params.bob,) if leg == "alice" else (params.alice, params.bob)
            notices += [(target, "virtual.locked", notice) for target in targets]
        return notices

    # --- payments -------------------------------------------------------------------------------------

    async def _send(self, session: Session, msg: vs.SendParams) -> tuple[Any, Iterable[Notice]]:
        if sum(part is not None for part in (msg.update, msg.countersignature, msg.refusal)) != 1:
            raise rpc.RpcError(
                rpc.INVALID_PARAMS, "virtual.send carries exactly one of update, countersignature and refusal"
            )
        channel = unhex(msg.channel)
        if msg.update is not None and msg.update.state.channel.lower() != msg.channel.lower():
            raise rpc.RpcError(rpc.INVALID_PARAMS, "the update's state.channel is not the channel it is sent on")
        user = session.address
        assert user is not None
        endpoints = self._endpoints.get(channel)
        if endpoints is None:
            params = await self.server.work(self._agreed, channel)
            endpoints = None if params is None else (params.alice, params.bob)
        if endpoints is None or user not in endpoints:
            raise self._not_yours(channel, user)
        self._endpoints[channel] = endpoints
        other = endpoints[1] if user == endpoints[0] else endpoints[0]
        self._require_online(other)
        notice = vs.VirtualMessage(msg.channel, user, msg.update, msg.countersignature, msg.refusal)
        return vs.Empty(), [(other, "virtual.message", notice)]

    # --- close ----------------------------------------------------------------------------------------

    async def _close(self, session: Session, msg: vs.CloseVirtualParams) -> tuple[Any, Iterable[Notice]]:
        update = vs.release_from_msg(msg.release)
        signature, notices = await self.server.work(self._close_sync, session.address, update)
        return vs.CloseVirtualResult(None if signature is None else hexstr(signature)), notices

    def _close_sync(self, user: str, update: Update) -> tuple[bytes | None, list[Notice]]:
        hub = self.server.hub
        assert update.release is not None
        virtual_id = update.release.state.channel
        params = self._agreed(virtual_id)
        if params is None or user not in (params.alice, params.bob):
            raise self._not_yours(virtual_id, user)
        leg = "alice" if user == params.alice else "bob"
        ledger_id = params.ledger_alice if leg == "alice" else params.ledger_bob
        if update.state.channel != ledger_id:
            raise RefusedUpdate(
                f"your release goes in your ledger channel of this virtual channel ({hexstr(ledger_id)}), not in "
                f"{hexstr(update.state.channel)}"
            )
        # Both legs and the virtual channel locked (several workers: the two releases may reach two of them).
        with hub.acting(virtual_id, params.ledger_alice, params.ledger_bob):
            # Every check of the release now (signature, the final state signed by both, the split), so a
            # bad one is refused here and never waits for the other endpoint's.
            acceptance = hub.channel(ledger_id).prepare_accept(update, joint=True)
            if acceptance.write == "none":
                return acceptance.countersig, []  # released before: the same answer
            other_leg = "bob" if leg == "alice" else "alice"
            waiting = hub.store.held_releases(virtual_id)
            waiting[leg] = update
            other_ledger = params.ledger_bob if other_leg == "bob" else params.ledger_alice
            if other_leg in waiting:
                try:
                    hub.channel(other_ledger).prepare_accept(waiting[other_leg], joint=True)
                except PerunError:
                    del waiting[other_leg]  # the other release no longer holds; its endpoint sends it again
            if len(waiting) < 2:
                hub.store.drop_releases(virtual_id)
                hub.store.hold_release(virtual_id, leg, update)
                return None, []
            sig_left, sig_right = hub.accept_releases(waiting["alice"], waiting["bob"])
            hub.store.drop_releases(virtual_id)
        other_update = waiting[other_leg]
        other_sig = sig_right if other_leg == "bob" else sig_left
        other = params.bob if other_leg == "bob" else params.alice
        notice = vs.LedgerCountersigned(hexstr(other_update.state.channel), other_update.version, hexstr(other_sig))
        return (sig_left if leg == "alice" else sig_right), [(other, "ledger.countersigned", notice)]

    # --- helpers --------------------------------------------------------------------------------------

    def _agreed(self, channel: bytes) -> VirtualParams | None:
        """The parameters of a virtual channel the hub agreed to (worker thread: reads the store)."""
        return self.server.hub.agreed(channel)

    def _require_online(self, address: str) -> None:
        if not self.server.online(address):
            raise rpc.RpcError(
                rpc.PEER_OFFLINE,
                f"{address} is not connected to this hub; the hub relays only to a connected wallet: retry when "
                "it is online",
            )

    @staticmethod
    def _not_yours(channel: bytes, user: str) -> rpc.RpcError:
        return rpc.RpcError(
            rpc.NOT_YOUR_CHANNEL, f"virtual channel {hexstr(channel)} is not one of {user}'s through this hub"
        )
