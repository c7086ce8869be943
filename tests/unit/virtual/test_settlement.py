"""VirtualAdjudicator.settlement: the outcome (and whether it is final) a ledger channel splits a lock by."""

from types import SimpleNamespace

import pytest

from perun_vyper import VirtualParams, VirtualState

FUNDING_ALICE = 3 * 10**17
FUNDING_BOB = 2 * 10**17
DURATION = 7200


@pytest.fixture
def vparams(make_virtual, make_params, alice, bob, ingrid) -> VirtualParams:
    hub_ids = SimpleNamespace(left=make_params(alice, ingrid), right=make_params(ingrid, bob))
    return make_virtual(hub_ids, FUNDING_ALICE, FUNDING_BOB, challenge_duration=DURATION)


def _settlement(virtual, vparams) -> tuple:
    return tuple(virtual.settlement(vparams.as_tuple()))


def _mine_at(chain, timestamp: int) -> None:
    """Mine an empty block at exactly ``timestamp``: views run against the latest block."""
    chain.pending_timestamp = timestamp
    chain.mine()
    assert chain.blocks.head.timestamp == timestamp


def _register(virtual, vparams, signed_args, sender, chain, timestamp=None):
    if timestamp is not None:
        chain.pending_timestamp = timestamp
    receipt = virtual.register(vparams.as_tuple(), *signed_args, sender=sender)
    if timestamp is not None:
        assert receipt.timestamp == timestamp
    return receipt


# --- never registered -------------------------------------------------------------------------------


def test_settlement__unregistered_now__not_settled_initial_split(virtual, vparams):
    assert _settlement(virtual, vparams) == (vparams.channel_id, False, FUNDING_ALICE, FUNDING_BOB)


@pytest.mark.parametrize("when", ["validity_minus_1", "validity", "expiry_minus_1"])
def test_settlement__unregistered_before_expiry__not_settled(virtual, vparams, chain, when):
    _mine_at(
        chain, {"validity_minus_1": vparams.validity - 1, "validity": vparams.validity}.get(when, vparams.expiry - 1)
    )
    assert _settlement(virtual, vparams) == (vparams.channel_id, False, FUNDING_ALICE, FUNDING_BOB)


@pytest.mark.parametrize("offset", [0, 1, 10**6])
def test_settlement__unregistered_from_expiry__settled_initial_split(virtual, vparams, chain, offset):
    assert vparams.expiry == vparams.validity + DURATION
    _mine_at(chain, vparams.expiry + offset)
    assert _settlement(virtual, vparams) == (vparams.channel_id, True, FUNDING_ALICE, FUNDING_BOB)


def test_settlement__unregistered_zero_funding__settled_zero_split(
    virtual, make_virtual, make_params, alice, ingrid, bob, chain
):
    hub_ids = SimpleNamespace(left=make_params(alice, ingrid), right=make_params(ingrid, bob))
    empty = make_virtual(hub_ids, 0, 0, challenge_duration=DURATION)
    assert _settlement(virtual, empty) == (empty.channel_id, False, 0, 0)
    _mine_at(chain, empty.expiry)
    assert _settlement(virtual, empty) == (empty.channel_id, True, 0, 0)


# --- registered, not final --------------------------------------------------------------------------


def test_settlement__registered_before_deadline__not_settled_registered_balances(
    virtual, vparams, signed_virtual, alice, chain
):
    state = VirtualState.initial(vparams).pay(10**17, from_alice=True)
    receipt = _register(virtual, vparams, signed_virtual(state), alice, chain)
    deadline = receipt.timestamp + DURATION
    assert _settlement(virtual, vparams) == (vparams.channel_id, False, 2 * 10**17, 3 * 10**17)
    _mine_at(chain, deadline - 1)
    assert _settlement(virtual, vparams) == (vparams.channel_id, False, 2 * 10**17, 3 * 10**17)


@pytest.mark.parametrize("offset", [0, 1, 10**6])
def test_settlement__registered_from_deadline__settled_registered_balances(
    virtual, vparams, signed_virtual, alice, chain, offset
):
    state = VirtualState.initial(vparams).pay(10**17, from_alice=False)
    receipt = _register(virtual, vparams, signed_virtual(state), alice, chain)
    _mine_at(chain, receipt.timestamp + DURATION + offset)
    assert _settlement(virtual, vparams) == (vparams.channel_id, True, 4 * 10**17, 10**17)


def test_settlement__registered_just_before_expiry__settles_at_its_deadline(
    virtual, vparams, signed_virtual, bob, chain
):
    # Registered one second before expiry: at expiry the registered state is still open (not the initial
    # split), and it settles at its own deadline with the registered balances.
    state = VirtualState.initial(vparams).pay(FUNDING_BOB, from_alice=False)
    _register(virtual, vparams, signed_virtual(state), bob, chain, vparams.expiry - 1)
    deadline = vparams.expiry - 1 + DURATION
    _mine_at(chain, vparams.expiry)
    assert _settlement(virtual, vparams) == (vparams.channel_id, False, FUNDING_ALICE + FUNDING_BOB, 0)
    _mine_at(chain, deadline - 1)
    assert _settlement(virtual, vparams)[1] is False
    _mine_at(chain, deadline)
    assert _settlement(virtual, vparams) == (vparams.channel_id, True, FUNDING_ALICE + FUNDING_BOB, 0)


def test_settlement__replaced_during_period__latest_balances_at_first_deadline(
    virtual, vparams, signed_virtual, alice, watcher, chain
):
    state1 = VirtualState.initial(vparams).pay(10**17, from_alice=True)
    state2 = state1.pay(3 * 10**17, from_alice=False)
    first = _register(virtual, vparams, signed_virtual(state1), alice, chain)
    deadline = first.timestamp + DURATION
    _register(virtual, vparams, signed_virtual(state2), watcher, chain, first.timestamp + 60)
    assert _settlement(virtual, vparams) == (vparams.channel_id, False, 5 * 10**17, 0)
    _mine_at(chain, deadline)
    assert _settlement(virtual, vparams) == (vparams.channel_id, True, 5 * 10**17, 0)


# --- final --------------------------------------------------------------------------------------------


def test_settlement__final_before_validity__settled_at_once(virtual, vparams, signed_virtual, alice, chain):
    final = VirtualState.initial(vparams).pay(FUNDING_ALICE, from_alice=True).finalized()
    receipt = _register(virtual, vparams, signed_virtual(final), alice, chain)
    assert receipt.timestamp < vparams.validity
    assert _settlement(virtual, vparams) == (vparams.channel_id, True, 0, FUNDING_ALICE + FUNDING_BOB)
    # ...and stays so later.
    _mine_at(chain, vparams.expiry + 10**6)
    assert _settlement(virtual, vparams) == (vparams.channel_id, True, 0, FUNDING_ALICE + FUNDING_BOB)


def test_settlement__final_answering_dispute__settled_before_deadline(
    virtual, vparams, signed_virtual, bob, watcher, chain
):
    state1 = VirtualState.initial(vparams).pay(10**17, from_alice=True)
    final = state1.pay(2 * 10**17, from_alice=False).finalized()
    first = _register(virtual, vparams, signed_virtual(state1), bob, chain)
    _register(virtual, vparams, signed_virtual(final), watcher, chain, first.timestamp + 5)
    assert chain.blocks.head.timestamp < first.timestamp + DURATION
    assert _settlement(virtual, vparams) == (vparams.channel_id, True, 4 * 10**17, 10**17)


def test_settlement__other_channel_final__stays_unsettled(
    virtual, vparams, make_virtual, make_params, signed_virtual, alice, bob, ingrid, chain
):
    # A final state of one virtual channel does not settle another one with the same participants.
    hub_ids = SimpleNamespace(left=make_params(alice, ingrid), right=make_params(ingrid, bob))
    other = make_virtual(hub_ids, FUNDING_ALICE, FUNDING_BOB, validity=vparams.validity, challenge_duration=DURATION)
    final = VirtualState.initial(vparams).pay(1, from_alice=True).finalized()
    _register(virtual, vparams, signed_virtual(final), alice, chain)
    assert _settlement(virtual, vparams)[1] is True
    assert _settlement(virtual, other) == (other.channel_id, False, FUNDING_ALICE, FUNDING_BOB)
