"""The client machine's invariants and end of an example (client_machine.py): memory and store files of
both parties against the model, after every step and once everything in flight is resumed."""

from __future__ import annotations

import sys

from perun_vyper import (
    LedgerState,
)
from tests.stateful.client_model import (
    Link,
    split_of,
)
from tests.support.constants import E


class ClientChecks:
    """Invariants and the settling of an example; mixed into ClientMachine."""

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
