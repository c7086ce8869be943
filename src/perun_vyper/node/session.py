"""What the hub publishes about itself and keeps per connection: its policy for new channels, the
per-connection limits, and a connection's session (login, challenge, counters)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from eth_utils import to_checksum_address
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from ..core.constants import ETH, MAX_CHALLENGE_DURATION, MIN_CHALLENGE_DURATION
from ..errors import RefusedUpdate
from .auth import Challenge

Notice = tuple[str, str, Any]  # (address, method, params): a notification sent after the answer


@dataclass(frozen=True)
class Limits:
    """Per-connection limits (published by ``hub.info``)."""

    max_request_bytes: int = 64 * 1024  # larger text frames are answered with REQUEST_TOO_LARGE
    max_frame_bytes: int = 1024 * 1024  # larger frames close the connection (WebSocket code 1009)
    max_in_flight: int = 16  # requests received and not answered yet
    rate_per_second: float = 50.0  # sustained frames per second (token bucket)
    burst: int = 100  # frames accepted at once before the rate applies
    challenge_seconds: int = 300  # how long a login challenge is valid


@dataclass(frozen=True)
class Policy:
    """What the hub agrees to in a new ledger channel (published by ``hub.info``)."""

    collateral: int  # the most the hub's side of one channel holds at version 0
    assets: tuple[str, ...] = (ETH,)
    min_challenge_duration: int = MIN_CHALLENGE_DURATION
    max_challenge_duration: int = MAX_CHALLENGE_DURATION
    max_channels_per_user: int = 8

    def check_terms(self, asset: str, challenge_duration: int) -> None:
        """Refuse (``RefusedUpdate``) a new channel in an asset or with a challenge duration the hub does
        not offer (ledger and app channels alike)."""
        if asset not in {to_checksum_address(offered) for offered in self.assets}:
            raise RefusedUpdate(f"this hub opens channels in {', '.join(self.assets)} only, not {asset}")
        if not self.min_challenge_duration <= challenge_duration <= self.max_challenge_duration:
            raise RefusedUpdate(
                f"challenge duration {challenge_duration}s is outside this hub's "
                f"[{self.min_challenge_duration}, {self.max_challenge_duration}]"
            )


@dataclass(eq=False)
class Session:
    """One connection: who it acts for (after ``auth.login``), its challenge, its limits' counters."""

    ws: ServerConnection
    tokens: float
    refilled: float
    address: str | None = None
    challenge: Challenge | None = None
    in_flight: int = 0
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def take_token(self, now: float, limits: Limits) -> bool:
        self.tokens = min(limits.burst, self.tokens + (now - self.refilled) * limits.rate_per_second)
        self.refilled = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    async def send(self, frame: bytes) -> None:
        try:
            async with self.send_lock:
                await self.ws.send(frame.decode())
        except ConnectionClosed:
            pass  # the client left; what it asked for is done and committed, it resumes on reconnecting


Handler = Callable[[Session, Any], Awaitable[tuple[Any, Iterable[Notice]]]]
Methods = dict[str, tuple[type, Handler, bool]]  # name -> (params type, handler, needs login)


class Host(Protocol):
    """What a group of methods uses of the server: the hub, its configuration and the worker thread."""

    hub: Any
    ledger_domain: Any
    policy: Policy
    account: Any  # the Ape account the hub sends its transactions from (None: it sends none)
    bus: Any  # what this worker tells the hub's other workers (node/bus.py)

    async def work(self, fn: Callable[..., Any], *args: Any) -> Any: ...

    async def notify(self, address: str, method: str, params: Any) -> bool: ...

    def online(self, address: str) -> bool: ...

    def after_update(self, before: Any, after: Any) -> list[Notice]: ...
