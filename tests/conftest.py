"""Shared fixtures: role-named accounts, session-scoped deployments, channel factories."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, settings

from perun_vyper import ETH, ChannelParams, Domain, LedgerState, sign_state
from perun_vyper.constants import DOMAIN_VERSION, LEDGER_DOMAIN_NAME

_nonces = itertools.count(1)

# Stateful fuzzing profiles. Each example snapshots and restores the chain, so no deadline; the
# default profile keeps `make test` short, the deep one is for long runs (HYPOTHESIS_PROFILE=deep).
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]
settings.register_profile(
    "default", max_examples=50, stateful_step_count=30, deadline=None, suppress_health_check=_SLOW_OK
)
settings.register_profile(
    "deep", max_examples=1000, stateful_step_count=60, deadline=None, suppress_health_check=_SLOW_OK
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def deployer(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def alice(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def bob(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def ingrid(accounts):
    return accounts[3]


@pytest.fixture(scope="session")
def watcher(accounts):
    return accounts[4]


@pytest.fixture(scope="session")
def stranger(accounts):
    return accounts[5]


@pytest.fixture(scope="session")
def ledger(project, deployer):
    return deployer.deploy(project.LedgerAdjudicator)


@pytest.fixture(scope="session")
def domain(ledger, chain) -> Domain:
    return Domain(LEDGER_DOMAIN_NAME, DOMAIN_VERSION, chain.chain_id, ledger.address)


@pytest.fixture(scope="session")
def token(project, deployer, alice, bob, ingrid):
    token = deployer.deploy(project.TestToken)
    for holder in (alice, bob, ingrid):
        token.mint(holder, 10**24, sender=deployer)
    return token


@pytest.fixture(scope="session")
def make_params(alice, bob) -> Callable[..., ChannelParams]:
    """Fresh channel parameters (a new nonce each call) between two accounts."""

    def make(a=None, b=None, asset: str = ETH, challenge_duration: int = 3600, nonce: int | None = None):
        a = a or alice
        b = b or bob
        return ChannelParams(
            str(a.address),
            str(b.address),
            str(getattr(asset, "address", asset)),
            challenge_duration,
            next(_nonces) if nonce is None else nonce,
        )

    return make


@pytest.fixture(scope="session")
def sign(domain) -> Callable[..., bytes]:
    """``sign(state, account)``: the account's EIP-712 signature of a ledger state."""

    def _sign(state: LedgerState, account) -> bytes:
        return sign_state(account.private_key, state, domain)

    return _sign


@pytest.fixture(scope="session")
def signed(sign, alice, bob) -> Callable[..., tuple]:
    """``signed(state, a, b)``: the (state tuple, sig_a, sig_b) arguments of close and register."""

    def _signed(state: LedgerState, a=None, b=None) -> tuple:
        return state.as_tuple(), sign(state, a or alice), sign(state, b or bob)

    return _signed


@pytest.fixture(scope="session")
def deposit(ledger):
    """``deposit(params, side, amount, sender)``: funds one side, ETH or token (approving first)."""

    def _deposit(params: ChannelParams, side: int, amount: int, sender):
        if params.is_eth:
            return ledger.deposit(params.channel_id, side, value=amount, sender=sender)
        from ape import Contract

        Contract(params.asset).approve(ledger.address, amount, sender=sender)
        return ledger.deposit_token(params.as_tuple(), side, amount, sender=sender)

    return _deposit


@pytest.fixture(scope="session")
def open_channel(make_params, deposit, accounts):
    """``open_channel(deposit_a, deposit_b, ...)``: a funded channel and its signed-before-funding state 0."""

    def _open(deposit_a: int = 10**18, deposit_b: int = 10**18, **kwargs) -> tuple[ChannelParams, LedgerState]:
        params = make_params(**kwargs)
        state = LedgerState.initial(params.channel_id, deposit_a, deposit_b)
        if deposit_a:
            deposit(params, 0, deposit_a, accounts[params.participant_a])
        if deposit_b:
            deposit(params, 1, deposit_b, accounts[params.participant_b])
        return params, state

    return _open
