"""A virtual channel client: Alice's or Bob's view of a virtual channel over their ledger channel with
Ingrid, and its virtual adjudicator call through Ape."""

from __future__ import annotations

from typing import Any

from ..chain import ChainView, check_domain
from ..core import calls
from ..core.codec import Domain, hexstr
from ..core.locks import check_leg, lock_for
from ..core.protocol import Update, VirtualFinal, check_virtual_update
from ..core.virtual import VirtualParams, VirtualState
from ..errors import ChainUnavailable, InvalidParams, InvalidState, RefusedUpdate, StoreError
from ..store import ChannelRecord
from .ledger import LedgerChannel
from .party import Party


class VirtualChannel(Party):
    """Alice's or Bob's view of a virtual channel, over their own ledger channel with Ingrid.

    Virtual states are signed by Alice and Bob (store: sig_a = Alice, sig_b = Bob) in the virtual
    adjudicator's domain. Beyond version 0, a party signs only while its own ledger channel holds the
    virtual channel's lock (SPEC 9.7).
    """

    kind = "virtual"
    state_type = VirtualState

    def __init__(self, record: ChannelRecord, ledger: LedgerChannel, adjudicator: Any = None) -> None:
        params = record.params
        if not isinstance(params, VirtualParams):
            raise StoreError(f"{hexstr(record.channel_id)} is not a virtual channel")
        super().__init__(record, ledger._signer, ledger.store, (params.alice, params.bob))
        own_ledger = (params.ledger_alice, params.ledger_bob)[self.side]
        if ledger.channel_id != own_ledger:
            raise InvalidParams(
                f"{self.address}'s ledger channel for this virtual channel is {hexstr(own_ledger)}, "
                f"not {hexstr(ledger.channel_id)}"
            )
        try:
            check_leg(ledger.params, ledger.domain, params)
        except InvalidState as exc:
            raise InvalidParams(f"the virtual channel cannot be funded by {hexstr(ledger.channel_id)}: {exc}") from exc
        self.params: VirtualParams = params
        self.ledger = ledger
        self.adjudicator = adjudicator

    @classmethod
    def open(
        cls, ledger: LedgerChannel, params: VirtualParams, domain: Domain, *, adjudicator: Any = None
    ) -> VirtualChannel:
        """Record the virtual channel (this is also what lets ``ledger`` accept its lock) and sign its
        initial state. Exchange ``pending()`` with the other endpoint."""
        if adjudicator is not None:
            check_domain(domain, adjudicator, "virtual")
        record = ChannelRecord(params.channel_id, "virtual", params, domain, ledger.address)
        channel = cls(record, ledger, adjudicator)
        channel._open(VirtualState.initial(params))
        return channel

    @classmethod
    def restore(cls, ledger: LedgerChannel, channel_id: bytes, *, adjudicator: Any = None) -> VirtualChannel:
        record = ledger.store.channel(channel_id)
        if record.owner != ledger.address:
            raise StoreError(f"virtual channel {hexstr(channel_id)} belongs to {record.owner}, not {ledger.address}")
        channel = cls(record, ledger, adjudicator)
        channel._load()
        return channel

    def propose_payment(self, amount: int) -> Update:
        return self.propose(self.state.pay(amount, from_alice=self.side == 0))

    def propose_final(self) -> Update:
        return self.propose(self.state.finalized())

    def _check(
        self, old: VirtualState, new: VirtualState, proposer: int, release: VirtualFinal | None, *, joint: bool
    ) -> None:
        check_virtual_update(self.params, old, new, proposer)
        if new.version > 0 and not self.ledger_holds_lock():
            raise RefusedUpdate(
                f"ledger channel {hexstr(self.ledger.channel_id)} does not hold this virtual channel's lock (fully "
                "signed); nothing beyond version 0 is signed before it does"
            )
        # The lock pays by the virtual record only if our ledger channel can still carry it on-chain, and
        # the record can still take this state (SPEC 11.1).
        self.ledger.chain.ledger(self.ledger.channel_id).require_open()
        self.ledger.chain.require_virtual_open(self.channel_id, self.params.expiry)

    def _chain(self) -> ChainView:
        return self.ledger.chain

    def ledger_holds_lock(self) -> bool:
        latest = self.ledger.latest
        return latest is not None and lock_for(self.ledger.params, self.params) in latest.state.locks

    # --- chain --------------------------------------------------------------------------------------

    def register(self, sender: Any) -> Any:
        """Register the latest state Alice and Bob signed with the virtual adjudicator (a final one
        settles at once)."""
        if self.adjudicator is None:
            raise ChainUnavailable("no virtual adjudicator attached; pass adjudicator= to open/restore")
        signed = self._require_latest()
        return self.adjudicator.register(*calls.register(self.params, signed), sender=sender)
