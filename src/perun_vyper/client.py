"""Channel clients: one party's view of a ledger or virtual channel, running the off-chain protocol
durably and talking to the adjudicators through Ape.

Every message is a plain ``Update`` (a state and the proposer's signature); parties in one process are
wired by direct calls (``exchange``), others by any transport that carries the dataclasses.

    proposer                                       receiver
    update = propose(...)    own signature committed
                      ---------- update ---------->
                                                   countersig = accept(update)   both signatures committed
                      <-------- countersig --------
    complete(update, countersig)   both signatures committed

What a crash at any point leaves, and how the parties recover (``restore`` then ``resume``):
- the proposer keeps its signed proposal (``pending()``) and sends the same update again;
- a receiver that already countersigned answers the repeated update with the same countersignature
  (``accept`` is idempotent for an identical update);
- so both end with the same fully signed state, and no state either side signed or received is lost.

At most one proposal is in flight per channel: ``propose`` refuses while ``pending()`` is not None.
Every refusal raises (``RefusedUpdate``, ``InvalidSignature``, ``InvalidState``) before anything is
written or signed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from .channel import ChannelParams
from .eip712 import Domain
from .errors import InvalidParams, InvalidState, PerunError, RefusedUpdate
from .fastpath import Signer, address_bytes, digest_prefix, state_digest, verify_digest
from .locks import check_leg, close_virtual, lock_for, open_virtual, roles
from .onchain import REACTION_TIME, ChainView
from .protocol import (
    Update,
    VirtualFinal,
    check_lock,
    check_release,
    check_virtual_update,
    classify_ledger_update,
)
from .signing import compact
from .state import LedgerState
from .store import ChannelRecord, SignedState, Store, StoreError
from .virtual import VirtualParams, VirtualState

State = LedgerState | VirtualState


class ChainUnavailable(PerunError):
    """A chain operation was asked of a client that has no adjudicator contract attached."""


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


@dataclass(frozen=True)
class _Prepared:
    """An accepted update before it is written: what to store and what to answer."""

    signed: SignedState
    countersig: bytes
    write: Literal["none", "insert", "merge"]


class _Channel:
    """The protocol machinery shared by ledger and virtual channels.

    Memory mirrors the store and is updated only after the store committed: ``_latest`` is the highest
    fully signed state, ``_pending`` this party's own proposal in flight (signed by itself only).
    """

    kind: ClassVar[Literal["ledger", "virtual"]]
    state_type: ClassVar[type]

    def __init__(self, record: ChannelRecord, signer: Signer, store: Store, signers: tuple[str, str]) -> None:
        if signer.address not in signers:
            raise InvalidParams(f"{signer.address} is not a signer of channel {_hex(record.channel_id)}")
        self.record = record
        self.channel_id = record.channel_id
        self.domain = record.domain
        self.store = store
        self._signer = signer
        self.side = signers.index(signer.address)
        self.peer = signers[1 - self.side]
        self._peer = address_bytes(self.peer)
        self._prefix = digest_prefix(record.domain)
        self._latest: SignedState | None = None
        self._pending: SignedState | None = None
        self._pending_digest = b""

    # --- views --------------------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return self._signer.address

    @property
    def latest(self) -> SignedState | None:
        """The highest version both parties signed (None before the initial state is countersigned)."""
        return self._latest

    @property
    def state(self) -> State:
        """The latest fully signed state; refuses before there is one."""
        return self._require_latest().state

    def pending(self) -> Update | None:
        """This party's proposal in flight (to be sent, or sent again after a restart), or None."""
        if self._pending is None:
            return None
        signature = (self._pending.sig_a, self._pending.sig_b)[self.side]
        assert signature is not None
        return Update(self._pending.state, signature, self._release_evidence(self._pending.state))

    def digest(self, state: State) -> bytes:
        """The EIP-712 digest both parties sign for ``state``."""
        return state_digest(self._prefix, state)

    # --- proposer -----------------------------------------------------------------------------------

    def propose(self, state: State, release: VirtualFinal | None = None) -> Update:
        """Sign ``state`` as the next version, commit the signature, and return the update to send."""
        if self._pending is not None:
            raise RefusedUpdate(
                f"our proposal of version {self._pending.state.version} is still in flight; send pending() "
                "again and complete() it before proposing another update"
            )
        with self._chain().pinned():
            self._check(self._require_latest().state, state, self.side, release, hub_pair=False)
        digest = self.digest(state)
        signature = self._signer.sign(digest)
        signed = self._ordered(state, signature, None)
        if not self.store.insert_state(self.channel_id, signed):
            raise StoreError(
                f"channel {_hex(self.channel_id)} already stores version {state.version}: another client object "
                "writes this channel; use one object per channel (restore it)"
            )
        self._pending, self._pending_digest = signed, digest
        return Update(state, signature, release)

    def complete(self, update: Update, countersig: bytes) -> SignedState:
        """Verify the counterpart's signature on our proposal, commit it, and return the signed state."""
        pending = self._pending
        if pending is None or pending.state != update.state:
            latest = self._latest
            if latest is not None and latest.state == update.state:
                if self._peer_sig(latest) != countersig:
                    verify_digest(self.digest(latest.state), countersig, self._peer)
                return latest  # completed before (a repeat after a restart)
            raise RefusedUpdate(
                f"no proposal of version {update.state.version} with this content is in flight; "
                "only complete the update propose() returned"
            )
        verify_digest(self._pending_digest, countersig, self._peer)
        if not self.store.add_signature(self.channel_id, pending.state.version, 1 - self.side, countersig):
            self.store.save_state(self.channel_id, self._ordered(pending.state, self._own_sig(pending), countersig))
        signed = self._ordered(pending.state, self._own_sig(pending), countersig)
        self._latest, self._pending = signed, None
        return signed

    # --- receiver -----------------------------------------------------------------------------------

    def accept(self, update: Update) -> bytes:
        """Check the counterpart's update, commit the fully signed state, then return our countersignature."""
        prepared = self._prepare_accept(update, hub_pair=False)
        self._write(prepared)
        self._adopt(prepared)
        return prepared.countersig

    def _prepare_accept(self, update: Update, *, hub_pair: bool) -> _Prepared:
        state = update.state
        if not isinstance(state, self.state_type):
            raise RefusedUpdate(f"a {self.kind} channel takes {self.state_type.__name__} updates, got {type(state)}")
        if state.channel != self.channel_id:
            raise RefusedUpdate(
                f"the update is for channel {_hex(state.channel)}, not {_hex(self.channel_id)}; hand it to that channel"
            )
        latest = self._latest
        if latest is not None and state.version <= latest.state.version:
            stored = (
                latest if state.version == latest.state.version else self.store.state(self.channel_id, state.version)
            )
            if stored is not None and stored.state == state:
                # A repeat (the proposer restarted): answer as before, if the proposer did sign this state.
                if self._peer_sig(stored) != update.signature:
                    verify_digest(self.digest(state), update.signature, self._peer)
                return _Prepared(stored, self._own_sig(stored), "none")
            raise RefusedUpdate(
                f"version {state.version} is already signed differently (latest fully signed: "
                f"{latest.state.version}); a party never signs two states of one version"
            )
        pending = self._pending
        if pending is not None:
            if pending.state != state:
                raise RefusedUpdate(
                    f"our own proposal of version {pending.state.version} is in flight; the counterpart must "
                    "accept or refuse it (send pending()) before we accept another update"
                )
            # Both proposed the same state (typically the initial state): add the counterpart's signature.
            verify_digest(self._pending_digest, update.signature, self._peer)
            return _Prepared(
                self._ordered(state, self._own_sig(pending), update.signature), self._own_sig(pending), "merge"
            )
        if latest is None:
            raise RefusedUpdate(
                "this party holds no initial state of the channel; open it (sign version 0) before accepting updates"
            )
        self._revalidate(state)
        with self._chain().pinned():
            self._check(latest.state, state, 1 - self.side, update.release, hub_pair=hub_pair)
        digest = self.digest(state)
        verify_digest(digest, update.signature, self._peer)
        countersig = self._signer.sign(digest)
        return _Prepared(self._ordered(state, countersig, update.signature), countersig, "insert")

    def _write(self, prepared: _Prepared) -> None:
        signed = prepared.signed
        if prepared.write == "insert":
            written = self.store.insert_state(self.channel_id, signed)
        elif prepared.write == "merge":
            peer_sig = self._peer_sig(signed)
            assert peer_sig is not None
            written = self.store.add_signature(self.channel_id, signed.state.version, 1 - self.side, peer_sig)
        else:
            return
        if not written:  # the store already holds the version: the same (a no-op), or save_state raises
            self.store.save_state(self.channel_id, signed)

    def _adopt(self, prepared: _Prepared) -> None:
        if prepared.write == "none":
            return
        self._latest = prepared.signed
        if prepared.write == "merge":
            self._pending = None

    # --- helpers ------------------------------------------------------------------------------------

    def _ordered(self, state: State, own: bytes | None, peer: bytes | None) -> SignedState:
        return SignedState(state, own, peer) if self.side == 0 else SignedState(state, peer, own)

    def _own_sig(self, signed: SignedState) -> bytes:
        signature = signed.sig_a if self.side == 0 else signed.sig_b
        assert signature is not None
        return signature

    def _peer_sig(self, signed: SignedState) -> bytes | None:
        return signed.sig_b if self.side == 0 else signed.sig_a

    def _require_latest(self) -> SignedState:
        if self._latest is None:
            raise RefusedUpdate(
                "the initial state is not signed by both parties yet; exchange version 0 (pending()) first"
            )
        return self._latest

    def _load(self) -> None:
        """Rebuild memory from the store: the latest fully signed state and our proposal in flight."""
        latest = self.store.latest(self.channel_id)
        newest = self.store.newest(self.channel_id)
        self._latest, self._pending, self._pending_digest = latest, None, b""
        if newest is None or newest.fully_signed:
            return
        if latest is not None and newest.state.version <= latest.state.version:
            return
        if (newest.sig_a, newest.sig_b)[self.side] is None:
            raise StoreError(
                f"channel {_hex(self.channel_id)} version {newest.state.version} holds only the counterpart's "
                "signature; this client never stores that, so the store was written by something else"
            )
        self._pending, self._pending_digest = newest, self.digest(newest.state)

    def _open(self, initial: State) -> None:
        """Record the channel and our signature of version 0 together (one transaction)."""
        digest = self.digest(initial)
        signed = self._ordered(initial, self._signer.sign(digest), None)
        with self.store.transaction():
            self.store.add_channel(self.record)
            if self.store.newest(self.channel_id) is not None:
                raise StoreError(
                    f"channel {_hex(self.channel_id)} is already in {self.store.path}; restore it instead of opening"
                )
            self.store.insert_state(self.channel_id, signed)
        self._pending, self._pending_digest = signed, digest

    def _revalidate(self, state: State) -> None:
        # A state object may come from anywhere; run its invariants (conservation, bounds) again.
        type(state).__post_init__(state)

    def _release_evidence(self, state: State) -> VirtualFinal | None:
        return None

    def _chain(self) -> ChainView:
        raise NotImplementedError

    def _check(self, old: Any, new: Any, proposer: int, release: VirtualFinal | None, *, hub_pair: bool) -> None:
        raise NotImplementedError


class LedgerChannel(_Channel):
    """One participant's view of a ledger channel: off-chain updates, durable, and the chain calls.

    ``adjudicator`` is the deployed LedgerAdjudicator as an Ape contract object (``project.LedgerAdjudicator
    .at(address)``); without it the client works off-chain only and needs ``confirm_funding(holdings)``
    before it signs anything beyond version 0 (nobody signs a state whose deposits are not on-chain).
    """

    kind = "ledger"
    state_type = LedgerState

    def __init__(
        self,
        record: ChannelRecord,
        signer: Signer,
        store: Store,
        adjudicator: Any = None,
        *,
        confirmations: int = 0,
        reaction_time: int = REACTION_TIME,
    ) -> None:
        params = record.params
        if not isinstance(params, ChannelParams):
            raise StoreError(f"{_hex(record.channel_id)} is not a ledger channel")
        super().__init__(record, signer, store, (params.participant_a, params.participant_b))
        self.params: ChannelParams = params
        self.adjudicator = adjudicator
        self.chain = ChainView(adjudicator, confirmations=confirmations, reaction_time=reaction_time)
        self._funded = (0, 0)  # deposits known to be on-chain

    @classmethod
    def open(
        cls,
        params: ChannelParams,
        domain: Domain,
        key: bytes | str,
        store: Store,
        deposit_a: int,
        deposit_b: int,
        *,
        adjudicator: Any = None,
        confirmations: int = 0,
        reaction_time: int = REACTION_TIME,
    ) -> LedgerChannel:
        """Record a new channel and our signature of its initial state (each side owns what it will
        deposit). Send ``pending()`` to the counterpart, who opened the same channel, to exchange it."""
        signer = Signer(key)
        params.side_of(signer.address)
        record = ChannelRecord(params.channel_id, "ledger", params, domain, signer.address)
        channel = cls(record, signer, store, adjudicator, confirmations=confirmations, reaction_time=reaction_time)
        channel._open(LedgerState.initial(params.channel_id, deposit_a, deposit_b))
        return channel

    @classmethod
    def restore(
        cls,
        store: Store,
        channel_id: bytes,
        key: bytes | str,
        *,
        adjudicator: Any = None,
        confirmations: int = 0,
        reaction_time: int = REACTION_TIME,
    ) -> LedgerChannel:
        """The channel as the store holds it, with our proposal in flight (if any) in ``pending()``."""
        signer = Signer(key)
        record = store.channel(channel_id)
        if record.owner != signer.address:
            raise StoreError(
                f"channel {_hex(channel_id)} in {store.path} belongs to {record.owner}, not {signer.address}"
            )
        channel = cls(record, signer, store, adjudicator, confirmations=confirmations, reaction_time=reaction_time)
        channel._load()
        return channel

    def _load(self) -> None:
        super()._load()
        # We checked the deposits of any state beyond version 0 before signing it (our proposal in flight
        # included), and deposits never decrease before conclusion.
        for signed in (self._latest, self._pending):
            if signed is not None and signed.state.version > 0:
                assert isinstance(signed.state, LedgerState)
                self.confirm_funding((signed.state.funding_a, signed.state.funding_b))

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
        self, old: LedgerState, new: LedgerState, proposer: int, release: VirtualFinal | None, *, hub_pair: bool
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
            if self.address == virtual.ingrid and not hub_pair:
                raise RefusedUpdate(
                    "Ingrid signs a release only holding both releases (Alice's and Bob's) by the same final state; "
                    "pass the two updates to Hub.accept_releases"
                )
            if release is None or release.state.channel != virtual_id:
                raise RefusedUpdate(
                    "a release must carry the final virtual state of the released channel signed by Alice and Bob"
                )
            self._verify_final(virtual, release)
            check_release(self.params, old, new, virtual, release.state)
        self._require_funded(new)

    def _chain(self) -> ChainView:
        return self.chain

    def _agreed(self, virtual_id: bytes) -> VirtualParams:
        """The parameters of a virtual channel this party agreed to (it is in our store)."""
        try:
            record = self.store.channel(virtual_id)
        except StoreError:
            record = None
        if record is None or not isinstance(record.params, VirtualParams):
            raise RefusedUpdate(
                f"virtual channel {_hex(virtual_id)} was never agreed to by {self.address}; open it first "
                "(VirtualChannel.open for Alice and Bob, Hub.agree_virtual for Ingrid)"
            )
        virtual = record.params
        try:
            roles(self.params, virtual)
            check_leg(self.params, self.domain, virtual)
        except Exception as exc:
            raise RefusedUpdate(f"virtual channel {_hex(virtual_id)} does not use this ledger channel: {exc}") from exc
        return virtual

    def _require_never_locked(self, virtual: VirtualParams) -> None:
        """A virtual channel is locked at most once in a ledger channel: a lock is signed only while the
        virtual channel is at its initial state. A party whose lock was released holds the final virtual
        state (the release's evidence), and a second lock would be split on-chain by an outcome the release
        already paid out."""
        newest = self.store.newest(virtual.channel_id)
        if newest is not None and newest.state.version > 0:
            raise RefusedUpdate(
                f"virtual channel {_hex(virtual.channel_id)} is past its initial state (version "
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

    def _verify_final(self, virtual: VirtualParams, evidence: VirtualFinal) -> None:
        final = evidence.state
        if not final.is_final:
            raise RefusedUpdate("release a lock only by a final virtual state; have Alice and Bob sign one")
        if final.balance_alice + final.balance_bob != virtual.total:
            raise RefusedUpdate("the final virtual state does not conserve the virtual channel's funding")
        prefix = digest_prefix(self.store.channel(virtual.channel_id).domain)
        digest = state_digest(prefix, final)
        verify_digest(digest, evidence.sig_alice, address_bytes(virtual.alice))
        verify_digest(digest, evidence.sig_bob, address_bytes(virtual.bob))

    def _final_of(self, virtual_id: bytes) -> VirtualFinal:
        self._agreed(virtual_id)
        signed = self.store.latest(virtual_id)
        if signed is None or not signed.state.is_final:
            raise RefusedUpdate(
                f"virtual channel {_hex(virtual_id)} has no final state signed by Alice and Bob in our store; "
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

    def _require_funded(self, new: LedgerState) -> None:
        """Nobody signs a state beyond version 0 before the deposits it accounts for are on-chain (SPEC 5)."""
        if new.version == 0:
            return
        if self._funded[0] >= new.funding_a and self._funded[1] >= new.funding_b:
            return
        if self.adjudicator is not None:
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
            status = self.chain.ledger(self.channel_id)
            status.require_open()
            holdings = status.deposits
        self._funded = (max(self._funded[0], holdings[0]), max(self._funded[1], holdings[1]))
        return self._funded

    # --- chain --------------------------------------------------------------------------------------

    def _contract(self) -> Any:
        if self.adjudicator is None:
            raise ChainUnavailable(
                "no adjudicator attached; pass adjudicator=project.LedgerAdjudicator.at(address) to open/restore"
            )
        return self.adjudicator

    def holdings(self) -> tuple[int, int, bool]:
        """(deposits of side A, of side B, concluded) on-chain."""
        deposit_a, deposit_b, concluded = self._contract().holdings(self.channel_id)
        return int(deposit_a), int(deposit_b), bool(concluded)

    def dispute(self) -> tuple[int, int, bytes]:
        """(registered version, deadline, locks hash ``conclude`` needs); zeros when no dispute is open. The
        locks hash is zero unless the registered state is funded and has locks."""
        version, deadline, locks_hash = self._contract().dispute(self.channel_id)
        return int(version), int(deadline), bytes(locks_hash)

    def deposit(self, amount: int, sender: Any, side: int | None = None) -> Any:
        """Deposit ``amount`` for ``side`` (ours by default) from the Ape account ``sender``; a token
        channel approves the adjudicator first. Returns the deposit receipt."""
        contract = self._contract()
        side = self.side if side is None else side
        if self.params.is_eth:
            return contract.deposit(self.channel_id, side, value=amount, sender=sender)
        from ape import Contract

        Contract(self.params.asset).approve(contract.address, amount, sender=sender)
        return contract.deposit_token(self.params.as_tuple(), side, amount, sender=sender)

    def close(self, sender: Any) -> Any:
        """Close on-chain with the latest state, which must be final and signed by both."""
        signed = self._require_latest()
        if not signed.state.is_final:
            raise RefusedUpdate("the latest state is not final; propose_final() and complete it before closing")
        return self._contract().close(
            self.params.as_tuple(),
            signed.state.final_tuple(),
            compact(signed.sig_a),
            compact(signed.sig_b),
            sender=sender,
        )

    def register(self, sender: Any) -> Any:
        """Register the latest fully signed state (opens a dispute, or answers a stale one)."""
        signed = self._require_latest()
        if signed.state.is_final:
            raise RefusedUpdate("the latest state is final; close() the channel instead of registering it")
        return self._contract().register(
            self.params.as_tuple(), signed.state.as_tuple(), compact(signed.sig_a), compact(signed.sig_b), sender=sender
        )

    def conclude(self, sender: Any) -> Any:
        """Conclude a dispute after its deadline by the registered outcome. Only a registered state with
        locks (the dispute reports their hash) needs anything from our store: its locks and the parameters
        of each lock's virtual channel."""
        version, _, locks_hash = self.dispute()
        if locks_hash == bytes(32):
            return self._contract().conclude(self.params.as_tuple(), [], [], sender=sender)
        signed = self.store.state(self.channel_id, version)
        if signed is None or not isinstance(signed.state, LedgerState) or signed.state.locks_hash() != locks_hash:
            raise RefusedUpdate(
                f"the locks of the registered state (version {version}) are not in our store; conclude with them"
            )
        virtuals = [self._agreed(lock.channel).as_tuple() for lock in signed.state.locks]
        return self._contract().conclude(self.params.as_tuple(), signed.state.locks_tuple(), virtuals, sender=sender)


class VirtualChannel(_Channel):
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
            raise StoreError(f"{_hex(record.channel_id)} is not a virtual channel")
        super().__init__(record, ledger._signer, ledger.store, (params.alice, params.bob))
        own_ledger = (params.ledger_alice, params.ledger_bob)[self.side]
        if ledger.channel_id != own_ledger:
            raise InvalidParams(
                f"{self.address}'s ledger channel for this virtual channel is {_hex(own_ledger)}, "
                f"not {_hex(ledger.channel_id)}"
            )
        try:
            check_leg(ledger.params, ledger.domain, params)
        except InvalidState as exc:
            raise InvalidParams(f"the virtual channel cannot be funded by {_hex(ledger.channel_id)}: {exc}") from exc
        self.params: VirtualParams = params
        self.ledger = ledger
        self.adjudicator = adjudicator

    @classmethod
    def open(
        cls, ledger: LedgerChannel, params: VirtualParams, domain: Domain, *, adjudicator: Any = None
    ) -> VirtualChannel:
        """Record the virtual channel (this is also what lets ``ledger`` accept its lock) and sign its
        initial state. Exchange ``pending()`` with the other endpoint."""
        record = ChannelRecord(params.channel_id, "virtual", params, domain, ledger.address)
        channel = cls(record, ledger, adjudicator)
        channel._open(VirtualState.initial(params))
        return channel

    @classmethod
    def restore(cls, ledger: LedgerChannel, channel_id: bytes, *, adjudicator: Any = None) -> VirtualChannel:
        record = ledger.store.channel(channel_id)
        if record.owner != ledger.address:
            raise StoreError(f"virtual channel {_hex(channel_id)} belongs to {record.owner}, not {ledger.address}")
        channel = cls(record, ledger, adjudicator)
        channel._load()
        return channel

    def propose_payment(self, amount: int) -> Update:
        return self.propose(self.state.pay(amount, from_alice=self.side == 0))

    def propose_final(self) -> Update:
        return self.propose(self.state.finalized())

    def _check(
        self, old: VirtualState, new: VirtualState, proposer: int, release: VirtualFinal | None, *, hub_pair: bool
    ) -> None:
        check_virtual_update(self.params, old, new, proposer)
        if new.version > 0 and not self.ledger_holds_lock():
            raise RefusedUpdate(
                f"ledger channel {_hex(self.ledger.channel_id)} does not hold this virtual channel's lock (fully "
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
        return self.adjudicator.register(
            self.params.as_tuple(), signed.state.as_tuple(), compact(signed.sig_a), compact(signed.sig_b), sender=sender
        )


def exchange(proposer: _Channel, receiver: _Channel, update: Update | None = None) -> SignedState:
    """Run one update between two parties in this process: ``update`` (default: the proposer's
    ``pending()``) is accepted by the receiver and completed by the proposer."""
    update = update if update is not None else proposer.pending()
    if update is None:
        raise RefusedUpdate("the proposer has no proposal in flight")
    return proposer.complete(update, receiver.accept(update))


def pay(payer: LedgerChannel | VirtualChannel, payee: LedgerChannel | VirtualChannel, amount: int) -> SignedState:
    """One off-chain payment between two in-process parties of the same channel."""
    return exchange(payer, payee, payer.propose_payment(amount))


def resume(first: _Channel, second: _Channel) -> None:
    """After a restart: send each side's proposal in flight again, so both hold the same latest state."""
    for proposer, receiver in ((first, second), (second, first)):
        if proposer.pending() is not None:
            exchange(proposer, receiver)
