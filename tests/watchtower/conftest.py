"""Fixtures of the watchtower tests: a store on the test's backend (a SQLite file in tmp_path, or a schema in
the session's PostgreSQL) filled with fully signed states, and a watchtower on the session's adjudicators
sending from ``watcher``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from perun_vyper import (
    ChannelParams,
    ChannelRecord,
    ChannelStore,
    LedgerState,
    SignedState,
    VirtualParams,
    VirtualState,
    sign_state,
)
from perun_vyper.watchtower import Watchtower
from tests.support.apps import app_domain, apps, sla, sla_data  # noqa: F401 (fixtures of the app tests)


@pytest.fixture(autouse=True)
def _quiet_reverts(no_source_tracebacks):
    """Every watchtower test runs without Ape's source tracebacks (tests/conftest.py)."""


@pytest.fixture
def store(store_at) -> ChannelStore:
    return store_at("watched")


@pytest.fixture
def remember_ledger(store, domain, accounts) -> Callable[..., None]:
    """``remember_ledger(params, owner, states)``: the channel and each state, signed by both participants."""

    def _remember(params: ChannelParams, owner, states: list[LedgerState]) -> None:
        store.add_channel(ChannelRecord(params.channel_id, "ledger", params, domain, str(owner.address)))
        key_a, key_b = accounts[params.participant_a].private_key, accounts[params.participant_b].private_key
        for state in states:
            signed = SignedState(state, sign_state(key_a, state, domain), sign_state(key_b, state, domain))
            store.save_state(params.channel_id, signed)

    return _remember


@pytest.fixture
def remember_virtual(store, virtual_domain, alice, bob) -> Callable[..., None]:
    """``remember_virtual(params, owner, states)``: the virtual channel and each state, signed by Alice and Bob."""

    def _remember(params: VirtualParams, owner, states: list[VirtualState]) -> None:
        store.add_channel(ChannelRecord(params.channel_id, "virtual", params, virtual_domain, str(owner.address)))
        for state in states:
            signed = SignedState(
                state,
                sign_state(alice.private_key, state, virtual_domain),
                sign_state(bob.private_key, state, virtual_domain),
            )
            store.save_state(params.channel_id, signed)

    return _remember


@pytest.fixture
def tower(store, ledger, virtual, watcher) -> Watchtower:
    """A watchtower started now: events from the next block on."""
    return Watchtower(store, ledger, virtual, watcher)
