"""ERC20 deposits: `deposit_token(params, side, amount)` pulls the token and credits what arrived."""

from __future__ import annotations

import ape
import pytest
from ape.exceptions import TransactionError

from perun_vyper import MAX_AMOUNT, MAX_CHALLENGE_DURATION, MIN_CHALLENGE_DURATION, ChannelParams, InvalidParams
from tests.support.checks import assert_deposited as _assert_deposited
from tests.support.checks import holdings as _holdings
from tests.support.constants import (
    LEDGER_AMOUNT_TOO_LARGE,
    LEDGER_CONCLUDED,
    LEDGER_DISPUTED,
    LEDGER_RANGE,
    RETURNS_FALSE_CODE,
    TRANSFER_FAILED,
    WRONG_ASSET,
    ZERO_ADDRESS,
)
from tests.support.reverts import assert_view_reverts

# Runtime code answering every call with 32 zero bytes: `transferFrom` returns false, `balanceOf` 0.
# Runtime code answering every call with the word 1: `transferFrom` returns true, `balanceOf` never moves.
RETURNS_ONE_CODE = bytes.fromhex("600160005260206000f3")
FAKE_TOKEN_A = "0x00000000000000000000000000000000000fa15e"
FAKE_TOKEN_B = "0x000000000000000000000000000000000000a0e1"


@pytest.mark.parametrize("side", [0, 1])
def test_deposit_token__test_token__pulls_and_credits_side(ledger, make_params, token, alice, bob, side: int) -> None:
    params = make_params(asset=token)
    sender = (alice, bob)[side]
    amount = 12345 * 10**15
    token.approve(ledger, amount, sender=sender)
    sender_before, ledger_before = token.balanceOf(sender), token.balanceOf(ledger)

    tx = ledger.deposit_token(params.as_tuple(), side, amount, sender=sender)

    expected = (amount, 0) if side == 0 else (0, amount)
    _assert_deposited(ledger, tx, params.channel_id, *expected)
    assert _holdings(ledger, params.channel_id) == (*expected, False)
    assert token.balanceOf(sender) == sender_before - amount
    assert token.balanceOf(ledger) == ledger_before + amount
    assert token.allowance(sender, ledger) == 0


def test_deposit_token__top_up_by_stranger__accumulates(ledger, make_params, token, alice, stranger, deployer) -> None:
    params = make_params(asset=token)
    token.mint(stranger, 50, sender=deployer)
    token.approve(ledger, 30, sender=alice)
    token.approve(ledger, 50, sender=stranger)
    first = ledger.deposit_token(params.as_tuple(), 0, 30, sender=alice)
    _assert_deposited(ledger, first, params.channel_id, 30, 0)

    tx = ledger.deposit_token(params.as_tuple(), 0, 50, sender=stranger)

    # The event carries the side's total after the deposit, not the amount of this one.
    _assert_deposited(ledger, tx, params.channel_id, 80, 0)
    assert _holdings(ledger, params.channel_id) == (80, 0, False)
    assert token.balanceOf(stranger) == 0
    assert token.balanceOf(ledger) == 80


def test_deposit_token__no_return_token__credits_amount(ledger, make_params, project, deployer, alice) -> None:
    no_return = deployer.deploy(project.NoReturnToken)
    no_return.mint(alice, 1000, sender=deployer)
    no_return.approve(ledger, 700, sender=alice)
    params = make_params(asset=no_return)

    tx = ledger.deposit_token(params.as_tuple(), 1, 700, sender=alice)

    _assert_deposited(ledger, tx, params.channel_id, 0, 700)
    assert _holdings(ledger, params.channel_id) == (0, 700, False)
    assert no_return.balanceOf(alice) == 300
    assert no_return.balanceOf(ledger) == 700


def test_deposit_token__fee_token__credits_received_amount(ledger, make_params, project, deployer, alice) -> None:
    fee_token = deployer.deploy(project.FeeToken)
    fee_token.mint(alice, 10**6, sender=deployer)
    fee_token.approve(ledger, 10**5, sender=alice)
    params = make_params(asset=fee_token)

    tx = ledger.deposit_token(params.as_tuple(), 0, 10**5, sender=alice)

    # 1% burnt in transit: the side is credited with the 99% that arrived, never more than held.
    _assert_deposited(ledger, tx, params.channel_id, 99_000, 0)
    assert _holdings(ledger, params.channel_id) == (99_000, 0, False)
    assert fee_token.balanceOf(alice) == 10**6 - 10**5
    assert fee_token.balanceOf(ledger) == 99_000


def test_deposit_token__eth_params__reverts_wrong_asset(ledger, make_params, alice) -> None:
    params = make_params()
    with ape.reverts(WRONG_ASSET):
        ledger.deposit_token(params.as_tuple(), 0, 10, sender=alice)
    assert _holdings(ledger, params.channel_id) == (0, 0, False)


def test_deposit_token__eoa_asset__reverts_asset_is_not_a_contract(ledger, make_params, alice, stranger) -> None:
    params = make_params(asset=stranger.address)
    with ape.reverts("ledger: asset is not a contract"):
        ledger.deposit_token(params.as_tuple(), 0, 10, sender=alice)
    assert _holdings(ledger, params.channel_id) == (0, 0, False)


def test_deposit_token__zero_amount__reverts(ledger, make_params, token, alice) -> None:
    params = make_params(asset=token)
    token.approve(ledger, 10, sender=alice)
    with ape.reverts("ledger: zero amount"):
        ledger.deposit_token(params.as_tuple(), 0, 0, sender=alice)
    assert _holdings(ledger, params.channel_id) == (0, 0, False)
    assert token.allowance(alice, ledger) == 10


def test_deposit_token__amount_above_max__reverts_amount_too_large(ledger, make_params, token, alice) -> None:
    params = make_params(asset=token)
    token.approve(ledger, MAX_AMOUNT + 1, sender=alice)
    before = token.balanceOf(alice)
    with ape.reverts(LEDGER_AMOUNT_TOO_LARGE):
        ledger.deposit_token(params.as_tuple(), 0, MAX_AMOUNT + 1, sender=alice)
    assert _holdings(ledger, params.channel_id) == (0, 0, False)
    assert token.balanceOf(alice) == before


@pytest.mark.parametrize("side", [0, 1])
def test_deposit_token__total_above_max__reverts_amount_too_large(
    ledger, make_params, token, alice, deployer, side: int
) -> None:
    params = make_params(asset=token)
    token.mint(alice, MAX_AMOUNT, sender=deployer)
    token.approve(ledger, MAX_AMOUNT + 1, sender=alice)
    ledger.deposit_token(params.as_tuple(), side, MAX_AMOUNT, sender=alice)
    alice_before, ledger_before = token.balanceOf(alice), token.balanceOf(ledger)

    with ape.reverts(LEDGER_AMOUNT_TOO_LARGE):
        ledger.deposit_token(params.as_tuple(), side, 1, sender=alice)

    expected = (MAX_AMOUNT, 0, False) if side == 0 else (0, MAX_AMOUNT, False)
    assert _holdings(ledger, params.channel_id) == expected
    # The pulled token went back with the revert.
    assert (token.balanceOf(alice), token.balanceOf(ledger)) == (alice_before, ledger_before)
    assert token.allowance(alice, ledger) == 1


def test_deposit_token__no_allowance__token_reverts_without_reason(ledger, make_params, token, alice) -> None:
    # TestToken's transferFrom underflows the allowance (a bare revert, no reason string) rather than
    # returning false; the ledger's extcall bubbles that revert up, so "ledger: token transfer failed"
    # is never reached. Only the token reverts here, hence the bare `ape.reverts()`.
    params = make_params(asset=token)
    before = token.balanceOf(alice)
    with ape.reverts() as info:
        ledger.deposit_token(params.as_tuple(), 0, 10, sender=alice)
    assert info.value.revert_message == TransactionError.DEFAULT_MESSAGE
    assert _holdings(ledger, params.channel_id) == (0, 0, False)
    assert token.balanceOf(alice) == before


def test_deposit_token__token_refuses_with_reason__reason_bubbles_up(
    ledger, make_params, token, alice, deployer
) -> None:
    # A token that reverts with a reason surfaces its own reason, not the ledger's.
    params = make_params(asset=token)
    token.approve(ledger, 10, sender=alice)
    token.set_blocked(ledger, True, sender=deployer)
    with ape.reverts("token: recipient blocked"):
        ledger.deposit_token(params.as_tuple(), 0, 10, sender=alice)
    assert _holdings(ledger, params.channel_id) == (0, 0, False)
    assert token.allowance(alice, ledger) == 10


def test_deposit_token__token_returns_false__reverts_token_transfer_failed(ledger, make_params, alice, chain) -> None:
    chain.provider.set_code(FAKE_TOKEN_A, RETURNS_FALSE_CODE)
    params = make_params(asset=FAKE_TOKEN_A)
    with ape.reverts(TRANSFER_FAILED):
        ledger.deposit_token(params.as_tuple(), 0, 10, sender=alice)
    assert _holdings(ledger, params.channel_id) == (0, 0, False)


def test_deposit_token__balance_unchanged__reverts_nothing_received(ledger, make_params, alice, chain) -> None:
    chain.provider.set_code(FAKE_TOKEN_B, RETURNS_ONE_CODE)
    params = make_params(asset=FAKE_TOKEN_B)
    with ape.reverts("ledger: nothing received"):
        ledger.deposit_token(params.as_tuple(), 0, 10, sender=alice)
    assert _holdings(ledger, params.channel_id) == (0, 0, False)


def test_deposit_token__after_cooperative_close__reverts_channel_concluded(
    ledger, open_channel, signed_final, token, alice, bob
) -> None:
    params, state0 = open_channel(100, 200, asset=token)
    ledger.close(params.as_tuple(), *signed_final(state0.pay(50, 1).finalized()), sender=alice)
    assert _holdings(ledger, params.channel_id) == (0, 0, True)
    token.approve(ledger, 10, sender=bob)
    before = token.balanceOf(ledger)

    with ape.reverts(LEDGER_CONCLUDED):
        ledger.deposit_token(params.as_tuple(), 1, 10, sender=bob)

    assert _holdings(ledger, params.channel_id) == (0, 0, True)
    assert token.balanceOf(ledger) == before
    assert token.allowance(bob, ledger) == 10


def test_deposit_token__after_conclude__reverts_channel_concluded(
    ledger, open_channel, signed, token, alice, chain, watcher
) -> None:
    params, state0 = open_channel(100, 200, asset=token)
    tx = ledger.register(params.as_tuple(), *signed(state0.pay(50, 1)), sender=watcher)
    chain.pending_timestamp = tx.timestamp + params.challenge_duration
    ledger.conclude(params.as_tuple(), sender=watcher)
    token.approve(ledger, 10, sender=alice)
    alice_before, ledger_before = token.balanceOf(alice), token.balanceOf(ledger)

    with ape.reverts(LEDGER_CONCLUDED):
        ledger.deposit_token(params.as_tuple(), 0, 10, sender=alice)

    assert _holdings(ledger, params.channel_id) == (0, 0, True)
    assert (token.balanceOf(alice), token.balanceOf(ledger)) == (alice_before, ledger_before)
    assert token.allowance(alice, ledger) == 10


@pytest.mark.parametrize("side", [0, 1])
def test_deposit_token__during_dispute__reverts_channel_disputed(
    ledger, open_channel, signed, token, alice, bob, stranger, deployer, watcher, side: int
) -> None:
    # The registered outcome was settled against the deposits: they are frozen until the channel concludes.
    params, state0 = open_channel(100, 200, asset=token)
    ledger.register(params.as_tuple(), *signed(state0.pay(50, 1)), sender=watcher)
    dispute = tuple(ledger.dispute(params.channel_id))
    token.mint(stranger, 10, sender=deployer)
    for sender in ((alice, bob)[side], stranger):
        token.approve(ledger, 10, sender=sender)
        sender_before, ledger_before = token.balanceOf(sender), token.balanceOf(ledger)

        with ape.reverts(LEDGER_DISPUTED):
            ledger.deposit_token(params.as_tuple(), side, 10, sender=sender)

        # Checked after the pull: the whole transaction reverted, the pulled tokens with it.
        assert (token.balanceOf(sender), token.balanceOf(ledger)) == (sender_before, ledger_before)
        assert token.allowance(sender, ledger) == 10
    assert _holdings(ledger, params.channel_id) == (100, 200, False)
    assert tuple(ledger.dispute(params.channel_id)) == dispute


def test_deposit_token__dispute_deadline_passed_not_concluded__reverts_channel_disputed(
    ledger, open_channel, signed, token, bob, chain, watcher
) -> None:
    params, state0 = open_channel(100, 0, asset=token)
    tx = ledger.register(params.as_tuple(), *signed(state0), sender=watcher)
    chain.pending_timestamp = tx.timestamp + params.challenge_duration + 1
    token.approve(ledger, 10, sender=bob)
    bob_before, ledger_before = token.balanceOf(bob), token.balanceOf(ledger)

    with ape.reverts(LEDGER_DISPUTED):
        ledger.deposit_token(params.as_tuple(), 1, 10, sender=bob)

    assert _holdings(ledger, params.channel_id) == (100, 0, False)
    assert (token.balanceOf(bob), token.balanceOf(ledger)) == (bob_before, ledger_before)


def test_deposit_token__channel_checks_after_pull__token_refusal_comes_first(
    ledger, make_params, open_channel, signed, token, alice, deployer, watcher
) -> None:
    # The channel's own checks (concluded, disputed, total at most MAX_AMOUNT) run once, after the pull:
    # without an allowance the token's own revert (a bare underflow in TestToken) is what surfaces.
    full = make_params(asset=token)
    token.mint(alice, MAX_AMOUNT, sender=deployer)
    token.approve(ledger, MAX_AMOUNT, sender=alice)
    ledger.deposit_token(full.as_tuple(), 0, MAX_AMOUNT, sender=alice)
    disputed, state0 = open_channel(100, 200, asset=token)
    ledger.register(disputed.as_tuple(), *signed(state0), sender=watcher)
    assert token.allowance(alice, ledger) == 0
    alice_before, ledger_before = token.balanceOf(alice), token.balanceOf(ledger)

    for params in (full, disputed):
        with ape.reverts() as info:
            ledger.deposit_token(params.as_tuple(), 0, 1, sender=alice)
        assert info.value.revert_message == TransactionError.DEFAULT_MESSAGE

    assert _holdings(ledger, full.channel_id) == (MAX_AMOUNT, 0, False)
    assert _holdings(ledger, disputed.channel_id) == (100, 200, False)
    assert (token.balanceOf(alice), token.balanceOf(ledger)) == (alice_before, ledger_before)


def test_deposit_token__side_two__reverts_invalid_side(ledger, make_params, token, alice) -> None:
    params = make_params(asset=token)
    token.approve(ledger, 10, sender=alice)
    alice_before, ledger_before = token.balanceOf(alice), token.balanceOf(ledger)
    with ape.reverts("ledger: invalid side"):
        ledger.deposit_token(params.as_tuple(), 2, 10, sender=alice)
    assert _holdings(ledger, params.channel_id) == (0, 0, False)
    assert (token.balanceOf(alice), token.balanceOf(ledger)) == (alice_before, ledger_before)


@pytest.mark.parametrize("side", [2, 3, 2**256 - 1])
def test_deposit_token__invalid_side_without_allowance__refused_before_the_token_is_called(
    ledger, make_params, token, alice, side
) -> None:
    # The side is checked before the pull: no allowance, yet the reason is the side, not the transfer.
    params = make_params(asset=token)
    assert token.allowance(alice, ledger) == 0
    alice_before, ledger_before = token.balanceOf(alice), token.balanceOf(ledger)
    with ape.reverts("ledger: invalid side"):
        ledger.deposit_token(params.as_tuple(), side, 10, sender=alice)
    assert _holdings(ledger, params.channel_id) == (0, 0, False)
    assert (token.balanceOf(alice), token.balanceOf(ledger)) == (alice_before, ledger_before)


def _bad_params(alice, bob, token) -> list[tuple[tuple, str]]:
    a, b, asset = str(alice.address), str(bob.address), str(token.address)
    return [
        ((ZERO_ADDRESS, b, asset, 3600, 1), "ledger: zero participant"),
        ((a, ZERO_ADDRESS, asset, 3600, 1), "ledger: zero participant"),
        ((a, a, asset, 3600, 1), "ledger: same participant"),
        ((a, b, asset, MIN_CHALLENGE_DURATION - 1, 1), LEDGER_RANGE),
        ((a, b, asset, MAX_CHALLENGE_DURATION + 1, 1), LEDGER_RANGE),
        ((a, b, asset, 0, 1), LEDGER_RANGE),
    ]


@pytest.mark.parametrize("case", range(6))
def test_deposit_token__invalid_params__reverts_with_reason(
    ledger, ledger_hashing, token, alice, bob, case: int
) -> None:
    raw, reason = _bad_params(alice, bob, token)[case]
    token.approve(ledger, 10, sender=alice)
    before = token.balanceOf(alice)

    with pytest.raises(InvalidParams):
        ChannelParams(*raw)
    with ape.reverts(reason):
        ledger.deposit_token(raw, 0, 10, sender=alice)
    assert_view_reverts(ledger_hashing.channel_id, raw, reason=reason)

    assert token.balanceOf(alice) == before
    assert token.allowance(alice, ledger) == 10


@pytest.mark.parametrize("duration", [MIN_CHALLENGE_DURATION, MAX_CHALLENGE_DURATION])
def test_deposit_token__challenge_duration_at_bound__accepted(ledger, make_params, token, alice, duration: int) -> None:
    params = make_params(asset=token, challenge_duration=duration)
    token.approve(ledger, 10, sender=alice)
    tx = ledger.deposit_token(params.as_tuple(), 0, 10, sender=alice)
    _assert_deposited(ledger, tx, params.channel_id, 10, 0)
    assert _holdings(ledger, params.channel_id) == (10, 0, False)
