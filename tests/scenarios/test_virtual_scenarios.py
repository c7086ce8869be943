"""End-to-end stories of a virtual channel Alice - Ingrid (hub) - Bob over two ETH ledger channels.

Every test is one scenario, told step by step. Amounts are deliberately asymmetric (Alice funds the
virtual channel with 0.4 ETH, Bob with 0.2 ETH) so that a lock split the wrong way round cannot pass.

Balances: a ``Book`` records every party's ETH balance once the ledger channels are funded, and the
fees of every transaction a party sends itself (reverted ones included: Anvil mines them). At the end
each party's gain *net of its own fees* is asserted exactly. Whatever a party need not send itself
(conclusions, refutations for Bob, ...) is sent by ``watcher``, whose net gain is therefore zero.

Roles in the two ledger channels: ``left`` is (Alice, Ingrid), ``right`` is (Ingrid, Bob) unless
opened with ``bob_first=True``, then (Bob, Ingrid). Ingrid locks Bob's virtual funding in ``left``
and Alice's in ``right``; the adjudicator pays her Bob's virtual balance in ``left`` and Alice's in
``right``, so her total over both ledger channels never changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import ape
import pytest

from perun_vyper import (
    MAX_LOCKS,
    InvalidSignature,
    InvalidState,
    LedgerState,
    VirtualParams,
    VirtualState,
    close_virtual,
    compact,
    lock_for,
    open_virtual,
    verify_state,
)
from tests.support.checks import concluded_payouts
from tests.support.constants import (
    BLOCK_GAS_LIMIT,
    DAY,
    HOUR,
    LEDGER_CONCLUDED,
    LEDGER_DISPUTED,
    LEDGER_PERIOD_NOT_OVER,
    LOCKS_NOT_REGISTERED,
    ONLY_ENDPOINTS,
    PARAMS_NOT_LOCKS,
    VIRTUAL_CONCLUDED,
    VIRTUAL_EXPIRED,
    VIRTUAL_NOT_SETTLED,
    VIRTUAL_PERIOD_OVER,
    VIRTUAL_STALE,
    E,
    M,
)

FUND_ALICE = 400 * M  # Alice's virtual funding (locked by Alice in `left`, by Ingrid in `right`)
FUND_BOB = 200 * M  # Bob's virtual funding (locked by Ingrid in `left`, by Bob in `right`)


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


class Book:
    """Each party's ETH from now on, net of the fees it pays for its own transactions."""

    def __init__(self, chain, *parties):
        self._chain = chain
        self._start = {p.address: p.balance for p in parties}
        self._fees = dict.fromkeys(self._start, 0)

    def send(self, method, *args, sender):
        """Send a transaction from ``sender`` and charge its fee to ``sender``."""
        receipt = method(*args, sender=sender)
        assert not receipt.failed
        self._fees[sender.address] += receipt.total_fees_paid
        return receipt

    def reverts(self, reason: str, method, *args, sender, **kwargs) -> None:
        """Send a transaction that must revert with ``reason``; Anvil mines it, so charge its fee too."""
        with ape.reverts(reason):
            method(*args, sender=sender, **kwargs)
        web3 = self._chain.provider.web3
        (tx_hash,) = web3.eth.get_block("latest")["transactions"]
        assert web3.eth.get_transaction(tx_hash)["from"] == sender.address
        receipt = web3.eth.get_transaction_receipt(tx_hash)
        assert receipt["status"] == 0
        self._fees[sender.address] += receipt["gasUsed"] * receipt["effectiveGasPrice"]

    def fees(self, party) -> int:
        return self._fees[party.address]

    def gain(self, party) -> int:
        """What ``party`` received since the book was opened, not counting the fees it paid."""
        return party.balance - self._start[party.address] + self._fees[party.address]


@dataclass(frozen=True)
class Signed:
    """A virtual state with Alice's and Bob's signatures (each verified off-chain when made)."""

    state: VirtualState
    sig_alice: bytes
    sig_bob: bytes

    @property
    def args(self) -> tuple:
        """The arguments of VirtualAdjudicator.register: the state and both compact signatures."""
        return self.state.as_tuple(), compact(self.sig_alice), compact(self.sig_bob)


def _registered_virtual(virtual, receipt) -> list[tuple]:
    return [
        (e.channel, e.version, e.deadline, e.balance_alice, e.balance_bob, e.is_final)
        for e in receipt.decode_logs(virtual.Registered)
    ]


def _registered_ledger(ledger, receipt) -> list[tuple]:
    return [(e.channel, e.version, e.deadline) for e in receipt.decode_logs(ledger.Registered)]


@pytest.fixture
def cosign(signed, accounts) -> Callable[..., tuple]:
    """``cosign(params, state)``: a ledger state signed by both participants of ``params``, in order."""

    def _cosign(params, state: LedgerState) -> tuple:
        return signed(state, accounts[params.participant_a], accounts[params.participant_b])

    return _cosign


@pytest.fixture
def cosign_final(signed_final, accounts) -> Callable[..., tuple]:
    """``cosign_final(params, state)``: the (final tuple, sig_a, sig_b) arguments of close for a final,
    lock-free ledger state signed by both participants of ``params``."""

    def _cosign(params, state: LedgerState) -> tuple:
        return signed_final(state, accounts[params.participant_a], accounts[params.participant_b])

    return _cosign


@pytest.fixture
def agree(sign_virtual, virtual_domain, alice, bob) -> Callable[..., Signed]:
    """``agree(state)``: Alice and Bob sign a virtual state; each checks the other's signature off-chain."""

    def _agree(state: VirtualState) -> Signed:
        sig_alice, sig_bob = sign_virtual(state, alice), sign_virtual(state, bob)
        verify_state(state, virtual_domain, sig_alice, alice.address)
        verify_state(state, virtual_domain, sig_bob, bob.address)
        return Signed(state, sig_alice, sig_bob)

    return _agree


@pytest.fixture
def pay(agree) -> Callable[..., list[Signed]]:
    """``pay(state, [(amount, from_alice), ...])``: one signed virtual state per payment, in order."""

    def _pay(state: VirtualState, payments) -> list[Signed]:
        history = []
        for amount, from_alice in payments:
            state = state.pay(amount, from_alice=from_alice)
            history.append(agree(state))
        return history

    return _pay


@pytest.fixture
def lock_both(sign, domain, accounts) -> Callable[..., tuple]:
    """``lock_both(hub, vparams)``: the next state of both ledger channels carrying the virtual
    channel's lock, each signed by its two participants (signatures verified off-chain)."""

    def _lock(hub, vparams: VirtualParams, left_state=None, right_state=None) -> tuple:
        left = open_virtual(left_state or hub.left_state, hub.left, vparams)
        right = open_virtual(right_state or hub.right_state, hub.right, vparams)
        for params, state in ((hub.left, left), (hub.right, right)):
            sig_a, sig_b = sign(state, accounts[params.participant_a]), sign(state, accounts[params.participant_b])
            verify_state(state, domain, sig_a, params.participant_a)
            verify_state(state, domain, sig_b, params.participant_b)
        return left, right

    return _lock


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
    assert _registered_ledger(ledger, receipt) == [(hub.left.channel_id, 1, ledger_deadline_left)]
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
    assert _registered_virtual(virtual, receipt) == [
        (vparams.channel_id, 10, virtual_deadline, 250 * M, 350 * M, False)
    ]
    # Bob sends the same state too (he does not trust Alice to have done it): a harmless no-op.
    receipt = book.send(virtual.register, vparams.as_tuple(), *latest.args, sender=bob)
    assert _registered_virtual(virtual, receipt) == []
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
    assert _registered_virtual(virtual, receipt) == [
        (vparams.channel_id, 0, virtual_deadline, FUND_ALICE, FUND_BOB, False)
    ]
    # She also registers the Ingrid-Bob ledger channel (Bob is away) with its lock-carrying state.
    receipt = book.send(ledger.register, hub.right.as_tuple(), *cosign(hub.right, right), sender=ingrid)
    right_deadline = receipt.timestamp + HOUR

    # Alice answers with the latest virtual state (the deadline is not extended) and registers her
    # ledger channel.
    chain.pending_timestamp = validity + 600
    receipt = book.send(virtual.register, vparams.as_tuple(), *latest.args, sender=alice)
    assert _registered_virtual(virtual, receipt) == [(vparams.channel_id, 5, virtual_deadline, 500 * M, 100 * M, False)]
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
    assert _registered_virtual(virtual, receipt) == [(vparams.channel_id, 2, virtual_deadline, 340 * M, 260 * M, False)]
    book.send(ledger.register, hub.left.as_tuple(), *cosign(hub.left, left), sender=alice)

    # Bob's watchtower sees it and answers with the latest state, well within the challenge period.
    chain.pending_timestamp = virtual_deadline - 60
    receipt = book.send(virtual.register, vparams.as_tuple(), *latest.args, sender=watcher)
    assert _registered_virtual(virtual, receipt) == [(vparams.channel_id, 8, virtual_deadline, 160 * M, 440 * M, False)]
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
        (event,) = _registered_virtual(virtual, receipt)
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
    assert _registered_virtual(virtual, receipt)[0][3:] == (0, 600 * M, True)
    book.reverts(VIRTUAL_CONCLUDED, virtual.register, vparams.as_tuple(), *f1.args, sender=ingrid)
    receipt = book.send(ledger.register, hub.right.as_tuple(), *cosign(hub.right, right), sender=bob)
    deadline = receipt.timestamp + HOUR

    if ingrid_signs_last:
        # Ingrid holds Bob's signature on the right release (version 2): she refutes with it.
        args = right_release.as_tuple(), compact(sign(right_release, ingrid)), compact(bob_signed_right_release)
        receipt = book.send(ledger.register, hub.right.as_tuple(), *args, sender=ingrid)
        assert _registered_ledger(ledger, receipt) == [(hub.right.channel_id, 2, deadline)]
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
    assert _registered_virtual(virtual, receipt) == [
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
    assert _registered_virtual(virtual, receipt) == [
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
        assert _registered_virtual(virtual, receipt) == [
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
        assert _registered_virtual(virtual, receipt)[0][1] == 3
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
    assert _registered_ledger(ledger, receipt) == [(hub.right.channel_id, 1, deadline)]
    assert tuple(ledger.dispute(hub.right.channel_id)) == (1, deadline, b"\x00" * 32)
    # Re-registering the same state (same outcome) is a no-op.
    receipt = book.send(ledger.register, hub.right.as_tuple(), *cosign(hub.right, right), sender=watcher)
    assert _registered_ledger(ledger, receipt) == []

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
