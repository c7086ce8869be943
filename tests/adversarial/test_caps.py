"""Gas at the caps (issue "adversarial", protocol attacks): a ledger state with MAX_LOCKS = 16 locks, and
inputs of maximum size (MAX_AMOUNT amounts, maximum nonces and versions; signatures are compact, EIP-2098
(r, vs) pairs of two words whatever their content), must
register and conclude well inside a block. Bound: 10% of a 30,000,000 gas block. The figures are
printed (run with ``-s``) and asserted.

The worst conclusion is measured too: every lock split by a registered virtual outcome, and both
payouts pushed to receivers that burn the whole 10,000 gas they are given and are then credited.
"""

from __future__ import annotations

from dataclasses import dataclass

import ape
import pytest
from ape.exceptions import TransactionError
from eth_utils import keccak

from perun_vyper import (
    MAX_AMOUNT,
    MAX_CHALLENGE_DURATION,
    MAX_LOCKS,
    MIN_CHALLENGE_DURATION,
    ChannelParams,
    InvalidState,
    LedgerState,
    Lock,
    VirtualParams,
    VirtualState,
    lock_for,
)
from perun_vyper.core.constants import MAX_VERSION
from tests.support.constants import BLOCK_GAS_LIMIT

GAS_BOUND = BLOCK_GAS_LIMIT // 10
MAX_NONCE = 2**256 - 1
ETH = "0x0000000000000000000000000000000000000000"


def _check_gas(label: str, receipt) -> int:
    gas = receipt.gas_used
    print(f"\n[gas] {label}: {gas:,} ({100 * gas / BLOCK_GAS_LIMIT:.2f}% of a 30M block)")
    assert 21_000 < gas < GAS_BOUND, f"{label} uses {gas} gas"
    return gas


@dataclass
class Capped:
    params: ChannelParams
    state: LedgerState
    virtuals: list[VirtualParams]
    payout_a: int
    payout_b: int


@pytest.fixture
def capped(ledger, virtual, deposit, signed_virtual, alice, bob, ingrid, chain):
    """``capped(max_inputs)``: the Alice-Ingrid ledger channel funded, and a state holding 16 locks of
    16 virtual channels that are all settled.

    Ordinary inputs: 1 ETH a side, 0.01 ETH locked a side per lock, the virtual channels settled by
    the expiry fallback on their initial split (validity 0), small nonces. Maximum inputs: MAX_AMOUNT
    deposited and accounted for on each side, every lock 2**116 - 1 a side (16 of them leave 15 wei
    of balance a side), nonces 2**256 - 1 - i, version 2**64 - 1, the longest challenge duration,
    and every virtual channel registered with a final state (version 2**64 - 1) paying Alice all.
    """

    def _make(max_inputs: bool) -> Capped:
        duration = MAX_CHALLENGE_DURATION if max_inputs else MIN_CHALLENGE_DURATION
        params = ChannelParams(alice.address, ingrid.address, ETH, duration, MAX_NONCE if max_inputs else 1)
        funding = MAX_AMOUNT if max_inputs else 10**18
        amount = MAX_AMOUNT // MAX_LOCKS if max_inputs else 10**16
        if max_inputs:
            for who in (alice, ingrid):
                chain.provider.set_balance(who.address, 2 * MAX_AMOUNT)
        deposit(params, 0, funding, alice)
        deposit(params, 1, funding, ingrid)
        virtuals = [
            VirtualParams(
                alice.address,
                bob.address,
                ingrid.address,
                params.channel_id,
                keccak(b"the Ingrid-Bob channel"),
                amount,
                amount,
                MAX_VERSION if max_inputs else 0,
                duration,
                MAX_NONCE - i if max_inputs else i,
                ledger_adjudicator=str(ledger.address),
                chain_id=chain.chain_id,
            )
            for i in range(MAX_LOCKS)
        ]
        locks = tuple(lock_for(params, vp) for vp in virtuals)
        rest = funding - MAX_LOCKS * amount
        version = MAX_VERSION if max_inputs else 1
        state = LedgerState(params.channel_id, version, rest, rest, funding, funding, locks)
        if max_inputs:
            for vp in virtuals:
                final = VirtualState(vp.channel_id, MAX_VERSION, 2 * amount, 0, True)
                virtual.register(vp.as_tuple(), *signed_virtual(final), sender=alice)
                assert tuple(virtual.settlement(vp.as_tuple())) == (vp.channel_id, True, 2 * amount, 0)
            payout_a, payout_b = rest + MAX_LOCKS * 2 * amount, rest
        else:
            for vp in virtuals:
                assert tuple(virtual.settlement(vp.as_tuple())) == (vp.channel_id, True, amount, amount)
            payout_a, payout_b = funding, funding
        assert payout_a + payout_b == 2 * funding
        return Capped(params, state, virtuals, payout_a, payout_b)

    return _make


@pytest.mark.parametrize("receivers", ["eoa", "gas_burning"])
@pytest.mark.parametrize("max_inputs", [False, True], ids=["ordinary_inputs", "max_inputs"])
def test_caps__register_and_conclude_with_16_locks__under_10_percent_of_block(
    ledger, capped, signed, project, alice, ingrid, stranger, chain, max_inputs, receivers
):
    setup = capped(max_inputs)
    assert len(setup.state.locks) == MAX_LOCKS == ledger.MAX_LOCKS()
    state_args, sig_a, sig_b = signed(setup.state, alice, ingrid)
    assert [len(word) for word in (*sig_a, *sig_b)] == [32] * 4
    label = f"{'max' if max_inputs else 'ordinary'} inputs, 16 locks"
    receipt = ledger.register(setup.params.as_tuple(), state_args, sig_a, sig_b, sender=stranger)
    _check_gas(f"register ({label})", receipt)
    # A funded state with locks: the dispute keeps the hash of its 16 locks, which conclude must match.
    deadline = receipt.timestamp + setup.params.challenge_duration
    assert tuple(ledger.dispute(setup.params.channel_id)) == (setup.state.version, deadline, setup.state.locks_hash())
    if receivers == "gas_burning":
        # Both participants' addresses now run code that burns the 10,000 gas of the payout push.
        code = project.GreedyReceiver.contract_type.runtime_bytecode.bytecode
        for who in (alice, ingrid):
            chain.provider.make_request("anvil_setCode", [who.address, code])
    before = (alice.balance, ingrid.balance)
    chain.pending_timestamp = receipt.timestamp + setup.params.challenge_duration
    receipt = ledger.conclude(
        setup.params.as_tuple(), setup.state.locks_tuple(), [vp.as_tuple() for vp in setup.virtuals], sender=stranger
    )
    _check_gas(f"conclude ({label}, payouts to {receivers})", receipt)
    events = list(receipt.decode_logs(ledger.Concluded))
    assert [(e.payout_a, e.payout_b) for e in events] == [(setup.payout_a, setup.payout_b)]
    if receivers == "eoa":
        assert (alice.balance - before[0], ingrid.balance - before[1]) == (setup.payout_a, setup.payout_b)
    else:
        assert (alice.balance, ingrid.balance) == before
        assert ledger.credits(ETH, alice.address) == setup.payout_a
        assert ledger.credits(ETH, ingrid.address) == setup.payout_b
        assert len(list(receipt.decode_logs(ledger.Credited))) == 2
    assert tuple(ledger.holdings(setup.params.channel_id)) == (0, 0, True)
    assert tuple(ledger.dispute(setup.params.channel_id)) == (0, 0, b"\x00" * 32)


def test_caps__virtual_register_and_ledger_close_with_max_inputs__under_10_percent_of_block(
    ledger, virtual, deposit, signed_final, signed_virtual, alice, bob, ingrid, stranger, chain
):
    for who in (alice, bob):
        chain.provider.set_balance(who.address, 2 * MAX_AMOUNT)
    vp = VirtualParams(alice.address, bob.address, ingrid.address, keccak(b"left"), keccak(b"right"),
                       MAX_AMOUNT, MAX_AMOUNT, MAX_VERSION, MAX_CHALLENGE_DURATION, MAX_NONCE,
                       ledger_adjudicator=str(ledger.address), chain_id=chain.chain_id)  # fmt: skip
    open_state = VirtualState(vp.channel_id, MAX_VERSION - 1, MAX_AMOUNT, MAX_AMOUNT)
    receipt = virtual.register(vp.as_tuple(), *signed_virtual(open_state), sender=alice)
    _check_gas("virtual register (max inputs, opens the dispute)", receipt)
    deadline = receipt.timestamp + MAX_CHALLENGE_DURATION
    assert tuple(virtual.record(vp.channel_id)) == (MAX_VERSION - 1, deadline, MAX_AMOUNT, False)
    final = VirtualState(vp.channel_id, MAX_VERSION, MAX_AMOUNT, MAX_AMOUNT, True)
    receipt = virtual.register(vp.as_tuple(), *signed_virtual(final), sender=bob)
    _check_gas("virtual register (max inputs, final state replaces)", receipt)
    assert tuple(virtual.record(vp.channel_id)) == (MAX_VERSION, deadline, MAX_AMOUNT, True)
    assert tuple(virtual.settlement(vp.as_tuple())) == (vp.channel_id, True, MAX_AMOUNT, MAX_AMOUNT)

    params = ChannelParams(alice.address, bob.address, ETH, MAX_CHALLENGE_DURATION, MAX_NONCE)
    deposit(params, 0, MAX_AMOUNT, alice)
    deposit(params, 1, MAX_AMOUNT, bob)
    state = LedgerState(params.channel_id, MAX_VERSION, MAX_AMOUNT, MAX_AMOUNT, MAX_AMOUNT, MAX_AMOUNT, (), True)
    before = (alice.balance, bob.balance)
    final_args, sig_a, sig_b = signed_final(state)
    assert final_args == (MAX_VERSION, MAX_AMOUNT, MAX_AMOUNT, MAX_AMOUNT, MAX_AMOUNT)
    receipt = ledger.close(params.as_tuple(), final_args, sig_a, sig_b, sender=stranger)
    _check_gas("ledger close (max inputs)", receipt)
    assert [(e.version, e.payout_a, e.payout_b) for e in receipt.decode_logs(ledger.Concluded)] == [
        (MAX_VERSION, MAX_AMOUNT, MAX_AMOUNT)
    ]
    assert (alice.balance - before[0], bob.balance - before[1]) == (MAX_AMOUNT, MAX_AMOUNT)
    assert tuple(ledger.holdings(params.channel_id)) == (0, 0, True)


def test_caps__more_than_max_locks__refused(ledger, open_channel, alice, bob, stranger):
    # A 17th lock cannot even be decoded (DynArray bound): the call reverts without a reason, whatever
    # the signatures, and nothing is registered. perun_vyper.LedgerState refuses to build such a state.
    params, _ = open_channel()
    locks = [(keccak(i.to_bytes(32, "big")), 0, 0) for i in range(MAX_LOCKS + 1)]
    state = (params.channel_id, 1, 10**18, 10**18, 10**18, 10**18, locks, False)
    any_signature = (b"\x01" * 32, b"\x01" * 32)
    with ape.reverts() as info:
        ledger.register(params.as_tuple(), state, any_signature, any_signature, sender=stranger)
    assert info.value.revert_message == TransactionError.DEFAULT_MESSAGE
    assert tuple(ledger.dispute(params.channel_id)) == (0, 0, b"\x00" * 32)
    with pytest.raises(InvalidState, match="at most 16"):
        LedgerState(params.channel_id, 1, 10**18, 10**18, 10**18, 10**18, tuple(Lock(*lock) for lock in locks))
