"""Fixtures of the app-channel tests (tests/unit/app, tests/scenarios, tests/stateful): the deployments, SLA
channels between Alice (the client, side A) and Bob (the provider, side B), and signing in the app domain.
Each conftest that needs them imports them by name."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from perun_vyper import ETH, Domain, compact, sign_state
from perun_vyper.core.app import NO_REGISTRATION, AppParams, AppState, Move, Registration
from perun_vyper.core.sla import SlaData

_nonces = itertools.count(1)

PRICE = 10**15
PENALTY = 10**17
REQUESTS = 3


@pytest.fixture(scope="session")
def apps(project, deployer):
    return deployer.deploy(project.AppAdjudicator)


@pytest.fixture(scope="session")
def sla(project, deployer):
    return deployer.deploy(project.SlaApp)


@pytest.fixture(scope="session")
def app_domain(apps, chain) -> Domain:
    return Domain.app(chain.chain_id, apps.address)


@pytest.fixture(scope="session")
def sign_app(app_domain) -> Callable[..., tuple[bytes, bytes]]:
    """``sign_app(state, account)``: the account's compact EIP-712 signature of an app state."""

    def _sign(state: AppState, account) -> tuple[bytes, bytes]:
        return compact(sign_state(account.private_key, state, app_domain))

    return _sign


@pytest.fixture(scope="session")
def both(sign_app, alice, bob) -> Callable[..., tuple]:
    """``both(state)``: the (state tuple, sig_a, sig_b) arguments of close and register."""

    def _both(state: AppState, a=None, b=None) -> tuple:
        return state.as_tuple(), sign_app(state, a or alice), sign_app(state, b or bob)

    return _both


@pytest.fixture(scope="session")
def sla_data() -> Callable[..., bytes]:
    def _data(**changes) -> bytes:
        fields = {"price": PRICE, "penalty": PENALTY, "requests_left": REQUESTS} | changes
        return SlaData(**fields).encode()

    return _data


@pytest.fixture(scope="session")
def open_app(apps, sla, alice, bob, sla_data):
    """``open_app(client_deposit, provider_deposit, app=sla, asset=ETH)``: a funded app channel between
    Alice (side A, the client) and Bob (side B, the provider), and its state 0 (SLA terms by default)."""

    def _open(
        deposit_a: int = 10**18, deposit_b: int = 10**18, app=None, app_data: bytes | None = None, **kwargs
    ) -> tuple[AppParams, AppState]:
        params = AppParams(
            str(alice.address),
            str(bob.address),
            str(getattr(app, "address", app) if app is not None else sla.address),
            nonce=next(_nonces),
            **kwargs,
        )
        state = AppState.initial(params.channel_id, deposit_a, deposit_b, sla_data() if app_data is None else app_data)
        for side, amount, who in ((0, deposit_a, alice), (1, deposit_b, bob)):
            if amount:
                assert params.asset == ETH
                apps.deposit(params.channel_id, side, value=amount, sender=who)
        return params, state

    return _open


@pytest.fixture(scope="session")
def register(apps, both, alice):
    """``register(params, state, registered=None, sender=alice)``: registers ``state`` both signed; returns
    the new Registration (from the event)."""

    def _register(params: AppParams, state: AppState, registered: Registration | None = None, sender=None):
        receipt = apps.register(
            params.as_tuple(), *both(state), (registered or NO_REGISTRATION).as_tuple(), sender=sender or alice
        )
        event = receipt.decode_logs(apps.Registered)[0]
        return Registration(bytes(event.state_hash), event.version, event.deadline, event.version)

    return _register


@pytest.fixture(scope="session")
def move(apps, sign_app, alice, bob):
    """``move(params, from_state, registration, to_state, mover)``: ``progress`` signed by the mover
    (0 Alice, 1 Bob); returns the new Registration."""

    def _move(params: AppParams, from_state: AppState, registration: Registration, to_state: AppState, mover: int):
        who = (alice, bob)[mover]
        receipt = apps.progress(
            params.as_tuple(),
            from_state.as_tuple(),
            registration.deadline,
            registration.agreed,
            Move.between(from_state, to_state, mover).as_tuple(),
            sign_app(to_state, who),
            sender=who,
        )
        event = receipt.decode_logs(apps.Progressed)[0]
        return Registration(bytes(event.state_hash), event.version, event.deadline, registration.agreed)

    return _move
