"""The client machine's forged messages (client_machine.py): updates and answers a dishonest party or the
network makes up; each must raise the documented exception and change nothing."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import event
from hypothesis import strategies as st

from perun_vyper import (
    InvalidSignature,
    InvalidState,
    LedgerState,
    RefusedUpdate,
    Update,
    VirtualState,
    open_virtual,
)
from tests.stateful.client_model import (
    ANY_FORGERIES,
    KEYS,
    NEXT_FORGERIES,
    REACHES_CHAIN_CHECK,
    State,
    flip,
    moved,
    sign,
    split_of,
    with_split,
)
from tests.support.parties import (
    STRANGER_KEY,
)


class ClientForgeries:
    """Forged updates and answers; mixed into ClientMachine."""

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
