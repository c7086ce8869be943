"""SlaApp.valid_transition: every rule of the client's request and the provider's response, called directly
(the adjudicator's own checks are in test_progress.py). Each refusal is checked by its exact reason."""

from dataclasses import replace

import pytest

from perun_vyper.core.app import AppState
from perun_vyper.core.sla import SlaData, request, respond
from tests.support.apps import PENALTY, PRICE, REQUESTS
from tests.support.reverts import assert_view_reverts

REQUEST = b"\x11" * 32
ANSWER = b"\x22" * 32
CHANNEL = b"\x05" * 32


def _state(balance_a=10**18, balance_b=10**18, version=0, **data) -> AppState:
    fields = {"price": PRICE, "penalty": PENALTY, "requests_left": REQUESTS} | data
    funding = balance_a + balance_b
    return AppState(CHANNEL, version, balance_a, balance_b, funding, 0, SlaData(**fields).encode())


def _params(alice, bob, sla) -> tuple:
    return (str(alice.address), str(bob.address), "0x" + "00" * 20, 3600, 1, str(sla.address))


def _with_data(state: AppState, **changes) -> AppState:
    return replace(state, app_data=replace(SlaData.decode(state.app_data), **changes).encode())


def test_valid_transition__request_then_response__accepted(sla, alice, bob):
    idle = _state()
    asked = request(idle, REQUEST)
    answered = respond(asked, ANSWER)
    assert sla.valid_transition(_params(alice, bob, sla), idle.as_tuple(), asked.as_tuple(), 0) is True
    assert sla.valid_transition(_params(alice, bob, sla), asked.as_tuple(), answered.as_tuple(), 1) is True
    assert (answered.balance_a, answered.balance_b) == (10**18 - PRICE, 10**18 + PRICE)


def test_valid_transition__bond_of_exactly_the_penalty__request_accepted(sla, alice, bob):
    # The boundary the stateful machine found: the provider holds exactly the penalty, and after the
    # request nothing; the answer gives it back with the price.
    idle = _state(10**18, PENALTY)
    asked = request(idle, REQUEST)
    answered = respond(asked, ANSWER)
    assert asked.balance_b == 0 and answered.balance_b == PENALTY + PRICE
    assert sla.valid_transition(_params(alice, bob, sla), idle.as_tuple(), asked.as_tuple(), 0) is True
    assert sla.valid_transition(_params(alice, bob, sla), asked.as_tuple(), answered.as_tuple(), 1) is True


def test_valid_transition__client_holds_exactly_the_price__request_and_response_accepted(sla, alice, bob):
    # The client's balance boundaries: exactly the price before the request, exactly penalty plus price
    # before the response; one wei less is refused (test_valid_transition__bad_request/response).
    idle = _state(PRICE, 10**18)
    asked = request(idle, REQUEST)
    answered = respond(asked, ANSWER)
    assert asked.balance_a == PENALTY + PRICE and answered.balance_a == 0
    assert sla.valid_transition(_params(alice, bob, sla), idle.as_tuple(), asked.as_tuple(), 0) is True
    assert sla.valid_transition(_params(alice, bob, sla), asked.as_tuple(), answered.as_tuple(), 1) is True


def test_valid_transition__most_requests_a_uint64_holds__accepted(sla, alice, bob):
    idle = _state(requests_left=2**64 - 1)
    asked = request(idle, REQUEST)
    assert sla.valid_transition(_params(alice, bob, sla), idle.as_tuple(), asked.as_tuple(), 0) is True


def test_sides__client_a_provider_b(sla):
    assert (sla.CLIENT(), sla.PROVIDER()) == (0, 1)


def test_valid_transition__last_request__accepted_and_then_none_left(sla, alice, bob):
    idle = _state(requests_left=1)
    asked = request(idle, REQUEST)
    answered = respond(asked, ANSWER)
    params = _params(alice, bob, sla)
    assert sla.valid_transition(params, idle.as_tuple(), asked.as_tuple(), 0) is True
    again = _with_data(replace(answered, version=3), pending=True, request=REQUEST, response=b"\x00" * 32)
    assert_view_reverts(
        sla.valid_transition, params, answered.as_tuple(), again.as_tuple(), 0, reason="sla: no requests left"
    )


def _request_case(name):
    idle = _state()
    good = request(idle, REQUEST)
    return {
        "terms changed": (idle, _with_data(good, price=PRICE + 1)),
        "penalty changed": (idle, _with_data(good, penalty=PENALTY - 1)),
        "request pending": (good, request(idle, REQUEST)),
        "not pending": (idle, _with_data(good, pending=False)),
        "empty request": (idle, _with_data(good, request=b"\x00" * 32)),
        "response set": (idle, _with_data(good, response=ANSWER)),
        "requests left kept": (idle, _with_data(good, requests_left=REQUESTS)),
        "requests left dropped by two": (idle, _with_data(good, requests_left=REQUESTS - 2)),
        "client cannot pay": (_state(PRICE - 1, 10**18), request(_state(PRICE, 10**18 - 1), REQUEST)),
        "bond too small": (_state(10**18, PENALTY - 1), request(_state(10**18 - 1, PENALTY), REQUEST)),
        "no penalty moved": (idle, replace(good, balance_a=idle.balance_a, balance_b=idle.balance_b)),
    }[name]


REQUEST_REASONS = {
    "terms changed": "sla: terms changed",
    "penalty changed": "sla: terms changed",
    "request pending": "sla: request pending",
    "not pending": "sla: not a request",
    "empty request": "sla: not a request",
    "response set": "sla: not a request",
    "requests left kept": "sla: requests left wrong",
    "requests left dropped by two": "sla: requests left wrong",
    "client cannot pay": "sla: client cannot pay",
    "bond too small": "sla: bond too small",
    "no penalty moved": "sla: wrong balances",
}


@pytest.mark.parametrize("case", sorted(REQUEST_REASONS))
def test_valid_transition__bad_request__reverts(sla, alice, bob, case):
    before, after = _request_case(case)
    assert_view_reverts(
        sla.valid_transition,
        _params(alice, bob, sla),
        before.as_tuple(),
        after.as_tuple(),
        0,
        reason=REQUEST_REASONS[case],
    )


def _response_case(name):
    asked = request(_state(), REQUEST)
    good = respond(asked, ANSWER)
    return {
        "nothing pending": (_state(), good),
        "still pending": (asked, _with_data(good, pending=True)),
        "another request": (asked, _with_data(good, request=b"\x12" * 32)),
        "empty response": (asked, _with_data(good, response=b"\x00" * 32)),
        "requests left changed": (asked, _with_data(good, requests_left=REQUESTS)),
        "price not paid": (asked, replace(good, balance_a=good.balance_a + PRICE, balance_b=good.balance_b - PRICE)),
        "client cannot pay": (
            replace(asked, balance_a=PENALTY + PRICE - 1, balance_b=asked.funding_a - (PENALTY + PRICE - 1)),
            good,
        ),
    }[name]


RESPONSE_REASONS = {
    "nothing pending": "sla: no request pending",
    "still pending": "sla: not a response",
    "another request": "sla: not a response",
    "empty response": "sla: not a response",
    "requests left changed": "sla: requests left wrong",
    "price not paid": "sla: wrong balances",
    "client cannot pay": "sla: client cannot pay",
}


@pytest.mark.parametrize("case", sorted(RESPONSE_REASONS))
def test_valid_transition__bad_response__reverts(sla, alice, bob, case):
    before, after = _response_case(case)
    assert_view_reverts(
        sla.valid_transition,
        _params(alice, bob, sla),
        before.as_tuple(),
        after.as_tuple(),
        1,
        reason=RESPONSE_REASONS[case],
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 191,
        b"\x00" * 224,
        SlaData(1, 1, 1).encode()[:64] + (2**64).to_bytes(32, "big") + b"\x00" * 96,
        SlaData(1, 1, 1).encode()[:96] + (2).to_bytes(32, "big") + b"\x00" * 64,
    ],
    ids=["empty", "short", "long", "requests-left-over-uint64", "pending-not-bool"],
)
def test_valid_transition__malformed_data__reverts(sla, alice, bob, data):
    idle = _state()
    bad = replace(idle, app_data=data)
    assert_view_reverts(
        sla.valid_transition,
        _params(alice, bob, sla),
        bad.as_tuple(),
        request(idle, REQUEST).as_tuple(),
        0,
        reason="sla: malformed app data",
    )
