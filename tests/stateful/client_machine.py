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

import sqlite3
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event

from perun_vyper import (
    ChannelParams,
    Hub,
    InvalidState,
    LedgerChannel,
    RefusedUpdate,
    SignedState,
    Store,
    StoreError,
    Update,
    VirtualChannel,
    VirtualParams,
    close_virtual_channel,
    exchange,
    open_virtual_channel,
    resume,
    verify_state,
)
from tests.stateful import model
from tests.stateful.client_chain import ClientChain
from tests.stateful.client_checks import ClientChecks
from tests.stateful.client_forgeries import ClientForgeries
from tests.stateful.client_model import (
    FUND_ALICE,
    FUND_BOB,
    KEYS,
    LINK_PARTIES,
    Flight,
    Link,
    State,
    flip,
    moved,
    split_of,
    with_split,
)
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
    VIRTUAL_DOMAIN,
)


class ClientMachine(ClientChain, ClientForgeries, ClientChecks):
    """Parties, their stores, the model, and every action (rules in test_client_stateful.py); the chain,
    the forgeries and the checks are mixed in from client_chain.py, client_forgeries.py, client_checks.py."""

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
