"""Virtual channels with a party gone: Ingrid offline, Bob offline, Ingrid never locking for Bob, Ingrid
never funding her ledger channel.

Every test is one scenario, told step by step; the conventions (asymmetric fundings, the balance book,
the roles in the two ledger channels) are in story.py.
"""

from __future__ import annotations

from perun_vyper import (
    LedgerState,
    VirtualState,
    lock_for,
    open_virtual,
)
from tests.scenarios.story import FUND_ALICE, FUND_BOB, Book, registered_ledger, registered_virtual
from tests.support.checks import concluded_payouts
from tests.support.constants import (
    DAY,
    HOUR,
    LEDGER_CONCLUDED,
    LEDGER_DISPUTED,
    LOCKS_NOT_REGISTERED,
    ONLY_ENDPOINTS,
    PARAMS_NOT_LOCKS,
    VIRTUAL_NOT_SETTLED,
    E,
    M,
)

# --------------------------------------------------------------------------------------------------
# 2. Ingrid offline
# --------------------------------------------------------------------------------------------------


def test_scenario_2_ingrid_offline__alice_and_bob_settle_through_the_chain(
    ledger, virtual, chain, open_hub, make_virtual, lock_both, agree, pay, cosign, alice, bob, ingrid, watcher
):
    # Hub funded, virtual channel opened (lock in both ledger channels), 10 payments Alice -> Bob.
    hub = open_hub()
    book = Book(chain, alice, bob, ingrid, watcher)
    vparams = make_virtual(hub, FUND_ALICE, FUND_BOB)
    left, right = lock_both(hub, vparams)
    latest = pay(agree(VirtualState.initial(vparams)).state, [(15 * M, True)] * 10)[-1]
    assert (latest.state.version, latest.state.balance_alice, latest.state.balance_bob) == (10, 250 * M, 350 * M)

    # Ingrid goes offline for good. Alice registers her ledger channel's lock-carrying state ...
    t0 = chain.pending_timestamp
    receipt = book.send(ledger.register, hub.left.as_tuple(), *cosign(hub.left, left), sender=alice)
    ledger_deadline_left = receipt.timestamp + HOUR
    assert registered_ledger(ledger, receipt) == [(hub.left.channel_id, 1, ledger_deadline_left)]
    # ... Bob his ...
    receipt = book.send(ledger.register, hub.right.as_tuple(), *cosign(hub.right, right), sender=bob)
    ledger_deadline_right = receipt.timestamp + HOUR
    # Both states are funded and carry the lock: the dispute records the hash of their locks, which
    # conclude must be given back.
    assert tuple(ledger.dispute(hub.left.channel_id)) == (1, ledger_deadline_left, left.locks_hash())
    assert tuple(ledger.dispute(hub.right.channel_id)) == (1, ledger_deadline_right, right.locks_hash())

    # ... and, a little later, Alice registers the latest virtual state (she may: she is Alice).
    chain.pending_timestamp = t0 + 60
    receipt = book.send(virtual.register, vparams.as_tuple(), *latest.args, sender=alice)
    virtual_deadline = t0 + 60 + HOUR
    assert registered_virtual(virtual, receipt) == [(vparams.channel_id, 10, virtual_deadline, 250 * M, 350 * M, False)]
    # Bob sends the same state too (he does not trust Alice to have done it): a harmless no-op.
    receipt = book.send(virtual.register, vparams.as_tuple(), *latest.args, sender=bob)
    assert registered_virtual(virtual, receipt) == []
    assert tuple(virtual.record(vparams.channel_id)) == (10, virtual_deadline, 250 * M, False)

    # The ledger disputes are over first, but the virtual one is not: the locks cannot be split yet.
    chain.pending_timestamp = max(ledger_deadline_left, ledger_deadline_right)
    assert max(ledger_deadline_left, ledger_deadline_right) < virtual_deadline
    book.reverts(
        VIRTUAL_NOT_SETTLED,
        ledger.conclude, hub.left.as_tuple(), left.locks_tuple(), [vparams.as_tuple()], sender=alice,
    )  # fmt: skip
    # Leaving the lock out (its amounts would then go to nobody's split) is refused too.
    book.reverts(LOCKS_NOT_REGISTERED, ledger.conclude, hub.left.as_tuple(), sender=alice)

    # Once the virtual dispute is over, each concludes its ledger channel with the virtual params.
    chain.pending_timestamp = virtual_deadline
    receipt = book.send(ledger.conclude, hub.left.as_tuple(), left.locks_tuple(), [vparams.as_tuple()], sender=alice)
    assert receipt.timestamp == virtual_deadline
    assert tuple(virtual.settlement(vparams.as_tuple())) == (vparams.channel_id, True, 250 * M, 350 * M)
    assert concluded_payouts(ledger, receipt) == [(hub.left.channel_id, 1, 600 * M + 250 * M, 800 * M + 350 * M)]
    receipt = book.send(ledger.conclude, hub.right.as_tuple(), right.locks_tuple(), [vparams.as_tuple()], sender=bob)
    assert concluded_payouts(ledger, receipt) == [(hub.right.channel_id, 1, 600 * M + 250 * M, 800 * M + 350 * M)]

    # Alice and Bob have their latest virtual balances; Ingrid, who did nothing, is whole (no fees paid).
    assert book.gain(alice) == 600 * M + 250 * M
    assert book.gain(bob) == 800 * M + 350 * M
    assert book.fees(ingrid) == 0
    assert book.gain(ingrid) == (800 * M + 350 * M) + (600 * M + 250 * M) == 2 * E
    assert book.gain(watcher) == 0 and book.fees(watcher) == 0


# --------------------------------------------------------------------------------------------------
# 3. Bob offline
# --------------------------------------------------------------------------------------------------


def test_scenario_3_bob_offline__alice_gets_hers__ingrid_her_collateral_after_validity(
    ledger, virtual, chain, open_hub, make_virtual, lock_both, agree, pay, cosign, alice, bob, ingrid, watcher
):
    # Hub funded, virtual channel opened. Alice and Bob signed the initial virtual state when opening
    # and gave it to Ingrid; then Bob paid Alice 5 x 20 mETH.
    hub = open_hub()
    book = Book(chain, alice, bob, ingrid, watcher)
    validity = chain.pending_timestamp + DAY
    vparams = make_virtual(hub, FUND_ALICE, FUND_BOB, validity=validity)
    left, right = lock_both(hub, vparams)
    initial = agree(VirtualState.initial(vparams))
    latest = pay(initial.state, [(20 * M, False)] * 5)[-1]
    assert (latest.state.balance_alice, latest.state.balance_bob) == (500 * M, 100 * M)

    # Bob goes offline. Ingrid wants her collateral out, but before validity only Alice or Bob may
    # open a virtual dispute: her attempt with the initial state reverts (and costs her the fee).
    book.reverts(
        ONLY_ENDPOINTS,
        virtual.register, vparams.as_tuple(), *initial.args, sender=ingrid,
    )  # fmt: skip
    chain.pending_timestamp = validity - 1
    book.reverts(
        ONLY_ENDPOINTS,
        virtual.register, vparams.as_tuple(), *initial.args, sender=ingrid,
    )  # fmt: skip
    assert tuple(virtual.record(vparams.channel_id)) == (0, 0, 0, False)

    # From validity on she may: she registers the only virtual state she holds, the initial one.
    chain.pending_timestamp = validity
    receipt = book.send(virtual.register, vparams.as_tuple(), *initial.args, sender=ingrid)
    virtual_deadline = validity + HOUR
    assert registered_virtual(virtual, receipt) == [
        (vparams.channel_id, 0, virtual_deadline, FUND_ALICE, FUND_BOB, False)
    ]
    # She also registers the Ingrid-Bob ledger channel (Bob is away) with its lock-carrying state.
    receipt = book.send(ledger.register, hub.right.as_tuple(), *cosign(hub.right, right), sender=ingrid)
    right_deadline = receipt.timestamp + HOUR

    # Alice answers with the latest virtual state (the deadline is not extended) and registers her
    # ledger channel.
    chain.pending_timestamp = validity + 600
    receipt = book.send(virtual.register, vparams.as_tuple(), *latest.args, sender=alice)
    assert registered_virtual(virtual, receipt) == [(vparams.channel_id, 5, virtual_deadline, 500 * M, 100 * M, False)]
    receipt = book.send(ledger.register, hub.left.as_tuple(), *cosign(hub.left, left), sender=alice)
    left_deadline = receipt.timestamp + HOUR

    # After the deadlines Alice concludes hers, Ingrid the Ingrid-Bob channel.
    chain.pending_timestamp = max(virtual_deadline, left_deadline, right_deadline)
    receipt = book.send(ledger.conclude, hub.left.as_tuple(), left.locks_tuple(), [vparams.as_tuple()], sender=alice)
    assert concluded_payouts(ledger, receipt) == [(hub.left.channel_id, 1, 600 * M + 500 * M, 800 * M + 100 * M)]
    receipt = book.send(ledger.conclude, hub.right.as_tuple(), right.locks_tuple(), [vparams.as_tuple()], sender=ingrid)
    assert concluded_payouts(ledger, receipt) == [(hub.right.channel_id, 1, 600 * M + 500 * M, 800 * M + 100 * M)]

    # Alice has her latest balance; Ingrid her 2 ETH (net of her own fees); offline Bob his latest.
    assert book.gain(alice) == 600 * M + 500 * M
    assert book.gain(ingrid) == (800 * M + 100 * M) + (600 * M + 500 * M) == 2 * E
    assert book.fees(ingrid) > 0
    assert book.gain(bob) == 800 * M + 100 * M and book.fees(bob) == 0
    assert book.gain(watcher) == 0


# --------------------------------------------------------------------------------------------------
# 7. Ingrid never locks in the Ingrid-Bob channel
# --------------------------------------------------------------------------------------------------


def test_scenario_7_ingrid_never_locks_for_bob__bob_loses_nothing_alice_gets_her_lock_back(
    ledger, virtual, chain, open_hub, make_virtual, lock_both, agree, cosign, alice, bob, ingrid, watcher
):
    """Ingrid signs the lock into the Alice-Ingrid channel but never into the Ingrid-Bob channel.

    Bob follows the protocol: he checks his ledger channel, finds no lock, and signs nothing beyond
    the initial virtual state (which only restates the funding). So no payment ever happens.

    What each party gets:
      - Alice: her whole 1 ETH back (0.6 free in the left channel + her 0.4 lock, returned because the
        virtual channel settles on its initial split).
      - Ingrid: 1 ETH from the left channel (0.8 free + her 0.2 lock back) plus her right-channel
        balance by the latest Ingrid-Bob state (1.05, after Bob paid her 0.05 there earlier):
        2.05 ETH, i.e. her 2 ETH deposits plus what Bob paid her in their own channel; nothing more.
      - Bob: his right-channel balance by the latest Ingrid-Bob state (0.95 of his 1 ETH, the 0.05 he
        paid Ingrid in that channel), minus only the fees of registering and concluding it himself.
        The virtual channel costs him nothing.
    """
    hub = open_hub()
    book = Book(chain, alice, bob, ingrid, watcher)
    vparams = make_virtual(hub, FUND_ALICE, FUND_BOB)
    # Before the virtual channel, Bob paid Ingrid 50 mETH in their ledger channel (version 1).
    right_latest = hub.right_state.pay(50 * M, from_side=1)

    # Ingrid locks in the left channel (signed by Alice and Ingrid) but never proposes the right lock.
    left = open_virtual(hub.left_state, hub.left, vparams)
    assert left.locks == (lock_for(hub.left, vparams),)
    assert right_latest.locks == ()
    # Bob's check fails, so he signs the initial virtual state and nothing more.
    initial = agree(VirtualState.initial(vparams))

    # Alice wants her 0.4 ETH back without waiting for validity: she registers the initial virtual
    # state (as Alice she may, before validity) and her lock-carrying ledger state.
    receipt = book.send(virtual.register, vparams.as_tuple(), *initial.args, sender=alice)
    virtual_deadline = receipt.timestamp + HOUR
    assert registered_virtual(virtual, receipt) == [
        (vparams.channel_id, 0, virtual_deadline, FUND_ALICE, FUND_BOB, False)
    ]
    receipt = book.send(ledger.register, hub.left.as_tuple(), *cosign(hub.left, left), sender=alice)
    left_deadline = receipt.timestamp + HOUR

    # Bob settles his own channel with the latest state, which carries no lock; pretending it does fails.
    receipt = book.send(ledger.register, hub.right.as_tuple(), *cosign(hub.right, right_latest), sender=bob)
    right_deadline = receipt.timestamp + HOUR
    chain.pending_timestamp = max(virtual_deadline, left_deadline, right_deadline)
    book.reverts(
        PARAMS_NOT_LOCKS,
        ledger.conclude, hub.right.as_tuple(), right_latest.locks_tuple(), [vparams.as_tuple()], sender=bob,
    )  # fmt: skip
    receipt = book.send(ledger.conclude, hub.right.as_tuple(), sender=bob)
    assert concluded_payouts(ledger, receipt) == [(hub.right.channel_id, 1, 1050 * M, 950 * M)]

    # Alice concludes hers: the lock returns to each side what it locked.
    receipt = book.send(ledger.conclude, hub.left.as_tuple(), left.locks_tuple(), [vparams.as_tuple()], sender=alice)
    assert concluded_payouts(ledger, receipt) == [(hub.left.channel_id, 1, E, E)]

    assert book.gain(alice) == E
    assert book.gain(bob) == 950 * M
    assert book.gain(ingrid) == E + 1050 * M and book.fees(ingrid) == 0
    assert book.gain(watcher) == 0


# --------------------------------------------------------------------------------------------------
# 10. Ingrid never funds the Ingrid-Bob channel
# --------------------------------------------------------------------------------------------------


def test_scenario_10_ingrid_never_funds__late_deposit_refused_in_dispute__each_side_gets_its_deposit(
    ledger, virtual, chain, open_hub, make_virtual, lock_both, cosign, alice, bob, ingrid, watcher
):
    """Ingrid signs state 0 of the Ingrid-Bob channel (1 ETH each) and the lock of a virtual channel,
    but never deposits. Bob sees it on-chain, uses nothing, and registers his latest state.

    The outcome is settled at registration: the state is not funded, so each side gets back exactly
    what it deposited and the lock moves nothing. Ingrid cannot turn it into a funded state by
    depositing during the dispute (deposits are refused until the channel concludes), so she can
    never collect a lock split backed by money she did not put in.
    """
    hub = open_hub(ingrid_right=0)
    promised = LedgerState.initial(hub.right.channel_id, E, E)  # what both signed before funding
    vparams = make_virtual(hub, FUND_ALICE, FUND_BOB)
    _, right = lock_both(hub, vparams, right_state=promised)
    assert (right.funding_a, right.funding_b, right.locks) == (E, E, (lock_for(hub.right, vparams),))
    assert tuple(ledger.holdings(hub.right.channel_id)) == (0, E, False)  # Ingrid's 1 ETH never came
    book = Book(chain, bob, ingrid, watcher)

    # Bob registers the lock-carrying state. Unfunded: no locks hash is recorded, conclude takes none.
    receipt = book.send(ledger.register, hub.right.as_tuple(), *cosign(hub.right, right), sender=bob)
    deadline = receipt.timestamp + HOUR
    assert registered_ledger(ledger, receipt) == [(hub.right.channel_id, 1, deadline)]
    assert tuple(ledger.dispute(hub.right.channel_id)) == (1, deadline, b"\x00" * 32)
    # Re-registering the same state (same outcome) is a no-op.
    receipt = book.send(ledger.register, hub.right.as_tuple(), *cosign(hub.right, right), sender=watcher)
    assert registered_ledger(ledger, receipt) == []

    # Ingrid now deposits her 1 ETH to make the registered state funded: refused, nothing moves.
    ledger_before = ledger.balance
    book.reverts(LEDGER_DISPUTED, ledger.deposit, hub.right.channel_id, 0, sender=ingrid, value=E)
    assert tuple(ledger.holdings(hub.right.channel_id)) == (0, E, False)
    assert ledger.balance == ledger_before

    # After the deadline: the lock of an unfunded state is not registered, so conclude takes no locks.
    chain.pending_timestamp = deadline
    book.reverts(
        LOCKS_NOT_REGISTERED,
        ledger.conclude, hub.right.as_tuple(), right.locks_tuple(), [vparams.as_tuple()], sender=watcher,
    )  # fmt: skip
    receipt = book.send(ledger.conclude, hub.right.as_tuple(), sender=watcher)
    assert concluded_payouts(ledger, receipt) == [(hub.right.channel_id, 1, 0, E)]
    assert tuple(ledger.holdings(hub.right.channel_id)) == (0, 0, True)
    assert tuple(ledger.dispute(hub.right.channel_id)) == (0, 0, b"\x00" * 32)
    book.reverts(LEDGER_CONCLUDED, ledger.conclude, hub.right.as_tuple(), sender=ingrid)

    # Bob has his deposit back; Ingrid, who put nothing in, got nothing (and paid her fees).
    assert book.gain(bob) == E
    assert book.gain(ingrid) == 0 and book.fees(ingrid) > 0
    assert book.gain(watcher) == 0
