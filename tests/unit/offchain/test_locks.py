"""perun_vyper.core.locks: locking a virtual channel's funding in a ledger state and releasing it (no chain)."""

from dataclasses import replace

import pytest

from perun_vyper import (
    MAX_LOCKS,
    ChannelParams,
    InvalidState,
    LedgerState,
    Lock,
    VirtualParams,
    VirtualState,
    close_virtual,
    lock_for,
    open_virtual,
)
from perun_vyper.core.locks import roles, split
from tests.support.constants import E

ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20
INGRID = "0x" + "1d" * 20
OTHER = "0x" + "0e" * 20
LEDGER_ADJUDICATOR = "0x" + "5e" * 20
FUND_ALICE = 3 * 10**17
FUND_BOB = 10**17


def _hub(left_reversed: bool = False, bob_first: bool = False):
    """Ledger params: left Alice-Ingrid (or Ingrid-Alice), right Ingrid-Bob (or Bob-Ingrid)."""
    left = ChannelParams(INGRID, ALICE, nonce=1) if left_reversed else ChannelParams(ALICE, INGRID, nonce=1)
    right = ChannelParams(BOB, INGRID, nonce=2) if bob_first else ChannelParams(INGRID, BOB, nonce=2)
    return left, right


def _virtual(left, right, funding_alice=FUND_ALICE, funding_bob=FUND_BOB, nonce=0) -> VirtualParams:
    return VirtualParams(
        ALICE,
        BOB,
        INGRID,
        left.channel_id,
        right.channel_id,
        funding_alice,
        funding_bob,
        10**9,
        3600,
        nonce,
        ledger_adjudicator=LEDGER_ADJUDICATOR,
        chain_id=31337,
    )


def _state(params, balance_a=E, balance_b=E) -> LedgerState:
    return LedgerState.initial(params.channel_id, balance_a, balance_b)


# --- open_virtual -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("leg", "left_reversed", "bob_first", "expected"),
    [
        # (lock amount_a, lock amount_b): side A locks Alice's funding iff it stands for Alice.
        ("left", False, False, (FUND_ALICE, FUND_BOB)),  # (Alice, Ingrid)
        ("left", True, False, (FUND_BOB, FUND_ALICE)),  # (Ingrid, Alice)
        ("right", False, False, (FUND_ALICE, FUND_BOB)),  # (Ingrid, Bob): Ingrid stands for Alice
        ("right", False, True, (FUND_BOB, FUND_ALICE)),  # (Bob, Ingrid)
    ],
)
def test_open_virtual__orientation__moves_funding_into_lock(leg, left_reversed, bob_first, expected):
    left, right = _hub(left_reversed, bob_first)
    vparams = _virtual(left, right)
    params = left if leg == "left" else right
    state = _state(params).pay(5 * 10**16, 0)
    opened = open_virtual(state, params, vparams)
    assert opened.version == state.version + 1
    assert opened.locks == (Lock(vparams.channel_id, *expected),)
    assert lock_for(params, vparams) == opened.locks[0]
    assert (opened.balance_a, opened.balance_b) == (state.balance_a - expected[0], state.balance_b - expected[1])
    assert (opened.funding_a, opened.funding_b, opened.is_final) == (E, E, False)
    assert opened.balance_a + opened.balance_b + opened.locked == 2 * E


def test_open_virtual__second_virtual_channel__appends_lock():
    left, right = _hub()
    v1, v2 = _virtual(left, right, nonce=1), _virtual(left, right, 10, 20, nonce=2)
    opened = open_virtual(open_virtual(_state(left), left, v1), left, v2)
    assert opened.locks == (Lock(v1.channel_id, FUND_ALICE, FUND_BOB), Lock(v2.channel_id, 10, 20))
    assert opened.version == 2
    assert (opened.balance_a, opened.balance_b) == (E - FUND_ALICE - 10, E - FUND_BOB - 20)


def test_open_virtual__duplicate_lock__raises():
    left, right = _hub()
    vparams = _virtual(left, right)
    opened = open_virtual(_state(left), left, vparams)
    with pytest.raises(InvalidState, match="already locked"):
        open_virtual(opened, left, vparams)


@pytest.mark.parametrize(
    ("balance_a", "balance_b"),
    [(FUND_ALICE - 1, E), (E, FUND_BOB - 1), (0, 0)],
)
def test_open_virtual__insufficient_balance__raises(balance_a, balance_b):
    left, right = _hub()
    vparams = _virtual(left, right)
    with pytest.raises(InvalidState, match="cannot cover the lock"):
        open_virtual(_state(left, balance_a, balance_b), left, vparams)


def test_open_virtual__exact_balance__locks_everything():
    left, right = _hub()
    vparams = _virtual(left, right)
    opened = open_virtual(_state(left, FUND_ALICE, FUND_BOB), left, vparams)
    assert (opened.balance_a, opened.balance_b, opened.locked) == (0, 0, FUND_ALICE + FUND_BOB)


def test_open_virtual__final_state__raises():
    left, right = _hub()
    vparams = _virtual(left, right)
    with pytest.raises(InvalidState, match="final"):
        open_virtual(_state(left).finalized(), left, vparams)


def test_open_virtual__ledger_channel_not_a_leg__raises():
    left, right = _hub()
    vparams = _virtual(left, right)
    unrelated = ChannelParams(ALICE, INGRID, nonce=99)
    with pytest.raises(InvalidState, match="not funded by this ledger channel"):
        open_virtual(_state(unrelated), unrelated, vparams)


def test_open_virtual__leg_with_other_participants__raises():
    # The virtual channel names (Alice, Bob) as its Alice leg: not an Alice-Ingrid channel.
    _, right = _hub()
    wrong_leg = ChannelParams(ALICE, BOB, nonce=5)
    vparams = _virtual(wrong_leg, right)
    with pytest.raises(InvalidState, match="participants"):
        open_virtual(_state(wrong_leg), wrong_leg, vparams)


def test_open_virtual__state_of_other_ledger_channel__raises():
    left, right = _hub()
    vparams = _virtual(left, right)
    with pytest.raises(InvalidState, match="another ledger channel"):
        open_virtual(_state(right), left, vparams)


def test_open_virtual__max_locks__raises():
    left, right = _hub()
    vparams = _virtual(left, right, 1, 1)
    state = _state(left)
    for i in range(MAX_LOCKS - 1):
        state = open_virtual(state, left, _virtual(left, right, 1, 1, nonce=100 + i))
    state = open_virtual(state, left, _virtual(left, right, 1, 1, nonce=99))
    assert len(state.locks) == MAX_LOCKS
    with pytest.raises(InvalidState, match=f"{MAX_LOCKS} locks"):
        open_virtual(state, left, vparams)


# --- close_virtual ----------------------------------------------------------------------------------


def _opened_hub(bob_first=False):
    left, right = _hub(bob_first=bob_first)
    vparams = _virtual(left, right)
    return left, right, vparams, open_virtual(_state(left), left, vparams), open_virtual(_state(right), right, vparams)


def test_close_virtual__non_final_state__raises():
    left, _, vparams, left_state, _ = _opened_hub()
    state = VirtualState.initial(vparams).pay(1, from_alice=True)
    with pytest.raises(InvalidState, match="final"):
        close_virtual(left_state, left, vparams, state)


def test_close_virtual__state_of_other_virtual_channel__raises():
    left, right, vparams, left_state, _ = _opened_hub()
    other = _virtual(left, right, nonce=7)
    with pytest.raises(InvalidState, match="another virtual channel"):
        close_virtual(left_state, left, vparams, VirtualState.initial(other).finalized())


@pytest.mark.parametrize(
    ("balance_alice", "balance_bob"), [(FUND_ALICE, FUND_BOB + 1), (0, 0), (FUND_ALICE + FUND_BOB, 1)]
)
def test_close_virtual__not_conserving__raises(balance_alice, balance_bob):
    left, _, vparams, left_state, _ = _opened_hub()
    final = VirtualState(vparams.channel_id, 3, balance_alice, balance_bob, True)
    with pytest.raises(InvalidState, match="do not sum to the funding"):
        close_virtual(left_state, left, vparams, final)


def test_close_virtual__no_lock__raises():
    left, _, vparams, _, _ = _opened_hub()
    final = VirtualState.initial(vparams).finalized()
    with pytest.raises(InvalidState, match="no lock"):
        close_virtual(_state(left), left, vparams, final)


def test_close_virtual__lock_does_not_match__raises():
    left, _, vparams, left_state, _ = _opened_hub()
    tampered = replace(left_state, locks=(Lock(vparams.channel_id, FUND_BOB, FUND_ALICE),))
    with pytest.raises(InvalidState, match="does not match"):
        close_virtual(tampered, left, vparams, VirtualState.initial(vparams).finalized())


def test_close_virtual__one_of_several_locks__keeps_the_others():
    left, right = _hub()
    v1, v2 = _virtual(left, right, nonce=1), _virtual(left, right, 10, 20, nonce=2)
    state = open_virtual(open_virtual(_state(left), left, v1), left, v2)
    closed = close_virtual(state, left, v1, VirtualState(v1.channel_id, 4, 0, v1.total, True))
    assert closed.locks == (Lock(v2.channel_id, 10, 20),)
    assert (closed.balance_a, closed.balance_b) == (state.balance_a, state.balance_b + v1.total)
    assert closed.version == state.version + 1


@pytest.mark.parametrize("bob_first", [False, True], ids=["ingrid_bob", "bob_ingrid"])
@pytest.mark.parametrize(
    ("balance_alice", "balance_bob"),
    [
        (FUND_ALICE, FUND_BOB),  # nothing paid
        (0, FUND_ALICE + FUND_BOB),  # everything to Bob
        (FUND_ALICE + FUND_BOB, 0),  # everything to Alice
        (10**17, 3 * 10**17),  # Alice paid 0.2
        (FUND_ALICE + 1, FUND_BOB - 1),  # Bob paid one unit
    ],
)
def test_open_then_close__same_final_state__ingrid_neutral(bob_first, balance_alice, balance_bob):
    left, right, vparams, left_open, right_open = _opened_hub(bob_first)
    final = VirtualState(vparams.channel_id, 9, balance_alice, balance_bob, True)
    left_closed = close_virtual(left_open, left, vparams, final)
    right_closed = close_virtual(right_open, right, vparams, final)
    ingrid_right_side = 1 if bob_first else 0
    balances_right = (right_closed.balance_a, right_closed.balance_b)
    ingrid_before = E + E  # Ingrid's balance in both initial states
    assert left_closed.balance_b + balances_right[ingrid_right_side] == ingrid_before
    assert left_closed.balance_a == E - FUND_ALICE + balance_alice  # Alice
    assert balances_right[1 - ingrid_right_side] == E - FUND_BOB + balance_bob  # Bob
    for closed, opened in ((left_closed, left_open), (right_closed, right_open)):
        assert closed.locks == ()
        assert closed.version == opened.version + 1
        assert closed.balance_a + closed.balance_b == 2 * E
    # The off-chain split agrees with the rule the contract applies at conclusion.
    assert split(left_open.locks[0], left, vparams, balance_alice, balance_bob) == (balance_alice, balance_bob)
    expected_right = (balance_bob, balance_alice) if bob_first else (balance_alice, balance_bob)
    assert split(right_open.locks[0], right, vparams, balance_alice, balance_bob) == expected_right
    assert roles(right, vparams) == ((1, 0) if bob_first else (0, 1))
