"""conclude: once a dispute's challenge period is over, the registered (or last moved) state pays out."""

from dataclasses import replace

import ape

from perun_vyper.core.sla import request

REQUEST = b"\x11" * 32


def test_conclude__after_deadline__pays_registered_state(apps, open_app, register, chain, alice, bob, stranger):
    params, state = open_app()
    paid = replace(state, version=4, balance_a=state.balance_a - 7, balance_b=state.balance_b + 7)
    registered = register(params, paid)
    chain.pending_timestamp = registered.deadline
    before = (alice.balance, bob.balance)
    receipt = apps.conclude(params.as_tuple(), paid.as_tuple(), registered.deadline, registered.agreed, sender=stranger)
    assert (alice.balance - before[0], bob.balance - before[1]) == (10**18 - 7, 10**18 + 7)
    [event] = receipt.decode_logs(apps.Concluded)
    assert (event.version, event.payout_a, event.payout_b) == (4, 10**18 - 7, 10**18 + 7)
    assert bytes(apps.registrations(params.channel_id)) == b"\x00" * 32
    assert apps.holdings(params.channel_id) == (0, 0, True)


def test_conclude__after_unanswered_move__pays_moved_state(apps, open_app, register, move, chain, alice, bob):
    params, state = open_app()
    registered = register(params, state)
    asked = request(state, REQUEST)
    moved = move(params, state, registered, asked, 0)
    chain.pending_timestamp = moved.deadline
    before = (alice.balance, bob.balance)
    apps.conclude(params.as_tuple(), asked.as_tuple(), moved.deadline, moved.agreed, sender=bob)
    assert alice.balance - before[0] == asked.balance_a
    assert asked.balance_a == state.balance_a + 10**17  # the penalty


def test_conclude__before_deadline__reverts(apps, open_app, register, chain, alice):
    params, state = open_app()
    registered = register(params, state)
    chain.pending_timestamp = registered.deadline - 1
    with ape.reverts("app: challenge period not over"):
        apps.conclude(params.as_tuple(), state.as_tuple(), registered.deadline, registered.agreed, sender=alice)


def test_conclude__state_not_registered__reverts(apps, open_app, register, chain, alice):
    params, state = open_app()
    registered = register(params, state)
    chain.pending_timestamp = registered.deadline
    other = replace(state, balance_a=0, balance_b=state.balance_a + state.balance_b)
    with ape.reverts("app: not the registered state"):
        apps.conclude(params.as_tuple(), other.as_tuple(), registered.deadline, registered.agreed, sender=alice)


def test_conclude__superseded_move__reverts(apps, open_app, register, move, chain, alice):
    # After a move, the state it moved from no longer concludes.
    params, state = open_app()
    registered = register(params, state)
    moved = move(params, state, registered, request(state, REQUEST), 0)
    chain.pending_timestamp = moved.deadline
    with ape.reverts("app: not the registered state"):
        apps.conclude(params.as_tuple(), state.as_tuple(), registered.deadline, registered.agreed, sender=alice)


def test_conclude__no_dispute_or_twice__reverts(apps, open_app, register, chain, alice):
    params, state = open_app()
    with ape.reverts("app: no dispute"):
        apps.conclude(params.as_tuple(), state.as_tuple(), 0, 0, sender=alice)
    registered = register(params, state)
    chain.pending_timestamp = registered.deadline
    apps.conclude(params.as_tuple(), state.as_tuple(), registered.deadline, registered.agreed, sender=alice)
    with ape.reverts("app: no dispute"):
        apps.conclude(params.as_tuple(), state.as_tuple(), registered.deadline, registered.agreed, sender=alice)
