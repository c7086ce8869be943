"""Shared fixtures: role-named accounts, session-scoped deployments, channel factories."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from perun_vyper import (
    ETH,
    ChannelParams,
    ChannelStore,
    Domain,
    LedgerState,
    VirtualParams,
    compact,
    open_store,
    sign_state,
)

_nonces = itertools.count(1)
_schemas = itertools.count(1)

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


@pytest.fixture
def no_source_tracebacks(monkeypatch):
    """Ape decorates every reverted transaction with a Vyper source traceback by replaying its full trace
    (about 10 s for a conclude over 16 locks). The revert reasons the tests check do not need it, and the
    watchtower's own reverts (an answer mined at the deadline) are caught anyway."""
    import ape.exceptions

    monkeypatch.setattr(ape.exceptions, "_get_ape_traceback_from_tx", lambda txn: None)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory) -> Iterator[str]:
    """A real PostgreSQL 16 server (the ``pgserver`` package) for the session, on a Unix socket only;
    started the first time a test asks for it. Yields its URL."""
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request) -> str:
    """The store backend of this run of the test: every test that opens stores runs on both."""
    return request.param


@pytest.fixture
def store_target(backend: str, tmp_path: Path, request) -> Callable[[str], str]:
    """``store_target(name)``: where a new store called ``name`` goes on this test's backend: a file in
    tmp_path, or a fresh schema in the session's PostgreSQL (the URL names it in its search_path)."""
    if backend == "sqlite":
        return lambda name: str(tmp_path / f"{name}.db")
    return lambda name: postgres_schema(request.getfixturevalue("postgres"), name)


def postgres_schema(url: str, name: str) -> str:
    """A new, empty schema for the store ``name`` in the server at ``url``; its store URL."""
    import psycopg

    schema = f"s{next(_schemas)}_{name.replace('-', '_')}"
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {schema}")
    return with_search_path(url, schema)


def with_search_path(url: str, schema: str) -> str:
    """``url`` with ``schema`` as its search_path (libpq's ``options`` parameter)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture
def store_at(store_target) -> Callable[[str], ChannelStore]:
    """``store_at(name)``: the party's store (one per party) on this test's backend, opened once per test."""
    opened: dict[str, ChannelStore] = {}

    def _open(name: str) -> ChannelStore:
        if name not in opened:
            opened[name] = open_store(store_target(name))
        return opened[name]

    yield _open
    for store in opened.values():
        store.close()


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
def virtual(project, deployer):
    return deployer.deploy(project.VirtualAdjudicator)


@pytest.fixture(scope="session")
def ledger(project, deployer, virtual):
    return deployer.deploy(project.LedgerAdjudicator, virtual)


@pytest.fixture(scope="session")
def ledger_hashing(project, deployer):
    """The ledger's hashing views (channel id, state hash, digest), built from its modules."""
    return deployer.deploy(project.LedgerHashing)


@pytest.fixture(scope="session")
def virtual_hashing(project, deployer):
    """The virtual adjudicator's hashing views, built from its modules."""
    return deployer.deploy(project.VirtualHashing)


@pytest.fixture(scope="session")
def virtual_domain(virtual, chain) -> Domain:
    return Domain.virtual(chain.chain_id, virtual.address)


@pytest.fixture(scope="session")
def domain(ledger, chain) -> Domain:
    return Domain.ledger(chain.chain_id, ledger.address)


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
    """``signed(state, a, b)``: the (state tuple, sig_a, sig_b) arguments of register (compact signatures)."""

    def _signed(state: LedgerState, a=None, b=None) -> tuple:
        return state.as_tuple(), compact(sign(state, a or alice)), compact(sign(state, b or bob))

    return _signed


@pytest.fixture(scope="session")
def signed_final(sign, alice, bob) -> Callable[..., tuple]:
    """``signed_final(state, a, b)``: the (final tuple, sig_a, sig_b) arguments of close: the state must be
    final and lock-free; the signatures are over the whole state, as the contract rebuilds it."""

    def _signed(state: LedgerState, a=None, b=None) -> tuple:
        return state.final_tuple(), compact(sign(state, a or alice)), compact(sign(state, b or bob))

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


@pytest.fixture(scope="session")
def sign_virtual(virtual_domain) -> Callable[..., bytes]:
    """``sign_virtual(state, account)``: the account's EIP-712 signature of a virtual state."""

    def _sign(state, account) -> bytes:
        return sign_state(account.private_key, state, virtual_domain)

    return _sign


@pytest.fixture(scope="session")
def signed_virtual(sign_virtual, alice, bob) -> Callable[..., tuple]:
    """``signed_virtual(state)``: the (state tuple, sig_alice, sig_bob) arguments of VirtualAdjudicator.register."""

    def _signed(state, a=None, b=None) -> tuple:
        return state.as_tuple(), compact(sign_virtual(state, a or alice)), compact(sign_virtual(state, b or bob))

    return _signed


@dataclass(frozen=True)
class Hub:
    """Two funded ledger channels through Ingrid: ``left`` Alice-Ingrid, ``right`` Ingrid-Bob."""

    left: ChannelParams
    right: ChannelParams
    left_state: LedgerState
    right_state: LedgerState


@pytest.fixture(scope="session")
def open_hub(make_params, deposit, alice, bob, ingrid) -> Callable[..., Hub]:
    """``open_hub(alice_deposit, ingrid_left, ingrid_right, bob_deposit, bob_first=False)``: a funded hub.

    ``bob_first`` orders the right channel (Bob, Ingrid) instead of (Ingrid, Bob), to exercise both
    orientations of a lock.
    """

    def _open(
        alice_deposit: int = 10**18,
        ingrid_left: int = 10**18,
        ingrid_right: int = 10**18,
        bob_deposit: int = 10**18,
        bob_first: bool = False,
        asset: str = ETH,
    ) -> Hub:
        left = make_params(alice, ingrid, asset=asset)
        right = make_params(bob, ingrid, asset=asset) if bob_first else make_params(ingrid, bob, asset=asset)
        amounts_right = (bob_deposit, ingrid_right) if bob_first else (ingrid_right, bob_deposit)
        owners_right = (bob, ingrid) if bob_first else (ingrid, bob)
        for params, amounts, owners in (
            (left, (alice_deposit, ingrid_left), (alice, ingrid)),
            (right, amounts_right, owners_right),
        ):
            for side in (0, 1):
                if amounts[side]:
                    deposit(params, side, amounts[side], owners[side])
        return Hub(
            left,
            right,
            LedgerState.initial(left.channel_id, alice_deposit, ingrid_left),
            LedgerState.initial(right.channel_id, *amounts_right),
        )

    return _open


@pytest.fixture(scope="session")
def make_virtual(alice, bob, ingrid, chain, ledger) -> Callable[..., VirtualParams]:
    """``make_virtual(hub, funding_alice, funding_bob, validity=None, ...)``: parameters of a virtual
    channel over ``hub``; validity defaults to one day after the next block, the asset to the legs', the
    ledger adjudicator to the session's."""

    def _make(
        hub: Hub,
        funding_alice: int = 10**17,
        funding_bob: int = 10**17,
        validity: int | None = None,
        challenge_duration: int = 3600,
        nonce: int | None = None,
        asset: str | None = None,
        ledger_adjudicator: str | None = None,
        chain_id: int | None = None,
    ) -> VirtualParams:
        return VirtualParams(
            str(alice.address),
            str(bob.address),
            str(ingrid.address),
            hub.left.channel_id,
            hub.right.channel_id,
            funding_alice,
            funding_bob,
            chain.pending_timestamp + 86400 if validity is None else validity,
            challenge_duration,
            next(_nonces) if nonce is None else nonce,
            asset=hub.left.asset if asset is None else asset,
            ledger_adjudicator=str(ledger.address) if ledger_adjudicator is None else ledger_adjudicator,
            chain_id=chain.chain_id if chain_id is None else chain_id,
        )

    return _make


@pytest.hookimpl(tryfirst=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """With PERUN_COVERAGE_JSON set (``make coverage``), save Ape's statement-level coverage report so
    tools/coverage_merge.py can merge the runs of several test modules."""
    target = os.environ.get("PERUN_COVERAGE_JSON")
    runner = config.pluginmanager.get_plugin("ape-test")
    data = runner.coverage_tracker.data if target and runner else None
    if data is not None and data._report is not None:
        Path(target).write_text(data.report.model_dump_json())
