"""Ingrid's side (``Hub``) and the orchestration of a virtual channel among three in-process parties.

Ingrid's rules (SPEC 9.6, 9.7), enforced here and in ``LedgerChannel``:
- she agrees to a virtual channel only if its ``validity`` is at most ``max_validity`` seconds ahead
  (until then only Alice and Bob may open a virtual dispute, so her ledger channels could not conclude);
- she signs the lock in the Ingrid-Bob channel only once the Alice-Ingrid channel holds its lock;
- she countersigns the two releases of a virtual channel only holding both, by the same final state
  signed by Alice and Bob, and commits both (and the final state) in one transaction before answering.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Literal

from ..chain import ChainView, signer_of
from ..chain.accounts import Key
from ..core import calls
from ..core.channel import ChannelParams
from ..core.codec import Domain, hexstr
from ..core.locks import check_leg, roles
from ..core.protocol import SignedState, Update, VirtualFinal, verify_final
from ..core.virtual import VirtualParams, VirtualState
from ..errors import InvalidState, RefusedUpdate, StoreError
from ..store import ChannelRecord, ChannelStore
from .ledger import LedgerChannel
from .session import exchange
from .virtual import VirtualChannel


class Hub:
    """Ingrid: her ledger channels with the users (all in one store) and the virtual channels she funds.

    ``clock`` gives the current time in seconds (the chain's timestamp when on-chain, e.g.
    ``lambda: chain.pending_timestamp``); it bounds ``validity``.
    """

    def __init__(
        self,
        key: Key,
        store: ChannelStore,
        *,
        virtual_domain: Domain,
        max_validity: int,
        clock: Callable[[], int] | None = None,
        adjudicator: Any = None,
        confirmations: int = 0,
        max_head_age: float = 0.0,
    ) -> None:
        self.confirmations = confirmations
        # One view of the chain for all of Ingrid's channels: statuses are read once per head for all of
        # them, and with ``max_head_age`` > 0 the head itself at most that often (SPEC 11.1).
        self.chain = ChainView(adjudicator, confirmations=confirmations, max_head_age=max_head_age)
        self._signer = signer_of(key)
        self.store = store
        self.virtual_domain = virtual_domain
        self.max_validity = max_validity
        self.clock = clock or (lambda: int(time.time()))
        self.adjudicator = adjudicator
        self.channels: dict[bytes, LedgerChannel] = {}
        # A shared store may hold millions of channels: each is restored when first used (find).
        for record in () if store.shared else store.channels("ledger"):
            if record.owner == self.address:
                self.channels[record.channel_id] = LedgerChannel.restore(
                    store, record.channel_id, self._signer, adjudicator=adjudicator, view=self.chain
                )

    @property
    def address(self) -> str:
        return self._signer.address

    def open_channel(self, params: ChannelParams, domain: Domain, deposit_a: int, deposit_b: int) -> LedgerChannel:
        """Ingrid's side of a new ledger channel with a user (exchange ``pending()`` with the user)."""
        channel = LedgerChannel.open(
            params,
            domain,
            self._signer,
            self.store,
            deposit_a,
            deposit_b,
            adjudicator=self.adjudicator,
            view=self.chain,
        )
        self._remember(channel)
        return channel

    def channel(self, channel_id: bytes) -> LedgerChannel:
        channel = self.find(channel_id)
        if channel is None:
            raise RefusedUpdate(f"ledger channel {hexstr(channel_id)} is not one of this hub's channels")
        return channel

    def find(self, channel_id: bytes) -> LedgerChannel | None:
        """Ingrid's ledger channel ``channel_id``, or None. In a shared store, a channel another worker
        opened is restored on first use."""
        channel = self.channels.get(channel_id)
        if channel is not None or not self.store.shared:
            return channel
        try:
            record = self.store.channel(channel_id)
        except StoreError:
            return None
        if record.kind != "ledger" or record.owner != self.address:
            return None
        return self._restored(record.channel_id)

    def channels_with(self, peer: str) -> list[LedgerChannel]:
        """Ingrid's ledger channels with ``peer``. In a shared store each is read again from the store
        (another worker may have updated or opened it): the view of this moment, to list, not to sign on."""
        if not self.store.shared:
            return [channel for channel in self.channels.values() if channel.peer == peer]
        found = []
        for record in self.store.channels_of(peer, "ledger"):
            if record.owner != self.address:
                continue
            channel = self.channels.get(record.channel_id)
            if channel is None:
                channel = self._restored(record.channel_id)  # read just now
            else:
                channel.reload()
            found.append(channel)
        return found

    @contextmanager
    def acting(self, *channel_ids: bytes) -> Iterator[None]:
        """Act on these channels (check, sign, write): in a shared store, inside one transaction that
        holds each channel's lock (taken in id order, so two workers never wait on each other in a
        cycle) with each channel's memory read again under it, so a state signed here builds on the
        newest one any worker committed and no two states of one version are ever signed (SPEC 11.2).
        Answer only after the block ends (the transaction committed). In a store of one process, memory is
        the store's mirror and the block adds nothing."""
        if not self.store.shared:
            yield
            return
        with self.store.transaction():
            for channel_id in sorted(set(channel_ids)):
                newest = self.store.lock_channel(channel_id)
                channel = self.find(channel_id)
                # Read again only what moved: the newest version and its signatures say whether it did.
                if channel is not None and channel.mark() != newest:
                    channel.reload()
            yield

    @contextmanager
    def serialised(self, name: str) -> Iterator[None]:
        """Do what the block does one worker at a time, per ``name`` (e.g. opening a user's channels, so
        two workers cannot both admit a channel beyond the per-user maximum): in a shared store, one
        transaction holding the lock ``name``; in a store of one process, nothing to add."""
        if not self.store.shared:
            yield
            return
        with self.store.transaction():
            self.store.lock_name(name)
            yield

    def sending(self) -> AbstractContextManager[None]:
        """Send Ingrid's transactions one worker at a time: workers sharing her account would otherwise
        pick the same nonce. Taken last, after any channel lock (no worker holding it waits for a channel)."""
        return self.serialised(f"send:{self.address}")

    def _restored(self, channel_id: bytes) -> LedgerChannel:
        channel = LedgerChannel.restore(
            self.store, channel_id, self._signer, adjudicator=self.adjudicator, view=self.chain
        )
        self._remember(channel)
        return channel

    def _remember(self, channel: LedgerChannel) -> None:
        # Kept once its record is committed: a channel whose opening rolled back is not served from memory.
        self.store.after_commit(lambda: self.channels.setdefault(channel.channel_id, channel))

    def virtuals(self, user: str | None = None) -> list[VirtualParams]:
        """The virtual channels Ingrid agreed to (those of ``user`` only, if given)."""
        records = self.store.channels("virtual") if user is None else self.store.channels_of(user, "virtual")
        return [record.params for record in records if isinstance(record.params, VirtualParams)]

    def agreed(self, virtual_id: bytes) -> VirtualParams | None:
        """The parameters of the virtual channel ``virtual_id`` if Ingrid agreed to it, else None."""
        try:
            record = self.store.channel(virtual_id)
        except StoreError:
            return None
        return record.params if isinstance(record.params, VirtualParams) else None

    def agree_virtual(self, params: VirtualParams) -> None:
        """Accept to fund a virtual channel over two of her ledger channels; records it (durably), which
        is what lets her ledger channels sign its locks. Refuses a ``validity`` beyond ``max_validity``."""
        if params.ingrid != self.address:
            raise RefusedUpdate(f"the virtual channel's hub is {params.ingrid}, not this hub ({self.address})")
        now = self.clock()
        if params.validity > now + self.max_validity:
            raise RefusedUpdate(
                f"validity {params.validity} is {params.validity - now}s ahead, beyond this hub's maximum of "
                f"{self.max_validity}s (until then only Alice and Bob may open a dispute and Ingrid's collateral "
                f"stays locked); ask for a validity of at most {now + self.max_validity}"
            )
        if params.expiry <= now:
            raise RefusedUpdate("the virtual channel's validity + challenge duration is already past; pick a later one")
        for ledger_id in (params.ledger_alice, params.ledger_bob):
            leg = self.channel(ledger_id)
            try:
                roles(leg.params, params)
                # Neutral in value: both legs hold the virtual channel's asset on the ledger adjudicator
                # and chain it names, so both follow one virtual record (SPEC 9.1).
                check_leg(leg.params, leg.domain, params)
            except InvalidState as exc:
                raise RefusedUpdate(f"ledger channel {hexstr(ledger_id)}: {exc}") from exc
            # A leg that is registered or concluded on-chain can no longer take the lock.
            leg.chain.ledger(ledger_id).require_open()
        self.store.add_channel(ChannelRecord(params.channel_id, "virtual", params, self.virtual_domain, self.address))

    def propose_lock(self, params: VirtualParams, leg: Literal["alice", "bob"]) -> Update:
        """Ingrid's proposal of the lock in the Alice-Ingrid (``"alice"``) or Ingrid-Bob (``"bob"``) channel;
        the Bob side is refused until the Alice side holds its lock."""
        ledger_id = params.ledger_alice if leg == "alice" else params.ledger_bob
        return self.channel(ledger_id).propose_lock(params)

    def accept_releases(self, to_alice_side: Update, to_bob_side: Update) -> tuple[bytes, bytes]:
        """Countersign Alice's release (Alice-Ingrid channel) and Bob's (Ingrid-Bob channel) of the same
        virtual channel by the same final state: both are checked, then both states and the final virtual
        state are committed in one transaction, and only then are the two countersignatures returned."""
        left_final, right_final = to_alice_side.release, to_bob_side.release
        if left_final is None or right_final is None:
            raise RefusedUpdate("both updates must be releases carrying the final virtual state")
        if left_final.state != right_final.state:
            raise RefusedUpdate(
                "the two releases are by different final states; Ingrid releases both locks only by the same one"
            )
        virtual_id = left_final.state.channel
        params = self.agreed(virtual_id)
        if params is None:
            raise RefusedUpdate(f"virtual channel {hexstr(virtual_id)} was never agreed to by this hub")
        if to_alice_side.state.channel != params.ledger_alice or to_bob_side.state.channel != params.ledger_bob:
            raise RefusedUpdate(
                "pass the Alice-Ingrid channel's release first and the Ingrid-Bob channel's second, "
                "both of this virtual channel"
            )
        left, right = self.channel(params.ledger_alice), self.channel(params.ledger_bob)
        left_acceptance = left.prepare_accept(to_alice_side, joint=True)
        right_acceptance = right.prepare_accept(to_bob_side, joint=True)
        with self.store.transaction():
            left.commit(left_acceptance)
            right.commit(right_acceptance)
            self.store.save_state(virtual_id, SignedState(left_final.state, left_final.sig_alice, left_final.sig_bob))
        return left_acceptance.countersig, right_acceptance.countersig

    def register_final(self, evidence: VirtualFinal, virtual_adjudicator: Any, sender: Any) -> Any:
        """Register a final virtual state Alice and Bob signed (anyone may, at any time before expiry): the
        virtual record then settles at once on its outcome, which every lock of the channel follows. What
        Ingrid does when she cannot release both locks off-chain, e.g. because one leg is registered."""
        params = self.agreed(evidence.state.channel)
        if params is None:
            raise RefusedUpdate(f"virtual channel {hexstr(evidence.state.channel)} was never agreed to by this hub")
        if not evidence.state.is_final:
            raise RefusedUpdate("only a final virtual state settles the record at once; this one is not final")
        verify_final(params, evidence, self.virtual_domain)
        return virtual_adjudicator.register(*calls.register_final(params, evidence), sender=sender)

    def final_of(self, virtual_id: bytes) -> VirtualFinal | None:
        """The final virtual state Ingrid holds (to register it if a lock is ever split on-chain)."""
        try:
            signed = self.store.latest(virtual_id)
        except StoreError:
            return None
        if signed is None or not isinstance(signed.state, VirtualState) or signed.sig_a is None or signed.sig_b is None:
            return None
        return VirtualFinal(signed.state, signed.sig_a, signed.sig_b)


def open_virtual_channel(
    hub: Hub,
    alice: LedgerChannel,
    bob: LedgerChannel,
    params: VirtualParams,
    domain: Domain,
    *,
    adjudicator: Any = None,
) -> tuple[VirtualChannel, VirtualChannel]:
    """Open a virtual channel among three in-process parties, in the order SPEC 9.7 requires: Ingrid
    agrees (validity), Alice and Bob sign version 0, then the lock in Alice's ledger channel, then the one
    in Bob's. ``alice`` and ``bob`` are their ledger channels with Ingrid. Returns their virtual channels."""
    if domain != hub.virtual_domain:
        raise RefusedUpdate("the virtual channel must be signed in the hub's virtual adjudicator domain")
    hub.agree_virtual(params)
    virtual_alice = VirtualChannel.open(alice, params, domain, adjudicator=adjudicator)
    virtual_bob = VirtualChannel.open(bob, params, domain, adjudicator=adjudicator)
    exchange(virtual_alice, virtual_bob)
    exchange(hub.channel(params.ledger_alice), alice, hub.propose_lock(params, "alice"))
    exchange(hub.channel(params.ledger_bob), bob, hub.propose_lock(params, "bob"))
    return virtual_alice, virtual_bob


def close_virtual_channel(hub: Hub, alice: VirtualChannel, bob: VirtualChannel) -> VirtualState:
    """Close a virtual channel off-chain (SPEC 9.6): Alice and Bob sign the final state (unless they have),
    each proposes the release in their ledger channel, Ingrid countersigns both together. Returns the
    final virtual state."""
    if not alice.state.is_final:
        exchange(alice, bob, alice.propose_final())
    to_left = alice.ledger.propose_release(alice.channel_id)
    to_right = bob.ledger.propose_release(bob.channel_id)
    sig_left, sig_right = hub.accept_releases(to_left, to_right)
    alice.ledger.complete(to_left, sig_left)
    bob.ledger.complete(to_right, sig_right)
    final = alice.state
    assert isinstance(final, VirtualState)
    return final
