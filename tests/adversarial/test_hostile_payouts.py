"""Hostile tokens and receivers against every payout path of the ledger adjudicator.

Paths: cooperative close, conclude after a dispute, conclude of a hub channel holding a virtual-channel
lock (the virtual channel settled by a final state), and withdraw. Hostile things: a receiver and a
token that re-enter every mutating function of both adjudicators, a token returning false, a token
reverting on zero amounts, a fee-on-transfer token.

What must hold whatever they do: nothing is paid twice, the other side is paid or credited in the same
transaction, credits are withdrawable, and the ledger holds exactly the deposits of its unconcluded
channels plus all credits.

`deposit` is the one entry point outside the reentrancy lock (it makes no external call). Re-entered
from a payout it cannot reach the channel being paid (marked concluded before any payout: "ledger:
channel concluded") nor a token channel ("ledger: wrong asset"); into another open ETH channel it goes
through, and is accounted exactly as a deposit in a later transaction. Every other entry point is refused
by the lock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import ape
import pytest
from eth_utils import keccak

from perun_vyper import ETH, ChannelParams, LedgerState, VirtualParams, VirtualState, open_virtual
from tests.support.checks import assert_accounts_balance as _assert_invariant
from tests.support.checks import assert_concluded as _assert_concluded
from tests.support.checks import assert_credited as _assert_credited
from tests.support.checks import assert_deposited as _assert_deposited
from tests.support.checks import assert_withdrawn as _assert_withdrawn
from tests.support.checks import holdings as _holdings
from tests.support.checks import runtime_code as _code
from tests.support.constants import (
    LEDGER_CONCLUDED,
    LEDGER_DISPUTED,
    NOTHING_TO_WITHDRAW,
    RETURNS_FALSE_CODE,
    TRANSFER_FAILED,
    VIRTUAL_CONCLUDED,
    WRONG_ASSET,
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


def _address(asset) -> str:
    return ETH if asset == ETH else str(asset.address)


def _balance(asset, who) -> int:
    address = who if isinstance(who, str) else who.address
    if asset == ETH:
        return ape.chain.provider.get_balance(address)
    return asset.balanceOf(address)


def _assert_refused_by_lock(hostile, attempts: int) -> None:
    """The hostile contract tried to re-enter `attempts` times and the last try hit the lock."""
    assert hostile.attempts() == attempts
    assert hostile.last_success() is False
    assert bytes(hostile.last_response()) == LOCK_REFUSAL


def _assert_refused_with(hostile, attempts: int, reason: str) -> None:
    """The hostile contract tried `attempts` times; the last try passed the lock and was refused by a check."""
    assert hostile.attempts() == attempts
    assert hostile.last_success() is False
    assert _revert_reason(bytes(hostile.last_response())) == reason


def _packed(deposit_a: int, deposit_b: int) -> int:
    """The `deposits` word of a Deposited event."""
    return deposit_a | deposit_b << 120


def _assert_hook_deposits(ledger, hostile, txs, eth_channel: ChannelParams, pushes: int, owners) -> None:
    """The hook's `deposit` of 1 wei for side A of the open ETH channel `eth_channel` (both sides 1 ETH)
    went through once per push, and is accounted exactly as a deposit in its own transaction would be."""
    assert hostile.attempts() == pushes
    assert hostile.last_success() is True
    assert bytes(hostile.last_response()) == b""
    events = [(bytes(e.channel), e.deposits) for tx in txs for e in tx.decode_logs(ledger.Deposited)]
    assert events == [(eth_channel.channel_id, _packed(E + i, E)) for i in range(1, pushes + 1)]
    assert _holdings(ledger, eth_channel.channel_id) == (E + pushes, E, False)
    _assert_invariant(ledger, ETH, [eth_channel], owners)


def _lock_free_final(state: LedgerState) -> LedgerState:
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


def _unrelated_virtual(alice, bob, ingrid, chain) -> tuple[VirtualParams, VirtualState]:
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


def _calldata(
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


@pytest.fixture(scope="module", autouse=True)
def _session_fixtures_first(
    ledger,
    virtual,
    token,
    open_channel,
    open_hub,
    make_virtual,
    make_params,
    deposit,
    signed,
    signed_final,
    signed_virtual,
    deployer,
    alice,
    bob,
    ingrid,
    watcher,
):
    """Ape snapshots the chain per fixture scope: create the session fixtures before this module's."""


@pytest.fixture
def arm(ledger, virtual, signed, signed_final, signed_virtual, make_params, open_channel, token, deployer):
    """``arm(hostile, name, target)``: make the hostile contract call `name` against `target`; returns the
    target, with an open ETH channel (1 ETH a side) when a token's hook is to re-enter `deposit`."""

    def _arm(hostile, name: str, target: Target) -> Target:
        if name == "ledger.deposit" and not target.params.is_eth and target.eth_channel is None:
            eth_channel, _ = open_channel(E, E)
            target = replace(target, eth_channel=eth_channel)
        to, data, value = _calldata(
            name, target, ledger, virtual, hostile.address, signed, signed_final, signed_virtual, make_params, token
        )
        hostile.arm(to, data, value, sender=deployer)
        return target

    return _arm


@pytest.fixture
def receiver_on(project, chain):
    """``receiver_on(account)``: the account's address runs ReentrantReceiver; the key still signs."""

    def _install(account):
        chain.provider.set_code(account.address, _code(project.ReentrantReceiver))
        return project.ReentrantReceiver.at(account.address)

    return _install


@pytest.fixture(scope="module")
def rtoken(project, deployer, alice, bob, ingrid):
    rtoken = deployer.deploy(project.ReentrantToken)
    for holder in (alice, bob, ingrid):
        rtoken.mint(holder, 10**6 * UNIT, sender=deployer)
    deployer.transfer(rtoken.address, 10)  # wei the hook may send along with a re-entrant `deposit`
    return rtoken


@pytest.fixture(scope="module")
def false_token(project, deployer, alice, bob, ingrid):
    false_token = deployer.deploy(project.FalseToken)
    for holder in (alice, bob, ingrid):
        false_token.mint(holder, 10**6 * UNIT, sender=deployer)
    return false_token


@pytest.fixture(scope="module")
def zero_token(project, deployer, alice, bob, ingrid):
    zero_token = deployer.deploy(project.ZeroRevertToken)
    for holder in (alice, bob, ingrid):
        zero_token.mint(holder, 10**6 * UNIT, sender=deployer)
    return zero_token


@pytest.fixture(scope="module")
def fee_token(project, deployer, alice, bob):
    fee_token = deployer.deploy(project.FeeToken)
    for holder in (alice, bob):
        fee_token.mint(holder, 10**6 * UNIT, sender=deployer)
    return fee_token


@pytest.fixture(scope="module")
def gas_burner(project, deployer):
    return deployer.deploy(project.GreedyReceiver)


@dataclass(frozen=True)
class HubWithLock:
    """Both hub channels registered with a lock for `vp`, which a final state settled; deadline passed."""

    hub: object
    vp: VirtualParams
    left: LedgerState
    right: LedgerState
    outcome: VirtualState
    funding: int


@pytest.fixture
def hub_with_lock(ledger, virtual, open_hub, make_virtual, signed, signed_virtual, alice, bob, ingrid, watcher, chain):
    """``hub_with_lock(deposit, funding, paid_to_bob, asset)``: every deposit `deposit`, lock `funding` each
    way, Alice paid Bob `paid_to_bob` in the virtual channel's final state."""

    def _make(deposit: int, funding: int, paid_to_bob: int, asset=ETH) -> HubWithLock:
        hub = open_hub(deposit, deposit, deposit, deposit, asset=asset)
        vp = make_virtual(hub, funding, funding)
        left = open_virtual(hub.left_state, hub.left, vp)
        right = open_virtual(hub.right_state, hub.right, vp)
        ledger.register(hub.left.as_tuple(), *signed(left, alice, ingrid), sender=watcher)
        ledger.register(hub.right.as_tuple(), *signed(right, ingrid, bob), sender=watcher)
        outcome = VirtualState.initial(vp)
        if paid_to_bob:
            outcome = outcome.pay(paid_to_bob, True)
        outcome = outcome.finalized()
        virtual.register(vp.as_tuple(), *signed_virtual(outcome), sender=bob)
        chain.pending_timestamp += hub.left.challenge_duration
        return HubWithLock(hub, vp, left, right, outcome, funding)

    return _make


def _hub_target(h: HubWithLock, alice, ingrid) -> Target:
    """Attack the Alice-Ingrid channel, and try to rewrite the settled virtual outcome."""
    rewrite = VirtualState(h.vp.channel_id, h.outcome.version + 1, h.vp.total, 0, True)
    return Target(
        h.hub.left,
        (alice, ingrid),
        _lock_free_final(h.left),
        h.left.pay(1, 0) if h.left.balance_a else h.left.pay(1, 1),
        h.left,
        h.vp,
        rewrite,
        (h.vp,),
    )


def _conclude_hub(ledger, h: HubWithLock, watcher):
    tx_left = ledger.conclude(h.hub.left.as_tuple(), h.left.locks_tuple(), [h.vp.as_tuple()], sender=watcher)
    tx_right = ledger.conclude(h.hub.right.as_tuple(), h.right.locks_tuple(), [h.vp.as_tuple()], sender=watcher)
    return tx_left, tx_right


def _hub_payouts(h: HubWithLock, deposit: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """((Alice, Ingrid) in the left channel, (Ingrid, Bob) in the right one)."""
    rest = deposit - h.funding
    a, b = h.outcome.balance_alice, h.outcome.balance_bob
    return (rest + a, rest + b), (rest + a, rest + b)


# ---------------------------------------------------------------------------------------------------
# re-entrant ETH receiver: the push gets 10,000 gas, too little to even load the payload, so the receiver
# runs out of gas, its call is undone and the payout is credited; `withdraw` forwards all gas, so there
# the re-entry is attempted, and refused by the lock, or for `deposit` (outside the lock) into the
# concluded channel, by "ledger: channel concluded". (A receiver lean enough to re-enter `deposit` within
# the 10,000 gas is in the `deposit` section below.)


def _withdraw_reentered(ledger, hostile, alice, name: str, target: Target, credit: int, virtual) -> None:
    alice_before, ledger_before = alice.balance, ledger.balance
    tx = ledger.withdraw(ETH, alice, sender=alice)
    _assert_withdrawn(ledger, tx, alice, ETH, alice.address, credit)
    # Paid exactly once: the re-entrant call (a second withdraw, a close, a deposit with 1 wei...) moved nothing.
    assert alice.balance == alice_before + credit - tx.total_fees_paid
    assert ledger.balance == ledger_before - credit
    assert ledger.credits(ETH, alice) == 0
    if name == "virtual.register":
        # The VirtualAdjudicator has its own lock; a registration from inside a ledger withdraw is legitimate.
        assert hostile.attempts() == 1
        assert hostile.last_success() is True
        assert virtual.record(target.virtual_params.channel_id)[0] == target.virtual_state.version
    elif name == "ledger.deposit":
        # Outside the lock, `deposit` runs, and refuses the concluded channel: its 1 wei went back.
        _assert_refused_with(hostile, 1, LEDGER_CONCLUDED)
        assert _holdings(ledger, target.params.channel_id) == (0, 0, True)
    else:
        _assert_refused_by_lock(hostile, 1)


def _channel_target(params, state0, alice, bob, ingrid, chain) -> Target:
    """Attack an Alice-Bob channel whose registered (or initial) state is `state0`."""
    vp, vstate = _unrelated_virtual(alice, bob, ingrid, chain)
    return Target(params, (alice, bob), state0.finalized(), state0.pay(1, 0), state0, vp, vstate)


@pytest.mark.parametrize("name", TARGETS)
def test_close__reentrant_receiver__credited_then_withdrawn_once(
    ledger, virtual, open_channel, signed_final, receiver_on, arm, chain, alice, bob, ingrid, watcher, name: str
) -> None:
    params, state0 = open_channel(E, E)
    hostile = receiver_on(alice)
    target = arm(hostile, name, _channel_target(params, state0, alice, bob, ingrid, chain))
    final = state0.pay(E // 4, 0).finalized()
    alice_before, bob_before = alice.balance, bob.balance

    tx = ledger.close(params.as_tuple(), *signed_final(final), sender=watcher)

    _assert_concluded(ledger, tx, params, final.version, 3 * E // 4, 5 * E // 4)
    _assert_credited(ledger, tx, params, [(alice.address, 3 * E // 4)])
    assert alice.balance == alice_before
    assert bob.balance == bob_before + 5 * E // 4
    assert hostile.attempts() == 0  # the out-of-gas receiver's call was rolled back with it
    assert list(tx.decode_logs(ledger.Deposited)) == []
    assert virtual.record(target.virtual_params.channel_id)[0] == 0
    _assert_invariant(ledger, ETH, [params], [alice, bob])

    _withdraw_reentered(ledger, hostile, alice, name, target, 3 * E // 4, virtual)
    _assert_invariant(ledger, ETH, [params], [alice, bob])


@pytest.mark.parametrize("name", TARGETS)
def test_conclude__reentrant_receiver__credited_then_withdrawn_once(
    ledger, virtual, open_channel, signed, receiver_on, arm, chain, alice, bob, ingrid, watcher, name: str
) -> None:
    params, state0 = open_channel(E, E)
    state1 = state0.pay(E // 5, 1)  # A 1.2, B 0.8
    ledger.register(params.as_tuple(), *signed(state1), sender=watcher)
    chain.pending_timestamp += params.challenge_duration
    hostile = receiver_on(alice)
    target = arm(hostile, name, _channel_target(params, state1, alice, bob, ingrid, chain))
    alice_before, bob_before = alice.balance, bob.balance

    tx = ledger.conclude(params.as_tuple(), sender=watcher)

    _assert_concluded(ledger, tx, params, 1, 6 * E // 5, 4 * E // 5)
    _assert_credited(ledger, tx, params, [(alice.address, 6 * E // 5)])
    assert alice.balance == alice_before
    assert bob.balance == bob_before + 4 * E // 5
    assert hostile.attempts() == 0
    assert list(tx.decode_logs(ledger.Deposited)) == []
    _assert_invariant(ledger, ETH, [params], [alice, bob])

    _withdraw_reentered(ledger, hostile, alice, name, target, 6 * E // 5, virtual)
    _assert_invariant(ledger, ETH, [params], [alice, bob])


@pytest.mark.parametrize("name", TARGETS)
def test_conclude_with_lock__reentrant_receiver__credited_ingrid_neutral(
    ledger, virtual, hub_with_lock, signed, receiver_on, arm, alice, bob, ingrid, watcher, name: str
) -> None:
    deposit, funding = E, E // 2
    h = hub_with_lock(deposit, funding, funding // 5)
    hostile = receiver_on(alice)
    arm(hostile, name, _hub_target(h, alice, ingrid))
    (alice_pay, ingrid_left), (ingrid_right, bob_pay) = _hub_payouts(h, deposit)
    alice_before, ingrid_before, bob_before = alice.balance, ingrid.balance, bob.balance

    tx_left, tx_right = _conclude_hub(ledger, h, watcher)

    _assert_concluded(ledger, tx_left, h.hub.left, h.left.version, alice_pay, ingrid_left)
    _assert_concluded(ledger, tx_right, h.hub.right, h.right.version, ingrid_right, bob_pay)
    _assert_credited(ledger, tx_left, h.hub.left, [(alice.address, alice_pay)])
    _assert_credited(ledger, tx_right, h.hub.right, [])
    assert alice.balance == alice_before
    assert bob.balance == bob_before + bob_pay
    # Ingrid is neutral: she gets back exactly her two deposits, whatever Alice's receiver did.
    assert ingrid.balance == ingrid_before + 2 * deposit
    assert ledger.credits(ETH, ingrid) == 0
    assert hostile.attempts() == 0
    assert virtual.record(h.vp.channel_id)[0] == h.outcome.version  # the settled outcome is untouched
    _assert_invariant(ledger, ETH, [h.hub.left, h.hub.right], [alice, bob, ingrid])

    alice_before = alice.balance
    tx = ledger.withdraw(ETH, alice, sender=alice)
    _assert_withdrawn(ledger, tx, alice, ETH, alice.address, alice_pay)
    assert alice.balance == alice_before + alice_pay - tx.total_fees_paid
    assert hostile.attempts() == 1
    assert hostile.last_success() is False
    if name == "virtual.register":
        # Not the ledger's lock: the VirtualAdjudicator refuses to rewrite an outcome a ledger channel may
        # already have split a lock by (here the left channel did, the right one too).
        assert _revert_reason(bytes(hostile.last_response())) == VIRTUAL_CONCLUDED
        assert virtual.record(h.vp.channel_id)[0] == h.outcome.version
    elif name == "ledger.deposit":
        # `deposit` (outside the lock) into the concluded Alice-Ingrid channel: refused by its own check.
        assert _revert_reason(bytes(hostile.last_response())) == LEDGER_CONCLUDED
        assert _holdings(ledger, h.hub.left.channel_id) == (0, 0, True)
    else:
        assert bytes(hostile.last_response()) == LOCK_REFUSAL
    _assert_invariant(ledger, ETH, [h.hub.left, h.hub.right], [alice, bob, ingrid])


# ---------------------------------------------------------------------------------------------------
# re-entrant token: the token payout gets 150,000 gas, enough for the hook to try its call; the ledger's
# lock refuses it and the transfer itself goes through. `deposit`, outside the lock, is re-entered into an
# open ETH channel (a token channel's id has bit 255 set, which `deposit` refuses): it goes through, once
# per push, accounted like any deposit.


def _token_balances(token, *accounts) -> list[int]:
    return [token.balanceOf(a) for a in accounts]


def _withdraw_token_once(ledger, token, owner, credit: int, receiver=None) -> None:
    """`owner` withdraws its token credit (the token's hook, if armed, runs): paid exactly once."""
    receiver = receiver or owner
    receiver_before, ledger_before = token.balanceOf(receiver), token.balanceOf(ledger)
    tx = ledger.withdraw(token, receiver, sender=owner)
    _assert_withdrawn(ledger, tx, owner, token, receiver.address, credit)
    assert token.balanceOf(receiver) == receiver_before + credit
    assert token.balanceOf(ledger) == ledger_before - credit
    assert ledger.credits(token, owner) == 0


def _assert_token_push(ledger, virtual, rtoken, tx, params, name: str, target: Target, payouts, owners) -> bool:
    """Checks one concluding transaction; returns whether its payouts were credited instead of pushed."""
    if name == "virtual.register":
        # Registering a virtual state from inside the hook (the VirtualAdjudicator has its own lock: legitimate)
        # costs about all the 150,000 gas the push leaves the token: with compact signatures the first
        # transfer fits (146,343 gas measured), so both pushes go through, the second registration being a
        # no-op. Should the cost grow past the cap, the first transfer runs out of gas, the registration is
        # undone with it, and both payouts are credited (nothing lost, see the withdrawals in the callers).
        # Either way it is all or nothing, and the ledger's outcome is the same.
        credited = list(tx.decode_logs(ledger.Credited)) != []
        if credited:
            _assert_credited(ledger, tx, params, [(o.address, p) for o, p in zip(owners, payouts, strict=True) if p])
            assert rtoken.attempts() == 0
            assert virtual.record(target.virtual_params.channel_id)[0] == 0
        else:
            _assert_credited(ledger, tx, params, [])
            assert rtoken.attempts() == sum(1 for p in payouts if p)
            assert rtoken.last_success() is True
            assert virtual.record(target.virtual_params.channel_id)[0] == target.virtual_state.version
        return credited
    _assert_credited(ledger, tx, params, [])
    return False


@pytest.mark.parametrize("name", TARGETS)
def test_close__reentrant_token__refused_both_paid_once(
    ledger, virtual, open_channel, signed_final, rtoken, arm, chain, alice, bob, ingrid, watcher, name: str
) -> None:
    params, state0 = open_channel(1000 * UNIT, 1000 * UNIT, asset=rtoken)
    target = arm(rtoken, name, _channel_target(params, state0, alice, bob, ingrid, chain))
    final = state0.pay(250 * UNIT, 0).finalized()
    payouts = (750 * UNIT, 1250 * UNIT)
    before = _token_balances(rtoken, alice, bob, ledger)
    eth_before = ledger.balance

    tx = ledger.close(params.as_tuple(), *signed_final(final), sender=watcher)

    _assert_concluded(ledger, tx, params, final.version, *payouts)
    credited = _assert_token_push(ledger, virtual, rtoken, tx, params, name, target, payouts, (alice, bob))
    _assert_invariant(ledger, rtoken, [params], [alice, bob])
    if credited:
        assert _token_balances(rtoken, alice, bob, ledger) == before
        _withdraw_token_once(ledger, rtoken, alice, payouts[0])
        # The hook's registration now had all the gas it wanted: legitimate, and the ledger is untouched.
        assert rtoken.last_success() is True
        assert virtual.record(target.virtual_params.channel_id)[0] == target.virtual_state.version
        _withdraw_token_once(ledger, rtoken, bob, payouts[1])
        assert rtoken.attempts() == 2
        assert rtoken.last_success() is True  # the same state again: a no-op
    else:
        if name == "ledger.deposit":
            _assert_hook_deposits(ledger, rtoken, [tx], target.eth_channel, 2, [alice, bob])
            assert ledger.balance == eth_before + 2
        else:
            if name != "virtual.register":  # checked by _assert_token_push
                _assert_refused_by_lock(rtoken, 2)
            assert ledger.balance == eth_before
        assert _token_balances(rtoken, alice, bob, ledger) == [
            before[0] + payouts[0],
            before[1] + payouts[1],
            before[2] - sum(payouts),
        ]
    assert _token_balances(rtoken, alice, bob) == [before[0] + payouts[0], before[1] + payouts[1]]
    _assert_invariant(ledger, rtoken, [params], [alice, bob])


@pytest.mark.parametrize("name", TARGETS)
def test_conclude__reentrant_token__refused_both_paid_once(
    ledger, virtual, open_channel, signed, rtoken, arm, chain, alice, bob, ingrid, watcher, name: str
) -> None:
    params, state0 = open_channel(1000 * UNIT, 1000 * UNIT, asset=rtoken)
    state1 = state0.pay(200 * UNIT, 1)
    ledger.register(params.as_tuple(), *signed(state1), sender=watcher)
    chain.pending_timestamp += params.challenge_duration
    target = arm(rtoken, name, _channel_target(params, state1, alice, bob, ingrid, chain))
    payouts = (1200 * UNIT, 800 * UNIT)
    before = _token_balances(rtoken, alice, bob, ledger)
    eth_before = ledger.balance

    tx = ledger.conclude(params.as_tuple(), sender=watcher)

    _assert_concluded(ledger, tx, params, 1, *payouts)
    credited = _assert_token_push(ledger, virtual, rtoken, tx, params, name, target, payouts, (alice, bob))
    _assert_invariant(ledger, rtoken, [params], [alice, bob])
    if credited:
        _withdraw_token_once(ledger, rtoken, alice, payouts[0])
        _withdraw_token_once(ledger, rtoken, bob, payouts[1])
        assert virtual.record(target.virtual_params.channel_id)[0] == target.virtual_state.version
    elif name == "ledger.deposit":
        _assert_hook_deposits(ledger, rtoken, [tx], target.eth_channel, 2, [alice, bob])
        assert ledger.balance == eth_before + 2
    elif name != "virtual.register":  # checked by _assert_token_push
        _assert_refused_by_lock(rtoken, 2)
    assert _token_balances(rtoken, alice, bob, ledger) == [
        before[0] + payouts[0],
        before[1] + payouts[1],
        before[2] - sum(payouts),
    ]
    assert tuple(ledger.dispute(params.channel_id)) == (0, 0, b"\x00" * 32)
    _assert_invariant(ledger, rtoken, [params], [alice, bob])


@pytest.mark.parametrize("name", TARGETS)
def test_conclude_with_lock__reentrant_token__refused_ingrid_neutral(
    ledger, virtual, hub_with_lock, rtoken, arm, alice, bob, ingrid, watcher, name: str
) -> None:
    deposit, funding = 1000 * UNIT, 400 * UNIT
    h = hub_with_lock(deposit, funding, 150 * UNIT, asset=rtoken)
    target = arm(rtoken, name, _hub_target(h, alice, ingrid))
    (alice_pay, ingrid_left), (ingrid_right, bob_pay) = _hub_payouts(h, deposit)
    before = _token_balances(rtoken, alice, ingrid, bob, ledger)
    eth_before = ledger.balance

    tx_left, tx_right = _conclude_hub(ledger, h, watcher)

    _assert_concluded(ledger, tx_left, h.hub.left, h.left.version, alice_pay, ingrid_left)
    _assert_concluded(ledger, tx_right, h.hub.right, h.right.version, ingrid_right, bob_pay)
    if name == "virtual.register":
        # Loading the payload and calling the VirtualAdjudicator costs more than the push leaves the token:
        # all four pushes run out of gas and are credited; the credits are withdrawn below with all gas.
        _assert_credited(ledger, tx_left, h.hub.left, [(alice.address, alice_pay), (ingrid.address, ingrid_left)])
        _assert_credited(ledger, tx_right, h.hub.right, [(ingrid.address, ingrid_right), (bob.address, bob_pay)])
        assert rtoken.attempts() == 0
        _assert_invariant(ledger, rtoken, [h.hub.left, h.hub.right], [alice, bob, ingrid])
        _withdraw_token_once(ledger, rtoken, alice, alice_pay)
        _withdraw_token_once(ledger, rtoken, ingrid, ingrid_left + ingrid_right)
        _withdraw_token_once(ledger, rtoken, bob, bob_pay)
        assert rtoken.attempts() == 3
        # The VirtualAdjudicator is not locked by a ledger payout; it refuses on its own rule: the outcome
        # both ledger channels split their lock by can no longer change.
        assert rtoken.last_success() is False
        assert _revert_reason(bytes(rtoken.last_response())) == VIRTUAL_CONCLUDED
    elif name == "ledger.deposit":
        # Every one of the four pushes ran the hook, whose deposit into the open ETH channel went through,
        # and paid: no credit anywhere.
        _assert_credited(ledger, tx_left, h.hub.left, [])
        _assert_credited(ledger, tx_right, h.hub.right, [])
        _assert_hook_deposits(ledger, rtoken, [tx_left, tx_right], target.eth_channel, 4, [alice, bob])
        assert ledger.balance == eth_before + 4
    else:
        # Every one of the four pushes ran the hook, was refused re-entry and paid: no credit anywhere.
        _assert_credited(ledger, tx_left, h.hub.left, [])
        _assert_credited(ledger, tx_right, h.hub.right, [])
        _assert_refused_by_lock(rtoken, 4)
    assert virtual.record(h.vp.channel_id)[0] == h.outcome.version
    assert _token_balances(rtoken, alice, ingrid, bob, ledger) == [
        before[0] + alice_pay,
        before[1] + 2 * deposit,  # Ingrid neutral: exactly her two deposits back
        before[2] + bob_pay,
        before[3] - 4 * deposit,
    ]
    _assert_invariant(ledger, rtoken, [h.hub.left, h.hub.right], [alice, bob, ingrid])


@pytest.mark.parametrize("name", TARGETS)
def test_withdraw__reentrant_token__refused_paid_once(
    ledger,
    virtual,
    open_channel,
    signed_final,
    rtoken,
    arm,
    gas_burner,
    chain,
    deployer,
    alice,
    bob,
    ingrid,
    watcher,
    name: str,
) -> None:
    # First make the payouts fail: a hook that burns all the gas the push leaves it gets both credited.
    params, state0 = open_channel(1000 * UNIT, 1000 * UNIT, asset=rtoken)
    rtoken.arm(gas_burner, b"", 0, sender=deployer)
    tx = ledger.close(params.as_tuple(), *signed_final(state0.pay(100 * UNIT, 1).finalized()), sender=watcher)
    _assert_credited(ledger, tx, params, [(alice.address, 1100 * UNIT), (bob.address, 900 * UNIT)])
    assert rtoken.attempts() == 0
    target = arm(rtoken, name, _channel_target(params, state0, alice, bob, ingrid, chain))
    eth_before = ledger.balance

    # Alice collects at Ingrid's address; Bob at his own.
    _withdraw_token_once(ledger, rtoken, alice, 1100 * UNIT, receiver=ingrid)
    if name == "virtual.register":
        assert rtoken.last_success() is True
        assert virtual.record(target.virtual_params.channel_id)[0] == target.virtual_state.version
    elif name == "ledger.deposit":
        # `deposit` is outside the lock `withdraw` holds: the hook's deposit into an open ETH channel counts.
        assert rtoken.attempts() == 1
        assert rtoken.last_success() is True
        assert _holdings(ledger, target.eth_channel.channel_id) == (E + 1, E, False)
    else:
        _assert_refused_by_lock(rtoken, 1)
    _assert_invariant(ledger, rtoken, [params], [alice, bob])
    _withdraw_token_once(ledger, rtoken, bob, 900 * UNIT)
    assert rtoken.attempts() == 2
    if name == "ledger.deposit":
        assert _holdings(ledger, target.eth_channel.channel_id) == (E + 2, E, False)
        assert ledger.balance == eth_before + 2
        _assert_invariant(ledger, ETH, [target.eth_channel], [alice, bob])
    assert ledger.credits(rtoken, alice) == ledger.credits(rtoken, bob) == 0
    assert rtoken.balanceOf(ledger) == 0
    _assert_invariant(ledger, rtoken, [params], [alice, bob])


def test_deposit_token__reentrant_token__refused_credited_once(
    ledger, make_params, signed, rtoken, arm, chain, alice, bob, ingrid
) -> None:
    # The hook also runs in `transferFrom`: a deposit that tries to deposit again is refused mid-pull.
    params = make_params(asset=rtoken)
    state0 = LedgerState.initial(params.channel_id, 500 * UNIT, 0)
    arm(rtoken, "ledger.deposit_token", _channel_target(params, state0, alice, bob, ingrid, chain))
    rtoken.approve(ledger, 10**6 * UNIT, sender=alice)
    ledger_before = rtoken.balanceOf(ledger)

    tx = ledger.deposit_token(params.as_tuple(), 0, 500 * UNIT, sender=alice)

    _assert_deposited(ledger, tx, params.channel_id, 500 * UNIT, 0)
    _assert_refused_by_lock(rtoken, 1)
    assert ledger.holdings(params.channel_id) == (500 * UNIT, 0, False)
    assert rtoken.balanceOf(ledger) == ledger_before + 500 * UNIT
    _assert_invariant(ledger, rtoken, [params], [alice, bob])


# ---------------------------------------------------------------------------------------------------
# `deposit` outside the lock: re-entered from a payout, it is refused for the channel being paid (concluded
# before any payout), a disputed or concluded channel and a token channel; into another open ETH channel it
# goes through and is accounted exactly as a deposit in a later transaction would be.


def _lean_reentrant_code(ledger_address: str, channel: bytes, side: int, value: int) -> bytes:
    """Runtime code of a receiver lean enough to re-enter within the 10,000 gas of an ETH push (ReentrantReceiver
    runs out of gas loading its payload): on any call it calls ``deposit(channel, side)`` on the ledger with
    ``value`` wei of its own, accepts the payment if that call succeeded and otherwise reverts with the
    ledger's revert data, failing the push."""
    assert side < 256 and value < 256
    selector = keccak(text="deposit(bytes32,uint256)")[:4]
    head = (
        b"\x63" + selector + b"\x60\xe0\x1b\x5f\x52"  # mem[0:4] = selector
        + b"\x7f" + channel + b"\x60\x04\x52"  # mem[4:36] = channel
        + b"\x60" + bytes([side]) + b"\x60\x24\x52"  # mem[36:68] = side
        + b"\x5f\x5f\x60\x44\x5f"  # retSize 0, retOffset 0, argsSize 68, argsOffset 0
        + b"\x60" + bytes([value])  # value
        + b"\x73" + bytes.fromhex(ledger_address[2:])  # the ledger
        + b"\x5a\xf1"  # GAS CALL
    )  # fmt: skip
    revert_path = b"\x3d\x5f\x5f\x3e\x3d\x5f\xfd"  # RETURNDATACOPY(0, 0, size); REVERT(0, size)
    jump_dest = len(head) + 3 + len(revert_path)  # past PUSH1 dest, JUMPI and the revert path
    code = head + b"\x60" + bytes([jump_dest]) + b"\x57" + revert_path + b"\x5b\x00"  # JUMPDEST STOP
    assert code[jump_dest] == 0x5B
    return code


def _hex(txn_hash) -> str:
    return txn_hash if isinstance(txn_hash, str) else "0x" + bytes(txn_hash).hex()


def _calls_into(chain, tx, caller: str, callee: str) -> list[dict]:
    """The call frames of `tx` from `caller` to `callee`, from Anvil's call tracer."""
    trace = chain.provider.make_request("debug_traceTransaction", [_hex(tx.txn_hash), {"tracer": "callTracer"}])
    found = []

    def walk(frame: dict) -> None:
        if frame["from"].lower() == caller.lower() and frame.get("to", "").lower() == callee.lower():
            found.append(frame)
        for sub in frame.get("calls", []):
            walk(sub)

    walk(trace)
    return found


@pytest.mark.parametrize("path", ["close", "conclude"])
def test_conclusion__lean_receiver_reenters_deposit_into_paid_channel__refused_concluded_and_credited(
    ledger, open_channel, signed, signed_final, chain, alice, bob, ingrid, watcher, path: str
) -> None:
    params, state0 = open_channel(E, E)
    chain.provider.set_code(alice.address, _lean_reentrant_code(str(ledger.address), params.channel_id, 0, 1))
    if path == "close":
        final = state0.pay(E // 4, 0).finalized()
        version, payouts = final.version, (3 * E // 4, 5 * E // 4)
    else:
        state1 = state0.pay(E // 5, 1)
        ledger.register(params.as_tuple(), *signed(state1), sender=watcher)
        chain.pending_timestamp += params.challenge_duration
        version, payouts = 1, (6 * E // 5, 4 * E // 5)
    alice_before, bob_before, ledger_before = alice.balance, bob.balance, ledger.balance

    if path == "close":
        tx = ledger.close(params.as_tuple(), *signed_final(final), sender=watcher)
    else:
        tx = ledger.conclude(params.as_tuple(), sender=watcher)

    # Inside Alice's push, her receiver's `deposit` passed the (absent) lock and hit the concluded check,
    # with gas to spare: the refusal, not the gas cap, failed the push.
    [reentry] = _calls_into(chain, tx, alice.address, str(ledger.address))
    assert reentry["error"] and int(reentry["value"], 16) == 1
    assert _revert_reason(bytes.fromhex(reentry["output"][2:])) == LEDGER_CONCLUDED
    [push] = _calls_into(chain, tx, str(ledger.address), alice.address)
    assert push["error"] and int(push["value"], 16) == payouts[0]
    # So the payout is credited; nothing was deposited into the concluded channel; Bob is paid.
    _assert_concluded(ledger, tx, params, version, *payouts)
    _assert_credited(ledger, tx, params, [(alice.address, payouts[0])])
    assert list(tx.decode_logs(ledger.Deposited)) == []
    assert _holdings(ledger, params.channel_id) == (0, 0, True)
    assert alice.balance == alice_before
    assert bob.balance == bob_before + payouts[1]
    assert ledger.balance == ledger_before - payouts[1]
    _assert_invariant(ledger, ETH, [params], [alice, bob])

    # The credit is collected elsewhere (the receiver keeps refusing), exactly once.
    ingrid_before = ingrid.balance
    tx = ledger.withdraw(ETH, ingrid, sender=alice)
    _assert_withdrawn(ledger, tx, alice, ETH, ingrid.address, payouts[0])
    assert ingrid.balance == ingrid_before + payouts[0]
    assert ledger.balance == ledger_before - sum(payouts)
    _assert_invariant(ledger, ETH, [params], [alice, bob])


def test_close__token_hook_deposits_into_other_open_eth_channel__accounted_as_normal_deposit(
    ledger, open_channel, signed_final, rtoken, deployer, alice, bob, watcher
) -> None:
    eth_channel, eth0 = open_channel(E, 2 * E)
    params, state0 = open_channel(1000 * UNIT, 1000 * UNIT, asset=rtoken)
    deployer.transfer(rtoken.address, 1000)
    rtoken.arm(ledger, ledger.deposit.encode_input(eth_channel.channel_id, 1), 7, sender=deployer)
    final = state0.pay(250 * UNIT, 0).finalized()
    before = _token_balances(rtoken, alice, bob, ledger)
    ledger_eth, hook_eth = ledger.balance, _balance(ETH, rtoken.address)

    tx = ledger.close(params.as_tuple(), *signed_final(final), sender=watcher)

    # Both token pushes went through, each after its hook deposited 7 wei for side B of the ETH channel.
    _assert_concluded(ledger, tx, params, final.version, 750 * UNIT, 1250 * UNIT)
    _assert_credited(ledger, tx, params, [])
    assert _token_balances(rtoken, alice, bob, ledger) == [
        before[0] + 750 * UNIT,
        before[1] + 1250 * UNIT,
        before[2] - 2000 * UNIT,
    ]
    assert (rtoken.attempts(), rtoken.last_success()) == (2, True)
    assert [(bytes(e.channel), e.deposits) for e in tx.decode_logs(ledger.Deposited)] == [
        (eth_channel.channel_id, _packed(E, 2 * E + 7)),
        (eth_channel.channel_id, _packed(E, 2 * E + 14)),
    ]
    assert _holdings(ledger, eth_channel.channel_id) == (E, 2 * E + 14, False)
    assert ledger.balance == ledger_eth + 14
    assert _balance(ETH, rtoken.address) == hook_eth - 14
    _assert_invariant(ledger, ETH, [eth_channel], [alice, bob])
    _assert_invariant(ledger, rtoken, [params], [alice, bob])

    # A deposit like any other: a later top-up the final state does not account for, returned to side B.
    rtoken.disarm(sender=deployer)
    alice_before, bob_before = alice.balance, bob.balance
    tx = ledger.close(eth_channel.as_tuple(), *signed_final(eth0.pay(E // 2, 0).finalized()), sender=watcher)
    _assert_concluded(ledger, tx, eth_channel, 2, E // 2, 5 * E // 2 + 14)
    assert (alice.balance - alice_before, bob.balance - bob_before) == (E // 2, 5 * E // 2 + 14)
    assert ledger.balance == ledger_eth - 3 * E
    _assert_invariant(ledger, ETH, [eth_channel], [alice, bob])


@pytest.mark.parametrize("channel_state", ["disputed", "concluded", "token_channel_being_paid"])
def test_close__token_hook_deposits_into_unavailable_channel__refused_payouts_pushed(
    ledger, open_channel, signed, signed_final, rtoken, chain, deployer, alice, bob, watcher, channel_state: str
) -> None:
    params, state0 = open_channel(1000 * UNIT, 1000 * UNIT, asset=rtoken)
    eth_channel, eth0 = open_channel(E, E)
    if channel_state == "disputed":
        ledger.register(eth_channel.as_tuple(), *signed(eth0.pay(1, 0)), sender=watcher)
        expected, channel, holdings = LEDGER_DISPUTED, eth_channel.channel_id, (E, E, False)
    elif channel_state == "concluded":
        ledger.close(eth_channel.as_tuple(), *signed_final(eth0.finalized()), sender=watcher)
        expected, channel, holdings = LEDGER_CONCLUDED, eth_channel.channel_id, (0, 0, True)
    else:
        expected, channel, holdings = WRONG_ASSET, params.channel_id, (0, 0, True)
    rtoken.arm(ledger, ledger.deposit.encode_input(channel, 0), 1, sender=deployer)
    # Storing a 100-byte revert reason in fresh slots costs the hook ~110,000 gas of its own bookkeeping,
    # about all a push leaves it: a transfer outside the ledger (all gas) records the refusal first, so the
    # pushes below measure the re-entry, not the hook's first writes.
    rtoken.transfer(bob, 1, sender=alice)
    _assert_refused_with(rtoken, 1, expected)
    final = state0.pay(250 * UNIT, 0).finalized()
    before = _token_balances(rtoken, alice, bob, ledger)
    ledger_eth, hook_eth = ledger.balance, _balance(ETH, rtoken.address)

    tx = ledger.close(params.as_tuple(), *signed_final(final), sender=watcher)

    # Inside each push, the hook's deposit is refused by the channel's own check; the token pays as usual.
    _assert_refused_with(rtoken, 3, expected)
    _assert_concluded(ledger, tx, params, final.version, 750 * UNIT, 1250 * UNIT)
    _assert_credited(ledger, tx, params, [])
    assert list(tx.decode_logs(ledger.Deposited)) == []
    assert _token_balances(rtoken, alice, bob, ledger) == [
        before[0] + 750 * UNIT,
        before[1] + 1250 * UNIT,
        before[2] - 2000 * UNIT,
    ]
    assert _holdings(ledger, channel) == holdings
    assert (ledger.balance, _balance(ETH, rtoken.address)) == (ledger_eth, hook_eth)
    _assert_invariant(ledger, ETH, [eth_channel], [alice, bob])
    _assert_invariant(ledger, rtoken, [params], [alice, bob])


def test_withdraw__receiver_reenters_deposit_into_open_channel__accepted_paid_once(
    ledger, open_channel, signed_final, receiver_on, deployer, alice, bob, watcher
) -> None:
    # The receiver is credited at the close (out of gas); `withdraw` forwards all gas and holds the lock,
    # and the receiver's `deposit` into another open channel of Alice's, from inside it, goes through.
    params, state0 = open_channel(E, E)
    other, _ = open_channel(E, E)
    hostile = receiver_on(alice)
    hostile.arm(ledger, ledger.deposit.encode_input(other.channel_id, 0), 5, sender=deployer)
    ledger.close(params.as_tuple(), *signed_final(state0.finalized()), sender=watcher)
    assert ledger.credits(ETH, alice) == E
    assert hostile.attempts() == 0
    alice_before, ledger_before = alice.balance, ledger.balance

    tx = ledger.withdraw(ETH, alice, sender=alice)

    _assert_withdrawn(ledger, tx, alice, ETH, alice.address, E)
    _assert_deposited(ledger, tx, other.channel_id, E + 5, E)
    assert (hostile.attempts(), hostile.last_success()) == (1, True)
    assert _holdings(ledger, other.channel_id) == (E + 5, E, False)
    assert alice.balance == alice_before + E - 5 - tx.total_fees_paid
    assert ledger.balance == ledger_before - E + 5
    assert ledger.credits(ETH, alice) == 0
    _assert_invariant(ledger, ETH, [params, other], [alice, bob])


@pytest.mark.parametrize("into", ["open_eth_channel", "token_channel_being_deposited"])
def test_deposit_token__reentrant_token_reenters_deposit__eth_accepted_token_channel_refused(
    ledger, make_params, open_channel, rtoken, deployer, alice, bob, into: str
) -> None:
    # The hook runs inside the pull, under the lock: `deposit` is outside it but takes only ETH channels,
    # so it cannot change the token channel whose deposit word is read after the pull.
    params = make_params(asset=rtoken)
    eth_channel, _ = open_channel(E, E)
    channel = eth_channel.channel_id if into == "open_eth_channel" else params.channel_id
    rtoken.arm(ledger, ledger.deposit.encode_input(channel, 1), 3, sender=deployer)
    rtoken.approve(ledger, 500 * UNIT, sender=alice)
    token_before, ledger_eth, hook_eth = rtoken.balanceOf(ledger), ledger.balance, _balance(ETH, rtoken.address)

    tx = ledger.deposit_token(params.as_tuple(), 0, 500 * UNIT, sender=alice)

    assert ledger.holdings(params.channel_id) == (500 * UNIT, 0, False)
    assert rtoken.balanceOf(ledger) == token_before + 500 * UNIT
    events = [(bytes(e.channel), e.deposits) for e in tx.decode_logs(ledger.Deposited)]
    if into == "open_eth_channel":
        assert (rtoken.attempts(), rtoken.last_success()) == (1, True)
        assert events == [
            (eth_channel.channel_id, _packed(E, E + 3)),
            (params.channel_id, _packed(500 * UNIT, 0)),
        ]
        assert _holdings(ledger, eth_channel.channel_id) == (E, E + 3, False)
        assert (ledger.balance, _balance(ETH, rtoken.address)) == (ledger_eth + 3, hook_eth - 3)
    else:
        _assert_refused_with(rtoken, 1, WRONG_ASSET)
        assert events == [(params.channel_id, _packed(500 * UNIT, 0))]
        assert (ledger.balance, _balance(ETH, rtoken.address)) == (ledger_eth, hook_eth)
    _assert_invariant(ledger, ETH, [eth_channel], [alice, bob])
    _assert_invariant(ledger, rtoken, [params], [alice, bob])


# ---------------------------------------------------------------------------------------------------
# a token returning false: refused on deposit, credited on payout, withdrawable once it transfers again


def test_deposit_token__false_token__reverts_token_transfer_failed(
    ledger, make_params, false_token, deployer, alice
) -> None:
    params = make_params(asset=false_token)
    false_token.approve(ledger, 1000 * UNIT, sender=alice)
    false_token.set_fail(True, sender=deployer)
    alice_before, ledger_before = false_token.balanceOf(alice), false_token.balanceOf(ledger)

    with ape.reverts(TRANSFER_FAILED):
        ledger.deposit_token(params.as_tuple(), 0, 1000 * UNIT, sender=alice)

    assert ledger.holdings(params.channel_id) == (0, 0, False)
    assert (false_token.balanceOf(alice), false_token.balanceOf(ledger)) == (alice_before, ledger_before)


def test_close__false_token__both_credited_withdrawable_after_recovery(
    ledger, open_channel, signed_final, false_token, deployer, alice, bob, ingrid, watcher
) -> None:
    params, state0 = open_channel(1000 * UNIT, 500 * UNIT, asset=false_token)
    false_token.set_fail(True, sender=deployer)
    final = state0.pay(300 * UNIT, 0).finalized()  # A 700, B 800
    before = _token_balances(false_token, alice, bob, ledger)

    tx = ledger.close(params.as_tuple(), *signed_final(final), sender=watcher)

    _assert_concluded(ledger, tx, params, final.version, 700 * UNIT, 800 * UNIT)
    _assert_credited(ledger, tx, params, [(alice.address, 700 * UNIT), (bob.address, 800 * UNIT)])
    assert _token_balances(false_token, alice, bob, ledger) == before
    _assert_invariant(ledger, false_token, [params], [alice, bob])

    # While the token keeps returning false, withdraw reverts and the credit stays.
    with ape.reverts(TRANSFER_FAILED):
        ledger.withdraw(false_token, alice, sender=alice)
    assert ledger.credits(false_token, alice) == 700 * UNIT

    false_token.set_fail(False, sender=deployer)
    _withdraw_token_once(ledger, false_token, alice, 700 * UNIT, receiver=ingrid)
    _withdraw_token_once(ledger, false_token, bob, 800 * UNIT)
    assert false_token.balanceOf(ledger) == before[2] - 1500 * UNIT
    _assert_invariant(ledger, false_token, [params], [alice, bob])


def test_conclude__false_token__credited_then_withdrawn(
    ledger, open_channel, signed, false_token, chain, deployer, alice, bob, watcher
) -> None:
    params, state0 = open_channel(1000 * UNIT, 1000 * UNIT, asset=false_token)
    state1 = state0.pay(1000 * UNIT, 0)  # A 0, B 2000: only B is pushed (and credited)
    ledger.register(params.as_tuple(), *signed(state1), sender=watcher)
    chain.pending_timestamp += params.challenge_duration
    false_token.set_fail(True, sender=deployer)

    tx = ledger.conclude(params.as_tuple(), sender=watcher)

    _assert_concluded(ledger, tx, params, 1, 0, 2000 * UNIT)
    _assert_credited(ledger, tx, params, [(bob.address, 2000 * UNIT)])
    assert ledger.credits(false_token, alice) == 0
    _assert_invariant(ledger, false_token, [params], [alice, bob])
    false_token.set_fail(False, sender=deployer)
    _withdraw_token_once(ledger, false_token, bob, 2000 * UNIT)
    _assert_invariant(ledger, false_token, [params], [alice, bob])


def test_conclude_with_lock__false_token__all_credited_ingrid_neutral(
    ledger, virtual, hub_with_lock, false_token, deployer, alice, bob, ingrid, watcher
) -> None:
    deposit = 1000 * UNIT
    h = hub_with_lock(deposit, 400 * UNIT, 100 * UNIT, asset=false_token)
    (alice_pay, ingrid_left), (ingrid_right, bob_pay) = _hub_payouts(h, deposit)
    false_token.set_fail(True, sender=deployer)
    before = _token_balances(false_token, alice, ingrid, bob, ledger)

    tx_left, tx_right = _conclude_hub(ledger, h, watcher)

    _assert_credited(ledger, tx_left, h.hub.left, [(alice.address, alice_pay), (ingrid.address, ingrid_left)])
    _assert_credited(ledger, tx_right, h.hub.right, [(ingrid.address, ingrid_right), (bob.address, bob_pay)])
    assert _token_balances(false_token, alice, ingrid, bob, ledger) == before
    assert ledger.credits(false_token, ingrid) == 2 * deposit  # neutral: her two deposits, no more, no less
    _assert_invariant(ledger, false_token, [h.hub.left, h.hub.right], [alice, bob, ingrid])
    false_token.set_fail(False, sender=deployer)
    for owner, credit in ((alice, alice_pay), (ingrid, 2 * deposit), (bob, bob_pay)):
        _withdraw_token_once(ledger, false_token, owner, credit)
    assert false_token.balanceOf(ledger) == before[3] - 4 * deposit
    _assert_invariant(ledger, false_token, [h.hub.left, h.hub.right], [alice, bob, ingrid])


# ---------------------------------------------------------------------------------------------------
# a token reverting on zero-amount transfers: a zero payout is never attempted


def test_close__zero_revert_token_one_side_zero__other_paid_nothing_credited(
    ledger, open_channel, signed_final, zero_token, alice, bob, watcher
) -> None:
    params, state0 = open_channel(1000 * UNIT, 1000 * UNIT, asset=zero_token)
    final = state0.pay(1000 * UNIT, 0).finalized()  # A 0, B 2000
    before = _token_balances(zero_token, alice, bob, ledger)

    tx = ledger.close(params.as_tuple(), *signed_final(final), sender=watcher)

    _assert_concluded(ledger, tx, params, final.version, 0, 2000 * UNIT)
    # Had the zero push been attempted, the token's revert would have been credited (a zero Credited event).
    _assert_credited(ledger, tx, params, [])
    assert _token_balances(zero_token, alice, bob, ledger) == [
        before[0],
        before[1] + 2000 * UNIT,
        before[2] - 2000 * UNIT,
    ]
    assert ledger.credits(zero_token, alice) == ledger.credits(zero_token, bob) == 0
    _assert_invariant(ledger, zero_token, [params], [alice, bob])


def test_conclude__zero_revert_token_unfunded_side__other_refunded_nothing_credited(
    ledger, make_params, deposit, signed, zero_token, chain, alice, bob, watcher
) -> None:
    # Bob never funds: the initial state unwinds, Alice gets her deposit back, Bob's zero is not pushed.
    params = make_params(asset=zero_token)
    state0 = LedgerState.initial(params.channel_id, 1000 * UNIT, 1000 * UNIT)
    deposit(params, 0, 1000 * UNIT, alice)
    ledger.register(params.as_tuple(), *signed(state0), sender=watcher)
    chain.pending_timestamp += params.challenge_duration
    alice_before = zero_token.balanceOf(alice)

    tx = ledger.conclude(params.as_tuple(), sender=watcher)

    _assert_concluded(ledger, tx, params, 0, 1000 * UNIT, 0)
    _assert_credited(ledger, tx, params, [])
    assert zero_token.balanceOf(alice) == alice_before + 1000 * UNIT
    _assert_invariant(ledger, zero_token, [params], [alice, bob])


def test_conclude_with_lock__zero_revert_token_zero_payouts__skipped_ingrid_neutral(
    ledger, hub_with_lock, zero_token, alice, bob, ingrid, watcher
) -> None:
    # Everything is locked and Alice pays Bob all of hers: Alice's and Ingrid's right-hand payouts are 0.
    deposit = 500 * UNIT
    h = hub_with_lock(deposit, deposit, deposit, asset=zero_token)
    before = _token_balances(zero_token, alice, ingrid, bob, ledger)

    tx_left, tx_right = _conclude_hub(ledger, h, watcher)

    _assert_concluded(ledger, tx_left, h.hub.left, h.left.version, 0, 2 * deposit)
    _assert_concluded(ledger, tx_right, h.hub.right, h.right.version, 0, 2 * deposit)
    _assert_credited(ledger, tx_left, h.hub.left, [])
    _assert_credited(ledger, tx_right, h.hub.right, [])
    assert _token_balances(zero_token, alice, ingrid, bob, ledger) == [
        before[0],
        before[1] + 2 * deposit,  # neutral
        before[2] + 2 * deposit,
        before[3] - 4 * deposit,
    ]
    _assert_invariant(ledger, zero_token, [h.hub.left, h.hub.right], [alice, bob, ingrid])


def test_withdraw__zero_revert_token_no_credit__reverts_nothing_to_withdraw(ledger, zero_token, alice) -> None:
    # A zero withdrawal never reaches the token (which would revert "token: zero amount").
    with ape.reverts(NOTHING_TO_WITHDRAW):
        ledger.withdraw(zero_token, alice, sender=alice)


# ---------------------------------------------------------------------------------------------------
# a fee-on-transfer token: deposits count what arrived; the ledger pays full amounts, recipients bear the fee


def _fee_channel(ledger, make_params, fee_token, alice, bob) -> tuple[ChannelParams, LedgerState]:
    params = make_params(asset=fee_token)
    for side, who in ((0, alice), (1, bob)):
        fee_token.approve(ledger, 1000 * UNIT, sender=who)
        tx = ledger.deposit_token(params.as_tuple(), side, 1000 * UNIT, sender=who)
        _assert_deposited(ledger, tx, params.channel_id, 990 * UNIT, 990 * UNIT if side else 0)
    assert ledger.holdings(params.channel_id) == (990 * UNIT, 990 * UNIT, False)
    return params, LedgerState.initial(params.channel_id, 990 * UNIT, 990 * UNIT)


def test_close__fee_token__credited_what_arrived_invariant_holds(
    ledger, make_params, signed_final, fee_token, alice, bob, watcher
) -> None:
    ledger_before = fee_token.balanceOf(ledger)
    params, state0 = _fee_channel(ledger, make_params, fee_token, alice, bob)
    assert fee_token.balanceOf(ledger) == ledger_before + 1980 * UNIT
    _assert_invariant(ledger, fee_token, [params], [alice, bob])
    final = state0.pay(90 * UNIT, 0).finalized()  # A 900, B 1080
    before = _token_balances(fee_token, alice, bob)

    tx = ledger.close(params.as_tuple(), *signed_final(final), sender=watcher)

    _assert_concluded(ledger, tx, params, final.version, 900 * UNIT, 1080 * UNIT)
    _assert_credited(ledger, tx, params, [])
    assert _token_balances(fee_token, alice, bob) == [before[0] + 891 * UNIT, before[1] + 10692 * UNIT // 10]
    assert fee_token.balanceOf(ledger) == ledger_before
    _assert_invariant(ledger, fee_token, [params], [alice, bob])


def test_withdraw__fee_token_credit__ledger_debited_once_invariant_holds(
    ledger, make_params, signed_final, fee_token, project, chain, alice, bob, ingrid, watcher
) -> None:
    params, state0 = _fee_channel(ledger, make_params, fee_token, alice, bob)
    # Swap in code whose `transfer` returns false for the close (storage stays), so both payouts are credited.
    chain.provider.set_code(fee_token.address, RETURNS_FALSE_CODE)
    tx = ledger.close(params.as_tuple(), *signed_final(state0.pay(490 * UNIT, 1).finalized()), sender=watcher)
    chain.provider.set_code(fee_token.address, _code(project.FeeToken))
    _assert_credited(ledger, tx, params, [(alice.address, 1480 * UNIT), (bob.address, 500 * UNIT)])
    _assert_invariant(ledger, fee_token, [params], [alice, bob])
    ledger_before, ingrid_before = fee_token.balanceOf(ledger), fee_token.balanceOf(ingrid)

    tx = ledger.withdraw(fee_token, ingrid, sender=alice)

    _assert_withdrawn(ledger, tx, alice, fee_token, ingrid.address, 1480 * UNIT)
    assert fee_token.balanceOf(ingrid) == ingrid_before + 14652 * UNIT // 10  # 99% of 1480
    assert fee_token.balanceOf(ledger) == ledger_before - 1480 * UNIT
    _assert_invariant(ledger, fee_token, [params], [alice, bob])
    with ape.reverts(NOTHING_TO_WITHDRAW):
        ledger.withdraw(fee_token, ingrid, sender=alice)
