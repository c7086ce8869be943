"""`withdraw(asset, receiver)`: a credited payout is paid to any receiver the owner names."""

from __future__ import annotations

import ape

from perun_vyper import ETH, ChannelParams
from tests.support.checks import assert_accounts_balance as _assert_invariant
from tests.support.checks import assert_withdrawn as _assert_withdrawn
from tests.support.checks import runtime_code as _code
from tests.support.constants import NOTHING_TO_WITHDRAW, RETURNS_FALSE_CODE, TRANSFER_FAILED, ZERO_ADDRESS, E

# Runtime code answering every call with 32 zero bytes: `transfer` returns false.
HOSTILE_RECEIVER = "0x000000000000000000000000000000000000dEaD"


def _credit_alice_eth(ledger, open_channel, signed_final, project, chain, alice, watcher) -> tuple[ChannelParams, int]:
    """Concludes an ETH channel while alice refuses ETH, then gives her back a plain account."""
    params, state0 = open_channel(E, E)
    chain.provider.set_code(alice.address, _code(project.RevertingReceiver))
    final = state0.pay(E // 4, 1).finalized()
    ledger.close(params.as_tuple(), *signed_final(final), sender=watcher)
    credit = 5 * E // 4
    assert ledger.credits(ETH, alice) == credit
    # Anvil does not enforce EIP-3607, but reset the code so alice sends from a plain EOA anyway.
    chain.provider.set_code(alice.address, b"")
    return params, credit


def _credit_alice_token(
    ledger, open_channel, signed_final, token, deployer, alice, watcher
) -> tuple[ChannelParams, int]:
    """Concludes a token channel while alice is blocklisted by the token, then unblocks her."""
    params, state0 = open_channel(1000, 1000, asset=token)
    token.set_blocked(alice, True, sender=deployer)
    ledger.close(params.as_tuple(), *signed_final(state0.pay(300, 0).finalized()), sender=watcher)
    assert ledger.credits(token, alice) == 700
    return params, 700


def test_withdraw__eth_credit_to_other_receiver__pays_receiver_and_zeroes_credit(
    ledger, open_channel, signed_final, project, chain, alice, bob, ingrid, watcher
) -> None:
    params, credit = _credit_alice_eth(ledger, open_channel, signed_final, project, chain, alice, watcher)
    _assert_invariant(ledger, ETH, [params], [alice, bob])
    alice_before, ingrid_before, ledger_before = alice.balance, ingrid.balance, ledger.balance

    tx = ledger.withdraw(ETH, ingrid, sender=alice)

    _assert_withdrawn(ledger, tx, alice, ETH, ingrid.address, credit)
    assert ledger.credits(ETH, alice) == 0
    assert ingrid.balance == ingrid_before + credit
    assert alice.balance == alice_before - tx.total_fees_paid
    assert ledger.balance == ledger_before - credit
    _assert_invariant(ledger, ETH, [params], [alice, bob])


def test_withdraw__eth_credit_while_owner_has_code__pays_receiver(
    ledger, open_channel, signed_final, project, chain, alice, ingrid, watcher
) -> None:
    # The credited address still refuses ETH; it collects by naming another receiver.
    params, state0 = open_channel(E, E)
    chain.provider.set_code(alice.address, _code(project.RevertingReceiver))
    ledger.close(params.as_tuple(), *signed_final(state0.finalized()), sender=watcher)
    ingrid_before = ingrid.balance

    tx = ledger.withdraw(ETH, ingrid, sender=alice)

    _assert_withdrawn(ledger, tx, alice, ETH, ingrid.address, E)
    assert ledger.credits(ETH, alice) == 0
    assert ingrid.balance == ingrid_before + E


def test_withdraw__eth_credit_to_self__pays_owner(
    ledger, open_channel, signed_final, project, chain, alice, bob, watcher
) -> None:
    params, credit = _credit_alice_eth(ledger, open_channel, signed_final, project, chain, alice, watcher)
    alice_before = alice.balance

    tx = ledger.withdraw(ETH, alice, sender=alice)

    _assert_withdrawn(ledger, tx, alice, ETH, alice.address, credit)
    assert alice.balance == alice_before + credit - tx.total_fees_paid
    assert ledger.credits(ETH, alice) == 0
    _assert_invariant(ledger, ETH, [params], [alice, bob])


def test_withdraw__token_credit__pays_receiver_and_zeroes_credit(
    ledger, open_channel, signed_final, token, deployer, alice, bob, ingrid, watcher
) -> None:
    params, credit = _credit_alice_token(ledger, open_channel, signed_final, token, deployer, alice, watcher)
    _assert_invariant(ledger, token, [params], [alice, bob])
    alice_before, ingrid_before, ledger_before = (
        token.balanceOf(alice),
        token.balanceOf(ingrid),
        token.balanceOf(ledger),
    )

    tx = ledger.withdraw(token, ingrid, sender=alice)

    _assert_withdrawn(ledger, tx, alice, token, ingrid.address, credit)
    assert ledger.credits(token, alice) == 0
    assert token.balanceOf(ingrid) == ingrid_before + credit
    assert token.balanceOf(alice) == alice_before
    assert token.balanceOf(ledger) == ledger_before - credit
    _assert_invariant(ledger, token, [params], [alice, bob])


def test_withdraw__credit_in_token_returning_nothing__paid(
    ledger, open_channel, signed_final, project, deployer, alice, bob, ingrid, watcher
) -> None:
    # USDT-style: `transfer` returns no data, which is success (only a returned `false` is a failure).
    quiet = deployer.deploy(project.NoReturnToken)
    quiet.mint(alice, 10**6, sender=deployer)
    quiet.mint(bob, 10**6, sender=deployer)
    params, state0 = open_channel(1000, 1000, asset=quiet)
    quiet.set_blocked(alice, True, sender=deployer)
    ledger.close(params.as_tuple(), *signed_final(state0.pay(300, 0).finalized()), sender=watcher)
    assert ledger.credits(quiet, alice) == 700
    quiet.set_blocked(alice, False, sender=deployer)
    ingrid_before, ledger_before = quiet.balanceOf(ingrid), quiet.balanceOf(ledger)

    tx = ledger.withdraw(quiet, ingrid, sender=alice)

    _assert_withdrawn(ledger, tx, alice, quiet, ingrid.address, 700)
    assert ledger.credits(quiet, alice) == 0
    assert quiet.balanceOf(ingrid) == ingrid_before + 700
    assert quiet.balanceOf(ledger) == ledger_before - 700


def test_withdraw__twice__reverts_nothing_to_withdraw(
    ledger, open_channel, signed_final, project, chain, alice, bob, ingrid, watcher
) -> None:
    params, credit = _credit_alice_eth(ledger, open_channel, signed_final, project, chain, alice, watcher)
    first = ledger.withdraw(ETH, ingrid, sender=alice)
    _assert_withdrawn(ledger, first, alice, ETH, ingrid.address, credit)
    assert ledger.credits(ETH, alice) == 0
    ingrid_before, ledger_before = ingrid.balance, ledger.balance

    with ape.reverts(NOTHING_TO_WITHDRAW):
        ledger.withdraw(ETH, ingrid, sender=alice)

    assert (ingrid.balance, ledger.balance) == (ingrid_before, ledger_before)
    _assert_invariant(ledger, ETH, [params], [alice, bob])


def test_withdraw__never_credited__reverts_nothing_to_withdraw(ledger, token, stranger) -> None:
    for asset in (ETH, token.address):
        with ape.reverts(NOTHING_TO_WITHDRAW):
            ledger.withdraw(asset, stranger, sender=stranger)


def test_withdraw__other_owners_credit__reverts_nothing_to_withdraw(
    ledger, open_channel, signed_final, project, chain, alice, stranger, watcher
) -> None:
    _, credit = _credit_alice_eth(ledger, open_channel, signed_final, project, chain, alice, watcher)
    with ape.reverts(NOTHING_TO_WITHDRAW):
        ledger.withdraw(ETH, stranger, sender=stranger)
    assert ledger.credits(ETH, alice) == credit


def test_withdraw__credit_in_other_asset__reverts_nothing_to_withdraw(
    ledger, open_channel, signed_final, project, chain, token, alice, watcher
) -> None:
    _, credit = _credit_alice_eth(ledger, open_channel, signed_final, project, chain, alice, watcher)
    with ape.reverts(NOTHING_TO_WITHDRAW):
        ledger.withdraw(token, alice, sender=alice)
    assert ledger.credits(ETH, alice) == credit


def test_withdraw__zero_receiver__reverts(
    ledger, open_channel, signed_final, project, chain, alice, bob, watcher
) -> None:
    params, credit = _credit_alice_eth(ledger, open_channel, signed_final, project, chain, alice, watcher)
    ledger_before = ledger.balance
    with ape.reverts("ledger: zero receiver"):
        ledger.withdraw(ETH, ZERO_ADDRESS, sender=alice)
    assert ledger.credits(ETH, alice) == credit
    assert ledger.balance == ledger_before
    _assert_invariant(ledger, ETH, [params], [alice, bob])


def test_withdraw__reverting_eth_receiver__reverts_eth_transfer_failed(
    ledger, open_channel, signed_final, project, chain, alice, bob, watcher
) -> None:
    params, credit = _credit_alice_eth(ledger, open_channel, signed_final, project, chain, alice, watcher)
    chain.provider.set_code(HOSTILE_RECEIVER, _code(project.RevertingReceiver))
    receiver_before, ledger_before = chain.provider.get_balance(HOSTILE_RECEIVER), ledger.balance

    with ape.reverts("ledger: ETH transfer failed"):
        ledger.withdraw(ETH, HOSTILE_RECEIVER, sender=alice)

    assert ledger.credits(ETH, alice) == credit
    assert chain.provider.get_balance(HOSTILE_RECEIVER) == receiver_before
    assert ledger.balance == ledger_before
    _assert_invariant(ledger, ETH, [params], [alice, bob])


def test_withdraw__blocked_token_receiver__token_reason_bubbles_up(
    ledger, open_channel, signed_final, token, deployer, alice, bob, ingrid, watcher
) -> None:
    # TestToken reverts (with its own reason) on a blocked recipient instead of returning false, and
    # `withdraw` uses a plain extcall, so the token's reason surfaces, not "ledger: token transfer failed".
    params, credit = _credit_alice_token(ledger, open_channel, signed_final, token, deployer, alice, watcher)
    token.set_blocked(ingrid, True, sender=deployer)
    ingrid_before, ledger_before = token.balanceOf(ingrid), token.balanceOf(ledger)

    with ape.reverts("token: recipient blocked"):
        ledger.withdraw(token, ingrid, sender=alice)

    assert ledger.credits(token, alice) == credit
    assert (token.balanceOf(ingrid), token.balanceOf(ledger)) == (ingrid_before, ledger_before)
    _assert_invariant(ledger, token, [params], [alice, bob])


def test_withdraw__token_returns_false__reverts_token_transfer_failed(
    ledger, open_channel, signed_final, project, chain, deployer, alice, bob, ingrid, watcher
) -> None:
    # A fresh token whose code is swapped, after the credit, for code whose `transfer` returns false.
    fresh = deployer.deploy(project.TestToken)
    for holder in (alice, bob):
        fresh.mint(holder, 10**6, sender=deployer)
    _, credit = _credit_alice_token(ledger, open_channel, signed_final, fresh, deployer, alice, watcher)
    chain.provider.set_code(fresh.address, RETURNS_FALSE_CODE)

    with ape.reverts(TRANSFER_FAILED):
        ledger.withdraw(fresh.address, ingrid, sender=alice)

    assert ledger.credits(fresh.address, alice) == credit
