"""Stateful fuzzing of the off-chain client protocol, durably and without a chain.

The model and the actions live in client_machine.py; this module only wires them to hypothesis. Rules
pick among the channels an action applies to *now* (preconditions say whether there is any), so no
example is wasted on a rejected draw. Every example runs in its own temporary directory of store files.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.stateful.client_machine import ClientMachine
from tests.stateful.client_model import COUNTERSIG_FORGERIES

# Beyond a payer's balance by up to 1 ETH: the payment must be refused before anything is written.
OVERDRAFT = st.integers(1, 10**18)


class ClientStateMachine(ClientMachine, RuleBasedStateMachine):
    # Registrations in half of the examples: the other half keep every step for the off-chain protocol.
    @initialize(with_hub=st.booleans(), disputes=st.booleans())
    def open_channels(self, with_hub: bool, disputes: bool) -> None:
        self.do_setup(with_hub, disputes)

    # ---- honest proposals

    # One rule for every proposal: the final state is a rare draw (it ends the channel's payments), and
    # amounts the payer does not hold come up often enough to check their refusal.
    @precondition(lambda self: bool(self.idle_links()))
    @rule(data=st.data())
    def propose(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(self.idle_links()), label="channel")
        side = data.draw(st.integers(0, 1), label="proposer")
        balance = self.links[name].balances[side]
        choices = ["within"] * (5 if balance else 0) + ["over", "zero", "final"]
        choice = data.draw(st.sampled_from(choices), label="proposal")
        if choice == "final":
            self.do_propose_final(name, side)
            return
        if choice == "within":
            amount = data.draw(st.integers(1, balance), label="amount")
        elif choice == "over":
            amount = balance + data.draw(OVERDRAFT, label="overdraft")
        else:
            amount = 0
        self.do_propose_payment(name, side, amount)

    # ---- the wire

    @precondition(lambda self: bool(self.deliverable()))
    @rule(data=st.data())
    def deliver_update(self, data: st.DataObject) -> None:
        self.do_deliver(data.draw(st.sampled_from(self.deliverable()), label="channel"))

    @precondition(lambda self: bool(self.answerable()))
    @rule(data=st.data())
    def deliver_countersignature(self, data: st.DataObject) -> None:
        self.do_answer(data.draw(st.sampled_from(self.answerable()), label="channel"))

    @precondition(lambda self: bool(self.on_the_wire()))
    @rule(data=st.data())
    def drop_message(self, data: st.DataObject) -> None:
        self.do_drop(*data.draw(st.sampled_from(self.on_the_wire()), label="message"))

    @precondition(lambda self: bool(self.resendable()))
    @rule(data=st.data())
    def resend_pending(self, data: st.DataObject) -> None:
        self.do_resend(data.draw(st.sampled_from(self.resendable()), label="channel"))

    @precondition(lambda self: bool(self.flight_links()))
    @rule(data=st.data())
    def resume_channel(self, data: st.DataObject) -> None:
        self.do_resume(data.draw(st.sampled_from(self.flight_links()), label="channel"))

    @precondition(lambda self: any(self.completed.values()))
    @rule(data=st.data(), to_receiver=st.booleans())
    def replay_completed(self, data: st.DataObject, to_receiver: bool) -> None:
        name = data.draw(st.sampled_from([name for name, done in self.completed.items() if done]), label="channel")
        index = data.draw(st.integers(0, len(self.completed[name]) - 1), label="update")
        self.do_replay(name, index, to_receiver)

    # ---- the chain: a registration (stale, typically), an answer, a conclusion, at any moment

    @precondition(lambda self: bool(self.registrations()))
    @rule(data=st.data())
    def chain_registers(self, data: st.DataObject) -> None:
        options = self.registrations()
        kind = data.draw(st.sampled_from(sorted({option[0] for option in options})), label="chain")
        name = data.draw(st.sampled_from(sorted({o[1] for o in options if o[0] == kind})), label="channel")
        versions = [o[2] for o in options if o[:2] == (kind, name)]
        if kind != "conclude":
            # Stale or the latest version first: there are many more stale versions to pick from.
            latest = self.links[name].version
            ages = sorted({"latest" if version == latest else "stale" for version in versions})
            age = data.draw(st.sampled_from(ages), label="age")
            versions = [version for version in versions if (version == latest) == (age == "latest")]
        self.do_register(kind, name, data.draw(st.sampled_from(versions), label="version"))

    # ---- crashes

    @precondition(lambda self: bool(self.stores))
    @rule(data=st.data())
    def crash_and_restore(self, data: st.DataObject) -> None:
        self.do_crash(data.draw(st.sampled_from(sorted(self.stores)), label="party"))

    # ---- the store itself

    @precondition(lambda self: bool(self.stores))
    @rule(data=st.data(), flip_final=st.booleans())
    def conflicting_store_write(self, data: st.DataObject, flip_final: bool) -> None:
        party = data.draw(st.sampled_from(sorted(self.stores)), label="party")
        channels = self.channels_of(party)
        index = data.draw(st.integers(0, len(channels) - 1), label="channel")
        versions = len(self.stores[party].history(channels[index]))
        if versions:  # Ingrid's copy of the virtual channel is empty until it closes
            version = data.draw(st.integers(0, versions - 1), label="version")
            self.do_conflicting_write(party, index, version, flip_final)

    # ---- forged messages

    @precondition(lambda self: bool(self.links))
    @rule(data=st.data())
    def forged_update(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.links)), label="channel")
        target = data.draw(st.integers(0, 1), label="receiver")
        kind = data.draw(st.sampled_from(self.forgeries(name, target)), label="forgery")
        self.do_forge_update(name, target, kind, data)

    # To the proposer of an update in flight: a forged answer, or its own second proposal.
    @precondition(lambda self: bool(self.flight_links()))
    @rule(data=st.data(), kind=st.sampled_from([*COUNTERSIG_FORGERIES, "second proposal", "second final"]))
    def forged_to_proposer(self, data: st.DataObject, kind: str) -> None:
        name = data.draw(st.sampled_from(self.flight_links()), label="channel")
        if kind.startswith("second"):
            self.do_second_proposal(name, kind == "second final")
        else:
            self.do_forge_answer(name, kind, data)

    # ---- the virtual channel

    # Refused at its first step (nothing written) while a registration stops Alice.
    @precondition(lambda self: self.closable() or self.close_refusal() is not None)
    @rule()
    def close_virtual(self) -> None:
        self.do_close_virtual()

    # ---- invariants (every channel, every store, after every step)

    @invariant()
    def protocol_invariants(self) -> None:
        if self.links:
            self.check_all()


TestClientProtocol = ClientStateMachine.TestCase
