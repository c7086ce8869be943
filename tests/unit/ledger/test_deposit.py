"""ETH deposits: `deposit(channel, side)` credits the sent value to one side of an ETH channel."""

from __future__ import annotations

import ape
import pytest

from perun_vyper import MAX_AMOUNT
from tests.support.checks import assert_deposited as _assert_deposited
from tests.support.checks import holdings as _holdings
from tests.support.constants import LEDGER_AMOUNT_TOO_LARGE, LEDGER_CONCLUDED, LEDGER_DISPUTED, WRONG_ASSET, E


def _fee_of_reverted(chain, info) -> int:
    """The fee the sender paid for the mined, reverted transaction caught by ``ape.reverts``."""
    return chain.get_receipt(info.value.txn.txn_hash.hex()).total_fees_paid


@pytest.mark.parametrize("side", [0, 1])
def test_deposit__eth_for_side__credits_side_and_moves_eth(ledger, make_params, alice, bob, side: int) -> None:
    params = make_params()
    sender = (alice, bob)[side]
    amount = 3 * E + 17
    sender_before = sender.balance
    ledger_before = ledger.balance

    tx = ledger.deposit(params.channel_id, side, value=amount, sender=sender)

    expected = (amount, 0) if side == 0 else (0, amount)
    _assert_deposited(ledger, tx, params.channel_id, *expected)
    assert _holdings(ledger, params.channel_id) == (*expected, False)
    assert ledger.balance == ledger_before + amount
    assert sender.balance == sender_before - amount - tx.total_fees_paid


def test_deposit__top_ups__accumulate_per_side(ledger, make_params, alice, bob) -> None:
    params = make_params()
    ledger_before = ledger.balance
    # The event carries both sides' totals after each deposit, packed into one word.
    for side, sender, amount, totals in (
        (0, alice, 5, (5, 0)),
        (1, bob, 7, (5, 7)),
        (0, alice, 11, (16, 7)),
        (1, bob, 13, (16, 20)),
    ):
        tx = ledger.deposit(params.channel_id, side, value=amount, sender=sender)
        _assert_deposited(ledger, tx, params.channel_id, *totals)
        assert _holdings(ledger, params.channel_id) == (*totals, False)
    assert ledger.balance == ledger_before + 36


def test_deposit__event_word__packs_side_a_low_side_b_high(ledger, make_params, alice, bob) -> None:
    params = make_params()
    ledger.deposit(params.channel_id, 1, value=3, sender=bob)
    tx = ledger.deposit(params.channel_id, 0, value=2, sender=alice)
    [event] = tx.decode_logs(ledger.Deposited)
    assert event.deposits == 2 + (3 << 120)
    assert event.deposits & MAX_AMOUNT == 2
    assert event.deposits >> 120 == 3


def test_deposit__by_stranger__credits_named_side(ledger, make_params, alice, bob, stranger) -> None:
    params = make_params()
    stranger_before, alice_before, bob_before = stranger.balance, alice.balance, bob.balance

    tx = ledger.deposit(params.channel_id, 1, value=E, sender=stranger)

    _assert_deposited(ledger, tx, params.channel_id, 0, E)
    assert _holdings(ledger, params.channel_id) == (0, E, False)
    assert stranger.balance == stranger_before - E - tx.total_fees_paid
    assert (alice.balance, bob.balance) == (alice_before, bob_before)


def test_deposit__during_dispute__reverts_channel_disputed(
    ledger, open_channel, signed, alice, bob, stranger, chain, watcher
) -> None:
    # The registered outcome was settled against the deposits: they are frozen until the channel concludes.
    params, state0 = open_channel(E, E)
    state1 = state0.pay(10, 0)
    ledger.register(params.as_tuple(), *signed(state1), sender=watcher)
    dispute = tuple(ledger.dispute(params.channel_id))
    assert (dispute[0], dispute[1] != 0) == (1, True)
    ledger_before = ledger.balance

    for side, sender in ((0, alice), (1, bob), (0, stranger), (1, stranger)):
        sender_before = sender.balance
        with ape.reverts(LEDGER_DISPUTED) as info:
            ledger.deposit(params.channel_id, side, value=E, sender=sender)
        # The value went back: the sender paid only the gas.
        assert sender.balance == sender_before - _fee_of_reverted(chain, info)

    assert _holdings(ledger, params.channel_id) == (E, E, False)
    assert ledger.balance == ledger_before
    assert tuple(ledger.dispute(params.channel_id)) == dispute


def test_deposit__dispute_deadline_passed_not_concluded__reverts_channel_disputed(
    ledger, open_channel, signed, alice, chain, watcher
) -> None:
    params, state0 = open_channel(E, 0)
    tx = ledger.register(params.as_tuple(), *signed(state0), sender=watcher)
    chain.pending_timestamp = tx.timestamp + params.challenge_duration + 1
    ledger_before = ledger.balance

    with ape.reverts(LEDGER_DISPUTED):
        ledger.deposit(params.channel_id, 1, value=E, sender=alice)

    assert _holdings(ledger, params.channel_id) == (E, 0, False)
    assert ledger.balance == ledger_before


def test_deposit__token_channel_id__reverts_wrong_asset(ledger, make_params, token, alice) -> None:
    params = make_params(asset=token)
    assert params.channel_id[0] & 0x80
    ledger_before = ledger.balance
    with ape.reverts(WRONG_ASSET):
        ledger.deposit(params.channel_id, 0, value=E, sender=alice)
    assert _holdings(ledger, params.channel_id) == (0, 0, False)
    assert ledger.balance == ledger_before


def test_deposit__zero_amount__reverts(ledger, make_params, alice) -> None:
    params = make_params()
    ledger.deposit(params.channel_id, 0, value=9, sender=alice)
    with ape.reverts("ledger: zero amount"):
        ledger.deposit(params.channel_id, 0, value=0, sender=alice)
    assert _holdings(ledger, params.channel_id) == (9, 0, False)


def test_deposit__side_two__reverts_invalid_side(ledger, make_params, alice) -> None:
    params = make_params()
    ledger_before = ledger.balance
    with ape.reverts("ledger: invalid side"):
        ledger.deposit(params.channel_id, 2, value=E, sender=alice)
    assert _holdings(ledger, params.channel_id) == (0, 0, False)
    assert ledger.balance == ledger_before


def test_deposit__max_amount__accepted(ledger, make_params, alice, bob, chain) -> None:
    params = make_params()
    chain.provider.set_balance(alice.address, MAX_AMOUNT + 10**20)
    chain.provider.set_balance(bob.address, MAX_AMOUNT + 10**20)
    ledger.deposit(params.channel_id, 0, value=MAX_AMOUNT - 1, sender=alice)
    ledger.deposit(params.channel_id, 0, value=1, sender=alice)
    tx = ledger.deposit(params.channel_id, 1, value=MAX_AMOUNT, sender=bob)
    # Both sides at the maximum: the packed word keeps them apart, in storage and in the event.
    _assert_deposited(ledger, tx, params.channel_id, MAX_AMOUNT, MAX_AMOUNT)
    assert _holdings(ledger, params.channel_id) == (MAX_AMOUNT, MAX_AMOUNT, False)


@pytest.mark.parametrize("side", [0, 1])
def test_deposit__total_above_max__reverts_amount_too_large(ledger, make_params, alice, chain, side: int) -> None:
    params = make_params()
    chain.provider.set_balance(alice.address, 2 * MAX_AMOUNT + 10**20)
    ledger.deposit(params.channel_id, side, value=MAX_AMOUNT - 5, sender=alice)
    ledger_before = ledger.balance
    with ape.reverts(LEDGER_AMOUNT_TOO_LARGE):
        ledger.deposit(params.channel_id, side, value=6, sender=alice)
    # A single deposit above the bound is refused too.
    other = make_params()
    with ape.reverts(LEDGER_AMOUNT_TOO_LARGE):
        ledger.deposit(other.channel_id, side, value=MAX_AMOUNT + 1, sender=alice)
    expected = (MAX_AMOUNT - 5, 0, False) if side == 0 else (0, MAX_AMOUNT - 5, False)
    assert _holdings(ledger, params.channel_id) == expected
    assert _holdings(ledger, other.channel_id) == (0, 0, False)
    assert ledger.balance == ledger_before


def test_deposit__after_cooperative_close__reverts_channel_concluded(
    ledger, open_channel, signed_final, alice, bob
) -> None:
    params, state0 = open_channel(E, 2 * E)
    final = state0.pay(E // 2, 1).finalized()
    ledger.close(params.as_tuple(), *signed_final(final), sender=bob)
    assert _holdings(ledger, params.channel_id) == (0, 0, True)
    ledger_before = ledger.balance

    for side, sender in ((0, alice), (1, bob)):
        with ape.reverts(LEDGER_CONCLUDED):
            ledger.deposit(params.channel_id, side, value=E, sender=sender)

    assert _holdings(ledger, params.channel_id) == (0, 0, True)
    assert ledger.balance == ledger_before


def test_deposit__after_conclude__reverts_channel_concluded(
    ledger, open_channel, signed, alice, chain, watcher
) -> None:
    # Concluded after a dispute: "concluded" wins over the (cleared) dispute.
    params, state0 = open_channel(E, E)
    tx = ledger.register(params.as_tuple(), *signed(state0.pay(1, 0)), sender=watcher)
    chain.pending_timestamp = tx.timestamp + params.challenge_duration
    ledger.conclude(params.as_tuple(), sender=watcher)
    ledger_before = ledger.balance

    with ape.reverts(LEDGER_CONCLUDED):
        ledger.deposit(params.channel_id, 0, value=E, sender=alice)

    assert _holdings(ledger, params.channel_id) == (0, 0, True)
    assert ledger.balance == ledger_before
