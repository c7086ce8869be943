"""Virtual channels with dishonest endpoints: a stale state registered, Alice and Bob colluding against
Ingrid, Alice and Bob double-signing final states during an off-chain close.

Every test is one scenario, told step by step; the conventions (asymmetric fundings, the balance book,
the roles in the two ledger channels) are in story.py.
"""

from __future__ import annotations

import pytest

from perun_vyper import (
    VirtualState,
    close_virtual,
    compact,
)
from tests.scenarios.story import FUND_ALICE, FUND_BOB, Book, registered_ledger, registered_virtual
from tests.support.checks import concluded_payouts
from tests.support.constants import (
    HOUR,
    VIRTUAL_CONCLUDED,
    VIRTUAL_EXPIRED,
    VIRTUAL_PERIOD_OVER,
    VIRTUAL_STALE,
    E,
    M,
)

# --------------------------------------------------------------------------------------------------
# 4. stale virtual state refuted
# --------------------------------------------------------------------------------------------------


def test_scenario_4_alice_registers_stale_state__watchtower_refutes_for_bob(
    ledger, virtual, chain, open_hub, make_virtual, lock_both, agree, pay, cosign, alice, bob, ingrid, watcher
):
    # Hub funded, virtual channel opened, Alice pays Bob 8 x 30 mETH.
    hub = open_hub()
    book = Book(chain, alice, bob, ingrid, watcher)
    vparams = make_virtual(hub, FUND_ALICE, FUND_BOB)
    left, right = lock_both(hub, vparams)
    history = pay(agree(VirtualState.initial(vparams)).state, [(30 * M, True)] * 8)
    stale, older, latest = history[1], history[0], history[-1]
    assert (stale.state.version, stale.state.balance_alice) == (2, 340 * M)
    assert (latest.state.version, latest.state.balance_alice, latest.state.balance_bob) == (8, 160 * M, 440 * M)

    # Alice cheats: she registers version 2, where she still had 340 mETH, and her ledger state.
    receipt = book.send(virtual.register, vparams.as_tuple(), *stale.args, sender=alice)
    virtual_deadline = receipt.timestamp + HOUR
    assert registered_virtual(virtual, receipt) == [(vparams.channel_id, 2, virtual_deadline, 340 * M, 260 * M, False)]
    book.send(ledger.register, hub.left.as_tuple(), *cosign(hub.left, left), sender=alice)

    # Bob's watchtower sees it and answers with the latest state, well within the challenge period.
    chain.pending_timestamp = virtual_deadline - 60
    receipt = book.send(virtual.register, vparams.as_tuple(), *latest.args, sender=watcher)
    assert registered_virtual(virtual, receipt) == [(vparams.channel_id, 8, virtual_deadline, 160 * M, 440 * M, False)]
    # Alice cannot go back to an older state; the watchtower also registers Bob's ledger channel.
    book.reverts(VIRTUAL_STALE, virtual.register, vparams.as_tuple(), *older.args, sender=alice)
    receipt = book.send(ledger.register, hub.right.as_tuple(), *cosign(hub.right, right), sender=watcher)
    right_deadline = receipt.timestamp + HOUR

    # The challenge period is over: nothing can be registered any more.
    chain.pending_timestamp = virtual_deadline
    book.reverts(VIRTUAL_PERIOD_OVER, virtual.register, vparams.as_tuple(), *stale.args, sender=alice)

    # The watchtower concludes both ledger channels by the refuted outcome.
    chain.pending_timestamp = right_deadline
    for params, state in ((hub.left, left), (hub.right, right)):
        receipt = book.send(
            ledger.conclude, params.as_tuple(), state.locks_tuple(), [vparams.as_tuple()], sender=watcher
        )
        assert concluded_payouts(ledger, receipt) == [(params.channel_id, 1, 600 * M + 160 * M, 800 * M + 440 * M)]

    # Bob got his latest balance without sending anything; Alice's cheat bought her only fees.
    assert book.gain(bob) == 800 * M + 440 * M and book.fees(bob) == 0
    assert book.gain(alice) == 600 * M + 160 * M and book.fees(alice) > 0
    assert book.gain(ingrid) == 2 * E and book.fees(ingrid) == 0
    assert book.gain(watcher) == 0


# --------------------------------------------------------------------------------------------------
# 5. Alice and Bob collude against Ingrid
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("collusion", ["everything_to_bob_final", "everything_to_alice_disputed", "never_registered"])
def test_scenario_5_alice_and_bob_collude__ingrid_total_unchanged(
    collusion, ledger, virtual, chain, open_hub, make_virtual, lock_both, agree, pay, cosign,
    alice, bob, ingrid, watcher,
):  # fmt: skip
    # Uneven ledger channels, so that "Ingrid's total" is not a symmetric accident.
    hub = open_hub(alice_deposit=E, ingrid_left=700 * M, ingrid_right=900 * M, bob_deposit=300 * M)
    book = Book(chain, alice, bob, ingrid, watcher)
    vparams = make_virtual(hub, FUND_ALICE, FUND_BOB)
    left, right = lock_both(hub, vparams)
    initial = agree(VirtualState.initial(vparams))

    # Alice and Bob sign whatever suits them: here one state moving everything to one of them.
    if collusion == "everything_to_bob_final":
        rigged = agree(initial.state.pay(FUND_ALICE, from_alice=True).finalized())
    else:
        rigged = agree(initial.state.pay(FUND_BOB, from_alice=False))
    if collusion == "everything_to_bob_final":
        outcome_alice, outcome_bob = 0, FUND_ALICE + FUND_BOB
    elif collusion == "everything_to_alice_disputed":
        outcome_alice, outcome_bob = FUND_ALICE + FUND_BOB, 0
    else:  # nobody ever registers: the channel falls back to its initial split after validity + challenge
        outcome_alice, outcome_bob = FUND_ALICE, FUND_BOB

    # Ingrid registers both ledger channels herself (her collateral is at stake) ...
    for params, state in ((hub.left, left), (hub.right, right)):
        book.send(ledger.register, params.as_tuple(), *cosign(params, state), sender=ingrid)
    # ... while the colluders register the rigged virtual state (except in the last variant).
    if collusion != "never_registered":
        receipt = book.send(virtual.register, vparams.as_tuple(), *rigged.args, sender=bob)
        (event,) = registered_virtual(virtual, receipt)
        assert event[3:] == (outcome_alice, outcome_bob, rigged.state.is_final)
        settle_at = receipt.timestamp if rigged.state.is_final else receipt.timestamp + HOUR
    else:
        settle_at = vparams.expiry
    settle_at = max(settle_at, chain.blocks.head.timestamp + HOUR)  # the ledger deadlines too

    # Ingrid concludes both ledger channels once everything is settled.
    chain.pending_timestamp = settle_at
    receipt_left = book.send(
        ledger.conclude, hub.left.as_tuple(), left.locks_tuple(), [vparams.as_tuple()], sender=ingrid
    )
    assert concluded_payouts(ledger, receipt_left) == [
        (hub.left.channel_id, 1, E - FUND_ALICE + outcome_alice, 700 * M - FUND_BOB + outcome_bob)
    ]
    # Whatever the colluders try now, the outcome the left channel used is fixed for the right one too.
    if collusion == "everything_to_bob_final":
        book.reverts(VIRTUAL_CONCLUDED, virtual.register, vparams.as_tuple(), *rigged.args, sender=alice)
    else:
        later = agree(rigged.state.pay(1 * M, from_alice=True))
        reason = VIRTUAL_PERIOD_OVER if collusion == "everything_to_alice_disputed" else VIRTUAL_EXPIRED
        book.reverts(reason, virtual.register, vparams.as_tuple(), *later.args, sender=alice)
    receipt_right = book.send(
        ledger.conclude, hub.right.as_tuple(), right.locks_tuple(), [vparams.as_tuple()], sender=ingrid
    )
    assert concluded_payouts(ledger, receipt_right) == [
        (hub.right.channel_id, 1, 900 * M - FUND_ALICE + outcome_alice, 300 * M - FUND_BOB + outcome_bob)
    ]

    # Ingrid's total over both ledger channels is exactly what she deposited (net of her own fees).
    assert book.gain(ingrid) == 700 * M + 900 * M
    assert book.gain(alice) == E - FUND_ALICE + outcome_alice
    assert book.gain(bob) == 300 * M - FUND_BOB + outcome_bob
    assert book.gain(watcher) == 0


@pytest.mark.parametrize("ingrid_signs_last", [True, False], ids=["bob_signs_right_release_first", "naive_order"])
def test_scenario_5b_alice_and_bob_double_sign_final_states__ingrid_safe_only_if_she_signs_releases_last(
    ingrid_signs_last, ledger, virtual, chain, open_hub, make_virtual, lock_both, agree, cosign, cosign_final, sign,
    alice, bob, ingrid, watcher,
):  # fmt: skip
    """Alice and Bob sign two conflicting final virtual states: F1 gives all 0.6 ETH to Alice, F2 all to Bob.
    Alice asks Ingrid to release the lock in the Alice-Ingrid channel by F1, Bob then enforces F2 on-chain.

    - Ingrid signs last (``bob_signs_right_release_first``): she signs the left release only once Bob has
      signed the right release by the same F1. Bob's on-chain F2 then only hits his stale lock-carrying
      state; Ingrid answers with the signed release and keeps her 2 ETH.
    - ``naive_order``: Ingrid signs the left release before she holds Bob's signature on the right one.
      Bob registers F2 (as Bob he may, before validity; Ingrid may not, and F2 being final nobody can
      replace it), and the right lock is split by F2: Ingrid loses the whole 0.6 ETH lock. The contracts
      cannot tell F1 from F2 (both signed by Alice and Bob); only the hub's signing order protects her.
    """
    hub = open_hub()
    book = Book(chain, alice, bob, ingrid, watcher)
    vparams = make_virtual(hub, FUND_ALICE, FUND_BOB)
    left, right = lock_both(hub, vparams)
    initial = VirtualState.initial(vparams)
    f1 = agree(initial.pay(FUND_BOB, from_alice=False).finalized())  # everything to Alice
    f2 = agree(initial.pay(FUND_ALICE, from_alice=True).finalized())  # everything to Bob
    assert f1.state.version == f2.state.version == 2 and f1.state != f2.state

    # The releases by F1 in both ledger channels.
    left_release = close_virtual(left, hub.left, vparams, f1.state)
    right_release = close_virtual(right, hub.right, vparams, f1.state)
    bob_signed_right_release = sign(right_release, bob) if ingrid_signs_last else None

    # Ingrid signs the left release and the left channel closes cooperatively.
    left_final = left_release.finalized()
    receipt = book.send(ledger.close, hub.left.as_tuple(), *cosign_final(hub.left, left_final), sender=watcher)
    assert concluded_payouts(ledger, receipt) == [(hub.left.channel_id, 3, 600 * M + 600 * M, 800 * M)]

    # Bob now refuses the right release: he registers F2 (settled at once) and his lock-carrying state.
    receipt = book.send(virtual.register, vparams.as_tuple(), *f2.args, sender=bob)
    assert registered_virtual(virtual, receipt)[0][3:] == (0, 600 * M, True)
    book.reverts(VIRTUAL_CONCLUDED, virtual.register, vparams.as_tuple(), *f1.args, sender=ingrid)
    receipt = book.send(ledger.register, hub.right.as_tuple(), *cosign(hub.right, right), sender=bob)
    deadline = receipt.timestamp + HOUR

    if ingrid_signs_last:
        # Ingrid holds Bob's signature on the right release (version 2): she refutes with it.
        args = right_release.as_tuple(), compact(sign(right_release, ingrid)), compact(bob_signed_right_release)
        receipt = book.send(ledger.register, hub.right.as_tuple(), *args, sender=ingrid)
        assert registered_ledger(ledger, receipt) == [(hub.right.channel_id, 2, deadline)]
        chain.pending_timestamp = deadline
        receipt = book.send(ledger.conclude, hub.right.as_tuple(), sender=ingrid)
        assert concluded_payouts(ledger, receipt) == [(hub.right.channel_id, 2, 600 * M + 600 * M, 800 * M)]
        assert book.gain(ingrid) == 2 * E
        assert (book.gain(alice), book.gain(bob)) == (1200 * M, 800 * M)
    else:
        # Ingrid has nothing newer: the right lock is split by F2.
        chain.pending_timestamp = deadline
        receipt = book.send(
            ledger.conclude, hub.right.as_tuple(), right.locks_tuple(), [vparams.as_tuple()], sender=ingrid
        )
        assert concluded_payouts(ledger, receipt) == [(hub.right.channel_id, 1, 600 * M, 800 * M + 600 * M)]
        assert book.gain(ingrid) == 2 * E - (FUND_ALICE + FUND_BOB)
        assert book.gain(alice) + book.gain(bob) == 2 * E + (FUND_ALICE + FUND_BOB)
    assert book.gain(watcher) == 0
