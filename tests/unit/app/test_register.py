"""register: opening a dispute with a state both signed, and replacing the registered (or last moved) state
with a higher version before its deadline. Every registration gives a full challenge period."""

from dataclasses import replace

import ape

from perun_vyper.core.app import NO_REGISTRATION, AppState, Registration
from perun_vyper.core.sla import request

HOUR = 3600


def _pay(state: AppState, version: int, amount: int) -> AppState:
    return AppState(
        state.channel,
        version,
        state.balance_a - amount,
        state.balance_b + amount,
        state.funding_a,
        state.funding_b,
        state.app_data,
    )


def test_register__opens_dispute__stores_registration_and_freezes_deposits(apps, open_app, both, chain, alice):
    params, state = open_app()
    state = _pay(state, 3, 10)
    receipt = apps.register(params.as_tuple(), *both(state), NO_REGISTRATION.as_tuple(), sender=alice)
    [event] = receipt.decode_logs(apps.Registered)
    deadline = chain.blocks.head.timestamp + HOUR
    assert (bytes(event.channel), bytes(event.state_hash), event.version, event.deadline) == (
        params.channel_id,
        state.struct_hash(),
        3,
        deadline,
    )
    assert bytes(apps.registrations(params.channel_id)) == Registration(state.struct_hash(), 3, deadline, 3).stored()
    with ape.reverts("ledger: channel disputed"):
        apps.deposit(params.channel_id, 0, value=1, sender=alice)


def test_register__higher_version__replaces_with_fresh_period(apps, open_app, register, chain, bob):
    params, state = open_app()
    first = register(params, _pay(state, 1, 10))
    chain.pending_timestamp += HOUR - 10
    second = register(params, _pay(state, 2, 20), first, sender=bob)
    assert second.version == 2
    assert second.deadline == chain.blocks.head.timestamp + HOUR
    assert bytes(apps.registrations(params.channel_id)) == second.stored()


def test_register__same_or_lower_version__reverts_stale(apps, open_app, both, register, alice):
    params, state = open_app()
    registered = register(params, _pay(state, 5, 10))
    for version in (5, 4):
        with ape.reverts("app: stale version"):
            apps.register(params.as_tuple(), *both(_pay(state, version, 30)), registered.as_tuple(), sender=alice)


def test_register__registration_not_named__reverts(apps, open_app, both, register, alice):
    params, state = open_app()
    registered = register(params, _pay(state, 1, 10))
    wrong = Registration(registered.state_hash, registered.version, registered.deadline + 1, registered.agreed)
    with ape.reverts("app: not the registered state"):
        apps.register(params.as_tuple(), *both(_pay(state, 2, 10)), wrong.as_tuple(), sender=alice)


def test_register__period_over__reverts(apps, open_app, both, register, chain, alice):
    params, state = open_app()
    registered = register(params, _pay(state, 1, 10))
    chain.pending_timestamp = registered.deadline
    with ape.reverts("app: challenge period over"):
        apps.register(params.as_tuple(), *both(_pay(state, 2, 10)), registered.as_tuple(), sender=alice)


def test_register__final_state__concludes_at_once(apps, open_app, both, register, alice, bob, stranger):
    params, state = open_app()
    registered = register(params, _pay(state, 1, 10))
    final = _pay(state, 2, 25).finalized()
    final_reg = register(params, final, registered, sender=bob)
    assert final_reg.version == 3
    before = (alice.balance, bob.balance)
    apps.conclude(params.as_tuple(), final.as_tuple(), final_reg.deadline, final_reg.agreed, sender=stranger)
    assert (alice.balance - before[0], bob.balance - before[1]) == (10**18 - 25, 10**18 + 25)


def test_register__moved_state__replaced_by_higher_both_signed(apps, open_app, register, move, both, bob):
    # A move from a stale registration loses to a newer state both signed.
    params, state = open_app()
    stale = register(params, state)
    requested = request(state, b"\x01" * 32)
    moved = move(params, state, stale, requested, 0)
    newer = _pay(state, 9, 40)
    registered = register(params, newer, moved, sender=bob)
    assert bytes(apps.registrations(params.channel_id)) == registered.stored()
    assert registered.version == 9


def test_register__both_signed_of_a_moved_version__replaces_the_move(apps, open_app, register, move, bob):
    # A move counts for nothing against states both signed: version 1 both signed replaces the move to
    # version 1 (it exceeds the last agreed version, 0); version 0 again does not.
    params, state = open_app()
    stale = register(params, state)
    moved = move(params, state, stale, request(state, b"\x01" * 32), 0)
    replaced = register(params, _pay(state, 1, 40), moved, sender=bob)
    assert (replaced.version, replaced.agreed) == (1, 1)
    assert bytes(apps.registrations(params.channel_id)) == replaced.stored()


def test_register__last_agreed_version_again_after_a_move__reverts_stale(apps, open_app, register, move, both, bob):
    params, state = open_app()
    stale = register(params, state)
    moved = move(params, state, stale, request(state, b"\x01" * 32), 0)
    with ape.reverts("app: stale version"):
        apps.register(params.as_tuple(), *both(_pay(state, 0, 40)), moved.as_tuple(), sender=bob)


def test_register__concluded__reverts(apps, open_app, both, alice):
    params, state = open_app()
    apps.close(params.as_tuple(), *both(state.finalized()), sender=alice)
    with ape.reverts("ledger: channel concluded"):
        apps.register(params.as_tuple(), *both(_pay(state, 5, 1)), NO_REGISTRATION.as_tuple(), sender=alice)


def test_register__wrong_signer__reverts(apps, open_app, both, alice, stranger):
    params, state = open_app()
    with ape.reverts("app: wrong signer"):
        apps.register(params.as_tuple(), *both(state, alice, stranger), NO_REGISTRATION.as_tuple(), sender=alice)


def test_register__state_of_another_channel__reverts(apps, open_app, both, alice):
    params, _ = open_app()
    _, other = open_app()
    with ape.reverts("app: state for another channel"):
        apps.register(params.as_tuple(), *both(other), NO_REGISTRATION.as_tuple(), sender=alice)


def test_register__moves_past_the_latest_version__latest_still_registers(
    apps, project, deployer, open_app, register, move, alice, bob
):
    # With an app that lets one side move again and again, Bob registers a stale state and moves past
    # the version of the latest state both signed before Alice sees it. Her latest state still
    # registers: a registration must exceed the last registered state both signed, not the last move.
    params, state = open_app(app=deployer.deploy(project.AnyMoveApp))
    latest = _pay(state, 3, 30)
    registration = register(params, _pay(state, 1, 10), sender=bob)
    current = _pay(state, 1, 10)
    for version in (2, 3, 4, 5):
        nxt = replace(current, version=version, balance_a=0, balance_b=2 * 10**18)
        registration = move(params, current, registration, nxt, 1)
        current = nxt
    assert (registration.version, registration.agreed) == (5, 1)
    registered = register(params, latest, registration, sender=alice)
    assert (registered.version, registered.agreed) == (3, 3)
    assert bytes(apps.registrations(params.channel_id)) == registered.stored()
