"""Off-chain fixtures of the client tests: fixed keys, fake domains, one store file per party."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from perun_vyper import ChannelParams, Hub, LedgerChannel, exchange
from tests.support.apps import app_domain, apps, sla, sla_data  # noqa: F401 (fixtures of the app tests)
from tests.support.constants import E
from tests.support.parties import (
    ALICE,
    ALICE_KEY,
    BOB,
    BOB_KEY,
    INGRID,
    INGRID_KEY,
    LEDGER_DOMAIN,
    MAX_VALIDITY,
    NOW,
    VIRTUAL_DOMAIN,
)


@pytest.fixture
def pair(store_at) -> tuple[LedgerChannel, LedgerChannel]:
    """A ledger channel Alice (A) - Bob (B), version 0 signed by both, deposits (1 ETH each) confirmed."""
    params = ChannelParams(ALICE, BOB, nonce=1)
    alice = LedgerChannel.open(params, LEDGER_DOMAIN, ALICE_KEY, store_at("alice"), E, E)
    bob = LedgerChannel.open(params, LEDGER_DOMAIN, BOB_KEY, store_at("bob"), E, E)
    exchange(alice, bob)
    for channel in (alice, bob):
        channel.confirm_funding((E, E))
    return alice, bob


@dataclass
class Network:
    """Alice - Ingrid - Bob, off-chain: two funded ledger channels and Ingrid's hub."""

    hub: Hub
    alice: LedgerChannel  # Alice's side of Alice-Ingrid
    bob: LedgerChannel  # Bob's side of Ingrid-Bob
    left: LedgerChannel  # Ingrid's side of Alice-Ingrid
    right: LedgerChannel  # Ingrid's side of Ingrid-Bob


@pytest.fixture
def network(store_at) -> Network:
    hub = Hub(
        INGRID_KEY, store_at("ingrid"), virtual_domain=VIRTUAL_DOMAIN, max_validity=MAX_VALIDITY, clock=lambda: NOW
    )
    left_params, right_params = ChannelParams(ALICE, INGRID, nonce=1), ChannelParams(INGRID, BOB, nonce=2)
    alice = LedgerChannel.open(left_params, LEDGER_DOMAIN, ALICE_KEY, store_at("alice"), E, E)
    left = hub.open_channel(left_params, LEDGER_DOMAIN, E, E)
    right = hub.open_channel(right_params, LEDGER_DOMAIN, E, E)
    bob = LedgerChannel.open(right_params, LEDGER_DOMAIN, BOB_KEY, store_at("bob"), E, E)
    exchange(alice, left)
    exchange(right, bob)
    for channel in (alice, left, right, bob):
        channel.confirm_funding((E, E))
    return Network(hub, alice, bob, left, right)
