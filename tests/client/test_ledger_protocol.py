"""LedgerChannel off-chain: the update round, idempotent repeats, and every refusal (typed, with a message
that says what to do, and nothing written to either store)."""

from dataclasses import replace

import pytest

from perun_vyper import (
    MAX_AMOUNT,
    ChannelParams,
    InvalidParams,
    InvalidSignature,
    InvalidState,
    LedgerChannel,
    LedgerState,
    Lock,
    RefusedUpdate,
    Signer,
    StoreError,
    Update,
    VirtualFinal,
    VirtualState,
    exchange,
    open_store,
    pay,
    resume,
)
from perun_vyper.core.constants import SECP256K1_N
from tests.support.constants import E
from tests.support.parties import ALICE, ALICE_KEY, BOB, BOB_KEY, INGRID, LEDGER_DOMAIN, forge, snapshot


def _refused(receiver: LedgerChannel, update: Update, error: type[Exception], fragment: str) -> None:
    """``receiver`` refuses ``update`` with ``error`` and ``fragment``, and its store is unchanged."""
    before = snapshot(receiver.store)
    latest, pending = receiver.latest, receiver.pending()
    with pytest.raises(error, match=fragment):
        receiver.accept(update)
    assert snapshot(receiver.store) == before
    assert (receiver.latest, receiver.pending()) == (latest, pending)


def _tampered(state: LedgerState, **fields) -> LedgerState:
    """A state object whose fields were changed after its checks ran (what a decoder without checks yields)."""
    clone = replace(state)
    for name, value in fields.items():
        object.__setattr__(clone, name, value)
    return clone


# --- the round ---------------------------------------------------------------------------------------


def test_open__initial_state__signed_by_both_after_exchange(pair):
    alice, bob = pair
    assert alice.latest == bob.latest
    assert alice.state == LedgerState.initial(alice.channel_id, E, E)
    assert alice.latest.fully_signed and alice.pending() is None and bob.pending() is None


def test_pay__one_round__both_stores_hold_the_fully_signed_state(pair):
    alice, bob = pair
    signed = pay(alice, bob, 7)
    assert signed.state == LedgerState(alice.channel_id, 1, E - 7, E + 7, E, E)
    for channel in (alice, bob):
        assert channel.store.latest(channel.channel_id) == signed
        assert channel.store.newest(channel.channel_id) == signed
    assert bob.latest == signed


def test_propose__own_signature_committed_before_update_returned(pair):
    alice, bob = pair
    update = alice.propose_payment(5)
    stored = alice.store.newest(alice.channel_id)
    assert stored.state == update.state and stored.sig_a == update.signature and stored.sig_b is None
    assert alice.pending() == update
    assert bob.store.newest(bob.channel_id).state.version == 0  # nothing reaches Bob until he accepts


def test_accept__countersignature__committed_before_returned(pair):
    alice, bob = pair
    update = alice.propose_payment(5)
    countersig = bob.accept(update)
    stored = bob.store.latest(bob.channel_id)
    assert stored.state == update.state and (stored.sig_a, stored.sig_b) == (update.signature, countersig)
    alice.complete(update, countersig)
    assert alice.store.latest(alice.channel_id) == stored


def test_pay__both_directions__balances_follow(pair):
    alice, bob = pair
    pay(alice, bob, 10)
    pay(bob, alice, 4)
    assert (bob.state.balance_a, bob.state.balance_b) == (E - 6, E + 6)
    assert bob.state.version == 2


def test_top_up__deposit_confirmed__accepted(pair):
    alice, bob = pair
    for channel in (alice, bob):
        channel.confirm_funding((E + 3, E))
    signed = exchange(alice, bob, alice.propose_top_up(3))
    assert (signed.state.funding_a, signed.state.balance_a) == (E + 3, E + 3)


def test_final__cooperative__nothing_after(pair):
    alice, bob = pair
    pay(alice, bob, 1)
    exchange(bob, alice, bob.propose_final())
    assert alice.state.is_final and bob.state.is_final
    with pytest.raises(InvalidState, match="final"):
        alice.propose_payment(1)


# --- idempotent repeats and restart --------------------------------------------------------------------


def test_accept__same_update_twice__same_countersignature_and_store_unchanged(pair):
    alice, bob = pair
    update = alice.propose_payment(3)
    first = bob.accept(update)
    before = snapshot(bob.store)
    assert bob.accept(update) == first
    assert snapshot(bob.store) == before
    alice.complete(update, first)
    assert alice.complete(update, first) == alice.latest  # a repeated completion changes nothing


def test_accept__repeat_signed_by_someone_else__refused(pair):
    alice, bob = pair
    update = alice.propose_payment(3)
    exchange(alice, bob, update)
    _refused(bob, Update(update.state, forge(update.state, BOB_KEY).signature), InvalidSignature, "expected " + ALICE)


def test_accept__repeat_of_an_older_version__same_countersignature(pair):
    alice, bob = pair
    first = alice.propose_payment(3)
    countersig = bob.accept(first)
    alice.complete(first, countersig)
    pay(bob, alice, 1)
    assert bob.accept(first) == countersig


def test_restart__proposer_lost_countersignature__resends_and_completes(pair):
    alice, bob = pair
    update = alice.propose_payment(9)
    bob.accept(update)  # Bob committed, Alice never got the answer: she crashes here
    alice.store.close()
    alice = LedgerChannel.restore(open_store(alice.store.target), alice.channel_id, ALICE_KEY)
    assert alice.pending() == update
    assert alice.latest.state.version == 0
    resume(alice, bob)
    assert alice.latest == bob.latest and alice.state.version == 1 and alice.pending() is None
    pay(alice, bob, 1)  # and the channel goes on (funding known from the signed state)
    assert bob.state.balance_b == E + 10
    alice.store.close()


def test_restart__receiver_never_saw_proposal__resends_and_completes(pair):
    alice, bob = pair
    update = alice.propose_payment(2)
    alice.store.close()
    bob.store.close()
    alice = LedgerChannel.restore(open_store(alice.store.target), alice.channel_id, ALICE_KEY)
    bob = LedgerChannel.restore(open_store(bob.store.target), bob.channel_id, BOB_KEY)
    assert alice.pending() == update and bob.pending() is None
    with pytest.raises(RefusedUpdate, match="deposit first"):  # Bob signed nothing beyond version 0 yet
        resume(alice, bob)
    bob.confirm_funding((E, E))  # a client with a chain connection reads this itself
    resume(alice, bob)
    assert alice.latest == bob.latest and bob.state.balance_b == E + 2
    for _ in range(5):
        pay(bob, alice, 1)
    assert alice.state.version == 6
    alice.store.close()
    bob.store.close()


def test_restart__before_initial_exchange__both_pending_merge(store_at):
    params = ChannelParams(ALICE, BOB, nonce=3)
    alice = LedgerChannel.open(params, LEDGER_DOMAIN, ALICE_KEY, store_at("alice"), E, 0)
    bob = LedgerChannel.open(params, LEDGER_DOMAIN, BOB_KEY, store_at("bob"), E, 0)
    restored = LedgerChannel.restore(open_store(alice.store.target), params.channel_id, ALICE_KEY)
    assert restored.pending() == alice.pending() and restored.latest is None
    resume(restored, bob)
    assert restored.latest == bob.latest and bob.latest.fully_signed and bob.pending() is None
    restored.store.close()


def test_restore__other_key__refused(pair):
    alice, _ = pair
    with pytest.raises(StoreError, match="belongs to"):
        LedgerChannel.restore(alice.store, alice.channel_id, BOB_KEY)


def test_open__twice__refused(pair):
    alice, _ = pair
    with pytest.raises(StoreError, match="restore it instead"):
        LedgerChannel.open(alice.params, LEDGER_DOMAIN, ALICE_KEY, alice.store, E, E)


def test_open__not_a_participant__refused(store_at):
    with pytest.raises(InvalidParams, match="not a participant"):
        LedgerChannel.open(ChannelParams(ALICE, INGRID), LEDGER_DOMAIN, BOB_KEY, store_at("bob"), E, E)


# --- proposer refusals -------------------------------------------------------------------------------


def test_propose__second_while_one_in_flight__refused(pair):
    alice, _ = pair
    alice.propose_payment(1)
    before = snapshot(alice.store)
    with pytest.raises(RefusedUpdate, match="still in flight; send pending"):
        alice.propose_payment(1)
    assert snapshot(alice.store) == before


def test_propose__before_initial_exchange__refused(store_at):
    alice = LedgerChannel.open(ChannelParams(ALICE, BOB, nonce=4), LEDGER_DOMAIN, ALICE_KEY, store_at("alice"), E, E)
    with pytest.raises(RefusedUpdate, match="exchange version 0"):
        alice.propose_payment(1)


def test_propose__unfunded__refused(store_at):
    params = ChannelParams(ALICE, BOB, nonce=5)
    alice = LedgerChannel.open(params, LEDGER_DOMAIN, ALICE_KEY, store_at("alice"), E, E)
    bob = LedgerChannel.open(params, LEDGER_DOMAIN, BOB_KEY, store_at("bob"), E, E)
    exchange(alice, bob)
    alice.confirm_funding((E, E - 1))
    before = snapshot(alice.store)
    with pytest.raises(RefusedUpdate, match="known on-chain; deposit first, then call confirm_funding"):
        alice.propose_payment(1)
    assert snapshot(alice.store) == before and alice.pending() is None


def test_propose__more_than_balance__refused(pair):
    alice, _ = pair
    with pytest.raises(InvalidState, match="cannot pay"):
        alice.propose_payment(E + 1)


def test_complete__countersignature_by_someone_else__refused_and_still_pending(pair):
    alice, _ = pair
    update = alice.propose_payment(1)
    before = snapshot(alice.store)
    wrong = forge(update.state, ALICE_KEY).signature  # Alice's own signature is not Bob's
    with pytest.raises(InvalidSignature, match="expected " + BOB):
        alice.complete(update, wrong)
    assert snapshot(alice.store) == before and alice.pending() == update


def test_complete__update_not_in_flight__refused(pair):
    alice, bob = pair
    other = forge(alice.state.pay(1, 0), ALICE_KEY)
    with pytest.raises(RefusedUpdate, match="only complete the update propose"):
        alice.complete(other, bob.accept(other))


# --- receiver refusals -------------------------------------------------------------------------------


def test_accept__balance_decrease__refused(pair):
    alice, bob = pair
    _refused(bob, forge(alice.state.pay(5, 1), ALICE_KEY), RefusedUpdate, "lowers the receiver's balance")


def test_accept__no_change__refused(pair):
    alice, bob = pair
    _refused(bob, forge(replace(alice.state, version=1), ALICE_KEY), RefusedUpdate, "changes no balance")


def test_accept__version_skipped__refused(pair):
    alice, bob = pair
    state = replace(alice.state.pay(1, 0), version=2)
    _refused(bob, forge(state, ALICE_KEY), RefusedUpdate, "does not follow the latest fully signed version 0")


def test_accept__same_version_other_content__refused(pair):
    alice, bob = pair
    pay(alice, bob, 1)
    _refused(bob, forge(replace(bob.state, balance_a=E - 2, balance_b=E + 2), ALICE_KEY), RefusedUpdate, "differently")


def test_accept__other_channel__refused(pair):
    _, bob = pair
    other = LedgerState.initial(ChannelParams(ALICE, BOB, nonce=99).channel_id, E, E).pay(1, 0)
    _refused(bob, forge(other, ALICE_KEY), RefusedUpdate, "hand it to that channel")


def test_accept__virtual_state_in_ledger_channel__refused(pair):
    alice, bob = pair
    _refused(bob, forge(VirtualState(alice.channel_id, 1, 1, 1), ALICE_KEY), RefusedUpdate, "takes LedgerState")


def test_accept__conservation_broken__refused(pair):
    alice, bob = pair
    state = _tampered(alice.state.pay(1, 0), balance_b=E + 2)
    _refused(bob, forge(state, ALICE_KEY), InvalidState, "do not sum to the funding")


def test_accept__amount_too_large__refused(pair):
    alice, bob = pair
    state = _tampered(alice.state.pay(1, 0), balance_b=MAX_AMOUNT + 1)
    _refused(bob, forge(state, ALICE_KEY), InvalidState, "outside")


def test_accept__funding_decreased__refused(pair):
    alice, bob = pair
    state = replace(alice.state, version=1, funding_a=E - 1, balance_a=E - 1)
    _refused(bob, forge(state, ALICE_KEY), RefusedUpdate, "funding never goes down")


def test_accept__funding_raised_with_balance_elsewhere__refused(pair):
    alice, bob = pair
    state = replace(alice.state, version=1, funding_a=E + 4, balance_b=E + 4)
    _refused(bob, forge(state, ALICE_KEY), RefusedUpdate, "a top-up raises one side's")


def test_accept__top_up_not_on_chain__refused(pair):
    alice, bob = pair
    _refused(bob, forge(alice.state.top_up(3, 0), ALICE_KEY), RefusedUpdate, "known on-chain")


def test_accept__after_final__refused(pair):
    alice, bob = pair
    exchange(alice, bob, alice.propose_final())
    state = replace(alice.state, version=2, is_final=False, balance_a=E - 1, balance_b=E + 1)
    _refused(bob, forge(state, ALICE_KEY), RefusedUpdate, "nothing is signed after a final state")


def test_accept__final_lowering_receiver__refused(pair):
    alice, bob = pair
    state = replace(alice.state.pay(3, 1), is_final=True)
    _refused(bob, forge(state, ALICE_KEY), RefusedUpdate, "final state lowers the receiver's balance")


def test_accept__final_with_locks__refused(pair):
    alice, bob = pair
    state = LedgerState(alice.channel_id, 1, E - 1, E, E, E, (Lock(b"\x09" * 32, 1, 0),), True)
    _refused(bob, forge(state, ALICE_KEY), RefusedUpdate, "release every virtual channel")


def test_accept__lock_of_unknown_virtual_channel__refused(pair):
    alice, bob = pair
    state = LedgerState(alice.channel_id, 1, E - 1, E, E, E, (Lock(b"\x09" * 32, 1, 0),))
    _refused(bob, forge(state, ALICE_KEY), RefusedUpdate, "never agreed to")


def test_accept__two_changes_at_once__refused(pair):
    alice, bob = pair
    locks = (Lock(b"\x09" * 32, 1, 0), Lock(b"\x0a" * 32, 1, 0))
    state = LedgerState(alice.channel_id, 1, E - 2, E, E, E, locks)
    _refused(bob, forge(state, ALICE_KEY), RefusedUpdate, "propose one change per update")


def test_accept__signed_by_someone_else__refused(pair):
    alice, bob = pair
    _refused(bob, forge(alice.state.pay(1, 0), b"\x42" * 32), InvalidSignature, "expected " + ALICE)


def test_accept__malleable_signature__refused(pair):
    alice, bob = pair
    update = forge(alice.state.pay(1, 0), ALICE_KEY)
    s = int.from_bytes(update.signature[32:64], "big")
    twin = update.signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - update.signature[64]])
    _refused(bob, Update(update.state, twin), InvalidSignature, "upper half")


def test_accept__while_own_proposal_in_flight__refused(pair):
    alice, bob = pair
    bob.propose_payment(1)
    _refused(bob, forge(alice.state.pay(2, 0), ALICE_KEY), RefusedUpdate, "our own proposal of version 1 is in flight")


def test_accept__unfunded_channel__refused(store_at):
    params = ChannelParams(ALICE, BOB, nonce=6)
    alice = LedgerChannel.open(params, LEDGER_DOMAIN, ALICE_KEY, store_at("alice"), E, E)
    bob = LedgerChannel.open(params, LEDGER_DOMAIN, BOB_KEY, store_at("bob"), E, E)
    exchange(alice, bob)
    _refused(bob, forge(alice.state.pay(1, 0), ALICE_KEY), RefusedUpdate, "deposit first")


def test_accept__payment_with_stray_evidence__judged_as_payment(pair):
    """Evidence attached to a plain payment changes nothing: the payment is judged as a payment."""
    alice, bob = pair
    evidence = VirtualFinal(VirtualState(b"\x01" * 32, 1, 1, 1, True), b"", b"")
    update = forge(alice.state.pay(1, 0), ALICE_KEY, release=evidence)
    assert bob.accept(update)


def test_signer__repr__hides_the_key():
    assert "a1a1" not in repr(Signer(ALICE_KEY)) and ALICE in repr(Signer(ALICE_KEY))
