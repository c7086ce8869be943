"""Payouts at conclusion: a payout that cannot be pushed is credited, and never blocks the other side."""

from __future__ import annotations

import pytest

from perun_vyper import ETH, ChannelParams, LedgerState
from tests.support.checks import assert_accounts_balance as _assert_invariant
from tests.support.checks import assert_concluded as _assert_concluded
from tests.support.checks import assert_credited as _assert_credited
from tests.support.checks import holdings as _holdings
from tests.support.checks import runtime_code as _code
from tests.support.constants import E

# A close with a hostile recipient must stay cheap: the push is gas-capped (10k for ETH).
CLOSE_GAS_LIMIT = 200_000


def _close(ledger, signed_final, params: ChannelParams, final, sender):
    return ledger.close(params.as_tuple(), *signed_final(final), sender=sender)


def test_close__eoa_participants__both_paid_nothing_credited(
    ledger, open_channel, signed_final, alice, bob, watcher
) -> None:
    params, state0 = open_channel(E, E)
    final = state0.pay(E // 4, 0).finalized()
    alice_before, bob_before = alice.balance, bob.balance

    tx = _close(ledger, signed_final, params, final, watcher)

    _assert_concluded(ledger, tx, params, final.version, 3 * E // 4, 5 * E // 4)
    _assert_credited(ledger, tx, params, [])
    assert alice.balance == alice_before + 3 * E // 4
    assert bob.balance == bob_before + 5 * E // 4
    assert ledger.credits(ETH, alice) == ledger.credits(ETH, bob) == 0
    _assert_invariant(ledger, ETH, [params], [alice, bob])


@pytest.mark.parametrize("hostile_side", [0, 1])
def test_close__reverting_receiver__credited_and_other_side_paid(
    ledger, open_channel, signed_final, project, chain, alice, bob, watcher, hostile_side: int
) -> None:
    params, state0 = open_channel(E, 2 * E)
    hostile, honest = (alice, bob) if hostile_side == 0 else (bob, alice)
    chain.provider.set_code(hostile.address, _code(project.RevertingReceiver))
    final = state0.pay(E // 2, 1).finalized()  # A gets 1.5 ETH, B 1.5 ETH
    payout = 3 * E // 2
    hostile_before, honest_before, ledger_before = hostile.balance, honest.balance, ledger.balance

    tx = _close(ledger, signed_final, params, final, watcher)

    _assert_concluded(ledger, tx, params, final.version, payout, payout)
    _assert_credited(ledger, tx, params, [(hostile.address, payout)])
    assert ledger.credits(ETH, hostile) == payout
    assert ledger.credits(ETH, honest) == 0
    assert hostile.balance == hostile_before
    assert honest.balance == honest_before + payout
    assert ledger.balance == ledger_before - payout
    assert _holdings(ledger, params.channel_id) == (0, 0, True)
    _assert_invariant(ledger, ETH, [params], [alice, bob])


def test_close__greedy_receiver__credited_other_paid_gas_bounded(
    ledger, open_channel, signed_final, project, chain, alice, bob, watcher
) -> None:
    params, state0 = open_channel(E, E)
    chain.provider.set_code(alice.address, _code(project.GreedyReceiver))
    final = state0.pay(E // 10, 0).finalized()
    payout_a, payout_b = 9 * E // 10, 11 * E // 10
    alice_before, bob_before = alice.balance, bob.balance

    tx = _close(ledger, signed_final, params, final, watcher)

    assert tx.gas_used < CLOSE_GAS_LIMIT
    _assert_concluded(ledger, tx, params, final.version, payout_a, payout_b)
    _assert_credited(ledger, tx, params, [(alice.address, payout_a)])
    assert ledger.credits(ETH, alice) == payout_a
    assert alice.balance == alice_before
    assert bob.balance == bob_before + payout_b
    _assert_invariant(ledger, ETH, [params], [alice, bob])


def test_close__both_receivers_revert__both_credited(
    ledger, open_channel, signed_final, project, chain, alice, bob, watcher
) -> None:
    params, state0 = open_channel(E, 3 * E)
    chain.provider.set_code(alice.address, _code(project.RevertingReceiver))
    chain.provider.set_code(bob.address, _code(project.GreedyReceiver))
    final = state0.finalized()
    ledger_before = ledger.balance

    tx = _close(ledger, signed_final, params, final, watcher)

    assert tx.gas_used < CLOSE_GAS_LIMIT
    _assert_credited(ledger, tx, params, [(alice.address, E), (bob.address, 3 * E)])
    assert (ledger.credits(ETH, alice), ledger.credits(ETH, bob)) == (E, 3 * E)
    assert ledger.balance == ledger_before
    _assert_invariant(ledger, ETH, [params], [alice, bob])


def test_close__zero_payout_to_reverting_receiver__nothing_credited(
    ledger, open_channel, signed_final, project, chain, alice, bob, watcher
) -> None:
    params, state0 = open_channel(E, E)
    chain.provider.set_code(alice.address, _code(project.RevertingReceiver))
    final = state0.pay(E, 0).finalized()  # A is owed nothing: no push, no credit
    bob_before = bob.balance

    tx = _close(ledger, signed_final, params, final, watcher)

    _assert_concluded(ledger, tx, params, final.version, 0, 2 * E)
    _assert_credited(ledger, tx, params, [])
    assert ledger.credits(ETH, alice) == 0
    assert bob.balance == bob_before + 2 * E
    _assert_invariant(ledger, ETH, [params], [alice, bob])


def test_close__reverting_receiver_in_two_channels__credits_accumulate(
    ledger, open_channel, signed_final, project, chain, alice, bob, watcher
) -> None:
    first, first0 = open_channel(E, E)
    second, second0 = open_channel(2 * E, 0)
    chain.provider.set_code(alice.address, _code(project.RevertingReceiver))

    _close(ledger, signed_final, first, first0.finalized(), watcher)
    tx = _close(ledger, signed_final, second, second0.pay(E // 2, 0).finalized(), watcher)

    _assert_credited(ledger, tx, second, [(alice.address, 3 * E // 2)])
    assert ledger.credits(ETH, alice) == E + 3 * E // 2
    _assert_invariant(ledger, ETH, [first, second], [alice, bob])


def test_conclude__dispute_with_reverting_receiver__credited_and_other_paid(
    ledger, open_channel, signed, project, chain, alice, bob, watcher
) -> None:
    params, state0 = open_channel(E, E)
    state1 = state0.pay(E // 5, 1)
    ledger.register(params.as_tuple(), *signed(state1), sender=watcher)
    chain.provider.set_code(bob.address, _code(project.RevertingReceiver))
    chain.pending_timestamp += params.challenge_duration
    alice_before = alice.balance

    tx = ledger.conclude(params.as_tuple(), sender=watcher)

    _assert_concluded(ledger, tx, params, 1, 6 * E // 5, 4 * E // 5)
    _assert_credited(ledger, tx, params, [(bob.address, 4 * E // 5)])
    assert alice.balance == alice_before + 6 * E // 5
    assert ledger.credits(ETH, bob) == 4 * E // 5
    _assert_invariant(ledger, ETH, [params], [alice, bob])


@pytest.mark.parametrize("blocked_side", [0, 1])
def test_close__token_recipient_blocked__credited_and_other_paid(
    ledger, open_channel, signed_final, token, deployer, alice, bob, watcher, blocked_side: int
) -> None:
    params, state0 = open_channel(1000, 500, asset=token)
    blocked, paid = (alice, bob) if blocked_side == 0 else (bob, alice)
    token.set_blocked(blocked, True, sender=deployer)
    final = state0.pay(100, 0).finalized()  # A 900, B 600
    payouts = (900, 600)
    blocked_before, paid_before, ledger_before = (
        token.balanceOf(blocked),
        token.balanceOf(paid),
        token.balanceOf(ledger),
    )

    tx = _close(ledger, signed_final, params, final, watcher)

    _assert_concluded(ledger, tx, params, final.version, *payouts)
    _assert_credited(ledger, tx, params, [(blocked.address, payouts[blocked_side])])
    assert ledger.credits(token, blocked) == payouts[blocked_side]
    assert ledger.credits(token, paid) == 0
    assert ledger.credits(ETH, blocked) == 0
    assert token.balanceOf(blocked) == blocked_before
    assert token.balanceOf(paid) == paid_before + payouts[1 - blocked_side]
    assert token.balanceOf(ledger) == ledger_before - payouts[1 - blocked_side]
    _assert_invariant(ledger, token, [params], [alice, bob])


def test_close__no_return_token__both_paid_nothing_credited(
    ledger, make_params, signed_final, project, deployer, alice, bob, watcher
) -> None:
    no_return = deployer.deploy(project.NoReturnToken)
    no_return.mint(alice, 1000, sender=deployer)
    no_return.mint(bob, 1000, sender=deployer)
    params = make_params(asset=no_return)
    for side, who in ((0, alice), (1, bob)):
        no_return.approve(ledger, 400, sender=who)
        ledger.deposit_token(params.as_tuple(), side, 400, sender=who)
    final = LedgerState.initial(params.channel_id, 400, 400).pay(150, 1).finalized()

    tx = _close(ledger, signed_final, params, final, watcher)

    # A token returning nothing counts as a successful push.
    _assert_credited(ledger, tx, params, [])
    assert (no_return.balanceOf(alice), no_return.balanceOf(bob)) == (600 + 550, 600 + 250)
    assert no_return.balanceOf(ledger) == 0
    _assert_invariant(ledger, no_return, [params], [alice, bob])


def _pushes(chain, tx) -> list[tuple[str, int, int]]:
    """The calls the ledger made in ``tx`` other than to precompiles (ecrecover): (to, value, gas given),
    from Anvil's call tracer."""
    trace = chain.provider.make_request("debug_traceTransaction", [tx.txn_hash, {"tracer": "callTracer"}])
    return [
        (call["to"].lower(), int(call.get("value", "0x0"), 16), int(call["gas"], 16))
        for call in trace.get("calls", [])
        if int(call["to"], 16) > 0xFF
    ]


def test_close__eth_payout__pushed_with_exactly_the_eth_gas_cap(
    ledger, open_channel, signed_final, chain, alice, bob, watcher
) -> None:
    # SPEC 5.3: a receiver gets 10,000 gas (plus the 2,300 every call with value carries); one that needs
    # more is credited. The cap is part of the contract's promise, so it is pinned exactly.
    params, state0 = open_channel(E, E)
    final = state0.pay(E // 4, 0).finalized()

    tx = _close(ledger, signed_final, params, final, watcher)

    assert _pushes(chain, tx) == [
        (alice.address.lower(), 3 * E // 4, 10_000 + 2_300),
        (bob.address.lower(), 5 * E // 4, 10_000 + 2_300),
    ]


def test_close__token_payout__transfer_called_with_exactly_the_token_gas_cap(
    ledger, open_channel, signed_final, chain, token, alice, bob, watcher
) -> None:
    params, state0 = open_channel(E, E, asset=token)
    final = state0.pay(E // 4, 1).finalized()

    tx = _close(ledger, signed_final, params, final, watcher)

    assert _pushes(chain, tx) == [(token.address.lower(), 0, 150_000), (token.address.lower(), 0, 150_000)]
