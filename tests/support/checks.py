"""Assertions about the ledger adjudicator's accounts and events, shared by the payout test modules."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from perun_vyper import ETH, ChannelParams


def runtime_code(container: Any) -> bytes:
    """A compiled contract's runtime code, to put on a participant's address with ``set_code``."""
    code = container.contract_type.get_runtime_bytecode()
    assert code, "contract has no runtime bytecode"
    return bytes(code)


def holdings(ledger: Any, channel: bytes) -> tuple[int, int, bool]:
    deposit_a, deposit_b, concluded = ledger.holdings(channel)
    return int(deposit_a), int(deposit_b), bool(concluded)


def asset_balance(ledger: Any, asset: Any) -> int:
    """The ledger's balance of ``asset`` (ETH, or a token contract)."""
    return ledger.balance if asset == ETH else asset.balanceOf(ledger)


def assert_accounts_balance(ledger: Any, asset: Any, channels: Iterable[ChannelParams], owners: Iterable) -> None:
    """The ledger holds exactly the deposits of its unconcluded channels plus all credits."""
    asset_address = ETH if asset == ETH else asset.address
    held = 0
    for params in channels:
        deposit_a, deposit_b, concluded = holdings(ledger, params.channel_id)
        if concluded:
            assert (deposit_a, deposit_b) == (0, 0)
        else:
            held += deposit_a + deposit_b
    credited = sum(ledger.credits(asset_address, owner) for owner in owners)
    assert asset_balance(ledger, asset) == held + credited


def concluded_logs(ledger: Any, tx: Any) -> list[Any]:
    """The ledger's Concluded events of a transaction, decoded."""
    return list(tx.decode_logs(ledger.Concluded))


def concluded_payouts(ledger: Any, tx: Any) -> list[tuple[bytes, int, int, int]]:
    """(channel, version, payout_a, payout_b) of each Concluded event of a transaction."""
    return [(bytes(e.channel), e.version, e.payout_a, e.payout_b) for e in tx.decode_logs(ledger.Concluded)]


def assert_concluded(ledger: Any, tx: Any, params: ChannelParams, version: int, payout_a: int, payout_b: int) -> None:
    events = tx.decode_logs(ledger.Concluded)
    assert len(events) == 1
    event = events[0]
    assert bytes(event.channel) == params.channel_id
    assert (event.version, event.payout_a, event.payout_b) == (version, payout_a, payout_b)


def assert_credited(ledger: Any, tx: Any, params: ChannelParams, expected: list[tuple[str, int]]) -> None:
    events = tx.decode_logs(ledger.Credited)
    assert [(e.contract_address, bytes(e.channel), e.owner, e.asset, e.amount) for e in events] == [
        (ledger.address, params.channel_id, owner, params.asset, amount) for owner, amount in expected
    ]


def assert_deposited(ledger: Any, tx: Any, channel: bytes, deposit_a: int, deposit_b: int) -> None:
    """One Deposited event carrying the channel's deposits after it, packed: A in bits 0-119, B above."""
    events = tx.decode_logs(ledger.Deposited)
    assert [(e.contract_address, bytes(e.channel), e.deposits) for e in events] == [
        (ledger.address, channel, deposit_a | deposit_b << 120)
    ]


def assert_settled(ledger: Any, params: ChannelParams) -> None:
    """Concluded: deposits gone, concluded bit set, dispute cleared."""
    assert tuple(ledger.holdings(params.channel_id)) == (0, 0, True)
    assert tuple(ledger.dispute(params.channel_id)) == (0, 0, b"\x00" * 32)


def assert_withdrawn(ledger: Any, tx: Any, owner: Any, asset: Any, receiver: str, amount: int) -> None:
    """One Withdrawn event; ``asset`` is ETH or a token contract."""
    asset_address = ETH if asset == ETH else str(asset.address)
    events = tx.decode_logs(ledger.Withdrawn)
    assert [(e.contract_address, e.owner, e.asset, e.receiver, e.amount) for e in events] == [
        (ledger.address, owner.address, asset_address, receiver, amount)
    ]
