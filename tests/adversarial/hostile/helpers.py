"""Hostile tokens and receivers against every payout path of the ledger adjudicator: what the test modules
of this package share (targets of re-entry, their calldata, expected balances and refusals).

Paths: cooperative close, conclude after a dispute, conclude of a hub channel holding a virtual-channel
lock (the virtual channel settled by a final state), and withdraw. Hostile things: a receiver and a
token that re-enter every mutating function of both adjudicators, a token returning false, a token
reverting on zero amounts, a fee-on-transfer token.

What must hold whatever they do: nothing is paid twice, the other side is paid or credited in the same
transaction, credits are withdrawable, and the ledger holds exactly the deposits of its unconcluded
channels plus all credits.
"""

from __future__ import annotations

from dataclasses import dataclass

import ape
from eth_utils import keccak

from perun_vyper import ETH, ChannelParams, LedgerState, VirtualParams, VirtualState
from tests.support.checks import assert_accounts_balance as _assert_invariant
from tests.support.checks import assert_withdrawn as _assert_withdrawn
from tests.support.checks import holdings as _holdings
from tests.support.constants import (
    E,
)
from tests.support.reverts import revert_reason as _revert_reason

UNIT = 10**6  # token amounts
# Runtime code answering every call with 32 zero bytes: `transfer` returns false.
# Revert data of a call refused by Vyper's reentrancy lock (a bare `assert`): nothing.
LOCK_REFUSAL = b""
TARGETS = (
    "ledger.deposit",
    "ledger.deposit_token",
    "ledger.close",
    "ledger.register",
    "ledger.conclude",
    "ledger.withdraw",
    "virtual.register",
)
LEDGER_TARGETS = TARGETS[:-1]


# ---------------------------------------------------------------------------------------------------
# helpers


def asset_address(asset) -> str:
    return ETH if asset == ETH else str(asset.address)


def balance_of(asset, who) -> int:
    address = who if isinstance(who, str) else who.address
    if asset == ETH:
        return ape.chain.provider.get_balance(address)
    return asset.balanceOf(address)


def assert_refused_by_lock(hostile, attempts: int) -> None:
    """The hostile contract tried to re-enter `attempts` times and the last try hit the lock."""
    assert hostile.attempts() == attempts
    assert hostile.last_success() is False
    assert bytes(hostile.last_response()) == LOCK_REFUSAL


def assert_refused_with(hostile, attempts: int, reason: str) -> None:
    """The hostile contract tried `attempts` times; the last try passed the lock and was refused by a check."""
    assert hostile.attempts() == attempts
    assert hostile.last_success() is False
    assert _revert_reason(bytes(hostile.last_response())) == reason


def packed(deposit_a: int, deposit_b: int) -> int:
    """The `deposits` word of a Deposited event."""
    return deposit_a | deposit_b << 120


def assert_hook_deposits(ledger, hostile, txs, eth_channel: ChannelParams, pushes: int, owners) -> None:
    """The hook's `deposit` of 1 wei for side A of the open ETH channel `eth_channel` (both sides 1 ETH)
    went through once per push, and is accounted exactly as a deposit in its own transaction would be."""
    assert hostile.attempts() == pushes
    assert hostile.last_success() is True
    assert bytes(hostile.last_response()) == b""
    events = [(bytes(e.channel), e.deposits) for tx in txs for e in tx.decode_logs(ledger.Deposited)]
    assert events == [(eth_channel.channel_id, packed(E + i, E)) for i in range(1, pushes + 1)]
    assert _holdings(ledger, eth_channel.channel_id) == (E + pushes, E, False)
    _assert_invariant(ledger, ETH, [eth_channel], owners)


def lock_free_final(state: LedgerState) -> LedgerState:
    """The next version, final, each lock's amounts folded back into its sides' balances."""
    return LedgerState(
        state.channel,
        state.version + 1,
        state.balance_a + sum(lock.amount_a for lock in state.locks),
        state.balance_b + sum(lock.amount_b for lock in state.locks),
        state.funding_a,
        state.funding_b,
        is_final=True,
    )


@dataclass(frozen=True)
class Target:
    """The channel a hostile contract attacks while it is being paid out, and how."""

    params: ChannelParams
    signers: tuple  # the accounts that sign the channel's states (side A, side B)
    final: LedgerState  # a final state: a second close
    update: LedgerState  # a newer non-final state: a registration
    registered: LedgerState  # the registered (or initial) state: a second conclude
    virtual_params: VirtualParams  # a virtual channel to register
    virtual_state: VirtualState
    locked: tuple = ()  # virtual parameters of `registered`'s locks
    eth_channel: ChannelParams | None = None  # an open ETH channel a token's hook deposits into


def unrelated_virtual(alice, bob, ingrid, chain) -> tuple[VirtualParams, VirtualState]:
    """A virtual channel no ledger channel here locks, open to anyone's registration for a week."""
    params = VirtualParams(
        str(alice.address),
        str(bob.address),
        str(ingrid.address),
        keccak(b"ledger alice"),
        keccak(b"ledger bob"),
        100,
        100,
        chain.pending_timestamp - 1,
        7 * 86400,
        int.from_bytes(keccak(text=str(chain.pending_timestamp)), "big"),
        ledger_adjudicator=str(alice.address),
        chain_id=chain.chain_id,
    )
    return params, VirtualState.initial(params).pay(10, True)


def calldata(
    name: str,
    t: Target,
    ledger,
    virtual,
    hostile_address: str,
    signed,
    signed_final,
    signed_virtual,
    make_params,
    token,
):
    """(target contract, calldata, value) of a valid-looking call of `name` against `t`."""
    p = t.params
    a, b = t.signers
    if name == "ledger.deposit":
        # The attacked channel if it holds ETH (concluded before its payouts); else an open ETH channel,
        # which `deposit`, outside the lock, accepts.
        channel = p.channel_id if p.is_eth else t.eth_channel.channel_id
        return ledger.address, ledger.deposit.encode_input(channel, 0), 1
    if name == "ledger.deposit_token":
        params = make_params(asset=token) if p.is_eth else p
        return ledger.address, ledger.deposit_token.encode_input(params.as_tuple(), 0, 1), 0
    if name == "ledger.close":
        return ledger.address, ledger.close.encode_input(p.as_tuple(), *signed_final(t.final, a, b)), 0
    if name == "ledger.register":
        return ledger.address, ledger.register.encode_input(p.as_tuple(), *signed(t.update, a, b)), 0
    if name == "ledger.conclude":
        args = [p.as_tuple()]
        if t.locked:
            args += [t.registered.locks_tuple(), [v.as_tuple() for v in t.locked]]
        return ledger.address, ledger.conclude.encode_input(*args), 0
    if name == "ledger.withdraw":
        return ledger.address, ledger.withdraw.encode_input(p.asset, hostile_address), 0
    assert name == "virtual.register"
    return (
        virtual.address,
        virtual.register.encode_input(t.virtual_params.as_tuple(), *signed_virtual(t.virtual_state)),
        0,
    )


@dataclass(frozen=True)
class HubWithLock:
    """Both hub channels registered with a lock for `vp`, which a final state settled; deadline passed."""

    hub: object
    vp: VirtualParams
    left: LedgerState
    right: LedgerState
    outcome: VirtualState
    funding: int


def hub_target(h: HubWithLock, alice, ingrid) -> Target:
    """Attack the Alice-Ingrid channel, and try to rewrite the settled virtual outcome."""
    rewrite = VirtualState(h.vp.channel_id, h.outcome.version + 1, h.vp.total, 0, True)
    return Target(
        h.hub.left,
        (alice, ingrid),
        lock_free_final(h.left),
        h.left.pay(1, 0) if h.left.balance_a else h.left.pay(1, 1),
        h.left,
        h.vp,
        rewrite,
        (h.vp,),
    )


def conclude_hub(ledger, h: HubWithLock, watcher):
    tx_left = ledger.conclude(h.hub.left.as_tuple(), h.left.locks_tuple(), [h.vp.as_tuple()], sender=watcher)
    tx_right = ledger.conclude(h.hub.right.as_tuple(), h.right.locks_tuple(), [h.vp.as_tuple()], sender=watcher)
    return tx_left, tx_right


def hub_payouts(h: HubWithLock, deposit: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """((Alice, Ingrid) in the left channel, (Ingrid, Bob) in the right one)."""
    rest = deposit - h.funding
    a, b = h.outcome.balance_alice, h.outcome.balance_bob
    return (rest + a, rest + b), (rest + a, rest + b)


def channel_target(params, state0, alice, bob, ingrid, chain) -> Target:
    """Attack an Alice-Bob channel whose registered (or initial) state is `state0`."""
    vp, vstate = unrelated_virtual(alice, bob, ingrid, chain)
    return Target(params, (alice, bob), state0.finalized(), state0.pay(1, 0), state0, vp, vstate)


def token_balances(token, *accounts) -> list[int]:
    return [token.balanceOf(a) for a in accounts]


def withdraw_token_once(ledger, token, owner, credit: int, receiver=None) -> None:
    """`owner` withdraws its token credit (the token's hook, if armed, runs): paid exactly once."""
    receiver = receiver or owner
    receiver_before, ledger_before = token.balanceOf(receiver), token.balanceOf(ledger)
    tx = ledger.withdraw(token, receiver, sender=owner)
    _assert_withdrawn(ledger, tx, owner, token, receiver.address, credit)
    assert token.balanceOf(receiver) == receiver_before + credit
    assert token.balanceOf(ledger) == ledger_before - credit
    assert ledger.credits(token, owner) == 0
