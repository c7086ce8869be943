"""Virtual channels that end as agreed: closed off-chain, closed fast on-chain, sixteen at the lock cap,
and the same story with the right ledger channel the other way round.

Every test is one scenario, told step by step; the conventions (asymmetric fundings, the balance book,
the roles in the two ledger channels) are in story.py.
"""

from __future__ import annotations

import pytest

from perun_vyper import (
    MAX_LOCKS,
    InvalidSignature,
    InvalidState,
    VirtualState,
    close_virtual,
    lock_for,
    open_virtual,
    verify_state,
)
from tests.scenarios.story import FUND_ALICE, FUND_BOB, Book, registered_virtual
from tests.support.checks import concluded_payouts
from tests.support.constants import (
    BLOCK_GAS_LIMIT,
    DAY,
    HOUR,
    LEDGER_PERIOD_NOT_OVER,
    PARAMS_NOT_LOCKS,
    VIRTUAL_CONCLUDED,
    VIRTUAL_NOT_SETTLED,
    E,
    M,
)

# --------------------------------------------------------------------------------------------------
# 1. happy path
# --------------------------------------------------------------------------------------------------


def test_scenario_1_happy_path__100_payments_closed_off_chain(
    ledger, virtual, chain, open_hub, make_virtual, lock_both, agree, cosign_final, virtual_domain,
    alice, bob, ingrid, watcher,
):  # fmt: skip
    # The hub: Alice-Ingrid and Ingrid-Bob, 1 ETH per side, funded on-chain.
    hub = open_hub()
    book = Book(chain, alice, bob, ingrid, watcher)
    vparams = make_virtual(hub, FUND_ALICE, FUND_BOB)
    block_before = chain.blocks.head.number

    # Opening the virtual channel is off-chain only: both ledger channels move their funding into a lock.
    left, right = lock_both(hub, vparams)
    assert left.locks == (lock_for(hub.left, vparams),) and right.locks == (lock_for(hub.right, vparams),)
    assert (left.balance_a, left.balance_b) == (E - FUND_ALICE, E - FUND_BOB)
    assert (right.balance_a, right.balance_b) == (E - FUND_ALICE, E - FUND_BOB)
    latest = agree(VirtualState.initial(vparams))

    # 100 payments in both directions; every state is signed by both and verified off-chain.
    alice_paid = bob_paid = 0
    for i in range(100):
        from_alice = i % 2 == 0
        amount = (i % 7 + 1) * M if from_alice else (i % 5 + 1) * M
        latest = agree(latest.state.pay(amount, from_alice=from_alice))
        alice_paid += amount if from_alice else 0
        bob_paid += 0 if from_alice else amount
    assert latest.state.version == 100
    final_alice = FUND_ALICE - alice_paid + bob_paid
    final_bob = FUND_BOB + alice_paid - bob_paid
    assert (latest.state.balance_alice, latest.state.balance_bob) == (final_alice, final_bob) == (353 * M, 247 * M)
    # A signature only verifies for its signer.
    with pytest.raises(InvalidSignature):
        verify_state(latest.state, virtual_domain, latest.sig_alice, bob.address)

    # Alice and Bob sign the final virtual state; Ingrid replaces the lock by its outcome in both
    # ledger channels (off-chain), then each ledger channel signs a final state. Ingrid countersigns
    # each release only once she holds Alice's and Bob's signatures on both (see scenario 5b why).
    final = agree(latest.state.finalized())
    left_final = close_virtual(left, hub.left, vparams, final.state).finalized()
    right_final = close_virtual(right, hub.right, vparams, final.state).finalized()
    assert left_final.locks == () and right_final.locks == ()

    # Nothing about the virtual channel ever touched the chain.
    assert chain.blocks.head.number == block_before
    assert tuple(virtual.record(vparams.channel_id)) == (0, 0, 0, False)

    # The two ledger channels close cooperatively (the watcher relays the signed final states).
    receipt_left = book.send(ledger.close, hub.left.as_tuple(), *cosign_final(hub.left, left_final), sender=watcher)
    receipt_right = book.send(ledger.close, hub.right.as_tuple(), *cosign_final(hub.right, right_final), sender=watcher)
    assert concluded_payouts(ledger, receipt_left) == [
        (hub.left.channel_id, 3, E - FUND_ALICE + final_alice, E - FUND_BOB + final_bob)
    ]
    assert concluded_payouts(ledger, receipt_right) == [
        (hub.right.channel_id, 3, E - FUND_ALICE + final_alice, E - FUND_BOB + final_bob)
    ]

    # Exactly two on-chain transactions (the ledger closes); the virtual adjudicator's record is still empty.
    assert chain.blocks.head.number == block_before + 2
    assert tuple(virtual.record(vparams.channel_id)) == (0, 0, 0, False)
    for params in (hub.left, hub.right):
        assert tuple(ledger.holdings(params.channel_id)) == (0, 0, True)

    # Final balances: Alice and Bob got their latest virtual balance, Ingrid exactly her 2 ETH back.
    assert book.gain(alice) == E - FUND_ALICE + final_alice == 953 * M
    assert book.gain(bob) == E - FUND_BOB + final_bob == 1047 * M
    assert book.gain(ingrid) == (E - FUND_BOB + final_bob) + (E - FUND_ALICE + final_alice) == 2 * E
    assert book.gain(watcher) == 0 and book.fees(watcher) > 0
    assert book.fees(alice) == book.fees(bob) == book.fees(ingrid) == 0


# --------------------------------------------------------------------------------------------------
# 6. fast close
# --------------------------------------------------------------------------------------------------


def test_scenario_6_fast_close__final_virtual_state_settles_at_once_before_validity(
    ledger, virtual, chain, open_hub, make_virtual, lock_both, agree, pay, cosign, alice, bob, ingrid, watcher
):
    # Hub funded, virtual channel opened, a few payments, then Alice and Bob sign a final state.
    hub = open_hub()
    book = Book(chain, alice, bob, ingrid, watcher)
    validity = chain.pending_timestamp + DAY
    vparams = make_virtual(hub, FUND_ALICE, FUND_BOB, validity=validity)
    left, right = lock_both(hub, vparams)
    latest = pay(agree(VirtualState.initial(vparams)).state, [(50 * M, True), (10 * M, False), (70 * M, True)])[-1]
    final = agree(latest.state.finalized())
    assert (final.state.version, final.state.balance_alice, final.state.balance_bob) == (4, 290 * M, 310 * M)

    # Ingrid does not answer the request to release the locks off-chain, so the ledger channels are
    # disputed with their lock-carrying states (the watcher relays them).
    for params, state in ((hub.left, left), (hub.right, right)):
        book.send(ledger.register, params.as_tuple(), *cosign(params, state), sender=watcher)
    ledger_deadline = chain.blocks.head.timestamp + HOUR  # the later of the two deadlines

    # Bob registers the final virtual state: the outcome is settled in that very block, long before validity.
    receipt = book.send(virtual.register, vparams.as_tuple(), *final.args, sender=bob)
    registered_at = receipt.timestamp
    assert registered_at < validity
    assert registered_virtual(virtual, receipt) == [
        (vparams.channel_id, 4, registered_at + HOUR, 290 * M, 310 * M, True)
    ]
    assert tuple(virtual.settlement(vparams.as_tuple())) == (vparams.channel_id, True, 290 * M, 310 * M)
    assert tuple(virtual.record(vparams.channel_id)) == (4, registered_at + HOUR, 290 * M, True)
    # Nothing can replace a final outcome, not even the final state itself.
    book.reverts(VIRTUAL_CONCLUDED, virtual.register, vparams.as_tuple(), *final.args, sender=alice)

    # One second before their deadline the ledger channels still wait; at the deadline they conclude.
    chain.pending_timestamp = ledger_deadline - 1
    book.reverts(
        LEDGER_PERIOD_NOT_OVER,
        ledger.conclude, hub.right.as_tuple(), right.locks_tuple(), [vparams.as_tuple()], sender=watcher,
    )  # fmt: skip
    chain.pending_timestamp = ledger_deadline
    for params, state in ((hub.left, left), (hub.right, right)):
        receipt = book.send(
            ledger.conclude, params.as_tuple(), state.locks_tuple(), [vparams.as_tuple()], sender=watcher
        )
        assert concluded_payouts(ledger, receipt) == [(params.channel_id, 1, 600 * M + 290 * M, 800 * M + 310 * M)]
        assert receipt.timestamp < validity

    assert book.gain(alice) == 600 * M + 290 * M and book.fees(alice) > 0
    assert book.gain(bob) == 800 * M + 310 * M and book.fees(bob) > 0
    assert book.gain(ingrid) == 2 * E and book.fees(ingrid) == 0
    assert book.gain(watcher) == 0


# --------------------------------------------------------------------------------------------------
# 8. sixteen virtual channels: the lock cap
# --------------------------------------------------------------------------------------------------


def test_scenario_8_sixteen_locks_at_the_cap__mixed_endings__gas_below_a_tenth_of_a_block(
    ledger, virtual, chain, open_hub, make_virtual, lock_both, agree, pay, cosign, alice, bob, ingrid, watcher
):
    # One hub; 16 virtual channels Alice -> Bob over the same two ledger channels. Channel i is funded
    # with 5(i+1) mETH by Alice and 5(16-i) mETH by Bob; 0.68 ETH per side is locked in each ledger channel.
    hub = open_hub()
    book = Book(chain, alice, bob, ingrid, watcher)
    validity = chain.pending_timestamp + DAY
    vparams = [make_virtual(hub, 5 * (i + 1) * M, 5 * (16 - i) * M, validity=validity) for i in range(MAX_LOCKS)]
    left, right = hub.left_state, hub.right_state
    for vp in vparams:
        left, right = lock_both(hub, vp, left, right)
    assert len(left.locks) == len(right.locks) == MAX_LOCKS == ledger.MAX_LOCKS()
    assert (left.balance_a, left.balance_b, right.balance_a, right.balance_b) == (320 * M,) * 4
    with pytest.raises(InvalidState, match="already carries 16 locks"):
        open_virtual(left, hub.left, make_virtual(hub, M, M, validity=validity))
    initial = [VirtualState.initial(vp) for vp in vparams]
    outcome: dict[int, tuple[int, int]] = {}

    # Channels 0-3 end with a final state, which Bob registers: settled at once.
    for i in range(0, 4):
        latest = pay(initial[i], [((i + 1) * M, True), (2 * M, False)])[-1]
        final = agree(latest.state.finalized())
        receipt = book.send(virtual.register, vparams[i].as_tuple(), *final.args, sender=bob)
        outcome[i] = (final.state.balance_alice, final.state.balance_bob)
        assert registered_virtual(virtual, receipt) == [
            (vparams[i].channel_id, 3, receipt.timestamp + HOUR, *outcome[i], True)
        ]
    # Channels 4-7: Bob paid Alice 10 mETH; Alice registers that latest state and waits out the dispute.
    for i in range(4, 8):
        latest = pay(initial[i], [(10 * M, False)])[-1]
        book.send(virtual.register, vparams[i].as_tuple(), *latest.args, sender=alice)
        outcome[i] = (latest.state.balance_alice, latest.state.balance_bob)
    # Channels 8-11: idle, nobody ever registers them; they fall back to the initial split at expiry.
    for i in range(8, 12):
        outcome[i] = (vparams[i].funding_alice, vparams[i].funding_bob)
    # Channels 12-15: Alice paid Bob 3 x 5 mETH, registers the first (stale) state; the watchtower refutes.
    for i in range(12, 16):
        history = pay(initial[i], [(5 * M, True)] * 3)
        book.send(virtual.register, vparams[i].as_tuple(), *history[0].args, sender=alice)
        receipt = book.send(virtual.register, vparams[i].as_tuple(), *history[-1].args, sender=watcher)
        assert registered_virtual(virtual, receipt)[0][1] == 3
        outcome[i] = (history[-1].state.balance_alice, history[-1].state.balance_bob)

    # Ingrid registers the Alice-Ingrid channel at the cap, the watchtower the Ingrid-Bob one.
    register_left = book.send(ledger.register, hub.left.as_tuple(), *cosign(hub.left, left), sender=ingrid)
    register_right = book.send(ledger.register, hub.right.as_tuple(), *cosign(hub.right, right), sender=watcher)
    ledger_deadline = register_right.timestamp + HOUR

    # At the ledger deadline the idle channels are not settled yet (they wait for validity + challenge).
    chain.pending_timestamp = ledger_deadline
    assert ledger_deadline < vparams[8].expiry
    all_virtuals = [vp.as_tuple() for vp in vparams]
    book.reverts(
        VIRTUAL_NOT_SETTLED,
        ledger.conclude, hub.left.as_tuple(), left.locks_tuple(), all_virtuals, sender=watcher,
    )  # fmt: skip
    # The virtual params must come in the order of the locks.
    chain.pending_timestamp = vparams[8].expiry
    book.reverts(
        PARAMS_NOT_LOCKS,
        ledger.conclude, hub.left.as_tuple(), left.locks_tuple(), all_virtuals[::-1], sender=watcher,
    )  # fmt: skip

    # From expiry on, every outcome is settled: the watchtower concludes both ledger channels.
    conclude_left = book.send(ledger.conclude, hub.left.as_tuple(), left.locks_tuple(), all_virtuals, sender=watcher)
    conclude_right = book.send(ledger.conclude, hub.right.as_tuple(), right.locks_tuple(), all_virtuals, sender=watcher)
    for i, vp in enumerate(vparams):
        assert tuple(virtual.settlement(vp.as_tuple())) == (vp.channel_id, True, *outcome[i])
    to_alice = sum(a for a, _ in outcome.values())
    to_bob = sum(b for _, b in outcome.values())
    assert to_alice + to_bob == 2 * 680 * M
    assert concluded_payouts(ledger, conclude_left) == [(hub.left.channel_id, 16, 320 * M + to_alice, 320 * M + to_bob)]
    assert concluded_payouts(ledger, conclude_right) == [
        (hub.right.channel_id, 16, 320 * M + to_alice, 320 * M + to_bob)
    ]

    # Exact payouts, worked out per group (Alice's side of the 16 outcomes).
    assert (
        to_alice
        == (
            sum(5 * (i + 1) * M - (i + 1) * M + 2 * M for i in range(0, 4))  # final
            + sum(5 * (i + 1) * M + 10 * M for i in range(4, 8))  # disputed
            + sum(5 * (i + 1) * M for i in range(8, 12))  # idle: initial split
            + sum(5 * (i + 1) * M - 15 * M for i in range(12, 16))  # stale, refuted
        )
        == 658 * M
    )
    assert book.gain(alice) == 320 * M + 658 * M
    assert book.gain(bob) == 320 * M + 1360 * M - 658 * M
    assert book.gain(ingrid) == 2 * E
    assert book.gain(watcher) == 0

    # Gas at the cap (16 locks), against a 30M block gas limit.
    gas = {
        "register (Alice-Ingrid, 16 locks)": register_left.gas_used,
        "register (Ingrid-Bob, 16 locks)": register_right.gas_used,
        "conclude (Alice-Ingrid, 16 locks)": conclude_left.gas_used,
        "conclude (Ingrid-Bob, 16 locks)": conclude_right.gas_used,
    }
    for what, used in gas.items():
        print(f"gas at MAX_LOCKS: {what}: {used:,} ({used / BLOCK_GAS_LIMIT:.2%} of a 30M block)")
        assert used < BLOCK_GAS_LIMIT // 10, what


# --------------------------------------------------------------------------------------------------
# 9. orientation of the Ingrid-Bob channel
# --------------------------------------------------------------------------------------------------


def test_scenario_9_orientation__bob_ingrid_channel_settles_like_ingrid_bob(
    ledger, virtual, chain, open_hub, make_virtual, lock_both, agree, pay, cosign, alice, bob, ingrid, watcher
):
    # Two identical hubs but for the order of the right ledger channel: (Ingrid, Bob) and (Bob, Ingrid).
    hubs = {"ingrid_bob": open_hub(), "bob_ingrid": open_hub(bob_first=True)}
    book = Book(chain, alice, bob, ingrid, watcher)
    assert (hubs["ingrid_bob"].right.participant_a, hubs["bob_ingrid"].right.participant_a) == (
        ingrid.address,
        bob.address,
    )
    on_chain: dict[str, dict[str, int]] = {}
    off_chain: dict[str, dict[str, int]] = {}
    for name, hub in hubs.items():
        # The same virtual history on both: lock, Alice pays 120 mETH, Bob pays back 30 mETH.
        vparams = make_virtual(hub, FUND_ALICE, FUND_BOB)
        left, right = lock_both(hub, vparams)
        expected_right_lock = (FUND_ALICE, FUND_BOB) if name == "ingrid_bob" else (FUND_BOB, FUND_ALICE)
        assert (right.locks[0].amount_a, right.locks[0].amount_b) == expected_right_lock
        latest = pay(agree(VirtualState.initial(vparams)).state, [(120 * M, True), (30 * M, False)])[-1]

        # Off-chain close: what each party would get from the final ledger states.
        final = agree(latest.state.finalized())
        off_chain[name] = {}
        for params, state in ((hub.left, left), (hub.right, right)):
            closed = close_virtual(state, params, vparams, final.state)
            for who, amount in ((params.participant_a, closed.balance_a), (params.participant_b, closed.balance_b)):
                off_chain[name][who] = off_chain[name].get(who, 0) + amount

        # On-chain: dispute with the latest (non-final) virtual state and both lock-carrying ledger states.
        book.send(virtual.register, vparams.as_tuple(), *latest.args, sender=alice)
        for params, state in ((hub.left, left), (hub.right, right)):
            book.send(ledger.register, params.as_tuple(), *cosign(params, state), sender=watcher)
        chain.pending_timestamp = chain.blocks.head.timestamp + HOUR
        on_chain[name] = {}
        for params, state in ((hub.left, left), (hub.right, right)):
            receipt = book.send(
                ledger.conclude, params.as_tuple(), state.locks_tuple(), [vparams.as_tuple()], sender=watcher
            )
            ((_, _, payout_a, payout_b),) = concluded_payouts(ledger, receipt)
            for who, amount in ((params.participant_a, payout_a), (params.participant_b, payout_b)):
                on_chain[name][who] = on_chain[name].get(who, 0) + amount

    # Orientation does not matter: every party gets the same, on-chain and off-chain.
    expected = {alice.address: 600 * M + 310 * M, ingrid.address: 2 * E, bob.address: 800 * M + 290 * M}
    assert on_chain["ingrid_bob"] == on_chain["bob_ingrid"] == expected
    assert off_chain["ingrid_bob"] == off_chain["bob_ingrid"] == expected
    assert book.gain(alice) == 2 * (600 * M + 310 * M)
    assert book.gain(bob) == 2 * (800 * M + 290 * M)
    assert book.gain(ingrid) == 4 * E
    assert book.gain(watcher) == 0
