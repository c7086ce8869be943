"""Ingrid's app channels with users (docs/SPEC.md 12.7): kept in the hub's store beside her ledger channels,
each an ``AppChannel`` that checks every move against the app before signing, and the services she runs
as a party of an app (her own moves).

Ingrid opens an app channel only for an app she serves (``services``): the service names the app's rules
in Python and, after each move of the user, Ingrid's answer (the SLA provider's response to a request,
say). Her answer is a move like any other: proposed, signed and stored before it is sent, completed when
the user countersigns, and forced on-chain (``AppChannel.force``) if the user never does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from eth_utils import to_canonical_address, to_checksum_address

from ..chain import ChainView
from ..core import sla
from ..core.app import AppParams, AppState
from ..core.codec import Domain, keccak256
from ..errors import InvalidState, RefusedUpdate, StoreError
from .app import AppChannel, Rules
from .hub import Hub


@dataclass(frozen=True)
class AppService:
    """What Ingrid runs for one app: its ``rules`` (checked before the app contract), ``answer(state,
    side)``, her move after the user's (None: no move of hers now), and ``terms(initial, side)``, which
    refuses (``RefusedUpdate``) a new channel whose initial state she will not serve on ``side``."""

    rules: Rules | None
    answer: Callable[[AppState, int], AppState | None]
    terms: Callable[[AppState, int], None] = lambda initial, side: None


def sla_service(response_to: Callable[[bytes], bytes], min_price: int = 0) -> AppService:
    """The SLA app with Ingrid as the provider (side B) only: each request is answered with
    ``response_to(request)`` (32 non-zero bytes); a channel opens with no request pending and a price of
    at least ``min_price`` per request. Her exposure is her bond, bounded by the hub's collateral."""

    def _answer(state: AppState, side: int) -> AppState | None:
        if side != sla.PROVIDER or state.is_final:
            return None
        data = sla.SlaData.decode(state.app_data)
        return sla.respond(state, response_to(data.request)) if data.pending else None

    def _terms(initial: AppState, side: int) -> None:
        if side != sla.PROVIDER:
            raise RefusedUpdate("this hub is the provider of its SLA channels: it takes side B, the client side A")
        try:
            data = sla.SlaData.decode(initial.app_data)
        except InvalidState as exc:
            raise RefusedUpdate(f"the initial app data are not SLA terms: {exc}") from None
        if data.pending or data.request != bytes(32) or data.response != bytes(32):
            raise RefusedUpdate("an SLA channel opens with no request pending and no request or response recorded")
        if data.price < min_price:
            raise RefusedUpdate(f"this hub answers requests for at least {min_price} wei each, not {data.price}")

    return AppService(sla.check, _answer, _terms)


def acknowledgement(provider: str) -> Callable[[bytes], bytes]:
    """The response of an acknowledging provider (``ape run hub``'s SLA service): ``keccak256(request ||
    provider address)``, a receipt that the provider got the request. It proves receipt, nothing more; a
    real service passes its own ``response_to`` to ``sla_service``."""
    address = to_canonical_address(provider)
    return lambda request: keccak256(bytes(request) + address)


class AppHub:
    """Ingrid's app channels: ``adjudicator`` is the AppAdjudicator (an Ape contract object, or None
    off-chain), ``domain`` its EIP-712 domain, ``services`` the apps she serves by address."""

    def __init__(self, hub: Hub, domain: Domain, services: dict[str, AppService], *, adjudicator: Any = None) -> None:
        self.hub = hub
        self.store = hub.store
        self.domain = domain
        self.adjudicator = adjudicator
        self.services = {to_checksum_address(app): service for app, service in services.items()}
        self.chain = ChainView(adjudicator, confirmations=hub.confirmations, max_head_age=hub.chain.max_head_age)
        self.channels: dict[bytes, AppChannel] = {}

    @property
    def address(self) -> str:
        return self.hub.address

    def service(self, app: str) -> AppService:
        service = self.services.get(to_checksum_address(app))
        if service is None:
            served = ", ".join(self.services) or "none"
            raise RefusedUpdate(f"this hub serves the apps {served} only, not {app}")
        return service

    def open_channel(self, params: AppParams, deposit_a: int, deposit_b: int, app_data: bytes) -> AppChannel:
        """Ingrid's side of a new app channel with a user (exchange ``pending()`` with the user)."""
        channel = AppChannel.open(
            params,
            self.domain,
            self.hub._signer,
            self.store,
            deposit_a,
            deposit_b,
            app_data,
            **self._options(params),
        )
        self._remember(channel)
        return channel

    def find(self, channel_id: bytes) -> AppChannel | None:
        """Ingrid's app channel ``channel_id``, or None (restored from the store on first use)."""
        channel = self.channels.get(channel_id)
        if channel is not None:
            return channel
        try:
            record = self.store.channel(channel_id)
        except StoreError:
            return None
        if record.kind != "app" or record.owner != self.address:
            return None
        assert isinstance(record.params, AppParams)
        channel = AppChannel.restore(self.store, channel_id, self.hub._signer, **self._options(record.params))
        self._remember(channel)
        return channel

    def channels_with(self, peer: str) -> list[AppChannel]:
        """Ingrid's app channels with ``peer`` (each read again from a shared store: a view to list)."""
        found = []
        for record in self.store.channels_of(peer, "app"):
            if record.owner != self.address:
                continue
            channel = self.find(record.channel_id)
            if channel is not None:
                if self.store.shared:
                    channel.reload()
                found.append(channel)
        return found

    def owned(self) -> list[AppChannel]:
        """All of Ingrid's app channels (what her watcher guards), each read again from a shared store."""
        found = []
        for record in self.store.channels("app"):
            channel = self.find(record.channel_id) if record.owner == self.address else None
            if channel is not None:
                if self.store.shared:
                    channel.reload()
                found.append(channel)
        return found

    @contextmanager
    def acting(self, channel_id: bytes) -> Iterator[None]:
        """Act on one app channel: in a shared store, under the channel's lock in one transaction with its
        memory read again if another worker moved it (``Hub.acting`` for ledger channels)."""
        if not self.store.shared:
            yield
            return
        with self.store.transaction():
            newest = self.store.lock_channel(channel_id)
            channel = self.channels.get(channel_id)
            if channel is not None and channel.mark() != newest:
                channel.reload()
            yield

    def answer(self, channel: AppChannel) -> AppState | None:
        """Ingrid's move after the latest state (her service decides), or None."""
        if channel.pending() is not None or channel.latest is None:
            return None
        state = channel.app_state
        return self.service(channel.params.app).answer(state, channel.side)

    def _options(self, params: AppParams) -> dict[str, Any]:
        service = self.services.get(params.app)
        return {
            "adjudicator": self.adjudicator,
            "rules": None if service is None else service.rules,
            "view": self.chain,
        }

    def _remember(self, channel: AppChannel) -> None:
        self.store.after_commit(lambda: self.channels.setdefault(channel.channel_id, channel))
