"""The wallet's side of app channels with the hub (docs/API.md 11), mixed into ``HubClient``: open an app
channel, move (the hub's own move comes back in the same answer and is countersigned here after every
check), fund, finalise, close, and resume after a restart. Every state goes through ``AppChannel``:
checked by the app's rules and the app contract, signed and stored before anything is sent."""

from __future__ import annotations

import secrets
from typing import Any

import msgspec

from ..client.app import AppChannel, Rules
from ..core.app import AppParams, AppState
from ..core.codec import Domain, hexstr, unhex
from ..core.constants import ETH, MIN_CHALLENGE_DURATION
from ..core.protocol import SignedState, Update
from ..errors import InvalidParams, RefusedUpdate
from . import app_schema as msgs
from . import schema


class AppWallet:
    """App channels of a ``HubClient``: ``app_domain`` names the AppAdjudicator the wallet trusts (None:
    no app channels), ``app_rules`` the Python rules of each app by address (``perun_vyper.core.sla.check``)."""

    # Provided by HubClient.
    address: str
    store: Any
    _signer: Any
    info: schema.InfoResult | None

    @property
    def hub(self) -> str: ...

    async def call(self, method: str, params: Any = None) -> msgspec.Raw: ...

    def _init_apps(self, app_domain: Domain | None, app_adjudicator: Any, app_rules: dict[str, Rules]) -> None:
        self.app_domain = app_domain
        self._app_options: dict[str, Any] = {"adjudicator": app_adjudicator}
        self.app_rules = dict(app_rules)
        self.app_channels: dict[bytes, AppChannel] = {}
        for record in self.store.channels("app") if app_domain is not None else ():
            if record.owner == self.address:
                self.app_channels[record.channel_id] = AppChannel.restore(
                    self.store, record.channel_id, self._signer, **self._app_kwargs(record.params)
                )

    def _check_app_hub(self, info: schema.InfoResult) -> None:
        """Refuse a hub whose AppAdjudicator is not the one this wallet trusts."""
        if self.app_domain is None:
            return
        theirs = info.app_adjudicator
        if theirs is None or theirs.lower() != self.app_domain.verifying_contract.lower():
            raise InvalidParams(
                f"the hub uses AppAdjudicator {theirs or 'none'}, this wallet {self.app_domain.verifying_contract}; "
                "app states signed for another one are not enforceable"
            )

    def app(self, channel_id: bytes) -> AppChannel:
        try:
            return self.app_channels[channel_id]
        except KeyError:
            raise RefusedUpdate(f"app channel {hexstr(channel_id)} is not in this wallet's store") from None

    def _app_kwargs(self, params: Any) -> dict[str, Any]:
        assert isinstance(params, AppParams)
        return {**self._app_options, "rules": self.app_rules.get(params.app)}

    async def open_app(
        self,
        app: str,
        deposit: int,
        hub_deposit: int,
        app_data: bytes,
        *,
        hub_side: int = 1,
        asset: str = ETH,
        challenge_duration: int = MIN_CHALLENGE_DURATION,
        nonce: int | None = None,
    ) -> AppChannel:
        """Agree a new app channel running ``app`` with the hub (the hub on ``hub_side``, 1 by default: the
        SLA's provider) and both signatures of version 0 with ``app_data``. Deposits come next
        (``app(...).deposit`` then ``app_funded``)."""
        if self.app_domain is None:
            raise InvalidParams("this wallet was made without app_domain; pass Domain.app(chain id, AppAdjudicator)")
        if hub_side not in (0, 1):
            raise InvalidParams(f"hub_side is 0 or 1, not {hub_side}")
        parties = (self.address, self.hub) if hub_side == 1 else (self.hub, self.address)
        deposits = (deposit, hub_deposit) if hub_side == 1 else (hub_deposit, deposit)
        params = AppParams(*parties, app, asset, challenge_duration, secrets.randbits(128) if nonce is None else nonce)
        channel = AppChannel.open(
            params, self.app_domain, self._signer, self.store, *deposits, app_data, **self._app_kwargs(params)
        )
        self.app_channels[channel.channel_id] = channel
        await self._send_app_open(channel)
        return channel

    async def _send_app_open(self, channel: AppChannel) -> SignedState:
        update = channel.pending()
        assert update is not None and isinstance(update.state, AppState) and update.version == 0
        result = await self.call(
            "app.propose_open",
            {
                "params": msgs.params_to_msg(channel.params),
                "depositA": str(update.state.funding_a),
                "depositB": str(update.state.funding_b),
                "appData": hexstr(update.state.app_data),
                "signature": hexstr(update.signature),
            },
        )
        answer = msgspec.json.decode(result, type=schema.OpenResult)
        channel.accept(Update(update.state, unhex(answer.signature)))  # verifies the hub's signature first
        assert channel.latest is not None
        return channel.latest

    async def app_move(self, channel_id: bytes, state: AppState) -> SignedState:
        """Our move to ``state``; when the hub answers with its own move, that one is checked and
        countersigned too. Returns the latest state both signed."""
        channel = self.app(channel_id)
        return await self._send_app_update(channel, channel.propose_move(state))

    async def app_finalize(self, channel_id: bytes) -> SignedState:
        """The final state, both signed: what ``app_close`` puts on-chain."""
        channel = self.app(channel_id)
        return await self._send_app_update(channel, channel.propose_final())

    async def _send_app_update(self, channel: AppChannel, update: Update) -> SignedState:
        result = await self.call("app.update", {"update": msgs.update_to_msg(update)})
        answer = msgspec.json.decode(result, type=msgs.AppUpdateResult)
        signed = channel.complete(update, unhex(answer.signature))  # verifies the countersignature
        if answer.reply is not None:
            signed = await self.app_countersign(answer.reply)
        return signed

    async def app_countersign(self, msg: msgs.AppUpdateMsg) -> SignedState:
        """Accept a move of the hub (every rule checked, stored both signed) and send the countersignature;
        a refusal raises before anything is signed (the hub may then force its move on-chain)."""
        update = msgs.update_from_msg(msg)
        channel = self.app(update.state.channel)
        countersig = channel.accept(update)
        await self.call(
            "app.countersign",
            {"channel": msg.state.channel, "version": update.version, "signature": hexstr(countersig)},
        )
        assert channel.latest is not None
        return channel.latest

    async def app_funded(self, channel_id: bytes) -> schema.FundedResult:
        """Ask the hub to deposit its side once ours is on-chain."""
        self.app(channel_id)
        result = await self.call("app.funded", {"channel": hexstr(channel_id)})
        return msgspec.json.decode(result, type=schema.FundedResult)

    async def app_close(self, channel_id: bytes) -> str | None:
        """Ask the hub to close the channel on-chain with the final state both signed (its transaction)."""
        self.app(channel_id)
        result = await self.call("app.close", {"channel": hexstr(channel_id)})
        return msgspec.json.decode(result, type=schema.CloseResult).tx

    async def app_resume(self) -> list[SignedState]:
        """Send again every app proposal in flight, then countersign the hub's moves that waited."""
        done = []
        for channel in self.app_channels.values():
            update = channel.pending()
            if update is None:
                continue
            done.append(
                await (self._send_app_open(channel) if update.version == 0 else self._send_app_update(channel, update))
            )
        proposals = msgspec.json.decode(await self.call("app.proposals"), type=msgs.AppProposalsResult)
        for msg in proposals.updates:
            done.append(await self.app_countersign(msg))
        return done
