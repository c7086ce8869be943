"""The SLA app channel, told as stories: a client (Alice, side A) buys answers from a provider (Bob, side B)
who bonds a penalty per unanswered request. Amounts are exact: every party's gain is asserted net of the
fees it paid (``Book``); whatever a party need not send itself is sent by ``watcher``.

Terms: price 1 milli-ether per answer, penalty 0.1 ether per unanswered request, three requests.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from perun_vyper.core.app import NO_REGISTRATION, AppState, Move, Registration
from perun_vyper.core.sla import SlaData, request, respond
from tests.scenarios.story import Book
from tests.support.apps import PENALTY, PRICE

FUND = 10**18
ASK = [bytes([i]) * 32 for i in (0x11, 0x12, 0x13)]
ANSWER = [bytes([i]) * 32 for i in (0x21, 0x22, 0x23)]


@pytest.fixture
def channel(open_app):
    """A funded SLA channel, 1 ether on each side; the parties' books open after funding."""
    return open_app(FUND, FUND)


@pytest.fixture
def book(chain, alice, bob, watcher):
    return lambda: Book(chain, alice, bob, watcher)


def _agree(sla, params, before: AppState, after: AppState, mover: int) -> AppState:
    """Both sides check a step against the app's own rules before they sign it (off-chain)."""
    assert sla.valid_transition(params.as_tuple(), before.as_tuple(), after.as_tuple(), mover) is True
    return after


def _served(sla, params, state: AppState, rounds: int) -> AppState:
    """``rounds`` requests asked and answered off-chain, every state signed by both."""
    for i in range(rounds):
        asked = _agree(sla, params, state, request(state, ASK[i]), 0)
        state = _agree(sla, params, asked, respond(asked, ANSWER[i]), 1)
    return state


def _progress_args(params, current: AppState, registration: Registration, nxt: AppState, mover: int, sig) -> tuple:
    """The arguments of ``progress`` from ``current`` (registered as ``registration``) to ``nxt``."""
    move = Move.between(current, nxt, mover).as_tuple()
    return (params.as_tuple(), current.as_tuple(), registration.deadline, registration.agreed, move, sig)


def _registration(apps, receipt, event: str, before: Registration | None = None) -> Registration:
    """The registration a transaction left (its ``event``); a move keeps the agreed version of the
    registration ``before`` it, unless the same transaction registered a state too."""
    [log] = receipt.decode_logs(getattr(apps, event))
    registered = receipt.decode_logs(apps.Registered)
    agreed = registered[0].version if registered else before.agreed
    return Registration(bytes(log.state_hash), log.version, log.deadline, agreed)


def test_sla__provider_answers_off_chain__cooperative_close_pays_the_price(
    apps, sla, channel, both, book, alice, bob, watcher
):
    params, state = channel
    books = book()
    served = _served(sla, params, state, 2)
    assert (served.version, served.balance_a, served.balance_b) == (4, FUND - 2 * PRICE, FUND + 2 * PRICE)
    books.send(apps.close, params.as_tuple(), *both(served.finalized()), sender=watcher)
    assert (books.gain(alice), books.gain(bob), books.gain(watcher)) == (FUND - 2 * PRICE, FUND + 2 * PRICE, 0)


def test_sla__provider_silent__client_forces_request_and_collects_penalty(
    apps, sla, channel, both, sign_app, chain, book, alice, bob, watcher
):
    params, state = channel
    books = book()
    served = _served(sla, params, state, 1)
    # Bob stops answering. Alice registers the last state both signed and posts her request on-chain.
    asked = request(served, ASK[1])
    receipt = books.send(
        apps.register_and_progress,
        params.as_tuple(),
        *both(served),
        NO_REGISTRATION.as_tuple(),
        Move.between(served, asked, 0).as_tuple(),
        sign_app(asked, alice),
        sender=alice,
    )
    moved = _registration(apps, receipt, "Progressed")
    # Bob stays silent for the whole period; anyone concludes.
    chain.pending_timestamp = moved.deadline
    books.send(apps.conclude, params.as_tuple(), asked.as_tuple(), moved.deadline, moved.agreed, sender=watcher)
    assert (books.gain(alice), books.gain(bob)) == (FUND - PRICE + PENALTY, FUND + PRICE - PENALTY)


def test_sla__client_claims_no_answer__provider_answers_on_chain_and_is_paid(
    apps, sla, channel, both, sign_app, chain, book, alice, bob, watcher
):
    params, state = channel
    books = book()
    # Bob countersigned Alice's request and answered off-chain, but Alice never countersigns the answer:
    # she registers the request state, claiming Bob never answered.
    asked = _agree(sla, params, state, request(state, ASK[0]), 0)
    answer = respond(asked, ANSWER[0])
    receipt = books.send(apps.register, params.as_tuple(), *both(asked), NO_REGISTRATION.as_tuple(), sender=alice)
    registered = _registration(apps, receipt, "Registered")
    # Bob (who watches the chain) posts the answer he already gave, within the period.
    chain.pending_timestamp = registered.deadline - 60
    receipt = books.send(
        apps.progress,
        *_progress_args(params, asked, registered, answer, 1, sign_app(answer, bob)),
        sender=bob,
    )
    answered = _registration(apps, receipt, "Progressed", registered)
    [log] = receipt.decode_logs(apps.Progressed)
    assert bytes(log.app_data) == answer.app_data  # Alice receives the answer from the chain
    chain.pending_timestamp = answered.deadline
    books.send(apps.conclude, params.as_tuple(), answer.as_tuple(), answered.deadline, answered.agreed, sender=watcher)
    assert (books.gain(alice), books.gain(bob)) == (FUND - PRICE, FUND + PRICE)


def test_sla__stale_state_registered__refuted_with_the_latest(
    apps, sla, channel, both, chain, book, alice, bob, watcher
):
    params, state = channel
    books = book()
    served = _served(sla, params, state, 2)
    # Alice registers state 0, before she paid for two answers; Bob refutes with state 4.
    receipt = books.send(apps.register, params.as_tuple(), *both(state), NO_REGISTRATION.as_tuple(), sender=alice)
    stale = _registration(apps, receipt, "Registered")
    receipt = books.send(apps.register, params.as_tuple(), *both(served), stale.as_tuple(), sender=bob)
    latest = _registration(apps, receipt, "Registered")
    books.reverts("app: stale version", apps.register, params.as_tuple(), *both(state), latest.as_tuple(), sender=alice)
    chain.pending_timestamp = latest.deadline
    books.send(apps.conclude, params.as_tuple(), served.as_tuple(), latest.deadline, latest.agreed, sender=watcher)
    assert (books.gain(alice), books.gain(bob)) == (FUND - 2 * PRICE, FUND + 2 * PRICE)


def test_sla__moves_by_the_wrong_party__refused_and_change_nothing(
    apps, sla, channel, both, sign_app, chain, book, alice, bob, watcher
):
    params, state = channel
    books = book()
    receipt = books.send(apps.register, params.as_tuple(), *both(state), NO_REGISTRATION.as_tuple(), sender=alice)
    registered = _registration(apps, receipt, "Registered")
    asked = request(state, ASK[0])
    # Bob cannot make Alice's request (the move names her, the signature is his).
    books.reverts(
        "app: wrong signer",
        apps.progress,
        *_progress_args(params, state, registered, asked, 0, sign_app(asked, bob)),
        sender=bob,
    )
    # Nor request as himself: it is not the provider's move while nothing is pending.
    books.reverts(
        "sla: no request pending",
        apps.progress,
        *_progress_args(params, state, registered, asked, 1, sign_app(asked, bob)),
        sender=bob,
    )
    assert bytes(apps.registrations(params.channel_id)) == registered.stored()
    chain.pending_timestamp = registered.deadline
    books.send(
        apps.conclude, params.as_tuple(), state.as_tuple(), registered.deadline, registered.agreed, sender=watcher
    )
    assert (books.gain(alice), books.gain(bob)) == (FUND, FUND)


def test_sla__invalid_move__refused_then_valid_move_accepted(
    apps, sla, channel, both, sign_app, chain, book, alice, bob, watcher
):
    params, state = channel
    books = book()
    receipt = books.send(apps.register, params.as_tuple(), *both(state), NO_REGISTRATION.as_tuple(), sender=alice)
    registered = _registration(apps, receipt, "Registered")
    greedy = replace(request(state, ASK[0]), balance_a=FUND + 2 * PENALTY, balance_b=FUND - 2 * PENALTY)
    books.reverts(
        "sla: wrong balances",
        apps.progress,
        *_progress_args(params, state, registered, greedy, 0, sign_app(greedy, alice)),
        sender=alice,
    )
    assert bytes(apps.registrations(params.channel_id)) == registered.stored()
    asked = request(state, ASK[0])
    receipt = books.send(
        apps.progress,
        *_progress_args(params, state, registered, asked, 0, sign_app(asked, alice)),
        sender=alice,
    )
    moved = _registration(apps, receipt, "Progressed", registered)
    chain.pending_timestamp = moved.deadline
    books.send(apps.conclude, params.as_tuple(), asked.as_tuple(), moved.deadline, moved.agreed, sender=watcher)
    assert (books.gain(alice), books.gain(bob)) == (FUND + PENALTY, FUND - PENALTY)


def test_sla__every_request_forced__dispute_ends_when_none_are_left(
    apps, sla, channel, both, sign_app, chain, book, alice, bob, watcher
):
    # The longest dispute the SLA allows: every request forced on-chain and answered there. It has
    # 1 + 2 * requests moves and then ends: no request is left, and the provider has nothing to answer.
    params, state = channel
    books = book()
    receipt = books.send(apps.register, params.as_tuple(), *both(state), NO_REGISTRATION.as_tuple(), sender=alice)
    current, registration = state, _registration(apps, receipt, "Registered")
    for i in range(3):
        for mover, who in ((0, alice), (1, bob)):
            nxt = request(current, ASK[i]) if mover == 0 else respond(current, ANSWER[i])
            receipt = books.send(
                apps.progress,
                *_progress_args(params, current, registration, nxt, mover, sign_app(nxt, who)),
                sender=who,
            )
            current, registration = nxt, _registration(apps, receipt, "Progressed", registration)
    # A fourth request, shaped like the others: the app refuses it.
    fourth = replace(
        current,
        version=current.version + 1,
        balance_a=current.balance_a + PENALTY,
        balance_b=current.balance_b - PENALTY,
        app_data=replace(SlaData.decode(current.app_data), pending=True, request=ASK[0], response=bytes(32)).encode(),
    )
    books.reverts(
        "sla: no requests left",
        apps.progress,
        *_progress_args(params, current, registration, fourth, 0, sign_app(fourth, alice)),
        sender=alice,
    )
    chain.pending_timestamp = registration.deadline
    books.send(
        apps.conclude, params.as_tuple(), current.as_tuple(), registration.deadline, registration.agreed, sender=watcher
    )
    assert (books.gain(alice), books.gain(bob)) == (FUND - 3 * PRICE, FUND + 3 * PRICE)
