"""register_and_progress: registering a state both signed and making one's own move from it, in one
transaction (the client forcing a request the provider did not take off-chain)."""

from dataclasses import replace

import ape

from perun_vyper.core.app import NO_REGISTRATION, Registration
from perun_vyper.core.sla import request, respond

HOUR = 3600
REQUEST = b"\x11" * 32


def _challenge(apps, params, state, both_args, registered, to_state, mover, sig, sender):
    """The move's fields are taken from ``to_state`` unchecked (tests send moves the Python side refuses)."""
    move_tuple = (mover, to_state.balance_a, to_state.balance_b, to_state.app_data)
    return apps.register_and_progress(
        params.as_tuple(), *both_args, registered.as_tuple(), move_tuple, sig, sender=sender
    )


def test_register_and_progress__request__registers_then_moves(apps, open_app, both, sign_app, chain, alice):
    params, state = open_app()
    asked = request(state, REQUEST)
    receipt = _challenge(apps, params, state, both(state), NO_REGISTRATION, asked, 0, sign_app(asked, alice), alice)
    deadline = chain.blocks.head.timestamp + HOUR
    [registered] = receipt.decode_logs(apps.Registered)
    [moved] = receipt.decode_logs(apps.Progressed)
    # The registration's own deadline is a full period too (the move's, in the same block, supersedes it).
    assert (bytes(registered.state_hash), registered.version, registered.deadline) == (state.struct_hash(), 0, deadline)
    assert (bytes(moved.state_hash), moved.version, moved.deadline, moved.mover) == (
        asked.struct_hash(),
        1,
        deadline,
        0,
    )
    assert bytes(apps.registrations(params.channel_id)) == Registration(asked.struct_hash(), 1, deadline, 0).stored()
    with ape.reverts("ledger: channel disputed"):
        apps.deposit(params.channel_id, 0, value=1, sender=alice)


def test_register_and_progress__then_answered__provider_moves(apps, open_app, both, sign_app, move, alice):
    params, state = open_app()
    asked = request(state, REQUEST)
    receipt = _challenge(apps, params, state, both(state), NO_REGISTRATION, asked, 0, sign_app(asked, alice), alice)
    [event] = receipt.decode_logs(apps.Progressed)
    moved = Registration(bytes(event.state_hash), 1, event.deadline, 0)
    answered = move(params, asked, moved, respond(asked, b"\x22" * 32), 1)
    assert answered.version == 2
    assert bytes(apps.registrations(params.channel_id)) == answered.stored()


def test_register_and_progress__final_state__reverts(apps, open_app, both, sign_app, alice):
    params, state = open_app()
    final = state.finalized()
    nxt = replace(request(state, REQUEST), version=2)
    with ape.reverts("app: no move after a final state"):
        _challenge(apps, params, final, both(final), NO_REGISTRATION, nxt, 0, sign_app(nxt, alice), alice)


def test_register_and_progress__stale_state__reverts(apps, open_app, both, register, sign_app, alice):
    params, state = open_app()
    newer = replace(state, version=5)
    registered = register(params, newer)
    asked = request(state, REQUEST)
    with ape.reverts("app: stale version"):
        _challenge(apps, params, state, both(state), registered, asked, 0, sign_app(asked, alice), alice)


def test_register_and_progress__move_signed_by_other_side__reverts(apps, open_app, both, sign_app, bob):
    params, state = open_app()
    asked = request(state, REQUEST)
    with ape.reverts("app: wrong signer"):
        _challenge(apps, params, state, both(state), NO_REGISTRATION, asked, 0, sign_app(asked, bob), bob)
