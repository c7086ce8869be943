"""The funding rule of every channel with deposits (ledger and app channels), in one place: nobody signs a
state beyond version 0 before the deposits it accounts for are on-chain (SPEC 5, 12.7); and the deposit
itself, in ETH or a token, through the channel's adjudicator."""

from __future__ import annotations

from typing import Any, ClassVar

from ..chain import AppStatus, ChainView, LedgerStatus
from ..core.channel import ChannelParams
from ..errors import ChainUnavailable, RefusedUpdate


class Funded:
    """Mixed into a ``Party`` whose channel holds deposits: ``_status`` reads the channel's on-chain status
    and ``_funding`` names the ledger parameters the deposits are made under."""

    adjudicator_name: ClassVar[str]  # the contract to attach, named in the message when none is
    adjudicator: Any
    chain: ChainView
    channel_id: bytes
    side: int
    _funded: tuple[int, int]  # deposits known to be on-chain
    _latest: Any
    _pending: Any

    def _status(self) -> LedgerStatus | AppStatus:
        raise NotImplementedError

    def _funding(self) -> ChannelParams:
        raise NotImplementedError

    def _load(self) -> None:
        super()._load()  # type: ignore[misc]  # Party's: the latest state and our proposal in flight
        # We checked the deposits of any state beyond version 0 before signing it (our proposal in flight
        # included), and deposits never decrease before conclusion.
        for signed in (self._latest, self._pending):
            if signed is not None and signed.state.version > 0:
                self.confirm_funding((signed.state.funding_a, signed.state.funding_b))

    def _require_funded(self, new: Any) -> None:
        """Refuse a state beyond version 0 whose deposits are not known on-chain (read again if attached)."""
        if new.version == 0:
            return
        if self._funded[0] >= new.funding_a and self._funded[1] >= new.funding_b:
            return
        if self.adjudicator is not None:
            self.chain.refresh()  # a deposit mined since the last head read counts
            self.confirm_funding()
            if self._funded[0] >= new.funding_a and self._funded[1] >= new.funding_b:
                return
        raise RefusedUpdate(
            f"the state accounts for deposits ({new.funding_a}, {new.funding_b}) but only {self._funded} are known "
            "on-chain; deposit first, then call confirm_funding()"
        )

    def confirm_funding(self, holdings: tuple[int, int] | None = None) -> tuple[int, int]:
        """Record the deposits on-chain: read from the adjudicator (``confirmations`` blocks behind the
        head, so a reorg cannot drop them), or given (``holdings``, e.g. from a watcher) when this client
        has no chain connection. Returns them."""
        if holdings is None:
            self._contract()
            status = self._status()
            status.require_open()
            holdings = status.deposits
        self._funded = (max(self._funded[0], holdings[0]), max(self._funded[1], holdings[1]))
        return self._funded

    def _contract(self) -> Any:
        if self.adjudicator is None:
            raise ChainUnavailable(
                f"no adjudicator attached; pass adjudicator=project.{self.adjudicator_name}.at(address) to open/restore"
            )
        return self.adjudicator

    def holdings(self) -> tuple[int, int, bool]:
        """(deposits of side A, of side B, concluded) on-chain."""
        deposit_a, deposit_b, concluded = self._contract().holdings(self.channel_id)
        return int(deposit_a), int(deposit_b), bool(concluded)

    def deposit(self, amount: int, sender: Any, side: int | None = None) -> Any:
        """Deposit ``amount`` for ``side`` (ours by default) from the Ape account ``sender``; a token
        channel approves the adjudicator first. Returns the deposit receipt."""
        contract = self._contract()
        side = self.side if side is None else side
        funding = self._funding()
        if funding.is_eth:
            return contract.deposit(self.channel_id, side, value=amount, sender=sender)
        from ape import Contract

        Contract(funding.asset).approve(contract.address, amount, sender=sender)
        return contract.deposit_token(funding.as_tuple(), side, amount, sender=sender)
