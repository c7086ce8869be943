"""A ledger channel client: one participant's view of a ledger channel, its off-chain updates (payments,
top-ups, the locks and releases of virtual channels) and its adjudicator calls through Ape."""

from __future__ import annotations

from typing import Any, TypedDict, Unpack

from ..chain import REACTION_TIME, ChainView, LedgerStatus, check_domain, signer_of
from ..chain.accounts import Key
from ..core import calls
from ..core.channel import ChannelParams
from ..core.codec import Domain, hexstr
from ..core.keys import Signer
from ..core.locks import check_leg, close_virtual, lock_for, open_virtual, roles
from ..core.protocol import (
    Update,
    VirtualFinal,
    check_lock,
    check_release,
    classify_ledger_update,
    verify_final,
)
from ..core.state import LedgerState
from ..core.virtual import VirtualParams, VirtualState
from ..errors import RefusedUpdate, StoreError
from ..store import ChannelRecord, ChannelStore
from .funding import Funded
from .party import Party, State


class ChainOptions(TypedDict, total=False):
    """How a ledger channel client uses the chain (``open`` / ``restore`` pass them to the constructor)."""

    adjudicator: Any  # the LedgerAdjudicator as an Ape contract object; without it: off-chain only
    confirmations: int  # how many blocks deep a deposit must be to count as funding
    reaction_time: int  # no virtual state is signed closer than this many seconds to its expiry
    view: ChainView  # a view shared by many channels (a hub's); replaces adjudicator's own view


class LedgerChannel(Funded, Party):
    """One participant's view of a ledger channel: off-chain updates, durable, and the chain calls.

    ``adjudicator`` is the deployed LedgerAdjudicator as an Ape contract object (``project.LedgerAdjudicator
    .at(address)``); without it the client works off-chain only and needs ``confirm_funding(holdings)``
    before it signs anything beyond version 0 (nobody signs a state whose deposits are not on-chain).
    """

    kind = "ledger"
    state_type = LedgerState
    adjudicator_name = "LedgerAdjudicator"

    def __init__(
        self,
        record: ChannelRecord,
        signer: Signer,
        store: ChannelStore,
        adjudicator: Any = None,
        *,
        confirmations: int = 0,
        reaction_time: int = REACTION_TIME,
        view: ChainView | None = None,
    ) -> None:
        params = record.params
        if not isinstance(params, ChannelParams):
            raise StoreError(f"{hexstr(record.channel_id)} is not a ledger channel")
        super().__init__(record, signer, store, (params.participant_a, params.participant_b))
        self.params: ChannelParams = params
        self.adjudicator = adjudicator
        self.chain = view or ChainView(adjudicator, confirmations=confirmations, reaction_time=reaction_time)
        self._funded = (0, 0)  # deposits known to be on-chain

    @classmethod
    def open(
        cls,
        params: ChannelParams,
        domain: Domain,
        key: Key,
        store: ChannelStore,
        deposit_a: int,
        deposit_b: int,
        **chain: Unpack[ChainOptions],
    ) -> LedgerChannel:
        """Record a new channel and our signature of its initial state (each side owns what it will
        deposit). Send ``pending()`` to the counterpart, who opened the same channel, to exchange it."""
        signer = signer_of(key)
        params.side_of(signer.address)
        if chain.get("adjudicator") is not None:
            check_domain(domain, chain["adjudicator"], "ledger")
        record = ChannelRecord(params.channel_id, "ledger", params, domain, signer.address)
        channel = cls(record, signer, store, **chain)
        channel._open(LedgerState.initial(params.channel_id, deposit_a, deposit_b))
        return channel

    @classmethod
    def restore(
        cls,
        store: ChannelStore,
        channel_id: bytes,
        key: Key,
        **chain: Unpack[ChainOptions],
    ) -> LedgerChannel:
        """The channel as the store holds it, with our proposal in flight (if any) in ``pending()``."""
        record, signer = cls._owned(store, channel_id, key)
        channel = cls(record, signer, store, **chain)
        channel._load()
        return channel

    # --- proposals ----------------------------------------------------------------------------------

    def propose_payment(self, amount: int) -> Update:
        """Pay ``amount`` to the counterpart."""
        return self.propose(self.state.pay(amount, self.side))

    def propose_top_up(self, amount: int, side: int | None = None) -> Update:
        """Account for a deposit of ``amount`` made on-chain for ``side`` (ours by default)."""
        return self.propose(self.state.top_up(amount, self.side if side is None else side))

    def propose_final(self) -> Update:
        """The final state with the latest balances: what both sign to close cooperatively."""
        return self.propose(self.state.finalized())

    def propose_lock(self, virtual: VirtualParams) -> Update:
        """Move a virtual channel's funding into a lock (the virtual channel must be in our store)."""
        return self.propose(open_virtual(self.state, self.params, virtual))

    def propose_release(self, virtual_id: bytes) -> Update:
        """Replace a virtual channel's lock by its final outcome, which our store holds signed by both."""
        evidence = self._final_of(virtual_id)
        virtual = self._agreed(virtual_id)
        return self.propose(close_virtual(self.state, self.params, virtual, evidence.state), evidence)

    # --- rules needing the store or the chain -------------------------------------------------------

    def _check(
        self, old: LedgerState, new: LedgerState, proposer: int, release: VirtualFinal | None, *, joint: bool
    ) -> None:
        change, virtual_id = classify_ledger_update(old, new, proposer)
        # Never sign what the chain could no longer enforce (SPEC 11.1): nothing in a registered or
        # concluded channel, and a lock only while its virtual channel can still take states.
        self.chain.ledger(self.channel_id).require_open()
        if change == "lock":
            assert virtual_id is not None
            virtual = self._agreed(virtual_id)
            check_lock(self.params, old, new, virtual)
            self._require_never_locked(virtual)
            self.chain.require_virtual_open(virtual.channel_id, virtual.expiry)
            if self.address == virtual.ingrid and self.channel_id == virtual.ledger_bob:
                self._require_first_lock(virtual)
        elif change == "release":
            assert virtual_id is not None
            virtual = self._agreed(virtual_id)
            if self.address == virtual.ingrid and not joint:
                raise RefusedUpdate(
                    "Ingrid signs a release only holding both releases (Alice's and Bob's) by the same final state; "
                    "pass the two updates to Hub.accept_releases"
                )
            if release is None or release.state.channel != virtual_id:
                raise RefusedUpdate(
                    "a release must carry the final virtual state of the released channel signed by Alice and Bob"
                )
            verify_final(virtual, release, self.store.channel(virtual.channel_id).domain)
            check_release(self.params, old, new, virtual, release.state)
        self._require_funded(new)

    def _chain(self) -> ChainView:
        return self.chain

    def _status(self) -> LedgerStatus:
        return self.chain.ledger(self.channel_id)

    def _funding(self) -> ChannelParams:
        return self.params

    def _agreed(self, virtual_id: bytes) -> VirtualParams:
        """The parameters of a virtual channel this party agreed to (it is in our store)."""
        try:
            record = self.store.channel(virtual_id)
        except StoreError:
            record = None
        if record is None or not isinstance(record.params, VirtualParams):
            raise RefusedUpdate(
                f"virtual channel {hexstr(virtual_id)} was never agreed to by {self.address}; open it first "
                "(VirtualChannel.open for Alice and Bob, Hub.agree_virtual for Ingrid)"
            )
        virtual = record.params
        try:
            roles(self.params, virtual)
            check_leg(self.params, self.domain, virtual)
        except Exception as exc:
            raise RefusedUpdate(
                f"virtual channel {hexstr(virtual_id)} does not use this ledger channel: {exc}"
            ) from exc
        return virtual

    def _require_never_locked(self, virtual: VirtualParams) -> None:
        """A virtual channel is locked at most once in a ledger channel: a lock is signed only while the
        virtual channel is at its initial state. A party whose lock was released holds the final virtual
        state (the release's evidence), and a second lock would be split on-chain by an outcome the release
        already paid out."""
        newest = self.store.newest(virtual.channel_id)
        if newest is not None and newest.state.version > 0:
            raise RefusedUpdate(
                f"virtual channel {hexstr(virtual.channel_id)} is past its initial state (version "
                f"{newest.state.version} stored); a lock is signed only before the first virtual payment, once, "
                "so it is never locked again: open a new virtual channel (another nonce)"
            )

    def _require_first_lock(self, virtual: VirtualParams) -> None:
        first = self.store.latest(virtual.ledger_alice)
        first_params = self.store.channel(virtual.ledger_alice).params
        assert isinstance(first_params, ChannelParams)
        if first is None or lock_for(first_params, virtual) not in first.state.locks:
            raise RefusedUpdate(
                "Ingrid signs the lock in the Ingrid-Bob channel only once the Alice-Ingrid channel holds its lock "
                "(fully signed); lock the Alice side first"
            )
        # The first lock must still be enforceable too: a registered Alice-Ingrid channel may conclude
        # without it while this one pays it.
        self.chain.ledger(virtual.ledger_alice).require_open()

    def _final_of(self, virtual_id: bytes) -> VirtualFinal:
        self._agreed(virtual_id)
        signed = self.store.latest(virtual_id)
        if signed is None or not signed.state.is_final:
            raise RefusedUpdate(
                f"virtual channel {hexstr(virtual_id)} has no final state signed by Alice and Bob in our store; "
                "finalise it first"
            )
        assert isinstance(signed.state, VirtualState) and signed.sig_a is not None and signed.sig_b is not None
        return VirtualFinal(signed.state, signed.sig_a, signed.sig_b)

    def _release_evidence(self, state: State) -> VirtualFinal | None:
        latest = self._latest
        if latest is None or not isinstance(state, LedgerState):
            return None
        assert isinstance(latest.state, LedgerState)
        removed = [lock for lock in latest.state.locks if lock not in state.locks]
        return self._final_of(removed[0].channel) if removed and not state.is_final else None

    # --- chain --------------------------------------------------------------------------------------

    def dispute(self) -> tuple[int, int, bytes]:
        """(registered version, deadline, locks hash ``conclude`` needs); zeros when no dispute is open. The
        locks hash is zero unless the registered state is funded and has locks."""
        version, deadline, locks_hash = self._contract().dispute(self.channel_id)
        return int(version), int(deadline), bytes(locks_hash)

    def close(self, sender: Any) -> Any:
        """Close on-chain with the latest state, which must be final and signed by both."""
        signed = self._require_latest()
        if not signed.state.is_final:
            raise RefusedUpdate("the latest state is not final; propose_final() and complete it before closing")
        return self._contract().close(*calls.close(self.params, signed), sender=sender)

    def register(self, sender: Any) -> Any:
        """Register the latest fully signed state (opens a dispute, or answers a stale one)."""
        signed = self._require_latest()
        if signed.state.is_final:
            raise RefusedUpdate("the latest state is final; close() the channel instead of registering it")
        return self._contract().register(*calls.register(self.params, signed), sender=sender)

    def conclude(self, sender: Any) -> Any:
        """Conclude a dispute after its deadline by the registered outcome. Only a registered state with
        locks (the dispute reports their hash) needs anything from our store: its locks and the parameters
        of each lock's virtual channel."""
        version, _, locks_hash = self.dispute()
        if locks_hash == bytes(32):
            return self._contract().conclude(*calls.conclude(self.params), sender=sender)
        signed = self.store.state(self.channel_id, version)
        if signed is None or not isinstance(signed.state, LedgerState) or signed.state.locks_hash() != locks_hash:
            raise RefusedUpdate(
                f"the locks of the registered state (version {version}) are not in our store; conclude with them"
            )
        virtuals = [self._agreed(lock.channel) for lock in signed.state.locks]
        return self._contract().conclude(*calls.conclude(self.params, signed.state.locks, virtuals), sender=sender)
