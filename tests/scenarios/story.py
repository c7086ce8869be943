"""What the virtual-channel scenarios share: the fundings, a balance book, co-signed states, event decoders.

Every test is one scenario, told step by step. Amounts are deliberately asymmetric (Alice funds the
virtual channel with 0.4 ETH, Bob with 0.2 ETH) so that a lock split the wrong way round cannot pass.

Balances: a ``Book`` records every party's ETH balance once the ledger channels are funded, and the
fees of every transaction a party sends itself (reverted ones included: Anvil mines them). At the end
each party's gain *net of its own fees* is asserted exactly. Whatever a party need not send itself
(conclusions, refutations for Bob, ...) is sent by ``watcher``, whose net gain is therefore zero.

Roles in the two ledger channels: ``left`` is (Alice, Ingrid), ``right`` is (Ingrid, Bob) unless
opened with ``bob_first=True``, then (Bob, Ingrid). Ingrid locks Bob's virtual funding in ``left``
and Alice's in ``right``; the adjudicator pays her Bob's virtual balance in ``left`` and Alice's in
``right``, so her total over both ledger channels never changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import ape

from perun_vyper import (
    VirtualState,
    compact,
)
from tests.support.constants import (
    M,
)

FUND_ALICE = 400 * M  # Alice's virtual funding (locked by Alice in `left`, by Ingrid in `right`)
FUND_BOB = 200 * M  # Bob's virtual funding (locked by Ingrid in `left`, by Bob in `right`)


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


class Book:
    """Each party's ETH from now on, net of the fees it pays for its own transactions."""

    def __init__(self, chain, *parties):
        self._chain = chain
        self._start = {p.address: p.balance for p in parties}
        self._fees = dict.fromkeys(self._start, 0)

    def send(self, method, *args, sender):
        """Send a transaction from ``sender`` and charge its fee to ``sender``."""
        receipt = method(*args, sender=sender)
        assert not receipt.failed
        self._fees[sender.address] += receipt.total_fees_paid
        return receipt

    def reverts(self, reason: str, method, *args, sender, **kwargs) -> None:
        """Send a transaction that must revert with ``reason``; Anvil mines it, so charge its fee too."""
        with ape.reverts(reason):
            method(*args, sender=sender, **kwargs)
        web3 = self._chain.provider.web3
        (tx_hash,) = web3.eth.get_block("latest")["transactions"]
        assert web3.eth.get_transaction(tx_hash)["from"] == sender.address
        receipt = web3.eth.get_transaction_receipt(tx_hash)
        assert receipt["status"] == 0
        self._fees[sender.address] += receipt["gasUsed"] * receipt["effectiveGasPrice"]

    def fees(self, party) -> int:
        return self._fees[party.address]

    def gain(self, party) -> int:
        """What ``party`` received since the book was opened, not counting the fees it paid."""
        return party.balance - self._start[party.address] + self._fees[party.address]


@dataclass(frozen=True)
class Signed:
    """A virtual state with Alice's and Bob's signatures (each verified off-chain when made)."""

    state: VirtualState
    sig_alice: bytes
    sig_bob: bytes

    @property
    def args(self) -> tuple:
        """The arguments of VirtualAdjudicator.register: the state and both compact signatures."""
        return self.state.as_tuple(), compact(self.sig_alice), compact(self.sig_bob)


def registered_virtual(virtual, receipt) -> list[tuple]:
    return [
        (e.channel, e.version, e.deadline, e.balance_alice, e.balance_bob, e.is_final)
        for e in receipt.decode_logs(virtual.Registered)
    ]


def registered_ledger(ledger, receipt) -> list[tuple]:
    return [(e.channel, e.version, e.deadline) for e in receipt.decode_logs(ledger.Registered)]
