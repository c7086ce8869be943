"""The client on Anvil: funding, paying and closing through the adjudicators, disputes, and a virtual
channel over Ingrid; every balance checked exactly (gas included) before and after."""

from __future__ import annotations

import ape
import pytest

from perun_vyper import (
    ChainUnavailable,
    Hub,
    InvalidParams,
    LedgerChannel,
    RefusedUpdate,
    VirtualParams,
    close_virtual_channel,
    compact,
    exchange,
    open_virtual_channel,
    pay,
)
from perun_vyper.chain import ChainView
from tests.support.constants import LEDGER_CONCLUDED, LEDGER_DISPUTED, E

FUND_ALICE, FUND_BOB = 3 * 10**17, 10**17


def _pair(store_at, make_params, domain, ledger, first, second, deposit_a=E, deposit_b=E):
    params = make_params(first, second)
    a = LedgerChannel.open(params, domain, first.private_key, store_at("a"), deposit_a, deposit_b, adjudicator=ledger)
    b = LedgerChannel.open(params, domain, second.private_key, store_at("b"), deposit_a, deposit_b, adjudicator=ledger)
    exchange(a, b)
    return a, b


def test_onchain__open_fund_pay_close__exact_balances(store_at, make_params, domain, ledger, alice, bob, watcher):
    a, b = _pair(store_at, make_params, domain, ledger, alice, bob, E, 5 * 10**17)
    with pytest.raises(RefusedUpdate, match="deposit first"):  # read from the chain: nothing deposited yet
        a.propose_payment(1)
    before_a, before_b, before_ledger = alice.balance, bob.balance, ledger.balance
    fee_a = a.deposit(E, sender=alice).total_fees_paid
    fee_b = b.deposit(5 * 10**17, sender=bob).total_fees_paid
    assert a.holdings() == (E, 5 * 10**17, False)
    pay(a, b, 3 * 10**17)
    pay(b, a, 10**17)
    for _ in range(20):
        pay(a, b, 1)
    exchange(b, a, b.propose_final())
    assert a.latest == b.latest and a.state.is_final and a.state.version == 23
    a.close(sender=watcher)
    assert alice.balance == before_a - fee_a - E + (E - 2 * 10**17 - 20)
    assert bob.balance == before_b - fee_b - 5 * 10**17 + (5 * 10**17 + 2 * 10**17 + 20)
    assert ledger.balance == before_ledger
    assert a.holdings() == (0, 0, True)


def test_onchain__register_stale_answered_then_conclude__pays_latest(
    store_at, make_params, domain, ledger, alice, bob, watcher, stranger, chain
):
    a, b = _pair(store_at, make_params, domain, ledger, alice, bob)
    fee_a = a.deposit(E, sender=alice).total_fees_paid
    fee_b = b.deposit(E, sender=bob).total_fees_paid
    before_a, before_b = alice.balance + fee_a + E, bob.balance + fee_b + E  # balances before the deposits
    for _ in range(3):
        pay(a, b, 10**17)
    stale = a.store.state(a.channel_id, 1)  # Bob's best state for Alice's purse; Bob registers it
    ledger.register(
        a.params.as_tuple(), stale.state.as_tuple(), compact(stale.sig_a), compact(stale.sig_b), sender=stranger
    )
    assert a.dispute()[0] == 1
    a.register(sender=watcher)  # Alice (or her watchtower) answers with the latest: version 3
    version, deadline, locks_hash = a.dispute()
    assert version == 3 and locks_hash == bytes(32)  # no locks: conclude needs nothing from the store
    with pytest.raises(RefusedUpdate, match="not final"):
        a.close(sender=watcher)
    chain.pending_timestamp = deadline
    b.conclude(sender=watcher)
    assert alice.balance == before_a - fee_a - 3 * 10**17
    assert bob.balance == before_b - fee_b + 3 * 10**17
    assert a.holdings() == (0, 0, True)


def _last_fee(chain, sender) -> int:
    """The fee of the transaction mined last (a reverted one: Anvil mines it), which ``sender`` sent."""
    web3 = chain.provider.web3
    (tx_hash,) = web3.eth.get_block("latest")["transactions"]
    receipt = web3.eth.get_transaction_receipt(tx_hash)
    assert receipt["from"] == sender.address and receipt["status"] == 0
    return receipt["gasUsed"] * receipt["effectiveGasPrice"]


def test_onchain__deposit_during_dispute__refused_payout_by_registered_outcome(
    store_at, make_params, domain, ledger, alice, bob, watcher, chain
):
    a, b = _pair(store_at, make_params, domain, ledger, alice, bob)
    fee_a = a.deposit(E, sender=alice).total_fees_paid
    fee_b = b.deposit(E, sender=bob).total_fees_paid
    before_a, before_b = alice.balance + fee_a + E, bob.balance + fee_b + E  # balances before the deposits
    pay(a, b, 4 * 10**17)
    a.register(sender=watcher)
    version, deadline, locks_hash = b.dispute()
    assert (version, locks_hash) == (1, bytes(32))

    # Bob tops up during the dispute (through his client): refused, the channel's deposits stay as they are.
    ledger_before = ledger.balance
    with ape.reverts(LEDGER_DISPUTED):
        b.deposit(10**17, sender=bob)
    fee_b += _last_fee(chain, bob)
    assert b.holdings() == (E, E, False) and ledger.balance == ledger_before
    assert bob.balance == before_b - fee_b - E

    # The outcome settled at registration is paid: Alice 0.6, Bob 1.4.
    chain.pending_timestamp = deadline
    b.conclude(sender=watcher)
    assert alice.balance == before_a - fee_a - 4 * 10**17
    assert bob.balance == before_b - fee_b + 4 * 10**17
    assert a.holdings() == (0, 0, True) and ledger.balance == ledger_before - 2 * E
    with ape.reverts(LEDGER_CONCLUDED):
        b.deposit(10**17, sender=bob)


def test_onchain__no_adjudicator__chain_calls_refused(store_at, make_params, domain, alice, bob):
    params = make_params(alice, bob)
    channel = LedgerChannel.open(params, domain, alice.private_key, store_at("x"), E, E)
    with pytest.raises(ChainUnavailable, match="no adjudicator attached"):
        channel.holdings()


class _Network:
    def __init__(self, store_at, make_params, domain, virtual_domain, ledger, alice, bob, ingrid, chain):
        self.hub = Hub(
            ingrid.private_key,
            store_at("ingrid"),
            virtual_domain=virtual_domain,
            max_validity=30 * 86400,
            clock=lambda: chain.pending_timestamp,
            adjudicator=ledger,
        )
        left, right = make_params(alice, ingrid), make_params(ingrid, bob)
        self.alice = LedgerChannel.open(left, domain, alice.private_key, store_at("alice"), E, E, adjudicator=ledger)
        self.left = self.hub.open_channel(left, domain, E, E)
        self.right = self.hub.open_channel(right, domain, E, E)
        self.bob = LedgerChannel.open(right, domain, bob.private_key, store_at("bob"), E, E, adjudicator=ledger)
        exchange(self.alice, self.left)
        exchange(self.right, self.bob)
        self.fees = {alice.address: 0, bob.address: 0, ingrid.address: 0}
        self.start = {account.address: account.balance for account in (alice, bob, ingrid)}
        for channel, account in ((self.alice, alice), (self.left, ingrid), (self.right, ingrid), (self.bob, bob)):
            self.fees[account.address] += channel.deposit(E, sender=account).total_fees_paid

    def change(self, account) -> int:
        """What ``account`` gained or lost, gas aside."""
        return account.balance + self.fees[account.address] - self.start[account.address]


@pytest.fixture
def network(store_at, make_params, domain, virtual_domain, ledger, alice, bob, ingrid, chain):
    return _Network(store_at, make_params, domain, virtual_domain, ledger, alice, bob, ingrid, chain)


def _virtual(network, chain, alice, bob, ingrid) -> VirtualParams:
    return VirtualParams(
        alice.address,
        bob.address,
        ingrid.address,
        network.alice.channel_id,
        network.bob.channel_id,
        FUND_ALICE,
        FUND_BOB,
        chain.pending_timestamp + 86400,
        3600,
        chain.pending_timestamp,
        ledger_adjudicator=network.alice.adjudicator.address,
        chain_id=chain.chain_id,
    )


def test_onchain__virtual_channel_closed_off_chain__ingrid_ends_where_she_started(
    network, chain, virtual_domain, virtual, alice, bob, ingrid, watcher
):
    params = _virtual(network, chain, alice, bob, ingrid)
    va, vb = open_virtual_channel(network.hub, network.alice, network.bob, params, virtual_domain, adjudicator=virtual)
    for _ in range(50):
        pay(va, vb, 10**15)
    pay(vb, va, 5 * 10**15)
    final = close_virtual_channel(network.hub, va, vb)
    paid = 50 * 10**15 - 5 * 10**15
    assert (final.balance_alice, final.balance_bob) == (FUND_ALICE - paid, FUND_BOB + paid)
    exchange(network.alice, network.left, network.alice.propose_final())
    exchange(network.right, network.bob, network.right.propose_final())
    network.alice.close(sender=watcher)
    network.bob.close(sender=watcher)
    assert network.change(ingrid) == 0
    assert network.change(alice) == -paid
    assert network.change(bob) == paid


def test_onchain__virtual_dispute_then_ledger_conclude__locks_split_ingrid_neutral(
    network, chain, virtual_domain, virtual, alice, bob, ingrid, watcher
):
    params = _virtual(network, chain, alice, bob, ingrid)
    va, vb = open_virtual_channel(network.hub, network.alice, network.bob, params, virtual_domain, adjudicator=virtual)
    for _ in range(10):
        pay(va, vb, 10**16)
    network.fees[alice.address] += va.register(sender=alice).total_fees_paid  # before validity: only Alice or Bob
    network.alice.register(sender=watcher)  # Alice-Ingrid, holding the lock
    network.hub.channel(params.ledger_bob).register(sender=watcher)  # Ingrid-Bob, by Ingrid's store
    # Funded states with a lock: the dispute reports their locks' hash, which conclude must match.
    for channel in (network.alice, network.bob):
        assert channel.dispute()[2] == channel.state.locks_hash() != bytes(32)
    chain.pending_timestamp += 2 * 3600
    network.left.conclude(sender=watcher)  # the lock is split by the settled virtual record
    network.bob.conclude(sender=watcher)
    assert network.change(ingrid) == 0
    assert network.change(alice) == -10 * 10**16
    assert network.change(bob) == 10 * 10**16


def test_chain_view__max_head_age__head_read_again_only_after_age_or_refresh(
    store_at, make_params, domain, ledger, alice, bob
):
    a, _ = _pair(store_at, make_params, domain, ledger, alice, bob)
    now = [100.0]
    view = ChainView(ledger, max_head_age=2.0, clock=lambda: now[0])
    reads = []
    head_number = view._reader.head_number
    view._reader.head_number = lambda: reads.append(1) or head_number()

    def deposits() -> tuple[int, int]:
        with view.pinned():
            return view.ledger(a.channel_id).deposits

    before = deposits()
    a.deposit(E, alice)  # mined in a new block the view has not read
    stale = deposits()
    now[0] += 1.9
    still_stale = deposits()
    now[0] += 0.1
    fresh = deposits()
    b_deposit = _pair_deposit(a, bob)
    cached = deposits()
    view.refresh()
    refreshed = deposits()

    assert (before, stale, still_stale, fresh) == ((0, 0), (0, 0), (0, 0), (E, 0))
    assert (cached, refreshed) == ((E, 0), (E, b_deposit))
    assert len(reads) == 3  # the first read, the one after 2 s, the one after refresh()


def _pair_deposit(channel, sender) -> int:
    channel.deposit(E // 2, sender, side=1)
    return E // 2


def test_chain_view__max_head_age_not_below_reaction_time__refused(ledger):
    with pytest.raises(InvalidParams) as refused:
        ChainView(ledger, max_head_age=60, reaction_time=60)
    assert str(refused.value) == "max_head_age 60s must be at least 0 and below the reaction time 60s"
