"""The hub's own watchtower, run inside the service (docs/API.md, ``chain.disputed``; SPEC 10).

Every ``interval`` seconds one ``Watchtower.poll`` round runs in the server's worker thread: the
watchtower reads the hub's store, which only that thread may touch, and sends from the hub's account.
A registration of one of the hub's channels by someone else (an ``Observed`` action) is also pushed to
the wallets of that channel as ``chain.disputed``, so an online wallet learns at once that its channel is
being closed on-chain (it signs nothing more in it, SPEC 11.1, and may answer with its own latest state).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ape.exceptions import ApeException

from ..core.channel import ChannelParams
from ..core.codec import hexstr
from ..core.virtual import VirtualParams
from ..watchtower import Action, Watchtower
from ..watchtower.actions import Observed, PollFailed
from . import schema
from .session import Host


class HubGuard:
    """Runs ``tower`` (a ``Watchtower`` over the hub's store, sending from the hub's account) for
    ``server`` every ``interval`` seconds; each action is passed to ``on_action`` (the operator's log)."""

    def __init__(
        self,
        server: Host,
        tower: Watchtower,
        interval: float,
        on_action: Callable[[Action], None] = lambda action: None,
    ) -> None:
        self.server = server
        self.tower = tower
        self.interval = interval
        self.on_action = on_action

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            await self.round()
            await asyncio.sleep(self.interval)

    async def round(self) -> list[Action]:
        """One watchtower round; a failing node is reported (``PollFailed``) and tried again next round."""
        try:
            actions: list[Action] = await self.server.work(self.tower.poll)
        except (ApeException, OSError) as exc:
            actions = [PollFailed(getattr(exc, "message", None) or str(exc) or type(exc).__name__)]
        for action in actions:
            self.on_action(action)
            if isinstance(action, Observed):
                await self._tell(action)
        return actions

    async def _tell(self, observed: Observed) -> None:
        record = await self.server.work(self.server.hub.store.channel, observed.channel)
        params: Any = record.params
        if isinstance(params, ChannelParams):
            users = [p for p in (params.participant_a, params.participant_b) if p != self.server.hub.address]
        elif isinstance(params, VirtualParams):
            users = [params.alice, params.bob]
        else:  # pragma: no cover - the store holds ledger and virtual channels only
            return
        notice = schema.DisputedNotice(hexstr(observed.channel), observed.version, observed.deadline)
        for user in users:
            await self.server.notify(user, "chain.disputed", notice)
