"""The protocol machinery every channel client shares: one party's view of a ledger or virtual channel,
running the off-chain protocol durably.

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

from eth_utils import to_canonical_address

from ..chain import ChainView, signer_of
from ..chain.accounts import Key
from ..core.codec import hexstr
from ..core.keys import Signer, verify
from ..core.protocol import SignedState, Update, VirtualFinal
from ..core.state import LedgerState
from ..core.virtual import VirtualState
from ..errors import InvalidParams, RefusedUpdate, StoreError
from ..store import ChannelRecord, ChannelStore

State = LedgerState | VirtualState


@dataclass(frozen=True)
class Acceptance:
    """An update checked and countersigned by ``Party.prepare_accept``, not yet written: what to store
    (``signed``), how (``write``: a new version, our signature merged into a proposal both made, or
    nothing for a repeat) and what to answer (``countersig``, sent only after ``Party.commit``)."""

    signed: SignedState
    countersig: bytes
    write: Literal["none", "insert", "merge"]


class Party:
    """The protocol machinery shared by ledger and virtual channels.

    Memory mirrors the store and is updated only after the store committed: ``_latest`` is the highest
    fully signed state, ``_pending`` this party's own proposal in flight (signed by itself only).
    """

    kind: ClassVar[Literal["ledger", "virtual"]]
    state_type: ClassVar[type]

    def __init__(self, record: ChannelRecord, signer: Signer, store: ChannelStore, signers: tuple[str, str]) -> None:
        if signer.address not in signers:
            raise InvalidParams(f"{signer.address} is not a signer of channel {hexstr(record.channel_id)}")
        self.record = record
        self.channel_id = record.channel_id
        self.domain = record.domain
        self.store = store
        self._signer = signer
        self.side = signers.index(signer.address)
        self.peer = signers[1 - self.side]
        self._peer = to_canonical_address(self.peer)
        self._latest: SignedState | None = None
        self._pending: SignedState | None = None
        self._pending_digest = b""

    @staticmethod
    def _owned(store: ChannelStore, channel_id: bytes, key: Key) -> tuple[ChannelRecord, Signer]:
        """The stored record of ``channel_id`` and the signer of ``key`` (what ``restore`` starts from),
        refused unless ``key`` owns the channel in that store."""
        signer = signer_of(key)
        record = store.channel(channel_id)
        if record.owner != signer.address:
            raise StoreError(
                f"channel {hexstr(channel_id)} in {store.location} belongs to {record.owner}, not {signer.address}"
            )
        return record, signer

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
        return self.domain.digest(state.struct_hash())

    # --- proposer -----------------------------------------------------------------------------------

    def propose(self, state: State, release: VirtualFinal | None = None) -> Update:
        """Sign ``state`` as the next version, commit the signature, and return the update to send."""
        if self._pending is not None:
            raise RefusedUpdate(
                f"our proposal of version {self._pending.state.version} is still in flight; send pending() "
                "again and complete() it before proposing another update"
            )
        with self._chain().pinned():
            self._check(self._require_latest().state, state, self.side, release, joint=False)
        digest = self.digest(state)
        signature = self._signer.sign(digest)
        signed = self._ordered(state, signature, None)
        if not self.store.insert_state(self.channel_id, signed):
            raise StoreError(
                f"channel {hexstr(self.channel_id)} already stores version {state.version}: another client object "
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
                    verify(self.digest(latest.state), countersig, self._peer)
                return latest  # completed before (a repeat after a restart)
            raise RefusedUpdate(
                f"no proposal of version {update.state.version} with this content is in flight; "
                "only complete the update propose() returned"
            )
        verify(self._pending_digest, countersig, self._peer)
        if not self.store.add_signature(self.channel_id, pending.state.version, 1 - self.side, countersig):
            self.store.save_state(self.channel_id, self._ordered(pending.state, self._own_sig(pending), countersig))
        signed = self._ordered(pending.state, self._own_sig(pending), countersig)
        self._latest, self._pending = signed, None
        return signed

    # --- receiver -----------------------------------------------------------------------------------

    def accept(self, update: Update) -> bytes:
        """Check the counterpart's update, commit the fully signed state, then return our countersignature."""
        acceptance = self.prepare_accept(update)
        self.commit(acceptance)
        return acceptance.countersig

    def prepare_accept(self, update: Update, *, joint: bool = False) -> Acceptance:
        """Phase one of ``accept``: every check, and our countersignature, with nothing written. ``joint``
        says the caller commits this acceptance together with another one in one store transaction (what
        Ingrid does with the two releases of a virtual channel, ``Hub.accept_releases``)."""
        state = update.state
        if not isinstance(state, self.state_type):
            raise RefusedUpdate(f"a {self.kind} channel takes {self.state_type.__name__} updates, got {type(state)}")
        if state.channel != self.channel_id:
            raise RefusedUpdate(
                f"the update is for channel {hexstr(state.channel)}, not {hexstr(self.channel_id)}; "
                "hand it to that channel"
            )
        latest = self._latest
        if latest is not None and state.version <= latest.state.version:
            stored = (
                latest if state.version == latest.state.version else self.store.state(self.channel_id, state.version)
            )
            if stored is not None and stored.state == state:
                # A repeat (the proposer restarted): answer as before, if the proposer did sign this state.
                if self._peer_sig(stored) != update.signature:
                    verify(self.digest(state), update.signature, self._peer)
                return Acceptance(stored, self._own_sig(stored), "none")
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
            verify(self._pending_digest, update.signature, self._peer)
            return Acceptance(
                self._ordered(state, self._own_sig(pending), update.signature), self._own_sig(pending), "merge"
            )
        if latest is None:
            raise RefusedUpdate(
                "this party holds no initial state of the channel; open it (sign version 0) before accepting updates"
            )
        self._revalidate(state)
        with self._chain().pinned():
            self._check(latest.state, state, 1 - self.side, update.release, joint=joint)
        digest = self.digest(state)
        verify(digest, update.signature, self._peer)
        countersig = self._signer.sign(digest)
        return Acceptance(self._ordered(state, countersig, update.signature), countersig, "insert")

    def commit(self, acceptance: Acceptance) -> None:
        """Phase two of ``accept``: write the accepted state; memory follows once the store committed it
        (inside ``store.transaction()``, when the outermost block commits, so several acceptances commit
        together or not at all). Answer with ``acceptance.countersig`` only after this returns."""
        if acceptance.write == "none":
            return
        signed = acceptance.signed
        if acceptance.write == "insert":
            written = self.store.insert_state(self.channel_id, signed)
        else:
            peer_sig = self._peer_sig(signed)
            assert peer_sig is not None
            written = self.store.add_signature(self.channel_id, signed.state.version, 1 - self.side, peer_sig)
        if not written:  # the store already holds the version: the same (a no-op), or save_state raises
            self.store.save_state(self.channel_id, signed)
        self.store.after_commit(lambda: self._adopt(acceptance))

    def _adopt(self, acceptance: Acceptance) -> None:
        self._latest = acceptance.signed
        if acceptance.write == "merge":
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

    def mark(self) -> tuple[int, bool] | None:
        """What this object holds as the channel's newest version (``ChannelStore.mark`` of its memory)."""
        if self._pending is not None:
            return self._pending.state.version, False
        if self._latest is not None:
            return self._latest.state.version, True
        return None

    def reload(self) -> None:
        """Read the channel again from the store (another process sharing it may have moved it on)."""
        self._load()

    def _load(self) -> None:
        """Rebuild memory from the store: the latest fully signed state and our proposal in flight."""
        latest, newest = self.store.tip(self.channel_id)
        self._latest, self._pending, self._pending_digest = latest, None, b""
        if newest is None or newest.fully_signed:
            return
        if latest is not None and newest.state.version <= latest.state.version:
            return
        if (newest.sig_a, newest.sig_b)[self.side] is None:
            raise StoreError(
                f"channel {hexstr(self.channel_id)} version {newest.state.version} holds only the counterpart's "
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
                    f"channel {hexstr(self.channel_id)} is already in {self.store.location}; restore it instead of"
                    " opening"
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

    def _check(self, old: Any, new: Any, proposer: int, release: VirtualFinal | None, *, joint: bool) -> None:
        raise NotImplementedError
