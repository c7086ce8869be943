"""Model and actions of the off-chain client protocol machine (hypothesis wiring: test_client_stateful.py).

No chain: the parties run ``LedgerChannel``, ``VirtualChannel`` and ``Hub`` in this process, each with its
own ``Store`` file in a temporary directory of the example, and take the deposits as made
(``confirm_funding``), as tests/client/conftest.py does. Channels ("links"):

- ``ab``: a ledger channel Alice (A) - Bob (B), always;
- with the hub: ``left`` Alice (A) - Ingrid (B), ``right`` Ingrid (A) - Bob (B), and ``virtual`` Alice -
  Bob over them (``open_virtual_channel``), which can be closed (``close_virtual_channel``).

The network is the model: an update on the wire to the receiver and a countersignature on the wire back
can each be delivered, dropped, or delivered again; the proposer can re-send ``pending()``; any party can
crash (its objects dropped, its store closed) and restart from its file. Honest parties take turns: at
most one proposal is in flight per channel (two crossing proposals would both stay in flight, SPEC 11).
Forged messages (wrong key, flipped bit, other split, version skip, funds toward the proposer, a second
proposal, ...) and conflicting writes to a store must raise the documented exception and leave every store
file (every row, byte for byte) and every client's memory as they were.

The model tracks each channel's balances from completed updates only; the invariants check both parties'
memory and store files against it after every step, up to the one update in flight.

The chain, as the parties are told about it (``ChainView.observe``, SPEC 11.1): in examples with disputes,
a channel can be registered on-chain at any moment with any version both parties fully signed (typically
a stale one), answered with a higher one, and a ledger channel concluded once its latest state is
registered. From then on nobody signs a new state the registration makes unenforceable: every proposal
and every acceptance of a new version there raises ``Unenforceable`` and writes nothing (an update in
flight at the registration included), while what both signed before stays enforceable: each party still
holds a fully signed state at least as new as the registered one. A restarted party is told again.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event
from hypothesis import strategies as st

from perun_vyper import (
    ChannelParams,
    Domain,
    Hub,
    InvalidSignature,
    InvalidState,
    LedgerChannel,
    LedgerState,
    LedgerStatus,
    RefusedUpdate,
    SignedState,
    Store,
    StoreError,
    Unenforceable,
    Update,
    VirtualChannel,
    VirtualParams,
    VirtualState,
    VirtualStatus,
    close_virtual_channel,
    exchange,
    open_virtual,
    open_virtual_channel,
    resume,
)
from perun_vyper.fastpath import Signer, digest_prefix, state_digest
from perun_vyper.signing import verify_state
from tests.stateful import model
from tests.support.constants import E
from tests.support.parties import (
    ALICE,
    ALICE_KEY,
    BOB,
    BOB_KEY,
    INGRID,
    INGRID_KEY,
    LEDGER_DOMAIN,
    MAX_VALIDITY,
    NOW,
    STRANGER_KEY,
    VIRTUAL_DOMAIN,
)

KEYS = {"alice": ALICE_KEY, "bob": BOB_KEY, "ingrid": INGRID_KEY}
FUND_ALICE, FUND_BOB = 3 * 10**17, 10**17
# (party of side 0, party of side 1) of each link; the virtual channel's sides are Alice and Bob.
LINK_PARTIES = {
    "ab": ("alice", "bob"),
    "left": ("alice", "ingrid"),
    "right": ("ingrid", "bob"),
    "virtual": ("alice", "bob"),
}

# Forged updates sent to a receiver, by what they need: a valid next state from the forger, or anything.
NEXT_FORGERIES = ("stranger_key", "own_key", "flipped_signature", "other_split", "version_skip", "toward_proposer")
ANY_FORGERIES = ("rewrite", "wrong_channel", "wrong_type", "repeat_wrong_signature")
# Forged answers sent to a proposer with its proposal in flight.
COUNTERSIG_FORGERIES = ("stranger_key", "own_key", "flipped", "other_split", "other_update", "stale_wrong")
# Forged updates whose state is a valid next one: a receiver stopped by a registration refuses them
# (Unenforceable) before it looks at the signature.
REACHES_CHAIN_CHECK = ("stranger_key", "own_key", "flipped_signature", "other_split")

State = LedgerState | VirtualState


def split_of(state: State) -> tuple[int, int]:
    """(side 0's balance, side 1's balance)."""
    if isinstance(state, LedgerState):
        return state.balance_a, state.balance_b
    return state.balance_alice, state.balance_bob


def with_split(state: State, balance_0: int, balance_1: int, **changes: Any) -> State:
    if isinstance(state, LedgerState):
        return replace(state, balance_a=balance_0, balance_b=balance_1, **changes)
    return replace(state, balance_alice=balance_0, balance_bob=balance_1, **changes)


def moved(balances: tuple[int, int] | list[int], payer: int, amount: int) -> tuple[int, int]:
    """``balances`` after ``payer`` paid ``amount`` to the other side."""
    result = list(balances)
    result[payer] -= amount
    result[1 - payer] += amount
    return result[0], result[1]


def sign(state: State, key: bytes, domain: Domain) -> bytes:
    return Signer(key).sign(state_digest(digest_prefix(domain), state))


def flip(signature: bytes, index: int, bit: int) -> bytes:
    flipped = bytearray(signature)
    flipped[index] ^= 1 << bit
    return bytes(flipped)


@dataclass
class Flight:
    """A proposal in flight and the messages about it on the wire."""

    proposer: int
    update: Update
    expected: tuple[int, int]  # the balances the model expects it to carry
    final: bool
    to_receiver: Update | None  # the update on the wire (None: dropped or delivered)
    countersig: bytes | None = None  # the receiver's answer, once it accepted
    to_proposer: bytes | None = None  # the answer on the wire


@dataclass
class Registration:
    """What the chain says about one link: the registered state (both parties signed it), and whether
    the ledger channel concluded since."""

    state: State
    deadline: int
    concluded: bool = False

    @property
    def version(self) -> int:
        return self.state.version


@dataclass
class Link:
    """The model of one channel: what both parties agreed to, from completed updates only."""

    name: str
    kind: str  # "ledger" or "virtual"
    channel_id: bytes
    domain: Domain
    signers: tuple[str, str]
    total: int
    balances: tuple[int, int]
    locked: int = 0
    version: int = 0
    final: bool = False
    flight: Flight | None = None
    registration: Registration | None = None

    @property
    def parties(self) -> tuple[str, str]:
        return LINK_PARTIES[self.name]


class ClientMachine:
    """Parties, their stores, the model, and every action and check (rules in test_client_stateful.py)."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="perun-client-machine-"))
        self.stores: dict[str, Store] = {}
        self.readers: dict[str, sqlite3.Connection] = {}  # read-only connections to the store files
        self.ends: dict[str, list[Any]] = {}  # link -> [side 0's client object, side 1's]
        self.links: dict[str, Link] = {}
        self.hub: Hub | None = None
        self.virtual_params: VirtualParams | None = None
        self.released = False  # the virtual channel's locks are released (it is closed)
        self.completed: dict[str, list[tuple[int, Update, bytes]]] = {}  # link -> (proposer, update, countersig)
        self.seen: dict[tuple[str, bytes], list[SignedState]] = {}  # a store's history of a channel, last check
        self.verified: set[tuple[bytes, SignedState]] = set()  # signed states whose two signatures verify
        self.disputes = False  # whether this example registers channels on-chain
        # (party, link) -> the newest version the party had signed there when a registration stopped it
        # from signing on that link: it never signs a newer one.
        self.sign_bounds: dict[tuple[str, str], int] = {}

    # --- setup, crash and restart -------------------------------------------------------------------

    def do_setup(self, with_hub: bool, disputes: bool = False) -> None:
        self.disputes = disputes
        for party in ("alice", "bob", "ingrid") if with_hub else ("alice", "bob"):
            self.stores[party] = Store(self.directory / f"{party}.db")
            uri = f"file:{self.directory / f'{party}.db'}?mode=ro"
            self.readers[party] = sqlite3.connect(uri, uri=True, isolation_level=None)
        params = ChannelParams(ALICE, BOB, nonce=1)
        alice = LedgerChannel.open(params, LEDGER_DOMAIN, ALICE_KEY, self.stores["alice"], E, E)
        bob = LedgerChannel.open(params, LEDGER_DOMAIN, BOB_KEY, self.stores["bob"], E, E)
        exchange(alice, bob)
        self.ends["ab"] = [alice, bob]
        self.links["ab"] = Link("ab", "ledger", params.channel_id, LEDGER_DOMAIN, (ALICE, BOB), 2 * E, (E, E))
        if with_hub:
            self._setup_hub()
        for link in self.links.values():
            self.completed[link.name] = []
            if link.kind == "ledger":
                for end in self.ends[link.name]:
                    end.confirm_funding((E, E))
        if with_hub:
            self._open_virtual()
        event(f"hub: {with_hub}, disputes: {disputes}")

    def _setup_hub(self) -> None:
        self.hub = self._hub(self.stores["ingrid"])
        for name, params, user_key, user_store in (
            ("left", ChannelParams(ALICE, INGRID, nonce=2), ALICE_KEY, self.stores["alice"]),
            ("right", ChannelParams(INGRID, BOB, nonce=3), BOB_KEY, self.stores["bob"]),
        ):
            user = LedgerChannel.open(params, LEDGER_DOMAIN, user_key, user_store, E, E)
            ingrid = self.hub.open_channel(params, LEDGER_DOMAIN, E, E)
            exchange(user, ingrid)
            self.ends[name] = [user, ingrid] if name == "left" else [ingrid, user]
            signers = (params.participant_a, params.participant_b)
            self.links[name] = Link(name, "ledger", params.channel_id, LEDGER_DOMAIN, signers, 2 * E, (E, E))

    def _open_virtual(self) -> None:
        left, right = self.links["left"], self.links["right"]
        params = VirtualParams(
            ALICE,
            BOB,
            INGRID,
            left.channel_id,
            right.channel_id,
            FUND_ALICE,
            FUND_BOB,
            NOW + 86400,
            3600,
            1,
            ledger_adjudicator=LEDGER_DOMAIN.verifying_contract,
            chain_id=LEDGER_DOMAIN.chain_id,
        )
        alice, bob = open_virtual_channel(self.hub, self.ends["left"][0], self.ends["right"][1], params, VIRTUAL_DOMAIN)
        self.virtual_params = params
        self.ends["virtual"] = [alice, bob]
        total = FUND_ALICE + FUND_BOB
        self.links["virtual"] = Link(
            "virtual", "virtual", params.channel_id, VIRTUAL_DOMAIN, (ALICE, BOB), total, (FUND_ALICE, FUND_BOB)
        )
        self.completed["virtual"] = []
        # Both ledger channels locked (model.py): Alice's funding from the side that gets her virtual
        # balance (Alice on the left, Ingrid on the right), Bob's from the other.
        for link in (left, right):
            link.balances = model.after_lock(link.balances, self.ends[link.name][0].params, params)
            link.locked = total
            link.version = 1

    @staticmethod
    def _hub(store: Store) -> Hub:
        return Hub(INGRID_KEY, store, virtual_domain=VIRTUAL_DOMAIN, max_validity=MAX_VALIDITY, clock=lambda: NOW)

    def ends_of(self, party: str) -> list[tuple[str, int]]:
        """(link, side) of every client object of ``party``."""
        return [(name, side) for name in self.links for side in (0, 1) if LINK_PARTIES[name][side] == party]

    def memory(self) -> dict[tuple[str, int], tuple[SignedState | None, Update | None]]:
        """Every client object's latest fully signed state and proposal in flight."""
        return {
            (name, side): (self.ends[name][side].latest, self.ends[name][side].pending())
            for name in self.links
            for side in (0, 1)
        }

    def snapshots(self) -> dict[str, tuple[list, list]]:
        """Every row of every store file, byte for byte (what ``Store.channels`` and ``Store.history`` decode),
        read through a connection of its own: to show that nothing was written."""
        return {
            party: (
                reader.execute("SELECT id, kind, params, domain, owner FROM channels ORDER BY id").fetchall(),
                reader.execute(
                    "SELECT channel, version, state, sig_a, sig_b FROM states ORDER BY channel, version"
                ).fetchall(),
            )
            for party, reader in self.readers.items()
        }

    def channels_of(self, party: str) -> list[bytes]:
        """The channels in ``party``'s store: those it takes part in, and Ingrid's copy of the virtual one."""
        ids = [link.channel_id for name, link in self.links.items() if party in LINK_PARTIES[name]]
        return [*ids, self.links["virtual"].channel_id] if party == "ingrid" else ids

    def _verify(self, link: Link, signed: SignedState) -> None:
        """Both signatures of ``signed`` verify (perun_vyper.signing, not the client's fast path); once each."""
        if (link.channel_id, signed) not in self.verified:
            verify_state(signed.state, link.domain, signed.sig_a, link.signers[0])
            verify_state(signed.state, link.domain, signed.sig_b, link.signers[1])
            self.verified.add((link.channel_id, signed))

    def do_crash(self, party: str) -> None:
        """Drop the party's objects, close its store, and restore everything from its file."""
        before = {key: value for key, value in self.memory().items() if key in self.ends_of(party)}
        files = self.snapshots()
        for name, side in self.ends_of(party):
            self.ends[name][side] = None
        if party == "ingrid":
            self.hub = None
        self.stores[party].close()
        self._restart(party)
        after = {key: value for key, value in self.memory().items() if key in self.ends_of(party)}
        assert after == before, f"{party} restored another latest state or proposal in flight"
        assert self.snapshots() == files, "restoring wrote to a store"
        event(f"crash {party} with {sum(1 for _, pending in before.values() if pending)} own proposals in flight")

    def _restart(self, party: str) -> None:
        store = self.stores[party] = Store(self.directory / f"{party}.db")
        if party == "ingrid":
            self.hub = self._hub(store)
            assert set(self.hub.channels) == {self.links["left"].channel_id, self.links["right"].channel_id}
            assert self.hub.virtuals() == [self.virtual_params]
            self.ends["left"][1] = self.hub.channel(self.links["left"].channel_id)
            self.ends["right"][0] = self.hub.channel(self.links["right"].channel_id)
        else:
            side = 0 if party == "alice" else 1
            self.ends["ab"][side] = LedgerChannel.restore(store, self.links["ab"].channel_id, KEYS[party])
            if "left" in self.links:
                name, ledger_side = ("left", 0) if party == "alice" else ("right", 1)
                ledger = LedgerChannel.restore(store, self.links[name].channel_id, KEYS[party])
                self.ends[name][ledger_side] = ledger
                self.ends["virtual"][side] = VirtualChannel.restore(ledger, self.links["virtual"].channel_id)
        # A client with a chain connection reads the deposits itself (confirm_funding()).
        for name, side in self.ends_of(party):
            if self.links[name].kind == "ledger":
                self.ends[name][side].confirm_funding((E, E))
        # ... and what the chain says: a restarted client without a connection is told again.
        self._tell(party)

    # --- the chain, as the parties are told about it ------------------------------------------------

    def status_of(self, link: Link) -> LedgerStatus | VirtualStatus:
        """What the adjudicator's views say about a registered link."""
        registration = link.registration
        assert registration is not None
        state = registration.state
        if isinstance(state, LedgerState):
            deposits = (0, 0) if registration.concluded else (E, E)
            return LedgerStatus(link.channel_id, deposits, registration.concluded, state.version, registration.deadline)
        return VirtualStatus(link.channel_id, state.version, registration.deadline, state.balance_alice, state.is_final)

    def _tell(self, party: str) -> None:
        """Tell every chain view of ``party`` (one per ledger channel object; a virtual channel uses its
        ledger channel's) about every registered link: any of them may ask about another channel."""
        statuses = [self.status_of(link) for link in self.links.values() if link.registration is not None]
        for name, side in self.ends_of(party):
            if self.links[name].kind == "ledger":
                for status in statuses:
                    self.ends[name][side].chain.observe(status)

    def blocker(self, name: str, side: int) -> bytes | None:
        """The registered channel that stops ``side`` of link ``name`` from signing a new version there
        (the one ``Unenforceable.channel`` names), or None: a ledger channel's own registration; for a
        virtual endpoint its own ledger channel's (checked first), then the virtual channel's."""
        link = self.links[name]
        if link.kind == "virtual":
            leg = self.links["left" if side == 0 else "right"]
            if leg.registration is not None:
                return leg.channel_id
        return link.channel_id if link.registration is not None else None

    def lock_blocker(self, name: str) -> bytes | None:
        """For a lock of the virtual channel in leg ``name``: the leg's registration, then the virtual's."""
        for link in (self.links[name], self.links["virtual"]):
            if link.registration is not None:
                return link.channel_id
        return None

    def own_signed(self, party: str, name: str) -> int:
        """The newest version of link ``name`` in ``party``'s store that carries the party's signature."""
        side = LINK_PARTIES[name].index(party)
        history = self.stores[party].history(self.links[name].channel_id)
        return max(signed.state.version for signed in history if (signed.sig_a, signed.sig_b)[side] is not None)

    def _newest_held(self, link: Link) -> int:
        return max(end.latest.state.version for end in self.ends[link.name])

    def registrations(self) -> list[tuple[str, str, int]]:
        """(kind, link, version) of what the chain takes now: a first registration ("register") of any
        version both parties fully signed (the adjudicator registers no final ledger state), a higher
        version answering it ("answer"), or ("conclude", link, version) of a registered ledger channel
        once nobody holds a newer state than the registered one, or closed with its final state."""
        if not self.disputes:
            return []
        out: list[tuple[str, str, int]] = []
        for name, link in self.links.items():
            registration = link.registration
            if registration is not None and (registration.concluded or registration.state.is_final):
                continue
            lowest = 0 if registration is None else registration.version + 1
            top = link.version - 1 if link.kind == "ledger" and link.final else link.version
            kind = "register" if registration is None else "answer"
            out += [(kind, name, version) for version in range(lowest, top + 1)]
            if registration is not None and link.kind == "ledger":
                newest = self._newest_held(link)
                if newest == registration.version or (link.final and newest == link.version):
                    out.append(("conclude", name, registration.version))
        return out

    def do_register(self, kind: str, name: str, version: int) -> None:
        """The chain registers a state of ``name`` both parties signed (or concludes the ledger channel),
        and every party is told at once."""
        link = self.links[name]
        blocked = {(other, side) for other in self.links for side in (0, 1) if self.blocker(other, side)}
        if kind == "conclude":
            assert link.registration is not None
            link.registration.concluded = True
            event(f"chain: conclude {name}, {'closed final' if link.final else 'registered latest'}")
        else:
            held = [self.stores[party].state(link.channel_id, version) for party in link.parties]
            assert held[0] == held[1] and held[0] is not None and held[0].fully_signed
            self._verify(link, held[0])  # what the adjudicator checks
            deadline = NOW + 3600 if link.registration is None else link.registration.deadline
            link.registration = Registration(held[0].state, deadline)
            stale = "latest" if version == self._newest_held(link) else "stale"
            flight = "" if link.flight is None else (" accepted" if link.flight.countersig else " unaccepted")
            event(f"chain: {kind} {link.kind} ({stale}{', final' if held[0].state.is_final else ''})")
            event(f"chain: {kind} with an update{flight or ' not'} in flight")
        for party in self.stores:
            self._tell(party)
        for other in self.links:
            for side in (0, 1):
                if (other, side) not in blocked and self.blocker(other, side):
                    party = LINK_PARTIES[other][side]
                    self.sign_bounds[(party, other)] = self.own_signed(party, other)
        if kind == "register" and name in ("left", "right"):
            self._agree_refused()

    def _agree_refused(self) -> None:
        """Ingrid agrees to no new virtual channel over a registered leg."""
        params = replace(self.virtual_params, nonce=self.virtual_params.nonce + 1)
        leg = next(self.links[name] for name in ("left", "right") if self.links[name].registration)
        self._unenforceable(lambda: self.hub.agree_virtual(params), leg.channel_id)

    def _check_registration(self, link: Link) -> None:
        """Each party can still enforce its latest state over the registered one: it is the registered
        state, or newer (a final ledger state closes the channel over any registered version). Both
        stores hold the registered state (to conclude with its locks)."""
        registration = link.registration
        assert registration is not None
        for side, party in enumerate(link.parties):
            latest = self.ends[link.name][side].latest.state
            assert latest.version >= registration.version, (
                f"{party}'s latest {link.name} version {latest.version} is below the registered "
                f"{registration.version}: it can no longer enforce it"
            )
            if latest.version == registration.version:
                assert latest == registration.state, f"{party} holds another state of the registered version"
            else:
                assert not registration.state.is_final, f"{party} holds a {link.name} state after a final one"
            stored = self.seen[(party, link.channel_id)][registration.version]
            assert stored.state == registration.state and stored.fully_signed

    def _check_sign_bounds(self) -> None:
        """Once a registration stops a party from signing on a link, it signs no newer version there."""
        for (party, name), bound in self.sign_bounds.items():
            history = self.seen[(party, self.links[name].channel_id)]
            side = LINK_PARTIES[name].index(party)
            signed = max(entry.state.version for entry in history if (entry.sig_a, entry.sig_b)[side] is not None)
            assert signed <= bound, f"{party} signed {name} version {signed} after a registration (up to {bound})"

    def _unenforceable(self, call: Any, channel: bytes) -> None:
        """``call()`` raises ``Unenforceable`` naming ``channel`` and changes no store and no memory."""
        raised = self._unchanged(call, Unenforceable)
        assert raised.channel == channel, f"Unenforceable names 0x{raised.channel.hex()}, not 0x{channel.hex()}"

    # --- honest proposals ---------------------------------------------------------------------------

    def _flight(self, name: str) -> Flight:
        flight = self.links[name].flight
        if flight is None:
            raise LookupError(f"no update in flight on {name}: a rule's precondition is wrong")
        return flight

    def idle_links(self) -> list[str]:
        return [name for name, link in self.links.items() if link.flight is None]

    def flight_links(self) -> list[str]:
        return [name for name, link in self.links.items() if link.flight is not None]

    def _unchanged(self, call: Any, error: type[Exception], fragment: str | None = None) -> Any:
        """``call()`` raises ``error`` (with ``fragment`` in its message) and changes no store and no memory;
        returns the exception."""
        files, memory = self.snapshots(), self.memory()
        with pytest.raises(error) as raised:
            call()
        if fragment is not None:
            assert fragment in str(raised.value), f"{error.__name__} without {fragment!r}: {raised.value}"
        assert self.snapshots() == files, f"a refused call ({error.__name__}) wrote to a store"
        assert self.memory() == memory, f"a refused call ({error.__name__}) changed a client's memory"
        return raised.value

    def do_propose_payment(self, name: str, side: int, amount: int) -> None:
        link = self.links[name]
        payer = self.ends[name][side]
        if link.final or not 0 < amount <= link.balances[side]:
            event("payment refused: " + ("final" if link.final else "amount"))
            self._unchanged(lambda: payer.propose_payment(amount), InvalidState)
            if link.final:
                self._propose_after_final(name, side)
            return
        blocker = self.blocker(name, side)
        if blocker is not None:
            event(f"payment refused: registered ({link.kind})")
            self._unenforceable(lambda: payer.propose_payment(amount), blocker)
            return
        self._propose(name, side, lambda: payer.propose_payment(amount), moved(link.balances, side, amount), False)

    def _propose_after_final(self, name: str, side: int) -> None:
        """A state after the final one, built by hand: propose refuses it as the receiver would."""
        payer, latest = self.ends[name][side], self.ends[name][side].state
        balances = split_of(latest)
        after = moved(balances, side, 1) if balances[side] else balances
        state = with_split(latest, *after, version=latest.version + 1, is_final=False)
        self._unchanged(lambda: payer.propose(state), RefusedUpdate, "nothing is signed after a final state")

    def do_propose_final(self, name: str, side: int) -> None:
        link = self.links[name]
        proposer = self.ends[name][side]
        if link.final:
            self._unchanged(proposer.propose_final, InvalidState, "already final")
        elif link.locked:
            event("final refused: locks")
            self._unchanged(proposer.propose_final, RefusedUpdate, "release every virtual channel")
        elif (blocker := self.blocker(name, side)) is not None:
            event(f"final refused: registered ({link.kind})")
            self._unenforceable(proposer.propose_final, blocker)
        else:
            self._propose(name, side, proposer.propose_final, link.balances, True)

    def _propose(self, name: str, side: int, call: Any, expected: tuple[int, int], final: bool) -> None:
        link = self.links[name]
        proposer = self.ends[name][side]
        others = {party: files for party, files in self.snapshots().items() if party != link.parties[side]}
        update = call()
        state = update.state
        assert (state.channel, state.version) == (link.channel_id, link.version + 1)
        assert split_of(state) == expected and state.is_final == final, f"{state} is not the proposed change"
        assert proposer.pending() == update
        stored = proposer.store.newest(link.channel_id)
        own, peer = (stored.sig_a, stored.sig_b) if side == 0 else (stored.sig_b, stored.sig_a)
        assert (stored.state, own, peer) == (state, update.signature, None), "the proposal is not committed"
        assert {p: f for p, f in self.snapshots().items() if p != link.parties[side]} == others
        link.flight = Flight(side, update, expected, final, update)
        event(f"propose {'final' if final else 'payment'} on {link.kind}")

    def do_second_proposal(self, name: str, final: bool) -> None:
        """The proposer proposes again while its proposal is in flight."""
        flight = self._flight(name)
        proposer = self.ends[name][flight.proposer]
        call = proposer.propose_final if final else (lambda: proposer.propose(flight.update.state))
        self._unchanged(call, RefusedUpdate, "still in flight")
        event("second proposal" + (" (final)" if final else ""))

    # --- the wire -----------------------------------------------------------------------------------

    def deliverable(self) -> list[str]:
        return [name for name in self.flight_links() if self.links[name].flight.to_receiver is not None]

    def answerable(self) -> list[str]:
        return [name for name in self.flight_links() if self.links[name].flight.to_proposer is not None]

    def resendable(self) -> list[str]:
        return [name for name in self.flight_links() if self.links[name].flight.to_receiver is None]

    def on_the_wire(self) -> list[tuple[str, str]]:
        return [(name, "update") for name in self.deliverable()] + [(name, "answer") for name in self.answerable()]

    def do_deliver(self, name: str) -> None:
        link = self.links[name]
        flight = self._flight(name)
        receiver = self.ends[name][1 - flight.proposer]
        blocker = self.blocker(name, 1 - flight.proposer)
        if flight.countersig is None and blocker is not None:
            # A registration stops the receiver (made since the proposal, or one that stops only the
            # receiver's side of the virtual channel): it signs nothing, the proposal stays in flight.
            update = flight.to_receiver
            self._unenforceable(lambda: receiver.accept(update), blocker)
            flight.to_receiver = None
            event(f"deliver update on {link.kind}: refused, registered")
            return
        countersig = receiver.accept(flight.to_receiver)
        if flight.countersig is None:
            verify_state(flight.update.state, link.domain, countersig, link.signers[1 - flight.proposer])
        else:
            assert countersig == flight.countersig, "a repeated update got another countersignature"
            event("update delivered again")
        flight.countersig = flight.to_proposer = countersig
        flight.to_receiver = None
        event(f"deliver update on {link.kind}")

    def do_drop(self, name: str, message: str) -> None:
        flight = self._flight(name)
        if message == "update":
            flight.to_receiver = None
        else:
            flight.to_proposer = None
        event(f"drop {message}")

    def do_resend(self, name: str) -> None:
        flight = self._flight(name)
        update = self.ends[name][flight.proposer].pending()
        assert update == flight.update, "pending() is not the proposal in flight"
        flight.to_receiver = update
        event("resend after " + ("accept" if flight.countersig else "propose"))

    def do_answer(self, name: str) -> None:
        link = self.links[name]
        flight = self._flight(name)
        signed = self.ends[name][flight.proposer].complete(flight.update, flight.to_proposer)
        assert signed == self.ends[name][1 - flight.proposer].latest, "the parties hold different signed states"
        self._settle(name)
        event(f"complete on {link.kind}")

    def do_resume(self, name: str) -> None:
        flight = self._flight(name)
        blocker = self.blocker(name, 1 - flight.proposer)
        if flight.countersig is None and blocker is not None:
            event("resume refused: registered")
            self._unenforceable(lambda: resume(*self.ends[name]), blocker)
            return
        event(f"resume after {'accept' if flight.countersig else 'propose'}")
        resume(*self.ends[name])
        end_0, end_1 = self.ends[name]
        assert end_0.latest == end_1.latest, f"{name}: the two sides differ after resume"
        assert end_0.latest.state == flight.update.state, f"{name}: resume did not complete the update in flight"
        self._settle(name)

    def _settle(self, name: str) -> None:
        """The model completes the update in flight (only now do its balances count)."""
        link = self.links[name]
        flight = self._flight(name)
        signed = self.ends[name][1 - flight.proposer].latest
        countersig = signed.sig_a if flight.proposer == 1 else signed.sig_b
        assert flight.countersig in (None, countersig)
        link.balances, link.final, link.version = flight.expected, flight.final, link.version + 1
        self.completed[name].append((flight.proposer, flight.update, countersig))
        link.flight = None

    def do_replay(self, name: str, index: int, to_receiver: bool) -> None:
        """A completed update (or its answer) delivered again, however late: an idempotent no-op."""
        proposer_side, update, countersig = self.completed[name][index]
        if to_receiver:
            receiver = self.ends[name][1 - proposer_side]
            files, memory = self.snapshots(), self.memory()
            assert receiver.accept(update) == countersig, "a replayed update got another countersignature"
            assert (self.snapshots(), self.memory()) == (files, memory), "a replayed update changed something"
            event("replay update")
            return
        proposer = self.ends[name][proposer_side]
        if proposer.latest.state == update.state:
            files, memory = self.snapshots(), self.memory()
            assert proposer.complete(update, countersig) == proposer.latest
            assert (self.snapshots(), self.memory()) == (files, memory), "a replayed answer changed something"
            event("replay answer to the latest state")
        else:
            self._unchanged(lambda: proposer.complete(update, countersig), RefusedUpdate, "only complete the update")
            event("replay answer to an older state")

    def do_conflicting_write(self, party: str, index: int, version: int, flip_final: bool) -> None:
        """The store itself keeps the first content of a version: another state, or another signature of a
        side it holds, is refused (``save_state``) or not written (``insert_state``)."""
        channel_id = self.channels_of(party)[index]
        store = self.stores[party]
        stored = store.history(channel_id)[version]
        if flip_final:
            other: State = replace(stored.state, is_final=not stored.state.is_final)
        else:
            balances = split_of(stored.state)
            other = with_split(stored.state, *moved(balances, 0 if balances[0] else 1, 1))
        files, memory = self.snapshots(), self.memory()
        assert not store.insert_state(channel_id, SignedState(other, stored.sig_a, stored.sig_b))
        assert (self.snapshots(), self.memory()) == (files, memory), "insert_state wrote over a stored version"
        write = SignedState(other, stored.sig_a, stored.sig_b)
        self._unchanged(lambda: store.save_state(channel_id, write), StoreError, "different state")
        side = 0 if stored.sig_a is not None else 1
        sigs = [stored.sig_a, stored.sig_b]
        sigs[side] = flip(sigs[side], 0, 0)
        write = SignedState(stored.state, *sigs)
        self._unchanged(lambda: store.save_state(channel_id, write), StoreError, "signature differs")
        event("conflicting store write")

    # --- forged messages ----------------------------------------------------------------------------

    def forgeries(self, name: str, target: int) -> list[str]:
        """The forged updates that can be built against ``target``'s view now."""
        end = self.ends[name][target]
        kinds = list(ANY_FORGERIES)
        if end.pending() is not None:
            return [*kinds, "while_own_in_flight"]
        base = end.state
        if base.is_final:  # each is refused as a state after the final one
            return kinds + list(NEXT_FORGERIES)
        if split_of(base)[1 - target] or self._finalizable(name):  # the forger has a valid next state
            kinds += ["stranger_key", "own_key", "flipped_signature", "version_skip", "other_split"]
        if self._forged_lock(name, target) is not None:
            kinds.append("lock")
        return [*kinds, "toward_proposer"]

    def _forged_lock(self, name: str, target: int) -> tuple[LedgerState, bytes | None] | None:
        """A lock of the virtual channel proposed to ``target`` in leg ``name`` while the leg already holds
        it (a duplicate), or after its release where a registration makes the target refuse it, if the
        target's state can carry it; with the registered channel the target must name (None: refused as a
        duplicate). The ledger channel's own registration is checked first, the virtual channel's only for
        a lock that is otherwise valid (SPEC 11.1)."""
        if name not in ("left", "right"):
            return None
        end = self.ends[name][target]
        if end.state.is_final:
            return None
        leg = self.links[name]
        if not self.released:
            base = end.state
            lock = base.locks[0]
            try:
                state = replace(
                    base,
                    version=base.version + 1,
                    balance_a=base.balance_a - lock.amount_a,
                    balance_b=base.balance_b - lock.amount_b,
                    locks=(*base.locks, lock),
                )
            except InvalidState:
                return None
            return state, leg.channel_id if leg.registration is not None else None
        # Re-locking a released virtual channel: only where a registration refuses it.
        blocker = self.lock_blocker(name)
        if blocker is None:
            return None
        try:
            return open_virtual(end.state, end.params, self.virtual_params), blocker
        except InvalidState:
            return None

    def _finalizable(self, name: str) -> bool:
        return not self.ends[name][0].state.locks if self.links[name].kind == "ledger" else True

    def _valid_next(self, name: str, target: int, data: st.DataObject) -> State:
        """A state the forger (the target's peer) could honestly propose next."""
        base = self.ends[name][target].state
        forger = 1 - target
        balance = split_of(base)[forger]
        if balance and (not self._finalizable(name) or data.draw(st.booleans(), label="payment, not final")):
            amount = data.draw(st.integers(1, balance), label="payment of")
            return with_split(base, *moved(split_of(base), forger, amount), version=base.version + 1)
        amount = data.draw(st.integers(0, balance), label="final with a last payment of")
        return with_split(base, *moved(split_of(base), forger, amount), version=base.version + 1, is_final=True)

    def _other_split(self, name: str, target: int, state: State) -> State | None:
        """``state`` with one unit more (or less) for the target, still a valid next state, or None."""
        base = self.ends[name][target].state
        forger = 1 - target
        lowest = split_of(base)[target] + (0 if state.is_final else 1)
        for delta in (1, -1):
            balances = moved(split_of(state), forger, delta)
            if balances[forger] >= 0 and balances[target] >= lowest:
                return with_split(state, *balances)
        return None

    def do_forge_update(self, name: str, target: int, kind: str, data: st.DataObject) -> None:
        link = self.links[name]
        end = self.ends[name][target]
        forger = 1 - target
        forger_key = KEYS[link.parties[forger]]
        base = end.state
        peer = link.signers[forger]
        after_final = base.is_final and kind in NEXT_FORGERIES
        # A structurally valid next state reaches the chain check, which comes before the signature's.
        blocker = self.blocker(name, target) if kind in REACHES_CHAIN_CHECK and not after_final else None
        error: type[Exception]
        fragment: str | None
        if kind == "lock":
            forged = self._forged_lock(name, target)
            assert forged is not None
            state, blocker = forged
            update = Update(state, sign(state, forger_key, link.domain))
            error, fragment = RefusedUpdate, "the lock cannot be added: this virtual channel is already locked"
            event(f"forged lock: {'duplicate' if not self.released else 'after release'}")
        elif kind in ("stranger_key", "own_key", "flipped_signature", "version_skip") and not after_final:
            state = self._valid_next(name, target, data)
            if kind == "version_skip":
                state = replace(state, version=state.version + data.draw(st.integers(1, 3), label="skipped"))
                update = Update(state, sign(state, forger_key, link.domain))
                error, fragment = RefusedUpdate, "does not follow the latest fully signed version"
            elif kind == "flipped_signature":
                signature = flip(
                    sign(state, forger_key, link.domain),
                    data.draw(st.integers(0, 64), label="byte"),
                    data.draw(st.integers(0, 7), label="bit"),
                )
                update, error, fragment = Update(state, signature), InvalidSignature, None
            else:
                key = STRANGER_KEY if kind == "stranger_key" else KEYS[link.parties[target]]
                update, error, fragment = (
                    Update(state, sign(state, key, link.domain)),
                    InvalidSignature,
                    "expected " + peer,
                )
        elif kind == "other_split" and not after_final:
            flight = link.flight
            if flight is not None and flight.proposer == forger and flight.countersig is None:
                signed = flight.update.state  # the proposal in flight, presented with another split
            else:
                signed = self._valid_next(name, target, data)
            state = self._other_split(name, target, signed)
            if state is None:
                event("forgery skipped: no other split")
                return
            update, error, fragment = Update(state, sign(signed, forger_key, link.domain)), InvalidSignature, None
        elif kind == "toward_proposer" and not after_final:
            balance = split_of(base)[target]
            amount = data.draw(st.integers(1, balance), label="toward proposer") if balance else 0
            state = with_split(base, *moved(split_of(base), target, amount), version=base.version + 1)
            update = Update(state, sign(state, forger_key, link.domain))
            error, fragment = RefusedUpdate, "lowers the receiver's balance" if amount else "changes no balance"
        elif after_final:
            balances = split_of(base)
            state = with_split(base, *moved(balances, forger, 1 if balances[forger] else 0), version=base.version + 1)
            state = replace(state, is_final=False)
            key = forger_key if kind != "stranger_key" else STRANGER_KEY
            update, error, fragment = Update(state, sign(state, key, link.domain)), RefusedUpdate, "after a final state"
        elif kind == "rewrite":
            version = data.draw(st.integers(0, base.version), label="rewritten version")
            stored = end.store.state(link.channel_id, version).state
            if data.draw(st.booleans(), label="flip final"):
                state = replace(stored, is_final=not stored.is_final)
            else:
                balances = split_of(stored)
                state = with_split(stored, *moved(balances, 0 if balances[0] else 1, 1))
            update = Update(state, sign(state, forger_key, link.domain))
            error, fragment = RefusedUpdate, "already signed differently"
        elif kind == "wrong_channel":
            others = [other.channel_id for other in self.links.values() if other.name != name]
            channel = data.draw(st.sampled_from([*others, bytes(range(32))]), label="channel")
            state = replace(base, channel=channel, version=base.version + 1)
            update = Update(state, sign(state, forger_key, link.domain))
            error, fragment = RefusedUpdate, "hand it to that channel"
        elif kind == "wrong_type":
            state = (
                VirtualState(link.channel_id, base.version + 1, *split_of(base))
                if link.kind == "ledger"
                else LedgerState(link.channel_id, base.version + 1, *split_of(base), *split_of(base))
            )
            update, error, fragment = Update(state, sign(state, forger_key, link.domain)), RefusedUpdate, "takes"
        elif kind == "repeat_wrong_signature":
            update = Update(base, sign(base, STRANGER_KEY, link.domain))
            error, fragment = InvalidSignature, "expected " + peer
        else:
            assert kind == "while_own_in_flight"
            balances = split_of(base)
            state = with_split(base, *moved(balances, forger, 1 if balances[forger] else 0), version=base.version + 1)
            update = Update(state, sign(state, forger_key, link.domain))
            error, fragment = RefusedUpdate, "our own proposal of version"
        event(f"forged update: {kind}" + (" after final" if after_final else "") + (", registered" if blocker else ""))
        if blocker is not None:
            self._unenforceable(lambda: end.accept(update), blocker)
        else:
            self._unchanged(lambda: end.accept(update), error, fragment)

    def do_forge_answer(self, name: str, kind: str, data: st.DataObject) -> None:
        """A forged countersignature (or update) reaches the proposer of the update in flight."""
        link = self.links[name]
        flight = self._flight(name)
        proposer = self.ends[name][flight.proposer]
        receiver_key = KEYS[link.parties[1 - flight.proposer]]
        state = flight.update.state
        peer = link.signers[1 - flight.proposer]
        update: Update = flight.update
        error: type[Exception] = InvalidSignature
        fragment: str | None = "expected " + peer
        if kind == "stranger_key":
            countersig = sign(state, STRANGER_KEY, link.domain)
        elif kind == "own_key":
            countersig = flight.update.signature
        elif kind == "flipped":
            byte, bit = data.draw(st.integers(0, 64), label="byte"), data.draw(st.integers(0, 7), label="bit")
            countersig, fragment = flip(sign(state, receiver_key, link.domain), byte, bit), None
        elif kind in ("other_split", "other_update"):
            balances = split_of(state)
            if not state.is_final and balances[flight.proposer]:
                other = with_split(state, *moved(balances, flight.proposer, 1))  # the proposer pays one more
            else:
                other = replace(state, version=state.version + 1)
            countersig, fragment = sign(other, receiver_key, link.domain), None
            if kind == "other_update":
                update = Update(other, sign(other, KEYS[link.parties[flight.proposer]], link.domain))
                error, fragment = RefusedUpdate, "only complete the update propose() returned"
        else:
            assert kind == "stale_wrong"
            latest = proposer.latest
            update = Update(latest.state, (latest.sig_a, latest.sig_b)[flight.proposer])
            countersig = sign(latest.state, STRANGER_KEY, link.domain)
        event(f"forged answer: {kind}")
        self._unchanged(lambda: proposer.complete(update, countersig), error, fragment)

    # --- the virtual channel's close ----------------------------------------------------------------

    def closable(self) -> bool:
        """A close that goes through: nothing in flight on the three channels, the virtual channel used (or
        finalised) first, both legs open on-chain, and the virtual channel final or unregistered (the
        releases carry the final state; a registered record takes no new final state off-chain)."""
        if "virtual" not in self.links or self.released:
            return False
        virtual = self.links["virtual"]
        if not virtual.final and virtual.version < 2:
            return False
        if any(self.links[name].flight for name in ("left", "right", "virtual")):
            return False
        if any(self.links[name].registration for name in ("left", "right")):
            return False
        return virtual.final or virtual.registration is None

    def close_refusal(self) -> bytes | None:
        """The registered channel that stops the close at its first step (Alice signing the final state,
        or proposing her release), before anything is written; None otherwise (a close refused half-way,
        by Bob or Ingrid, is not an atomic refusal, and is left out). Used or not."""
        if "virtual" not in self.links or self.released:
            return None
        if any(self.links[name].flight for name in ("left", "right", "virtual")):
            return None
        if not self.links["virtual"].final:
            return self.blocker("virtual", 0)
        left = self.links["left"]
        return left.channel_id if left.registration is not None else None

    def do_close_virtual(self) -> None:
        virtual, left, right = self.links["virtual"], self.links["left"], self.links["right"]
        blocker = self.close_refusal()
        if blocker is not None:
            event(f"close virtual channel refused, final before: {virtual.final}")
            self._unenforceable(lambda: close_virtual_channel(self.hub, *self.ends["virtual"]), blocker)
            return
        event(f"close virtual channel, final before: {virtual.final}")
        final = close_virtual_channel(self.hub, *self.ends["virtual"])
        if not virtual.final:
            virtual.version += 1
            virtual.final = True
        assert (final.version, final.is_final, split_of(final)) == (virtual.version, True, virtual.balances)
        # Alice's virtual balance goes to Alice on the left and to Ingrid on the right; Bob's to the others.
        for link in (left, right):
            ledger_params = self.ends[link.name][0].params
            link.balances = model.after_release(link.balances, ledger_params, self.virtual_params, virtual.balances)
            link.locked = 0
            link.version += 1
        self.released = True
        assert self.hub.final_of(virtual.channel_id).state == final

    # --- invariants ---------------------------------------------------------------------------------

    def check_all(self) -> None:
        for party in self.stores:
            for channel_id in self.channels_of(party):
                self._check_history(party, channel_id)
        for link in self.links.values():
            self._check_link(link)
            self._check_agreement(link)
            if link.registration is not None:
                self._check_registration(link)
        self._check_sign_bounds()

    def _check_link(self, link: Link) -> None:
        ends = self.ends[link.name]
        latest = [end.latest for end in ends]
        for side, signed in enumerate(latest):
            assert signed is not None and signed.fully_signed
            self._verify(link, signed)
            stored = [entry for entry in self.seen[(link.parties[side], link.channel_id)] if entry.fully_signed]
            assert stored[-1] == signed, f"{link.parties[side]}'s memory and store disagree on {link.name}"
            state = signed.state
            assert state.channel == link.channel_id
            if isinstance(state, LedgerState):
                assert (state.funding_a, state.funding_b) == (E, E)
                assert state.locked == link.locked
                assert state.balance_a + state.balance_b + state.locked == link.total
            else:
                assert state.balance_alice + state.balance_bob == link.total
            if state.version == link.version:
                assert (split_of(state), state.is_final) == (link.balances, link.final), "balances off the model"
            else:
                assert link.flight is not None and state.version == link.version + 1, "a version from nowhere"
                assert (split_of(state), state.is_final) == (link.flight.expected, link.flight.final)
        flight = link.flight
        if flight is None:
            assert latest[0] == latest[1], "both sides settled but hold different states"
            assert ends[0].pending() is None and ends[1].pending() is None
            return
        proposer, receiver = flight.proposer, 1 - flight.proposer
        assert ends[proposer].pending() == flight.update and ends[receiver].pending() is None
        assert latest[proposer].state.version == link.version
        if flight.countersig is None:
            assert latest[receiver] == latest[proposer]
        else:  # the receiver is ahead by exactly the update in flight
            signed = latest[receiver]
            sigs = (signed.sig_a, signed.sig_b)
            assert (signed.state, sigs[proposer], sigs[receiver]) == (
                flight.update.state,
                flight.update.signature,
                flight.countersig,
            )

    def _check_history(self, party: str, channel_id: bytes) -> None:
        store = self.stores[party]
        history = store.history(channel_id)
        previous = self.seen.get((party, channel_id), [])
        assert len(history) >= len(previous), f"{party}'s store lost a version"
        for old, new in zip(previous, history, strict=False):
            # Append-only: a version never changes, it may only gain its missing signature.
            assert new.state == old.state, f"{party}'s store holds two contents of version {old.state.version}"
            assert old.sig_a in (None, new.sig_a) and old.sig_b in (None, new.sig_b)
        self.seen[(party, channel_id)] = history
        sides = [(name, side) for name, side in self.ends_of(party) if self.links[name].channel_id == channel_id]
        if not sides:  # Ingrid's copy of the virtual channel: the final state as evidence, once closed
            assert party == "ingrid" and channel_id == self.links["virtual"].channel_id
            assert history == ([self.ends["virtual"][0].latest] if self.released else [])
        else:
            name, side = sides[0]
            end = self.ends[name][side]
            assert [signed.state.version for signed in history] == list(range(len(history))), "versions with gaps"
            assert all(signed.fully_signed for signed in history[:-1]), "a half-signed version below the newest"
            if not history[-1].fully_signed:
                pending = end.pending()
                sigs = (history[-1].sig_a, history[-1].sig_b)
                assert pending is not None and (history[-1].state, sigs[side], sigs[1 - side]) == (
                    pending.state,
                    pending.signature,
                    None,
                ), f"{party} stores a half-signed state that is not its proposal in flight"
        link = next(link for link in self.links.values() if link.channel_id == channel_id)
        for signed in history:
            if signed.fully_signed:
                self._verify(link, signed)

    def _check_agreement(self, link: Link) -> None:
        """Both parties' stores hold the same content (and signatures) for every version both signed."""
        first, second = (self.seen[(party, link.channel_id)] for party in link.parties)
        for one, other in zip(first, second, strict=False):
            assert one.state == other.state, f"{link.name}: the parties stored two contents of one version"
            if one.fully_signed and other.fully_signed:
                assert (one.sig_a, one.sig_b) == (other.sig_a, other.sig_b)

    # --- the end of an example ----------------------------------------------------------------------

    def do_settle_all(self) -> None:
        """Resume every update in flight; both sides of every channel end identical, stores included."""
        for name in self.flight_links():
            self.do_resume(name)
        self.check_all()
        for party, store in self.stores.items():
            assert sorted(record.channel_id for record in store.channels()) == sorted(self.channels_of(party))
        for link in self.links.values():
            histories = [self.stores[party].history(link.channel_id) for party in link.parties]
            if link.flight is not None:  # refused for good (registered): the proposer keeps it, half signed
                refused = histories[link.flight.proposer].pop()
                assert not refused.fully_signed and refused.state == link.flight.update.state
            first, second = histories
            assert first == second, f"{link.name}: the two stores differ after resume"
            assert len(first) == link.version + 1 and all(signed.fully_signed for signed in first)
            assert first[-1] == self.ends[link.name][0].latest == self.ends[link.name][1].latest

    def teardown(self) -> None:
        try:
            # Settle only after a passing example: a step that raised already fails it, and hypothesis
            # calls teardown while that exception propagates (sys.exc_info() shows it).
            if self.links and sys.exc_info()[1] is None:
                self.do_settle_all()
        finally:
            for connection in [*self.stores.values(), *self.readers.values()]:
                connection.close()
            shutil.rmtree(self.directory, ignore_errors=True)
