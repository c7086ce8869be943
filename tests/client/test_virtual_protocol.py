"""Virtual channels off-chain: opening by locks in the order SPEC 9.7 requires, paying, closing by a pair of
releases that Ingrid countersigns together, and every refusal of Alice, Bob and Ingrid."""

from dataclasses import replace

import pytest

from perun_vyper import (
    Hub,
    InvalidParams,
    InvalidSignature,
    LedgerChannel,
    LedgerState,
    RefusedUpdate,
    Update,
    VirtualChannel,
    VirtualFinal,
    VirtualParams,
    VirtualState,
    close_virtual,
    close_virtual_channel,
    exchange,
    lock_for,
    open_store,
    open_virtual,
    open_virtual_channel,
    pay,
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
    forge,
    snapshot,
)

FUND_ALICE, FUND_BOB = 3 * 10**17, 10**17


def _params(net, validity: int = NOW + 86400, nonce: int = 1) -> VirtualParams:
    return VirtualParams(
        ALICE,
        BOB,
        INGRID,
        net.alice.channel_id,
        net.bob.channel_id,
        FUND_ALICE,
        FUND_BOB,
        validity,
        3600,
        nonce,
        ledger_adjudicator=LEDGER_DOMAIN.verifying_contract,
        chain_id=LEDGER_DOMAIN.chain_id,
    )


def _stores(net) -> list:
    return [snapshot(channel.store) for channel in (net.alice, net.bob, net.left)]


def _endpoints(net, params) -> tuple[VirtualChannel, VirtualChannel]:
    """Alice and Bob open the virtual channel and sign version 0; no lock yet."""
    alice = VirtualChannel.open(net.alice, params, VIRTUAL_DOMAIN)
    bob = VirtualChannel.open(net.bob, params, VIRTUAL_DOMAIN)
    exchange(alice, bob)
    return alice, bob


def _final_evidence(state: VirtualState) -> VirtualFinal:
    return VirtualFinal(
        state, forge(state, ALICE_KEY, VIRTUAL_DOMAIN).signature, forge(state, BOB_KEY, VIRTUAL_DOMAIN).signature
    )


# --- the whole flow ----------------------------------------------------------------------------------


def test_open_virtual_channel__locks_both_ledger_channels(network):
    params = _params(network)
    alice, bob = open_virtual_channel(network.hub, network.alice, network.bob, params, VIRTUAL_DOMAIN)
    assert alice.latest == bob.latest and alice.state == VirtualState.initial(params)
    assert network.alice.latest == network.left.latest
    assert network.alice.state.locks == (lock_for(network.alice.params, params),)
    assert network.bob.latest == network.right.latest
    assert network.bob.state.locks == (lock_for(network.bob.params, params),)
    assert alice.ledger_holds_lock() and bob.ledger_holds_lock()


def test_virtual_payments_and_close__ledger_balances_follow__ingrid_neutral(network):
    params = _params(network)
    alice, bob = open_virtual_channel(network.hub, network.alice, network.bob, params, VIRTUAL_DOMAIN)
    for _ in range(20):
        pay(alice, bob, 10**15)
    pay(bob, alice, 5 * 10**14)
    final = close_virtual_channel(network.hub, alice, bob)
    paid = 20 * 10**15 - 5 * 10**14
    assert final.is_final and (final.balance_alice, final.balance_bob) == (FUND_ALICE - paid, FUND_BOB + paid)
    assert network.alice.state.locks == () and network.bob.state.locks == ()
    assert network.alice.latest == network.left.latest and network.bob.latest == network.right.latest
    assert (network.alice.state.balance_a, network.bob.state.balance_b) == (E - paid, E + paid)
    assert network.left.state.balance_b + network.right.state.balance_a == 2 * E  # Ingrid neither gains nor loses
    assert network.hub.final_of(params.channel_id).state == final  # she keeps the evidence
    with pytest.raises(RefusedUpdate, match="nothing is signed after a final state"):
        bob.accept(forge(replace(final, version=final.version + 1, is_final=False), ALICE_KEY, VIRTUAL_DOMAIN))


def test_two_virtual_channels__over_the_same_ledgers__both_close(network):
    first = open_virtual_channel(network.hub, network.alice, network.bob, _params(network, nonce=1), VIRTUAL_DOMAIN)
    second = open_virtual_channel(network.hub, network.alice, network.bob, _params(network, nonce=2), VIRTUAL_DOMAIN)
    assert len(network.alice.state.locks) == 2
    pay(*first, 1)
    pay(second[1], second[0], 2)
    close_virtual_channel(network.hub, *second)
    close_virtual_channel(network.hub, *first)
    assert network.alice.state.balance_a == E - 1 + 2 and network.left.state.locks == ()


def test_restart__every_party_restores__virtual_channel_goes_on_and_closes(network):
    params = _params(network)
    alice, bob = open_virtual_channel(network.hub, network.alice, network.bob, params, VIRTUAL_DOMAIN)
    pay(alice, bob, 7)
    update = alice.propose_payment(3)  # in flight when everyone crashes
    crashed = {"alice": network.alice.store, "bob": network.bob.store, "ingrid": network.left.store}
    for store in crashed.values():
        store.close()
    stores = {name: open_store(store.target) for name, store in crashed.items()}
    hub = Hub(INGRID_KEY, stores["ingrid"], virtual_domain=VIRTUAL_DOMAIN, max_validity=MAX_VALIDITY, clock=lambda: NOW)
    alice_ledger = LedgerChannel.restore(stores["alice"], params.ledger_alice, ALICE_KEY)
    bob_ledger = LedgerChannel.restore(stores["bob"], params.ledger_bob, BOB_KEY)
    alice = VirtualChannel.restore(alice_ledger, params.channel_id)
    bob = VirtualChannel.restore(bob_ledger, params.channel_id)
    assert alice.pending() == update and hub.virtuals() == [params]
    exchange(alice, bob)
    close_virtual_channel(hub, alice, bob)
    assert (alice_ledger.state.balance_a, bob_ledger.state.balance_b) == (E - 10, E + 10)
    assert hub.channel(params.ledger_alice).state == alice_ledger.state
    for store in stores.values():
        store.close()


# --- Alice and Bob ------------------------------------------------------------------------------------


def test_virtual_propose__before_own_ledger_holds_lock__refused(network):
    alice, _ = _endpoints(network, _params(network))
    before = _stores(network)
    with pytest.raises(RefusedUpdate, match="does not hold this virtual channel's lock"):
        alice.propose_payment(1)
    assert _stores(network) == before


def test_virtual_accept__bob_without_lock__refused(network):
    """Scenario 7: Ingrid never locks in Bob's channel; Bob signs nothing beyond version 0."""
    params = _params(network)
    alice, bob = _endpoints(network, params)
    network.hub.agree_virtual(params)
    exchange(network.left, network.alice, network.hub.propose_lock(params, "alice"))
    update = alice.propose_payment(1)
    before = snapshot(bob.store)
    with pytest.raises(RefusedUpdate, match="nothing beyond version 0 is signed before it does"):
        bob.accept(update)
    assert snapshot(bob.store) == before


def test_virtual_accept__conservation_broken__refused(network):
    alice, bob = open_virtual_channel(network.hub, network.alice, network.bob, _params(network), VIRTUAL_DOMAIN)
    state = replace(alice.state, version=1, balance_bob=FUND_BOB + 1)
    before = snapshot(bob.store)
    with pytest.raises(RefusedUpdate, match="do not sum to the virtual channel's funding"):
        bob.accept(forge(state, ALICE_KEY, VIRTUAL_DOMAIN))
    assert snapshot(bob.store) == before


def test_virtual_accept__balance_decrease__refused(network):
    alice, bob = open_virtual_channel(network.hub, network.alice, network.bob, _params(network), VIRTUAL_DOMAIN)
    with pytest.raises(RefusedUpdate, match="lowers the receiver's balance"):
        bob.accept(forge(alice.state.pay(1, from_alice=False), ALICE_KEY, VIRTUAL_DOMAIN))


def test_virtual_accept__signed_in_ledger_domain__refused(network):
    alice, bob = open_virtual_channel(network.hub, network.alice, network.bob, _params(network), VIRTUAL_DOMAIN)
    with pytest.raises(InvalidSignature, match="expected " + ALICE):
        bob.accept(forge(alice.state.pay(1, from_alice=True), ALICE_KEY))


def test_virtual_open__wrong_ledger_channel__refused(network):
    with pytest.raises(InvalidParams, match="ledger channel for this virtual channel"):
        VirtualChannel.open(network.alice, replace(_params(network), alice=BOB, bob=ALICE), VIRTUAL_DOMAIN)


def test_ledger_accept__lock_amounts_not_the_funding__refused(network):
    params = _params(network)
    _endpoints(network, params)
    network.hub.agree_virtual(params)
    good = open_virtual(network.left.state, network.left.params, params)
    bad = replace(good, balance_a=good.balance_a + 1, locks=(replace(good.locks[0], amount_a=FUND_ALICE - 1),))
    before = snapshot(network.alice.store)
    with pytest.raises(RefusedUpdate, match="build it with open_virtual"):
        network.alice.accept(forge(bad, INGRID_KEY))
    assert snapshot(network.alice.store) == before


def test_ledger_accept__relock_of_released_virtual_channel__refused(network):
    # Found by the client fuzzer: after an off-chain close, Ingrid proposes the same lock again. Split
    # on-chain by the final record, it would pay Alice her final balance out of funds the release already
    # gave back (Ingrid gains what Alice paid Bob, with nothing to match in Bob's channel).
    params = _params(network)
    alice, bob = open_virtual_channel(network.hub, network.alice, network.bob, params, VIRTUAL_DOMAIN)
    pay(alice, bob, 10**17)
    close_virtual_channel(network.hub, alice, bob)
    relock = open_virtual(network.left.state, network.left.params, params)
    before = snapshot(network.alice.store)
    with pytest.raises(RefusedUpdate, match="it is never locked again"):
        network.alice.accept(forge(relock, INGRID_KEY))
    assert snapshot(network.alice.store) == before
    with pytest.raises(RefusedUpdate, match="it is never locked again"):
        network.left.propose(relock)


# --- Ingrid ----------------------------------------------------------------------------------------------


def test_hub_agree__validity_beyond_max__refused(network):
    params = _params(network, validity=NOW + MAX_VALIDITY + 1)
    before = snapshot(network.hub.store)
    with pytest.raises(RefusedUpdate, match="beyond this hub's maximum"):
        open_virtual_channel(network.hub, network.alice, network.bob, params, VIRTUAL_DOMAIN)
    assert snapshot(network.hub.store) == before and network.hub.virtuals() == []


def test_hub_agree__expired__refused(network):
    with pytest.raises(RefusedUpdate, match="already past"):
        network.hub.agree_virtual(_params(network, validity=NOW - 3600))


def test_hub_agree__not_her_ledger_channel__refused(network):
    params = replace(_params(network), ledger_bob=b"\x0b" * 32)
    with pytest.raises(RefusedUpdate, match="not one of this hub's channels"):
        network.hub.agree_virtual(params)


def test_hub_lock__bob_side_before_alice_side__refused(network):
    params = _params(network)
    _endpoints(network, params)
    network.hub.agree_virtual(params)
    before = snapshot(network.hub.store)
    with pytest.raises(RefusedUpdate, match="only once the Alice-Ingrid channel holds its lock"):
        network.hub.propose_lock(params, "bob")
    proposed_by_bob = forge(open_virtual(network.bob.state, network.bob.params, params), BOB_KEY)
    with pytest.raises(RefusedUpdate, match="lock the Alice side first"):
        network.right.accept(proposed_by_bob)
    assert snapshot(network.hub.store) == before


def test_hub_lock__not_agreed__refused(network):
    params = _params(network)
    _endpoints(network, params)
    proposed_by_alice = forge(open_virtual(network.alice.state, network.alice.params, params), ALICE_KEY)
    with pytest.raises(RefusedUpdate, match=r"Hub\.agree_virtual for Ingrid"):
        network.left.accept(proposed_by_alice)


def _finalised(network) -> tuple[VirtualParams, VirtualChannel, VirtualChannel]:
    params = _params(network)
    alice, bob = open_virtual_channel(network.hub, network.alice, network.bob, params, VIRTUAL_DOMAIN)
    pay(alice, bob, 10**16)
    exchange(alice, bob, alice.propose_final())
    return params, alice, bob


def test_hub_release__one_side_alone__refused(network):
    params, _, _ = _finalised(network)
    before = snapshot(network.hub.store)
    with pytest.raises(RefusedUpdate, match="only holding both releases"):
        network.left.accept(network.alice.propose_release(params.channel_id))
    assert snapshot(network.hub.store) == before


def test_hub_release__different_final_states__refused(network):
    """Alice and Bob collude with two final states (SPEC 9.6): Ingrid signs neither release."""
    params, alice, _ = _finalised(network)
    to_left = network.alice.propose_release(params.channel_id)
    other = _final_evidence(replace(alice.state, balance_alice=FUND_ALICE, balance_bob=FUND_BOB))
    to_right = forge(close_virtual(network.bob.state, network.bob.params, params, other.state), BOB_KEY, release=other)
    before = snapshot(network.hub.store)
    with pytest.raises(RefusedUpdate, match="different final states"):
        network.hub.accept_releases(to_left, to_right)
    assert snapshot(network.hub.store) == before


def test_hub_release__swapped_order__refused(network):
    params, _, _ = _finalised(network)
    to_left = network.alice.propose_release(params.channel_id)
    to_right = network.bob.propose_release(params.channel_id)
    with pytest.raises(RefusedUpdate, match="Alice-Ingrid channel's release first"):
        network.hub.accept_releases(to_right, to_left)


def test_hub_release__evidence_not_signed_by_bob__refused(network):
    params, alice, _ = _finalised(network)
    evidence = VirtualFinal(alice.state, alice.latest.sig_a, forge(alice.state, INGRID_KEY, VIRTUAL_DOMAIN).signature)
    state = close_virtual(network.alice.state, network.alice.params, params, alice.state)
    to_left = forge(state, ALICE_KEY, release=evidence)
    to_right = forge(
        close_virtual(network.bob.state, network.bob.params, params, alice.state), BOB_KEY, release=evidence
    )
    before = snapshot(network.hub.store)
    with pytest.raises(InvalidSignature, match="expected " + BOB):
        network.hub.accept_releases(to_left, to_right)
    assert snapshot(network.hub.store) == before


def test_hub_release__split_not_by_the_final_state__refused(network):
    params, _, bob = _finalised(network)
    to_left = network.alice.propose_release(params.channel_id)
    right = close_virtual(network.bob.state, network.bob.params, params, bob.state)
    skewed = replace(right, balance_a=right.balance_a - 1, balance_b=right.balance_b + 1)
    to_right = forge(skewed, BOB_KEY, release=to_left.release)
    before = snapshot(network.hub.store)
    with pytest.raises(RefusedUpdate, match="build it with close_virtual"):
        network.hub.accept_releases(to_left, to_right)
    assert snapshot(network.hub.store) == before


def test_hub_release__without_evidence__refused(network):
    params, _, _ = _finalised(network)
    to_left = network.alice.propose_release(params.channel_id)
    bare = Update(to_left.state, to_left.signature)
    with pytest.raises(RefusedUpdate, match="releases carrying the final virtual state"):
        network.hub.accept_releases(bare, network.bob.propose_release(params.channel_id))


def test_ledger_release__alice_without_final_state__refused(network):
    params = _params(network)
    open_virtual_channel(network.hub, network.alice, network.bob, params, VIRTUAL_DOMAIN)
    with pytest.raises(RefusedUpdate, match="no final state signed by Alice and Bob"):
        network.alice.propose_release(params.channel_id)


def test_ledger_accept__release_by_non_final_state__refused(network):
    params = _params(network)
    alice, _ = open_virtual_channel(network.hub, network.alice, network.bob, params, VIRTUAL_DOMAIN)
    not_final = alice.state
    evidence = _final_evidence(replace(not_final, is_final=True))
    state = close_virtual(network.bob.state, network.bob.params, params, evidence.state)
    with pytest.raises(RefusedUpdate, match="only by a final virtual state"):
        network.bob.accept(forge(state, INGRID_KEY, release=replace(evidence, state=not_final)))


def test_final__ledger_with_lock__refused(network):
    open_virtual_channel(network.hub, network.alice, network.bob, _params(network), VIRTUAL_DOMAIN)
    with pytest.raises(RefusedUpdate, match="release every virtual channel"):
        network.alice.propose_final()
    assert isinstance(network.alice.state, LedgerState)
