"""The hub's own watchtower, run inside the service (docs/API.md, ``chain.disputed``; SPEC 10).

Every ``interval`` seconds one ``Watchtower.poll`` round runs in the server's worker thread: the
watchtower reads the hub's store, which only that thread may touch, and sends from the hub's account.
With several workers sharing a PostgreSQL store, one of them guards at a time (a lease in the store).
A registration of one of the hub's channels by someone else (an ``Observed`` action) is also pushed to
the wallets of that channel as ``chain.disputed``, so an online wallet learns at once that its channel is
being closed on-chain (it signs nothing more in it, SPEC 11.1, and may answer with its own latest state).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import psycopg
from ape.exceptions import ApeException

from ..client.app import AppChannel
from ..client.app_dispute import AppDispute
from ..client.app_hub import AppHub
from ..core.app import AppState
from ..core.channel import ChannelParams
from ..core.codec import hexstr
from ..core.virtual import VirtualParams
from ..watchtower import Action, Watchtower
from ..watchtower.actions import Leading, Observed, PollFailed, StandingBy
from ..watchtower.app import AppWatcher
from . import schema
from .session import Host


class HubGuard:
    """Runs ``tower`` (a ``Watchtower`` over the hub's store, sending from the hub's account) for
    ``server`` every ``interval`` seconds; each action is passed to ``on_action`` (the operator's log).

    Several workers sharing a store: each round first renews this worker's lease (``worker:<id>``, how
    the others know it is alive) and then tries the watchtower's lease (``watchtower``); only its holder
    polls. A holder that dies stops renewing, and the first worker to try after ``lease`` seconds takes
    over, so a dispute waits at most ``lease + interval`` seconds for an answer beyond a single worker's
    ``interval`` (challenge durations are at least an hour, core/constants.py)."""

    def __init__(
        self,
        server: Host,
        tower: Watchtower,
        interval: float,
        on_action: Callable[[Action], None] = lambda action: None,
        *,
        lease: float | None = None,
        apps: AppHub | None = None,
    ) -> None:
        self.server = server
        self.tower = tower
        # The hub's app channels: concluded, refuted, and answered with its services' moves (SPEC 12.7).
        self.app_tower = None if apps is None else AppWatcher(apps.owned, tower.sender, _service_answer(apps))
        self.interval = interval
        self.on_action = on_action
        self.lease = max(3 * interval, 2.0) if lease is None else lease
        if self.lease <= interval:
            raise ValueError(f"the lease ({self.lease:g}s) must outlast a round's interval ({interval:g}s)")
        self.leader: str | None = None  # who held the watchtower's lease at the last round

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            await self.round()
            await asyncio.sleep(self.interval)

    async def round(self) -> list[Action]:
        """One watchtower round; a failing node or database is reported (``PollFailed``) and tried again
        next round."""
        actions: list[Action] = []
        try:
            if self.server.hub.store.shared:
                actions += await self._elect()
                if self.leader != self.server.bus.worker:
                    return await self._report(actions)
            actions += await self.server.work(self._poll)
        except (ApeException, OSError, psycopg.Error) as exc:
            actions.append(PollFailed(getattr(exc, "message", None) or str(exc) or type(exc).__name__))
        return await self._report(actions)

    async def _report(self, actions: list[Action]) -> list[Action]:
        for action in actions:
            self.on_action(action)
            if isinstance(action, Observed):
                await self._tell(action)
        return actions

    async def _elect(self) -> list[Action]:
        worker = self.server.bus.worker
        live, leader = await self.server.work(self._leases, worker)
        self.server.bus.prune(live)
        before, self.leader = self.leader, leader
        if leader == before:
            return []
        if leader == worker:
            return [Leading(worker, self.lease)]
        return [StandingBy(worker, leader or "nobody")]

    def _leases(self, worker: str) -> tuple[list[str], str | None]:
        store = self.server.hub.store
        store.acquire_lease(f"worker:{worker}", worker, self.lease)
        store.acquire_lease("watchtower", worker, self.lease)
        return store.live_holders("worker:"), store.lease_holder("watchtower")

    def _poll(self) -> list[Action]:
        # Workers share Ingrid's account: her transactions go out one worker at a time.
        with self.server.hub.sending():
            actions = self.tower.poll()
            if self.app_tower is not None:
                actions += self.app_tower.poll()
            return actions

    async def _tell(self, observed: Observed) -> None:
        record = await self.server.work(self.server.hub.store.channel, observed.channel)
        params: Any = record.params
        if isinstance(params, ChannelParams):
            users = [p for p in (params.participant_a, params.participant_b) if p != self.server.hub.address]
        elif isinstance(params, VirtualParams):
            users = [params.alice, params.bob]
        else:  # pragma: no cover - only ledger and virtual registrations are observed (app disputes: AppWatcher)
            return
        notice = schema.DisputedNotice(hexstr(observed.channel), observed.version, observed.deadline)
        for user in users:
            await self.server.notify(user, "chain.disputed", notice)


def _service_answer(apps: AppHub) -> Callable[[AppChannel, AppDispute], AppState | None]:
    """The hub's move in a dispute of one of its app channels: what its service for the app answers."""

    def _answer(channel: AppChannel, dispute: AppDispute) -> AppState | None:
        service = apps.services.get(channel.params.app)
        return None if service is None else service.answer(dispute.state, channel.side)

    return _answer
