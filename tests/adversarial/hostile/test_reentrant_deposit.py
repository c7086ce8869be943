"""`deposit`, the one entry point outside the reentrancy lock (it makes no external call), re-entered.

Re-entered from a payout it cannot reach the channel being paid (marked concluded before any payout:
"ledger: channel concluded"), a disputed or concluded channel, nor a token channel ("ledger: wrong
asset"); into another open ETH channel it goes through, and is accounted exactly as a deposit in a later
transaction.
"""

from __future__ import annotations

import pytest
from eth_utils import keccak

from perun_vyper import ETH
from tests.adversarial.hostile.helpers import UNIT, assert_refused_with, balance_of, packed, token_balances
from tests.support.checks import assert_accounts_balance as _assert_invariant
from tests.support.checks import assert_concluded as _assert_concluded
from tests.support.checks import assert_credited as _assert_credited
from tests.support.checks import assert_deposited as _assert_deposited
from tests.support.checks import assert_withdrawn as _assert_withdrawn
from tests.support.checks import holdings as _holdings
from tests.support.constants import (
    LEDGER_CONCLUDED,
    LEDGER_DISPUTED,
    WRONG_ASSET,
    E,
)
from tests.support.reverts import revert_reason as _revert_reason

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
    before = token_balances(rtoken, alice, bob, ledger)
    ledger_eth, hook_eth = ledger.balance, balance_of(ETH, rtoken.address)

    tx = ledger.close(params.as_tuple(), *signed_final(final), sender=watcher)

    # Both token pushes went through, each after its hook deposited 7 wei for side B of the ETH channel.
    _assert_concluded(ledger, tx, params, final.version, 750 * UNIT, 1250 * UNIT)
    _assert_credited(ledger, tx, params, [])
    assert token_balances(rtoken, alice, bob, ledger) == [
        before[0] + 750 * UNIT,
        before[1] + 1250 * UNIT,
        before[2] - 2000 * UNIT,
    ]
    assert (rtoken.attempts(), rtoken.last_success()) == (2, True)
    assert [(bytes(e.channel), e.deposits) for e in tx.decode_logs(ledger.Deposited)] == [
        (eth_channel.channel_id, packed(E, 2 * E + 7)),
        (eth_channel.channel_id, packed(E, 2 * E + 14)),
    ]
    assert _holdings(ledger, eth_channel.channel_id) == (E, 2 * E + 14, False)
    assert ledger.balance == ledger_eth + 14
    assert balance_of(ETH, rtoken.address) == hook_eth - 14
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
    assert_refused_with(rtoken, 1, expected)
    final = state0.pay(250 * UNIT, 0).finalized()
    before = token_balances(rtoken, alice, bob, ledger)
    ledger_eth, hook_eth = ledger.balance, balance_of(ETH, rtoken.address)

    tx = ledger.close(params.as_tuple(), *signed_final(final), sender=watcher)

    # Inside each push, the hook's deposit is refused by the channel's own check; the token pays as usual.
    assert_refused_with(rtoken, 3, expected)
    _assert_concluded(ledger, tx, params, final.version, 750 * UNIT, 1250 * UNIT)
    _assert_credited(ledger, tx, params, [])
    assert list(tx.decode_logs(ledger.Deposited)) == []
    assert token_balances(rtoken, alice, bob, ledger) == [
        before[0] + 750 * UNIT,
        before[1] + 1250 * UNIT,
        before[2] - 2000 * UNIT,
    ]
    assert _holdings(ledger, channel) == holdings
    assert (ledger.balance, balance_of(ETH, rtoken.address)) == (ledger_eth, hook_eth)
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
    token_before, ledger_eth, hook_eth = rtoken.balanceOf(ledger), ledger.balance, balance_of(ETH, rtoken.address)

    tx = ledger.deposit_token(params.as_tuple(), 0, 500 * UNIT, sender=alice)

    assert ledger.holdings(params.channel_id) == (500 * UNIT, 0, False)
    assert rtoken.balanceOf(ledger) == token_before + 500 * UNIT
    events = [(bytes(e.channel), e.deposits) for e in tx.decode_logs(ledger.Deposited)]
    if into == "open_eth_channel":
        assert (rtoken.attempts(), rtoken.last_success()) == (1, True)
        assert events == [
            (eth_channel.channel_id, packed(E, E + 3)),
            (params.channel_id, packed(500 * UNIT, 0)),
        ]
        assert _holdings(ledger, eth_channel.channel_id) == (E, E + 3, False)
        assert (ledger.balance, balance_of(ETH, rtoken.address)) == (ledger_eth + 3, hook_eth - 3)
    else:
        assert_refused_with(rtoken, 1, WRONG_ASSET)
        assert events == [(params.channel_id, packed(500 * UNIT, 0))]
        assert (ledger.balance, balance_of(ETH, rtoken.address)) == (ledger_eth, hook_eth)
    _assert_invariant(ledger, ETH, [eth_channel], [alice, bob])
    _assert_invariant(ledger, rtoken, [params], [alice, bob])
