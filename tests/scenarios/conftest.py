"""Fixtures of the scenario tests: quiet reverts, co-signing, agreeing on virtual states, locking both legs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from perun_vyper import (
    LedgerState,
    VirtualParams,
    VirtualState,
    open_virtual,
    verify_state,
)
from tests.scenarios.story import Signed
from tests.support.apps import (  # noqa: F401 (fixtures of the SLA scenarios)
    app_domain,
    apps,
    both,
    move,
    open_app,
    register,
    sign_app,
    sla,
    sla_data,
)


@pytest.fixture
def cosign(signed, accounts) -> Callable[..., tuple]:
    """``cosign(params, state)``: a ledger state signed by both participants of ``params``, in order."""

    def _cosign(params, state: LedgerState) -> tuple:
        return signed(state, accounts[params.participant_a], accounts[params.participant_b])

    return _cosign


@pytest.fixture
def cosign_final(signed_final, accounts) -> Callable[..., tuple]:
    """``cosign_final(params, state)``: the (final tuple, sig_a, sig_b) arguments of close for a final,
    lock-free ledger state signed by both participants of ``params``."""

    def _cosign(params, state: LedgerState) -> tuple:
        return signed_final(state, accounts[params.participant_a], accounts[params.participant_b])

    return _cosign


@pytest.fixture
def agree(sign_virtual, virtual_domain, alice, bob) -> Callable[..., Signed]:
    """``agree(state)``: Alice and Bob sign a virtual state; each checks the other's signature off-chain."""

    def _agree(state: VirtualState) -> Signed:
        sig_alice, sig_bob = sign_virtual(state, alice), sign_virtual(state, bob)
        verify_state(state, virtual_domain, sig_alice, alice.address)
        verify_state(state, virtual_domain, sig_bob, bob.address)
        return Signed(state, sig_alice, sig_bob)

    return _agree


@pytest.fixture
def pay(agree) -> Callable[..., list[Signed]]:
    """``pay(state, [(amount, from_alice), ...])``: one signed virtual state per payment, in order."""

    def _pay(state: VirtualState, payments) -> list[Signed]:
        history = []
        for amount, from_alice in payments:
            state = state.pay(amount, from_alice=from_alice)
            history.append(agree(state))
        return history

    return _pay


@pytest.fixture
def lock_both(sign, domain, accounts) -> Callable[..., tuple]:
    """``lock_both(hub, vparams)``: the next state of both ledger channels carrying the virtual
    channel's lock, each signed by its two participants (signatures verified off-chain)."""

    def _lock(hub, vparams: VirtualParams, left_state=None, right_state=None) -> tuple:
        left = open_virtual(left_state or hub.left_state, hub.left, vparams)
        right = open_virtual(right_state or hub.right_state, hub.right, vparams)
        for params, state in ((hub.left, left), (hub.right, right)):
            sig_a, sig_b = sign(state, accounts[params.participant_a]), sign(state, accounts[params.participant_b])
            verify_state(state, domain, sig_a, params.participant_a)
            verify_state(state, domain, sig_b, params.participant_b)
        return left, right

    return _lock


@pytest.fixture(autouse=True)
def _quiet_reverts(no_source_tracebacks):
    """Every scenario runs without Ape's source tracebacks (tests/conftest.py): the reasons suffice."""
