"""The client machine's chain (client_machine.py): registrations the parties are told about (SPEC 11.1),
and what they may no longer sign because of them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import event

from perun_vyper import (
    LedgerState,
    LedgerStatus,
    Unenforceable,
    VirtualStatus,
)
from tests.stateful.client_model import (
    LINK_PARTIES,
    Link,
    Registration,
)
from tests.support.constants import E
from tests.support.parties import (
    NOW,
)


class ClientChain:
    """Registrations on-chain and their effect on signing; mixed into ClientMachine."""

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
