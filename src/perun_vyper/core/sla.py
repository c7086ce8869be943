"""The SLA app's data and moves (contracts/apps/SlaApp.vy), for the client and provider off-chain: the same
rules the app enforces on-chain, so neither side signs a move the app would refuse.

Side A is the client, side B the provider. A request moves the penalty from the provider to the client;
the answer moves it back and pays the price. A request left unanswered therefore concludes with the
penalty paid.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from eth_abi import decode, encode

from ..errors import InvalidState
from .app import AppState

CLIENT = 0
PROVIDER = 1
_TYPES = ["uint256", "uint256", "uint64", "bool", "bytes32", "bytes32"]
_ZERO = bytes(32)


@dataclass(frozen=True)
class SlaData:
    """The app data of an SLA state: the terms and where the current request stands."""

    price: int
    penalty: int
    requests_left: int
    pending: bool = False
    request: bytes = _ZERO
    response: bytes = _ZERO

    def encode(self) -> bytes:
        return encode(_TYPES, [self.price, self.penalty, self.requests_left, self.pending, self.request, self.response])

    @classmethod
    def decode(cls, data: bytes) -> SlaData:
        if len(data) != 192:
            raise InvalidState(f"SLA app data is 192 bytes, got {len(data)}; the state is not an SLA state")
        try:
            price, penalty, left, pending, request, response = decode(_TYPES, data)
        except Exception as error:  # eth-abi's own errors: a field out of its type's range
            raise InvalidState(f"SLA app data does not decode ({error}); the state is not an SLA state") from None
        return cls(price, penalty, left, pending, request, response)


def request(state: AppState, what: bytes) -> AppState:
    """The client's move: the next state with request ``what`` (32 bytes, non-zero) pending."""
    data = SlaData.decode(state.app_data)
    if len(what) != 32 or what == _ZERO:
        raise InvalidState("a request is 32 non-zero bytes (the request, or the hash of a longer one)")
    if data.pending:
        raise InvalidState("a request is pending; wait for its response")
    if data.requests_left == 0:
        raise InvalidState("no requests left in this channel; open a new one")
    if state.balance_a < data.price:
        raise InvalidState(f"the client holds {state.balance_a}, less than the price {data.price}")
    if state.balance_b < data.penalty:
        raise InvalidState(f"the provider holds {state.balance_b}, less than the penalty {data.penalty}")
    moved = replace(data, requests_left=data.requests_left - 1, pending=True, request=bytes(what), response=_ZERO)
    return replace(
        state,
        version=state.version + 1,
        balance_a=state.balance_a + data.penalty,
        balance_b=state.balance_b - data.penalty,
        app_data=moved.encode(),
    )


def respond(state: AppState, answer: bytes) -> AppState:
    """The provider's move: the next state with the pending request answered by ``answer`` (32 bytes,
    non-zero): the penalty returns and the client pays the price."""
    data = SlaData.decode(state.app_data)
    if len(answer) != 32 or answer == _ZERO:
        raise InvalidState("a response is 32 non-zero bytes (the response, or the hash of a longer one)")
    if not data.pending:
        raise InvalidState("no request is pending; nothing to answer")
    owed = data.penalty + data.price
    if state.balance_a < owed:
        raise InvalidState(f"the client holds {state.balance_a}, less than penalty plus price {owed}")
    moved = replace(data, pending=False, response=bytes(answer))
    return replace(
        state,
        version=state.version + 1,
        balance_a=state.balance_a - owed,
        balance_b=state.balance_b + owed,
        app_data=moved.encode(),
    )


def check(old: AppState, new: AppState, mover: int) -> None:
    """The SLA app's ``valid_transition`` in Python (``AppChannel(rules=check)``): refuses (``InvalidState``)
    unless ``new`` is the client's request (``mover`` 0) or the provider's response (``mover`` 1) that
    ``request`` / ``respond`` build from ``old``."""
    data = SlaData.decode(new.app_data)
    if mover not in (CLIENT, PROVIDER):
        raise InvalidState(f"mover {mover} is neither the client (0) nor the provider (1)")
    role, what = ("client", "request") if mover == CLIENT else ("provider", "response")
    try:
        expected = request(old, data.request) if mover == CLIENT else respond(old, data.response)
    except InvalidState as exc:
        raise InvalidState(f"the {role} moves only by a {what}: {exc}") from None
    if new != expected:
        raise InvalidState(
            f"the state is not the {what} the SLA app accepts (terms, request count and balances are fixed by the move)"
        )
