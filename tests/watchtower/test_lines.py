"""The watchtower's log lines, exact: full channel ids and transaction hashes, the deadline in UTC relative
to the round's block time, payouts in the channel's asset (ETH; a token that does not name itself in
``units``), the summary's plurals. The records keep their machine fields (ints) for the log readers."""

from __future__ import annotations

from eth_abi import decode

from perun_vyper.core.display import utc
from perun_vyper.watchtower import summary
from perun_vyper.watchtower.actions import Concluded, Observed, PollFailed, Refuted
from tests.support.constants import HOUR, E, M


def _hash(receipt) -> str:
    return str(receipt.txn_hash).lower()


def test_lines__eth_channel__deadline_in_utc_and_payouts_in_eth(
    ledger, chain, open_channel, signed, remember_ledger, tower, alice, bob
):
    params, s0 = open_channel(E, E)
    s1 = s0.pay(200 * M, 0)
    s2 = s1.pay(600 * M, 1)  # Alice: 1.4
    remember_ledger(params, alice, [s0, s1, s2])
    stale = ledger.register(params.as_tuple(), *signed(s1), sender=bob)
    deadline = stale.timestamp + HOUR
    channel = "0x" + params.channel_id.hex()

    observed, refuted = actions = tower.poll()  # the round reads the registering block: an hour before
    assert isinstance(observed, Observed) and isinstance(refuted, Refuted)
    assert (observed.deadline, observed.now) == (deadline, stale.timestamp)
    assert str(observed) == (
        f"observed   ledger {channel} registered v1 deadline={utc(deadline)} (in 1 h) "
        f"block={stale.block_number} tx={_hash(stale)}"
    )
    assert str(refuted) == f"refuted    ledger {channel} v1 -> v2 tx={refuted.tx}"
    assert len(refuted.tx) == 66

    chain.mine(timestamp=deadline)
    (concluded,) = tower.poll()
    assert concluded == Concluded(params.channel_id, 2, (1400 * M, 600 * M), concluded.tx)
    assert str(concluded) == (
        f"concluded  ledger {channel} v2 payout_a=1.4 ETH (1400000000000000000 wei) "
        f"payout_b=0.6 ETH (600000000000000000 wei) tx={concluded.tx}"
    )
    assert summary([*actions, concluded]) == "3 actions: 1 Observed, 1 Refuted, 1 Concluded"
    assert summary([concluded]) == "1 action: 1 Concluded"
    assert summary([]) == "0 actions"
    # Built without the round's time (a log reader's own record), the deadline is the UTC time alone.
    assert f"deadline={utc(deadline)} block=" in str(Observed("ledger", params.channel_id, 1, deadline, 1, "0x1"))
    assert str(PollFailed("node down")) == "error      poll: node down"


def test_lines__token_without_symbol__payouts_in_units_and_base_units(
    ledger, chain, open_channel, signed, remember_ledger, tower, token, alice, bob
):
    params, s0 = open_channel(E, E, asset=token)
    s1 = s0.pay(300 * M, 0)
    s2 = s1.pay(100 * M, 1)  # Alice: 0.8
    remember_ledger(params, alice, [s0, s1, s2])
    stale = ledger.register(params.as_tuple(), *signed(s1), sender=bob)
    tower.poll()
    chain.mine(timestamp=stale.timestamp + HOUR)
    (concluded,) = tower.poll()
    assert (concluded.payouts, concluded.symbol, concluded.decimals) == ((800 * M, 1200 * M), "units", 18)
    assert str(concluded).endswith(
        " v2 payout_a=0.8 units (800000000000000000 base units) "
        f"payout_b=1.2 units (1200000000000000000 base units) tx={concluded.tx}"
    )
    # The watchtower's read of a token's answers is a plain eth_call at the round's block.
    (supply,) = decode(["uint256"], tower._call(str(token.address), bytes.fromhex("18160ddd")))  # totalSupply()
    assert supply == token.totalSupply()
