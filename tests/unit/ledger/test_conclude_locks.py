"""conclude with locks: each lock of a registered ledger state is split by its virtual channel's settled outcome."""

from dataclasses import replace
from types import SimpleNamespace

import ape
import pytest

from perun_vyper import InvalidState, LedgerState, Lock, VirtualParams, VirtualState, compact, open_virtual
from tests.support.checks import concluded_payouts
from tests.support.constants import (
    FUNDING_MISMATCH,
    LEDGER_WRONG_SIGNER,
    LOCKS_NOT_REGISTERED,
    PARAMS_NOT_LOCKS,
    VIRTUAL_NOT_SETTLED,
    ZERO_HASH,
    E,
)

FUND_ALICE = 3 * 10**17  # Alice's virtual funding (asymmetric, so a wrong orientation shows)
FUND_BOB = 10**17


def _signed_ledger(signed, accounts, params, state) -> tuple:
    """(state tuple, sig_a, sig_b) signed by the ledger channel's own participants."""
    return signed(state, accounts[params.participant_a], accounts[params.participant_b])


def _register_ledger(ledger, signed, accounts, params, state, sender) -> int:
    """Register a ledger state and return its dispute deadline."""
    receipt = ledger.register(params.as_tuple(), *_signed_ledger(signed, accounts, params, state), sender=sender)
    assert [e.version for e in receipt.decode_logs(ledger.Registered)] == [state.version]
    return receipt.timestamp + params.challenge_duration


def _conclude(ledger, chain, params, state, virtuals, sender, timestamp=None):
    """Conclude with the locks of ``state`` (the registered one, or another list of locks to try)."""
    if timestamp is not None:
        chain.pending_timestamp = timestamp
    receipt = ledger.conclude(params.as_tuple(), state.locks_tuple(), [v.as_tuple() for v in virtuals], sender=sender)
    if timestamp is not None:
        assert receipt.timestamp == timestamp
    return receipt


def _register_virtual(virtual, signed_virtual, vparams, state, sender) -> int:
    """Register a virtual state (Alice or Bob, before validity) and return its deadline."""
    receipt = virtual.register(vparams.as_tuple(), *signed_virtual(state), sender=sender)
    return receipt.timestamp + vparams.challenge_duration


def _right_pair(bob_first: bool, ingrid_amount: int, bob_amount: int) -> tuple[int, int]:
    """(side A, side B) of the right channel, which is (Ingrid, Bob) or, with bob_first, (Bob, Ingrid)."""
    return (bob_amount, ingrid_amount) if bob_first else (ingrid_amount, bob_amount)


def _balances(*accounts_) -> list[int]:
    return [a.balance for a in accounts_]


def _assert_open(ledger, params, deposits, version, locks_hash):
    assert tuple(ledger.holdings(params.channel_id)) == (*deposits, False)
    assert ledger.dispute(params.channel_id)[0::2] == (version, locks_hash)


def _assert_concluded(ledger, params):
    assert tuple(ledger.holdings(params.channel_id)) == (0, 0, True)
    assert tuple(ledger.dispute(params.channel_id)) == (0, 0, ZERO_HASH)


def _assert_lock_moves_nothing(ctx, params, state, vparams, owners) -> None:
    """Registers ``state`` (each side E, its lock not one the virtual channel's outcome may split), settles
    the virtual channel all to Bob, concludes: each side gets exactly E back."""
    deadline = _register_ledger(ctx.ledger, ctx.signed, ctx.accounts, params, state, ctx.watcher)
    _register_virtual(
        ctx.virtual, ctx.signed_virtual, vparams, VirtualState(vparams.channel_id, 1, 0, vparams.total, True), ctx.alice
    )
    before = _balances(*owners)
    receipt = _conclude(ctx.ledger, ctx.chain, params, state, [vparams], ctx.watcher, deadline)
    assert concluded_payouts(ctx.ledger, receipt) == [(params.channel_id, 1, E, E)]
    assert [a - b for a, b in zip(_balances(*owners), before, strict=True)] == [E, E]
    _assert_concluded(ctx.ledger, params)


@pytest.fixture
def chain_ctx(ledger, virtual, signed, signed_virtual, accounts, alice, watcher, chain):
    return SimpleNamespace(
        ledger=ledger,
        virtual=virtual,
        signed=signed,
        signed_virtual=signed_virtual,
        accounts=accounts,
        alice=alice,
        watcher=watcher,
        chain=chain,
    )


@pytest.fixture
def locked_hub(open_hub, make_virtual, ledger, signed, accounts, watcher):
    """A funded hub (1 ETH per side), a virtual channel (0.3 / 0.1 ETH) locked in both legs, and both
    ledger states with the lock registered. Returns everything a test needs."""

    def _make(bob_first=False, **virtual_kwargs):
        hub = open_hub(bob_first=bob_first)
        vparams = make_virtual(hub, FUND_ALICE, FUND_BOB, **virtual_kwargs)
        left = open_virtual(hub.left_state, hub.left, vparams)
        right = open_virtual(hub.right_state, hub.right, vparams)
        deadline_left = _register_ledger(ledger, signed, accounts, hub.left, left, watcher)
        deadline_right = _register_ledger(ledger, signed, accounts, hub.right, right, watcher)
        # Funded states with locks: the dispute view reports each state's locks hash.
        _assert_open(ledger, hub.left, (E, E), 1, left.locks_hash())
        _assert_open(ledger, hub.right, (E, E), 1, right.locks_hash())
        return SimpleNamespace(
            hub=hub, vparams=vparams, left=left, right=right, deadline=max(deadline_left, deadline_right)
        )

    return _make


# --- splitting by the settled outcome ---------------------------------------------------------------


def test_open_virtual__locks_in_ledger_side_order__both_orientations(open_hub, make_virtual):
    for bob_first in (False, True):
        hub = open_hub(bob_first=bob_first)
        vparams = make_virtual(hub, FUND_ALICE, FUND_BOB)
        left = open_virtual(hub.left_state, hub.left, vparams)
        right = open_virtual(hub.right_state, hub.right, vparams)
        assert left.locks == (Lock(vparams.channel_id, FUND_ALICE, FUND_BOB),)
        assert (left.balance_a, left.balance_b) == (E - FUND_ALICE, E - FUND_BOB)
        assert right.locks == (Lock(vparams.channel_id, *_right_pair(bob_first, FUND_ALICE, FUND_BOB)),)
        assert (right.balance_a, right.balance_b) == _right_pair(bob_first, E - FUND_ALICE, E - FUND_BOB)


@pytest.mark.parametrize("bob_first", [False, True], ids=["ingrid_bob", "bob_ingrid"])
@pytest.mark.parametrize("outcome", ["final", "registered"])
def test_conclude__virtual_settled__splits_lock_in_both_channels(
    ledger, virtual, locked_hub, signed_virtual, alice, bob, ingrid, watcher, chain, bob_first, outcome
):
    setup = locked_hub(bob_first=bob_first)
    hub, vparams = setup.hub, setup.vparams
    conclude_at = setup.deadline
    if outcome == "final":
        # Alice paid Bob 0.2 ETH, then both closed the virtual channel: settled at once.
        vstate = VirtualState.initial(vparams).pay(2 * 10**17, from_alice=True).finalized()
        _register_virtual(virtual, signed_virtual, vparams, vstate, alice)
    else:
        # Bob paid Alice 0.05 ETH; Bob registers and the virtual challenge period runs out.
        vstate = VirtualState.initial(vparams).pay(5 * 10**16, from_alice=False)
        conclude_at = max(conclude_at, _register_virtual(virtual, signed_virtual, vparams, vstate, bob))
    bal_alice, bal_bob = vstate.balance_alice, vstate.balance_bob
    assert tuple(virtual.settlement(vparams.as_tuple()))[2:] == (bal_alice, bal_bob)

    before = _balances(alice, bob, ingrid, ledger)
    receipt_left = _conclude(ledger, chain, hub.left, setup.left, [vparams], watcher, conclude_at)
    receipt_right = _conclude(ledger, chain, hub.right, setup.right, [vparams], watcher)
    after = _balances(alice, bob, ingrid, ledger)

    alice_gets = E - FUND_ALICE + bal_alice
    bob_gets = E - FUND_BOB + bal_bob
    ingrid_left = E - FUND_BOB + bal_bob  # Ingrid stands in for Bob in the Alice-Ingrid channel
    ingrid_right = E - FUND_ALICE + bal_alice  # and for Alice in the Ingrid-Bob channel
    assert concluded_payouts(ledger, receipt_left) == [(hub.left.channel_id, 1, alice_gets, ingrid_left)]
    assert concluded_payouts(ledger, receipt_right) == [
        (hub.right.channel_id, 1, *_right_pair(bob_first, ingrid_right, bob_gets))
    ]
    assert after[0] - before[0] == alice_gets
    assert after[1] - before[1] == bob_gets
    assert after[2] - before[2] == ingrid_left + ingrid_right == 2 * E  # Ingrid is neutral
    assert before[3] - after[3] == 4 * E
    # Alice and Bob together get exactly what they had before the virtual channel, redistributed by it.
    assert alice_gets + bob_gets == 2 * E
    assert alice_gets - E == bal_alice - FUND_ALICE
    _assert_concluded(ledger, hub.left)
    _assert_concluded(ledger, hub.right)


@pytest.mark.parametrize("bob_first", [False, True], ids=["ingrid_bob", "bob_ingrid"])
def test_conclude__virtual_unregistered_after_expiry__refunds_initial_split(
    ledger, virtual, locked_hub, alice, bob, ingrid, watcher, chain, bob_first
):
    setup = locked_hub(bob_first=bob_first)
    hub, vparams = setup.hub, setup.vparams
    assert setup.deadline < vparams.expiry
    before = _balances(alice, bob, ingrid)
    receipt_left = _conclude(ledger, chain, hub.left, setup.left, [vparams], watcher, vparams.expiry)
    receipt_right = _conclude(ledger, chain, hub.right, setup.right, [vparams], watcher)
    assert concluded_payouts(ledger, receipt_left) == [(hub.left.channel_id, 1, E, E)]
    assert concluded_payouts(ledger, receipt_right) == [(hub.right.channel_id, 1, E, E)]
    after = _balances(alice, bob, ingrid)
    assert [a - b for a, b in zip(after, before, strict=True)] == [E, E, 2 * E]
    assert tuple(virtual.record(vparams.channel_id)) == (0, 0, 0, False)


# --- refusals ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["missing", "too_many", "other_virtual"])
def test_conclude__virtual_params_do_not_match_locks__reverts(
    ledger, virtual, locked_hub, make_virtual, signed_virtual, alice, watcher, chain, case
):
    setup = locked_hub()
    hub, vparams = setup.hub, setup.vparams
    final = VirtualState.initial(vparams).pay(1, from_alice=True).finalized()
    _register_virtual(virtual, signed_virtual, vparams, final, alice)
    # Another virtual channel over the same hub, settled too: only its id differs.
    other = make_virtual(hub, FUND_ALICE, FUND_BOB)
    _register_virtual(virtual, signed_virtual, other, VirtualState.initial(other).finalized(), alice)
    virtuals = {"missing": [], "too_many": [vparams, vparams], "other_virtual": [other]}[case]
    chain.pending_timestamp = setup.deadline
    with ape.reverts(PARAMS_NOT_LOCKS):
        _conclude(ledger, chain, hub.left, setup.left, virtuals, watcher)
    if case == "missing":
        # The default `virtuals` is the empty list; with both defaults the (empty) locks are wrong first.
        with ape.reverts(PARAMS_NOT_LOCKS):
            ledger.conclude(hub.left.as_tuple(), setup.left.locks_tuple(), sender=watcher)
        with ape.reverts(LOCKS_NOT_REGISTERED):
            ledger.conclude(hub.left.as_tuple(), sender=watcher)
    _assert_open(ledger, hub.left, (E, E), 1, setup.left.locks_hash())
    # The right list concludes.
    receipt = _conclude(ledger, chain, hub.left, setup.left, [vparams], watcher)
    assert concluded_payouts(ledger, receipt) == [(hub.left.channel_id, 1, E - 1, E + 1)]


def test_conclude__virtual_registered_before_its_deadline__reverts_not_settled(
    ledger, virtual, locked_hub, signed_virtual, alice, ingrid, watcher, chain
):
    setup = locked_hub()
    hub, vparams = setup.hub, setup.vparams
    vstate = VirtualState.initial(vparams).pay(10**17, from_alice=True)
    # Alice opens the virtual dispute after the ledger one: its deadline comes later.
    chain.pending_timestamp = setup.deadline - 100
    virtual_deadline = _register_virtual(virtual, signed_virtual, vparams, vstate, alice)
    assert virtual_deadline > setup.deadline
    for timestamp in (setup.deadline, virtual_deadline - 1):
        chain.pending_timestamp = timestamp
        with ape.reverts(VIRTUAL_NOT_SETTLED):
            _conclude(ledger, chain, hub.left, setup.left, [vparams], watcher)
    _assert_open(ledger, hub.left, (E, E), 1, setup.left.locks_hash())
    before = ingrid.balance
    receipt = _conclude(ledger, chain, hub.left, setup.left, [vparams], watcher, virtual_deadline)
    assert concluded_payouts(ledger, receipt) == [
        (hub.left.channel_id, 1, E - FUND_ALICE + 2 * 10**17, E - FUND_BOB + 2 * 10**17)
    ]
    assert ingrid.balance - before == E + 10**17
    _assert_concluded(ledger, hub.left)


def test_conclude__virtual_unregistered_before_expiry__reverts_not_settled(ledger, locked_hub, alice, watcher, chain):
    setup = locked_hub()
    hub, vparams = setup.hub, setup.vparams
    for timestamp in (setup.deadline, vparams.expiry - 1):
        chain.pending_timestamp = timestamp
        with ape.reverts(VIRTUAL_NOT_SETTLED):
            _conclude(ledger, chain, hub.left, setup.left, [vparams], watcher)
    _assert_open(ledger, hub.left, (E, E), 1, setup.left.locks_hash())
    before = alice.balance
    receipt = _conclude(ledger, chain, hub.left, setup.left, [vparams], watcher, vparams.expiry)
    assert concluded_payouts(ledger, receipt) == [(hub.left.channel_id, 1, E, E)]
    assert alice.balance - before == E


# --- locks that do not match their virtual channel --------------------------------------------------


@pytest.mark.parametrize(
    ("leg", "amounts"),
    [
        ("left", (2 * 10**17, 2 * 10**17)),  # right total, wrong split
        ("left", (FUND_BOB, FUND_ALICE)),  # the other orientation's amounts
        ("left", (FUND_ALICE, FUND_BOB + 1)),  # one unit more
        ("right", (FUND_BOB, FUND_ALICE)),
        ("right", (0, 0)),
    ],
)
def test_conclude__lock_amounts_do_not_match__each_side_gets_its_locked_amounts(
    chain_ctx, open_hub, make_virtual, accounts, leg, amounts
):
    hub = open_hub()
    vparams = make_virtual(hub, FUND_ALICE, FUND_BOB)
    params = hub.left if leg == "left" else hub.right
    state = LedgerState(
        params.channel_id, 1, E - amounts[0], E - amounts[1], E, E, (Lock(vparams.channel_id, *amounts),)
    )
    # The virtual outcome moves funds (all to Bob), yet the mismatched lock moves nothing.
    owners = (accounts[params.participant_a], accounts[params.participant_b])
    _assert_lock_moves_nothing(chain_ctx, params, state, vparams, owners)


def test_conclude__lock_of_virtual_funded_elsewhere__each_side_gets_its_locked_amounts(
    ledger, virtual, open_hub, make_virtual, signed, signed_virtual, accounts, alice, ingrid, watcher, chain
):
    hub = open_hub()
    elsewhere = open_hub()
    foreign = make_virtual(elsewhere, FUND_ALICE, FUND_BOB)  # ledger ids: elsewhere.left / elsewhere.right
    assert hub.left.channel_id not in (foreign.ledger_alice, foreign.ledger_bob)
    state = LedgerState(
        hub.left.channel_id, 1, E - FUND_ALICE, E - FUND_BOB, E, E, (Lock(foreign.channel_id, FUND_ALICE, FUND_BOB),)
    )
    deadline = _register_ledger(ledger, signed, accounts, hub.left, state, watcher)
    _register_virtual(
        virtual, signed_virtual, foreign, VirtualState(foreign.channel_id, 1, 0, foreign.total, True), alice
    )
    before = _balances(alice, ingrid)
    receipt = _conclude(ledger, chain, hub.left, state, [foreign], watcher, deadline)
    assert concluded_payouts(ledger, receipt) == [(hub.left.channel_id, 1, E, E)]
    assert [a - b for a, b in zip(_balances(alice, ingrid), before, strict=True)] == [E, E]


def test_conclude__lock_of_virtual_with_other_participants__each_side_gets_its_locked_amounts(
    ledger, virtual, open_hub, signed, signed_virtual, accounts, alice, bob, ingrid, stranger, watcher, chain
):
    # The virtual channel names this ledger channel as its Alice leg, but its "Alice" is the stranger.
    hub = open_hub()
    vparams = VirtualParams(
        str(stranger.address),
        str(bob.address),
        str(ingrid.address),
        hub.left.channel_id,
        hub.right.channel_id,
        FUND_ALICE,
        FUND_BOB,
        chain.pending_timestamp + 86400,
        3600,
        4242,
        ledger_adjudicator=str(ledger.address),
        chain_id=chain.chain_id,
    )
    state = replace(
        hub.left_state,
        version=1,
        balance_a=E - FUND_ALICE,
        balance_b=E - FUND_BOB,
        locks=(Lock(vparams.channel_id, FUND_ALICE, FUND_BOB),),
    )
    deadline = _register_ledger(ledger, signed, accounts, hub.left, state, watcher)
    final = VirtualState(vparams.channel_id, 1, vparams.total, 0, True)
    virtual.register(vparams.as_tuple(), *signed_virtual(final, stranger, bob), sender=stranger)
    assert tuple(virtual.settlement(vparams.as_tuple())) == (vparams.channel_id, True, vparams.total, 0)
    before = _balances(alice, ingrid)
    receipt = _conclude(ledger, chain, hub.left, state, [vparams], watcher, deadline)
    assert concluded_payouts(ledger, receipt) == [(hub.left.channel_id, 1, E, E)]
    assert [a - b for a, b in zip(_balances(alice, ingrid), before, strict=True)] == [E, E]


@pytest.mark.parametrize(
    "amounts", [(FUND_BOB, FUND_ALICE + 1), (FUND_BOB + 1, FUND_ALICE)], ids=["b_wrong", "a_wrong"]
)
def test_conclude__bob_first_leg_lock_with_one_amount_wrong__each_side_gets_its_locked_amounts(
    chain_ctx, open_hub, make_virtual, bob, ingrid, amounts
):
    # The (Bob, Ingrid) orientation of Bob's leg: both of the lock's amounts must match, not one.
    hub = open_hub(bob_first=True)
    vparams = make_virtual(hub, FUND_ALICE, FUND_BOB)
    state = LedgerState(
        hub.right.channel_id, 1, E - amounts[0], E - amounts[1], E, E, (Lock(vparams.channel_id, *amounts),)
    )
    _assert_lock_moves_nothing(chain_ctx, hub.right, state, vparams, (bob, ingrid))


def test_conclude__lock_in_leg_of_bob_and_a_stranger__each_side_gets_its_locked_amounts(
    chain_ctx, virtual, open_hub, make_params, deposit, make_virtual, bob, stranger
):
    # The virtual channel names a channel of Bob (side A) and a stranger (side B) as Bob's leg. Bob is where
    # the (Bob, Ingrid) orientation puts him, the stranger is not Ingrid: the lock moves nothing, even with
    # the amounts of that orientation and an outcome that would pay Bob both fundings.
    hub = open_hub()
    odd = make_params(bob, stranger)
    deposit(odd, 0, E, bob)
    deposit(odd, 1, E, stranger)
    vparams = make_virtual(replace(hub, right=odd), FUND_ALICE, FUND_BOB)
    state = LedgerState(
        odd.channel_id, 1, E - FUND_BOB, E - FUND_ALICE, E, E, (Lock(vparams.channel_id, FUND_BOB, FUND_ALICE),)
    )
    _assert_lock_moves_nothing(chain_ctx, odd, state, vparams, (bob, stranger))
    assert tuple(virtual.settlement(vparams.as_tuple())) == (vparams.channel_id, True, 0, vparams.total)


# --- close, several locks, refund rule --------------------------------------------------------------


def test_close__final_state_with_lock__reverts(ledger, locked_hub, sign, accounts, watcher):
    # close takes no locks: a final state with locks cannot be expressed to it. Its own fields break
    # conservation without the locks; folding the locks into the balances makes a state nobody signed.
    setup = locked_hub()
    for params, state in ((setup.hub.left, setup.left), (setup.hub.right, setup.right)):
        final = state.finalized()
        with pytest.raises(InvalidState, match="a final state has no locks"):
            final.final_tuple()
        owner_a, owner_b = accounts[params.participant_a], accounts[params.participant_b]
        sigs = (compact(sign(final, owner_a)), compact(sign(final, owner_b)))
        (lock,) = final.locks
        own_fields = (final.version, final.balance_a, final.balance_b, final.funding_a, final.funding_b)
        with ape.reverts(FUNDING_MISMATCH):
            ledger.close(params.as_tuple(), own_fields, *sigs, sender=watcher)
        folded = (
            final.version,
            final.balance_a + lock.amount_a,
            final.balance_b + lock.amount_b,
            final.funding_a,
            final.funding_b,
        )
        with ape.reverts(LEDGER_WRONG_SIGNER):
            ledger.close(params.as_tuple(), folded, *sigs, sender=watcher)
        _assert_open(ledger, params, (E, E), 1, state.locks_hash())


def test_conclude__three_locks__split_independently(
    ledger, virtual, open_hub, make_virtual, signed, signed_virtual, accounts, alice, bob, ingrid, watcher, chain
):
    hub = open_hub(bob_first=True)
    now = chain.pending_timestamp
    v1 = make_virtual(hub, 3 * 10**17, 10**17)  # final: Alice pays Bob 0.25
    v2 = make_virtual(hub, 10**17, 2 * 10**17)  # registered, not final: Bob pays Alice 0.15
    v3 = make_virtual(hub, 5 * 10**16, 7 * 10**16, validity=now + 10)  # never registered: expires
    left, right = hub.left_state, hub.right_state
    for vp in (v1, v2, v3):
        left = open_virtual(left, hub.left, vp)
        right = open_virtual(right, hub.right, vp)
    assert len(left.locks) == len(right.locks) == 3
    deadline = max(
        _register_ledger(ledger, signed, accounts, hub.left, left, watcher),
        _register_ledger(ledger, signed, accounts, hub.right, right, watcher),
    )
    s1 = VirtualState.initial(v1).pay(25 * 10**16, from_alice=True).finalized()
    s2 = VirtualState.initial(v2).pay(15 * 10**16, from_alice=False)
    _register_virtual(virtual, signed_virtual, v1, s1, alice)
    deadline = max(deadline, _register_virtual(virtual, signed_virtual, v2, s2, bob), v3.expiry)
    outcomes = [
        (s1.balance_alice, s1.balance_bob),
        (s2.balance_alice, s2.balance_bob),
        (v3.funding_alice, v3.funding_bob),
    ]

    chain.pending_timestamp = deadline
    with ape.reverts(PARAMS_NOT_LOCKS):
        _conclude(ledger, chain, hub.left, left, [v2, v1, v3], watcher)
    # The registered order of the locks is part of their hash: the same locks reordered are refused.
    reordered = replace(left, locks=left.locks[::-1])
    with ape.reverts(LOCKS_NOT_REGISTERED):
        _conclude(ledger, chain, hub.left, reordered, [v3, v2, v1], watcher)
    _assert_open(ledger, hub.left, (E, E), 3, left.locks_hash())

    before = _balances(alice, bob, ingrid)
    receipt_left = _conclude(ledger, chain, hub.left, left, [v1, v2, v3], watcher)
    receipt_right = _conclude(ledger, chain, hub.right, right, [v1, v2, v3], watcher)
    after = _balances(alice, bob, ingrid)

    alice_gets = left.balance_a + sum(a for a, _ in outcomes)
    ingrid_left = left.balance_b + sum(b for _, b in outcomes)
    bob_gets = right.balance_a + sum(b for _, b in outcomes)  # right channel is (Bob, Ingrid)
    ingrid_right = right.balance_b + sum(a for a, _ in outcomes)
    assert alice_gets == E - 25 * 10**16 + 15 * 10**16
    assert left.version == right.version == 3
    assert concluded_payouts(ledger, receipt_left) == [(hub.left.channel_id, 3, alice_gets, ingrid_left)]
    assert concluded_payouts(ledger, receipt_right) == [(hub.right.channel_id, 3, bob_gets, ingrid_right)]
    assert [a - b for a, b in zip(after, before, strict=True)] == [alice_gets, bob_gets, 2 * E]
    assert ingrid_left + ingrid_right == 2 * E
    _assert_concluded(ledger, hub.left)
    _assert_concluded(ledger, hub.right)


@pytest.mark.parametrize("virtual_outcome", ["unsettled", "settled"])
def test_conclude__side_underfunded__refunds_deposits_ignoring_locks(
    ledger,
    virtual,
    open_hub,
    make_virtual,
    signed,
    signed_virtual,
    accounts,
    alice,
    ingrid,
    watcher,
    chain,
    virtual_outcome,
):
    # Ingrid deposited half of what the state says she funded: nothing moved, locks included.
    hub = open_hub(ingrid_left=E // 2)
    vparams = make_virtual(hub, FUND_ALICE, FUND_BOB)
    state = open_virtual(LedgerState.initial(hub.left.channel_id, E, E), hub.left, vparams)
    deadline = _register_ledger(ledger, signed, accounts, hub.left, state, watcher)
    if virtual_outcome == "settled":
        final = VirtualState(vparams.channel_id, 1, 0, vparams.total, True)
        _register_virtual(virtual, signed_virtual, vparams, final, alice)
    else:
        assert deadline < vparams.expiry
        assert tuple(virtual.settlement(vparams.as_tuple()))[1] is False
    # Not funded: no locks hash is stored, and conclude takes no locks (its locks are refused).
    _assert_open(ledger, hub.left, (E, E // 2), 1, ZERO_HASH)
    chain.pending_timestamp = deadline
    for virtuals in ([vparams], []):
        with ape.reverts(LOCKS_NOT_REGISTERED):
            _conclude(ledger, chain, hub.left, state, virtuals, watcher)
    with ape.reverts(PARAMS_NOT_LOCKS):
        ledger.conclude(hub.left.as_tuple(), [], [vparams.as_tuple()], sender=watcher)
    before = _balances(alice, ingrid, ledger)
    receipt = ledger.conclude(hub.left.as_tuple(), [], [], sender=watcher)
    assert concluded_payouts(ledger, receipt) == [(hub.left.channel_id, 1, E, E // 2)]
    assert [a - b for a, b in zip(_balances(alice, ingrid, ledger), before, strict=True)] == [E, E // 2, -3 * E // 2]
    _assert_concluded(ledger, hub.left)
