"""progress: the force-move. The mover alone advances the registered (or last moved) state by one version
with a transition its app accepts; the other side gets a full challenge period to answer."""

from dataclasses import replace

import ape
import pytest

from perun_vyper import compact, sign_digest
from perun_vyper.core.app import NO_REGISTRATION, Registration
from perun_vyper.core.codec import APP_STATE
from perun_vyper.core.sla import request, respond

HOUR = 3600
REQUEST = b"\x11" * 32
ANSWER = b"\x22" * 32


@pytest.fixture
def disputed(open_app, register):
    """An SLA channel with state 0 registered: (params, state 0, its registration)."""
    params, state = open_app()
    return params, state, register(params, state)


def _progress(apps, params, from_state, registration, to_state, mover, sig, sender):
    """``progress`` naming ``registration``, with the move to ``to_state``'s balances and app data,
    unchecked (so that a test can send a move the Python side would refuse)."""
    move = (mover, to_state.balance_a, to_state.balance_b, to_state.app_data)
    return apps.progress(
        params.as_tuple(), from_state.as_tuple(), registration.deadline, registration.agreed, move, sig, sender=sender
    )


def test_progress__request__moves_state_and_gives_full_period(apps, disputed, sign_app, chain, alice, stranger):
    params, state, registered = disputed
    chain.pending_timestamp += HOUR // 2
    nxt = request(state, REQUEST)
    receipt = _progress(apps, params, state, registered, nxt, 0, sign_app(nxt, alice), stranger)
    [event] = receipt.decode_logs(apps.Progressed)
    deadline = chain.blocks.head.timestamp + HOUR
    assert (bytes(event.channel), bytes(event.state_hash), event.version, event.deadline, event.mover) == (
        params.channel_id,
        nxt.struct_hash(),
        1,
        deadline,
        0,
    )
    assert (event.balance_a, event.balance_b, bytes(event.app_data)) == (nxt.balance_a, nxt.balance_b, nxt.app_data)
    assert bytes(apps.registrations(params.channel_id)) == Registration(nxt.struct_hash(), 1, deadline, 0).stored()


def test_progress__answer_to_moved_request__accepted(apps, disputed, move, bob):
    params, state, registered = disputed
    asked = request(state, REQUEST)
    moved = move(params, state, registered, asked, 0)
    answered = respond(asked, ANSWER)
    final = move(params, asked, moved, answered, 1)
    assert final.version == 2
    assert bytes(apps.registrations(params.channel_id)) == final.stored()


def test_progress__no_dispute__reverts(apps, open_app, sign_app, alice):
    params, state = open_app()
    nxt = request(state, REQUEST)
    with ape.reverts("app: no dispute"):
        _progress(apps, params, state, NO_REGISTRATION, nxt, 0, sign_app(nxt, alice), alice)


def test_progress__from_other_state__reverts(apps, disputed, sign_app, alice):
    params, state, registered = disputed
    other = replace(state, balance_a=state.balance_a - 1, balance_b=state.balance_b + 1)
    nxt = request(other, REQUEST)
    with ape.reverts("app: not the registered state"):
        _progress(apps, params, other, registered, nxt, 0, sign_app(nxt, alice), alice)


def test_progress__period_over__reverts(apps, disputed, sign_app, chain, alice):
    params, state, registered = disputed
    chain.pending_timestamp = registered.deadline
    nxt = request(state, REQUEST)
    with ape.reverts("app: challenge period over"):
        _progress(apps, params, state, registered, nxt, 0, sign_app(nxt, alice), alice)


def test_progress__moves_only_balances_and_data__signature_of_anything_else_refused(apps, disputed, sign_app, alice):
    # The contract builds the next state itself (same channel and funding, version + 1, not final): a
    # signature over a state that differs in any other field does not verify for it.
    params, state, registered = disputed
    asked = request(state, REQUEST)
    for other in (replace(asked, version=2), replace(asked, is_final=True), replace(asked, channel=b"\x01" * 32)):
        with ape.reverts("app: wrong signer"):
            _progress(apps, params, state, registered, asked, 0, sign_app(other, alice), alice)


def test_progress__mover_out_of_range__reverts(apps, disputed, sign_app, alice):
    params, state, registered = disputed
    nxt = request(state, REQUEST)
    with ape.reverts("app: invalid mover"):
        _progress(apps, params, state, registered, nxt, 2, sign_app(nxt, alice), alice)


def test_progress__signed_by_the_other_side__reverts(apps, disputed, sign_app, bob):
    # Bob cannot make Alice's move: the signature must be the named mover's.
    params, state, registered = disputed
    nxt = request(state, REQUEST)
    with ape.reverts("app: wrong signer"):
        _progress(apps, params, state, registered, nxt, 0, sign_app(nxt, bob), bob)


def test_progress__malformed_signature__reverts(apps, disputed, alice):
    params, state, registered = disputed
    nxt = request(state, REQUEST)
    with ape.reverts("app: invalid signature"):
        _progress(apps, params, state, registered, nxt, 0, (b"\x00" * 32, b"\x00" * 32), alice)


def test_progress__not_conserved__reverts(apps, disputed, app_domain, alice):
    params, state, registered = disputed
    asked = request(state, REQUEST)
    raw = (*asked.as_tuple()[:2], asked.balance_a + 1, *asked.as_tuple()[3:])
    sig = compact(sign_digest(alice.private_key, app_domain.digest(APP_STATE.hash(raw))))
    move = (0, asked.balance_a + 1, asked.balance_b, asked.app_data)
    with ape.reverts("ledger: balances do not match funding"):
        apps.progress(
            params.as_tuple(), state.as_tuple(), registered.deadline, registered.agreed, move, sig, sender=alice
        )


def test_progress__app_refuses__its_reason_bubbles_up(apps, disputed, sign_app, bob):
    # The provider cannot answer when nothing is pending: SlaApp's own reason reaches the caller.
    params, state, registered = disputed
    nxt = respond(replace(state, app_data=request(state, REQUEST).app_data), ANSWER)
    nxt = replace(nxt, version=1, balance_a=state.balance_a, balance_b=state.balance_b)
    with ape.reverts("sla: no request pending"):
        _progress(apps, params, state, registered, nxt, 1, sign_app(nxt, bob), bob)


def test_progress__app_returns_false__reverts(apps, project, deployer, open_app, register, sign_app, alice):
    refusing = deployer.deploy(project.RefusingApp)
    params, state = open_app(app=refusing)
    registered = register(params, state)
    nxt = replace(state, version=1)
    with ape.reverts("app: invalid transition"):
        _progress(apps, params, state, registered, nxt, 0, sign_app(nxt, alice), alice)


def test_progress__app_not_a_contract__reverts(apps, open_app, register, sign_app, alice, stranger):
    params, state = open_app(app=stranger)
    registered = register(params, state)
    nxt = replace(state, version=1)
    with ape.reverts("app: app is not a contract"):
        _progress(apps, params, state, registered, nxt, 0, sign_app(nxt, alice), alice)


def test_progress__from_last_version__reverts(apps, open_app, register, sign_app, alice):
    params, state = open_app()
    last = replace(state, version=2**64 - 1)
    registered = register(params, last)
    nxt = replace(request(state, REQUEST), version=0)
    with ape.reverts("app: no version after the last"):
        _progress(apps, params, last, registered, nxt, 0, sign_app(nxt, alice), alice)


def test_progress__bond_of_exactly_the_penalty__short_penalty_refused(apps, open_app, register, sign_app, alice):
    # Regression (stateful machine): the provider's bond is exactly the penalty; a request that takes one
    # unit less than the penalty is refused by the app, and the registration stays.
    from tests.support.apps import PENALTY

    params, state = open_app(10**18, PENALTY)
    registered = register(params, state)
    asked = request(state, REQUEST)
    short = replace(asked, balance_a=asked.balance_a - 1, balance_b=asked.balance_b + 1)
    with ape.reverts("sla: wrong balances"):
        _progress(apps, params, state, registered, short, 0, sign_app(short, alice), alice)
    assert bytes(apps.registrations(params.channel_id)) == registered.stored()
