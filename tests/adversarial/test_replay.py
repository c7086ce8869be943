"""Replay of signed states across channels, deployments and chains (issue "adversarial", protocol attacks).

A signature binds a state to (a) its channel, through the channel id inside the state, and to (b) one
deployment on (c) one chain, through the EIP-712 domain (chain id and verifying contract). The unit
tests check the building blocks: ``tests/unit/ledger/test_signatures.py`` replays a ledger state into
one other channel (other nonce), onto a second LedgerAdjudicator and under a *computed* other chain id.
Here the attacker replays on real targets: channels that differ in each parameter, a second pair of
both adjudicators, a second Anvil node running chain id 4242 with the contracts at the very same
addresses, and Ape's own node after its chain id changes (a fork).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import ape
import pytest
import rlp
from eth_abi import encode
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from web3 import HTTPProvider, Web3

from perun_vyper import ChannelParams, Domain, LedgerState, Lock, VirtualState, compact, open_virtual, sign_state
from tests.support.constants import (
    LEDGER_OTHER_CHANNEL,
    LEDGER_WRONG_SIGNER,
    LOCKS_NOT_REGISTERED,
    MNEMONIC,
    PARAMS_NOT_LOCKS,
    ZERO_HASH,
    E,
)
from tests.support.reverts import revert_reason as _revert_reason

APE_CHAIN_ID = 31337
OTHER_CHAIN_ID = 4242
ANVIL = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "anvil"

# `ledger_hashing` is a session fixture used by the last test only: set up late, after the module
# fixture `remote` took its snapshot, Ape would have to rebase (InvalidIsolationWarning). Every test
# requests it, so it is deployed before any module-scoped state.
pytestmark = pytest.mark.usefixtures("ledger_hashing")


# --- helpers ----------------------------------------------------------------------------------------


def _ledger_domain(chain_id: int, address) -> Domain:
    return Domain.ledger(chain_id, str(address))


def _virtual_domain(chain_id: int, address) -> Domain:
    return Domain.virtual(chain_id, str(address))


def _sigs(state, domain: Domain, *accounts) -> tuple[tuple[bytes, bytes], ...]:
    """Compact (r, vs) signatures of ``state`` in ``domain``, one per account, as the adjudicators take them."""
    return tuple(compact(sign_state(account.private_key, state, domain)) for account in accounts)


def _create_address(sender: str, nonce: int) -> str:
    return to_checksum_address(keccak(rlp.encode([bytes.fromhex(sender[2:]), nonce]))[12:])


def _deployment_nonce(sender: str, address: str) -> int:
    """The nonce at which ``sender`` created ``address`` (Ape deployed our session contracts)."""
    for nonce in range(4096):
        if _create_address(sender, nonce) == address:
            return nonce
    raise AssertionError(f"{address} was not created by {sender}")


def _abi(contract_type) -> list[dict]:
    return [item.model_dump(mode="json", by_alias=True, exclude_none=True) for item in contract_type.abi]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RemoteChain:
    """A second Anvil node and raw-transaction access to it (web3.py + eth-account signing)."""

    def __init__(self, w3: Web3):
        self.w3 = w3
        self.ledger = None
        self.virtual = None

    def send(self, account, to: str | None, data: bytes, value: int = 0, gas: int = 3_000_000) -> dict:
        """Sign a legacy transaction with ``account``'s key for this chain, send it raw, wait for it."""
        tx = {
            "to": to,
            "data": data,
            "value": value,
            "gas": gas,
            "gasPrice": self.w3.eth.gas_price,
            "nonce": self.w3.eth.get_transaction_count(account.address),
            "chainId": OTHER_CHAIN_ID,
        }
        if to is None:
            del tx["to"]
        signed = Account.sign_transaction(tx, account.private_key)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)

    def reason(self, receipt) -> str:
        """The revert reason of a mined, failed transaction (from the node's trace)."""
        trace = self.w3.provider.make_request(
            "debug_traceTransaction",
            [receipt["transactionHash"].to_0x_hex(), {"disableStack": True, "disableMemory": True}],
        )["result"]
        assert trace["failed"] is True
        return _revert_reason(bytes.fromhex(trace["returnValue"][2:]))


@pytest.fixture(scope="module")
def remote(project, deployer, ledger, virtual):
    """Chain 4242 on its own Anvil (same mnemonic), both adjudicators deployed by the deployer's key at
    the same addresses as on Ape's chain 31337. Terminated when the module ends."""
    anvil = str(ANVIL) if ANVIL.exists() else shutil.which("anvil")
    port = _free_port()
    proc = subprocess.Popen(
        [anvil, "--chain-id", str(OTHER_CHAIN_ID), "--port", str(port), "--mnemonic", MNEMONIC, "--accounts", "10"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        w3 = Web3(HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": 30}))
        for _ in range(300):
            with contextlib.suppress(Exception):
                if w3.eth.chain_id == OTHER_CHAIN_ID:
                    break
            assert proc.poll() is None, "anvil exited"
            time.sleep(0.05)
        assert w3.eth.chain_id == OTHER_CHAIN_ID
        node = RemoteChain(w3)
        # Align the deployer's nonce so that both contracts land at their chain-31337 addresses: the
        # replayed signatures then differ from valid ones in the chain id alone.
        for name, address, args in (
            ("VirtualAdjudicator", virtual.address, b""),
            ("LedgerAdjudicator", ledger.address, encode(["address"], [virtual.address])),
        ):
            nonce = _deployment_nonce(deployer.address, address)
            w3.provider.make_request("anvil_setNonce", [deployer.address, hex(nonce)])
            contract_type = getattr(project, name).contract_type
            code = bytes.fromhex(contract_type.deployment_bytecode.bytecode[2:]) + args
            receipt = node.send(deployer, None, code, gas=10_000_000)
            assert receipt["status"] == 1
            assert receipt["contractAddress"] == address
            contract = w3.eth.contract(address=address, abi=_abi(contract_type))
            if name == "VirtualAdjudicator":
                node.virtual = contract
            else:
                node.ledger = contract
        yield node
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def restore_chain_id(chain):
    """Puts Ape's node back on chain id 31337 whatever the test did."""
    yield
    chain.provider.make_request("anvil_setChainId", [APE_CHAIN_ID])
    assert int(chain.provider.make_request("eth_chainId", []), 16) == APE_CHAIN_ID


def _raw(chain, sender, contract, data: bytes) -> dict:
    """Sign a transaction with ``sender``'s key for the node's *current* chain id (Ape's signer and
    Anvil's unlocked accounts stay on the chain id they started with), send it raw, and return its
    receipt and decoded revert reason."""
    chain_id = int(chain.provider.make_request("eth_chainId", []), 16)
    nonce = int(chain.provider.make_request("eth_getTransactionCount", [sender.address, "latest"]), 16)
    tx = {
        "to": contract.address,
        "data": bytes(data),
        "value": 0,
        "gas": 2_000_000,
        "nonce": nonce,
        "gasPrice": 10**9,
        "chainId": chain_id,
    }
    signed = Account.sign_transaction(tx, sender.private_key)
    tx_hash = chain.provider.make_request("eth_sendRawTransaction", [signed.raw_transaction.to_0x_hex()])
    # Anvil may answer eth_sendRawTransaction a moment before the automined block is stored (seen on a
    # loaded CI machine): poll briefly for the receipt.
    receipt = None
    for _ in range(100):
        receipt = chain.provider.make_request("eth_getTransactionReceipt", [tx_hash])
        if receipt is not None:
            break
        time.sleep(0.05)
    assert receipt is not None, f"no receipt for {tx_hash} after 5 s"
    reason = None
    if int(receipt["status"], 16) == 0:
        trace = chain.provider.make_request("debug_traceTransaction", [tx_hash, {"disableStack": True}])
        reason = _revert_reason(bytes.fromhex(trace["returnValue"][2:]))
    return {"status": int(receipt["status"], 16), "logs": receipt["logs"], "reason": reason}


# --- (a) another channel ------------------------------------------------------------------------------


def _variant(params: ChannelParams, how: str, token) -> ChannelParams:
    return {
        "other_nonce": replace(params, nonce=params.nonce + 1),
        "swapped_participants": replace(params, participant_a=params.participant_b, participant_b=params.participant_a),
        "other_duration": replace(params, challenge_duration=params.challenge_duration + 1),
        "other_asset": replace(params, asset=str(token.address)),
    }[how]


@pytest.mark.parametrize("how", ["other_nonce", "swapped_participants", "other_duration", "other_asset"])
def test_replay__ledger_state_into_channel_of_same_participants__refused(
    ledger, make_params, deposit, signed, signed_final, alice, bob, stranger, token, how
):
    # Alice and Bob share two channels. A state in which Bob paid Alice in channel 1 is replayed into
    # channel 2, whose parameters differ in one field only, to take Bob's funds there too.
    params1 = make_params()
    params2 = _variant(params1, how, token)
    assert params2.channel_id != params1.channel_id
    for params in (params1, params2):
        a, b = (alice, bob) if params.participant_a == alice.address else (bob, alice)
        deposit(params, 0, E, a)
        deposit(params, 1, E, b)
    state1 = LedgerState.initial(params1.channel_id, E, E).pay(9 * 10**17, 1)
    state_args, sig_a, sig_b = signed(state1)
    # As signed: the state names channel 1.
    with ape.reverts(LEDGER_OTHER_CHANNEL):
        ledger.register(params2.as_tuple(), state_args, sig_a, sig_b, sender=stranger)
    # Re-pointed at channel 2 (signatures unchanged, in either order): the signed digest differs.
    state2_args = replace(state1, channel=params2.channel_id).as_tuple()
    for sigs in ((sig_a, sig_b), (sig_b, sig_a)):
        with ape.reverts(LEDGER_WRONG_SIGNER):
            ledger.register(params2.as_tuple(), state2_args, *sigs, sender=stranger)
    # close takes no channel id at all: channel 1's final tuple is exactly what a final state of channel 2
    # with the same amounts would pass. Only the signatures, made over channel 1's state, tell them apart.
    final_args, final_a, final_b = signed_final(state1.finalized())
    assert final_args == replace(state1, channel=params2.channel_id).finalized().final_tuple()
    for sigs in ((final_a, final_b), (final_b, final_a)):
        with ape.reverts(LEDGER_WRONG_SIGNER):
            ledger.close(params2.as_tuple(), final_args, *sigs, sender=stranger)
    assert tuple(ledger.dispute(params2.channel_id)) == (0, 0, ZERO_HASH)
    assert tuple(ledger.holdings(params2.channel_id)) == (E, E, False)
    # The state is good where it was signed for.
    receipt = ledger.register(params1.as_tuple(), state_args, sig_a, sig_b, sender=stranger)
    assert [e.version for e in receipt.decode_logs(ledger.Registered)] == [1]
    assert tuple(ledger.dispute(params2.channel_id)) == (0, 0, ZERO_HASH)
    assert tuple(ledger.holdings(params2.channel_id)) == (E, E, False)


def test_replay__ledger_registered_state_cannot_conclude_other_channel(
    ledger,
    virtual,
    open_channel,
    make_params,
    make_virtual,
    signed,
    signed_virtual,
    alice,
    bob,
    ingrid,
    stranger,
    chain,
):
    # conclude takes no state: each channel's registered outcome is stored with it, and the locks given must
    # hash to the ones its registered state carried. Channel 1's registered locks are no key to channel 2's
    # payout, even when both are disputed with the same version.
    params1, s1 = open_channel(a=alice, b=ingrid)
    params2, s2 = open_channel(a=alice, b=ingrid)
    right = make_params(ingrid, bob)
    vp1 = make_virtual(SimpleNamespace(left=params1, right=right))
    vp2 = make_virtual(SimpleNamespace(left=params2, right=right))
    state1 = open_virtual(s1.pay(9 * 10**17, 1), params1, vp1)
    state2 = open_virtual(s2.pay(1, 0), params2, vp2)
    assert state1.version == state2.version == 2
    assert state1.locks_hash() != state2.locks_hash()
    r1 = ledger.register(params1.as_tuple(), *signed(state1, alice, ingrid), sender=stranger)
    r2 = ledger.register(params2.as_tuple(), *signed(state2, alice, ingrid), sender=stranger)
    dispute1 = (2, r1.timestamp + params1.challenge_duration, state1.locks_hash())
    assert tuple(ledger.dispute(params1.channel_id)) == dispute1
    assert tuple(ledger.dispute(params2.channel_id)) == (
        2,
        r2.timestamp + params2.challenge_duration,
        state2.locks_hash(),
    )
    # Alice paid Bob half of her virtual funding in virtual channel 2, which settles at once.
    vfinal = VirtualState.initial(vp2).pay(5 * 10**16, from_alice=True).finalized()
    virtual.register(vp2.as_tuple(), *signed_virtual(vfinal), sender=alice)
    chain.pending_timestamp = r2.timestamp + params2.challenge_duration
    locks1, locks2 = state1.locks_tuple(), state2.locks_tuple()
    for params, locks, virtuals in (
        (params2, locks1, [vp1.as_tuple()]),  # channel 1's locks into channel 2
        (params2, [], []),  # channel 2's locks left out
        (params1, locks2, [vp2.as_tuple()]),  # channel 2's locks into channel 1
    ):
        with ape.reverts(LOCKS_NOT_REGISTERED):
            ledger.conclude(params.as_tuple(), locks, virtuals, sender=stranger)
    # Channel 2's own locks, split by channel 1's virtual channel: refused too.
    with ape.reverts(PARAMS_NOT_LOCKS):
        ledger.conclude(params2.as_tuple(), locks2, [vp1.as_tuple()], sender=stranger)
    before = alice.balance, ingrid.balance, ledger.balance
    receipt = ledger.conclude(params2.as_tuple(), locks2, [vp2.as_tuple()], sender=stranger)
    # Channel 2's outcome: balances (0.9 - 1 wei, 0.9 + 1 wei) plus the lock split 0.05 / 0.15.
    payouts = (95 * 10**16 - 1, 105 * 10**16 + 1)
    events = [(bytes(e.channel), e.version, e.payout_a, e.payout_b) for e in receipt.decode_logs(ledger.Concluded)]
    assert events == [(params2.channel_id, 2, *payouts)]
    assert (alice.balance - before[0], ingrid.balance - before[1], before[2] - ledger.balance) == (
        *payouts,
        2 * E,
    )
    assert tuple(ledger.holdings(params2.channel_id)) == (0, 0, True)
    # Channel 1 is untouched: still disputed on its own registered locks.
    assert tuple(ledger.dispute(params1.channel_id)) == dispute1
    assert tuple(ledger.holdings(params1.channel_id)) == (E, E, False)


def test_replay__virtual_state_into_other_virtual_channel__refused(
    virtual, open_hub, make_virtual, signed_virtual, alice, bob
):
    # Two virtual channels between the same Alice, Bob and Ingrid over the same ledger channels, with the
    # same funding and validity; only the nonce differs.
    hub = open_hub()
    vp1 = make_virtual(hub)
    vp2 = replace(vp1, nonce=vp1.nonce + 1)
    assert vp2.channel_id != vp1.channel_id
    state1 = VirtualState.initial(vp1).pay(9 * 10**16, from_alice=False)  # Bob paid Alice
    state_args, sig_alice, sig_bob = signed_virtual(state1)
    with ape.reverts("virtual: state for another channel"):
        virtual.register(vp2.as_tuple(), state_args, sig_alice, sig_bob, sender=alice)
    state2_args = replace(state1, channel=vp2.channel_id).as_tuple()
    for sigs in ((sig_alice, sig_bob), (sig_bob, sig_alice)):
        with ape.reverts("virtual: wrong signer"):
            virtual.register(vp2.as_tuple(), state2_args, *sigs, sender=alice)
    assert tuple(virtual.record(vp2.channel_id)) == (0, 0, 0, False)
    # Nothing registered in channel 2: it still settles on its initial split at expiry.
    assert tuple(virtual.settlement(vp2.as_tuple()))[2:] == (10**17, 10**17)
    receipt = virtual.register(vp1.as_tuple(), state_args, sig_alice, sig_bob, sender=bob)
    assert [(e.version, e.balance_alice) for e in receipt.decode_logs(virtual.Registered)] == [(1, 19 * 10**16)]


def test_replay__virtual_state_signed_in_ledger_domain__refused(
    virtual, ledger, open_hub, make_virtual, alice, bob, chain
):
    # A wallet tricked into signing a virtual state under the ledger adjudicator's domain (or any other
    # domain on the same chain) produces nothing the virtual adjudicator accepts.
    hub = open_hub()
    vp = make_virtual(hub)
    state = VirtualState.initial(vp).pay(10**17, from_alice=True)
    wrong = _ledger_domain(chain.chain_id, ledger.address)
    with ape.reverts("virtual: wrong signer"):
        virtual.register(vp.as_tuple(), state.as_tuple(), *_sigs(state, wrong, alice, bob), sender=alice)
    assert tuple(virtual.record(vp.channel_id)) == (0, 0, 0, False)


# --- (b) another deployment of both adjudicators -------------------------------------------------------


@pytest.fixture
def second_pair(project, deployer):
    """A second VirtualAdjudicator and a LedgerAdjudicator bound to it, on Ape's chain."""
    virtual2 = deployer.deploy(project.VirtualAdjudicator)
    ledger2 = deployer.deploy(project.LedgerAdjudicator, virtual2)
    return ledger2, virtual2


def test_replay__ledger_state_with_lock_on_other_deployment__refused(
    ledger, virtual, second_pair, open_hub, make_virtual, alice, ingrid, stranger, chain
):
    ledger2, virtual2 = second_pair
    assert ledger2.VIRTUAL_ADJUDICATOR() == virtual2.address
    hub = open_hub()
    vp = make_virtual(hub)
    # The same channel is funded in both deployments.
    ledger2.deposit(hub.left.channel_id, 0, value=E, sender=alice)
    ledger2.deposit(hub.left.channel_id, 1, value=E, sender=ingrid)
    state = LedgerState(hub.left.channel_id, 1, 9 * 10**17, 9 * 10**17, E, E, (Lock(vp.channel_id, 10**17, 10**17),))
    domain1 = _ledger_domain(chain.chain_id, ledger.address)
    domain2 = _ledger_domain(chain.chain_id, ledger2.address)
    assert ledger.DOMAIN_SEPARATOR() == domain1.separator
    assert ledger2.DOMAIN_SEPARATOR() == domain2.separator != domain1.separator
    sigs1, sigs2 = _sigs(state, domain1, alice, ingrid), _sigs(state, domain2, alice, ingrid)
    with ape.reverts(LEDGER_WRONG_SIGNER):
        ledger2.register(hub.left.as_tuple(), state.as_tuple(), *sigs1, sender=stranger)
    with ape.reverts(LEDGER_WRONG_SIGNER):
        ledger.register(hub.left.as_tuple(), state.as_tuple(), *sigs2, sender=stranger)
    # A signature pair mixed from both deployments is refused at the first foreign signature.
    with ape.reverts(LEDGER_WRONG_SIGNER):
        ledger.register(hub.left.as_tuple(), state.as_tuple(), sigs1[0], sigs2[1], sender=stranger)
    assert tuple(ledger.dispute(hub.left.channel_id))[0:2] == tuple(ledger2.dispute(hub.left.channel_id))[0:2] == (0, 0)
    # Each deployment takes the signatures made for it, and only moves its own record.
    r1 = ledger.register(hub.left.as_tuple(), state.as_tuple(), *sigs1, sender=stranger)
    deadline1 = r1.timestamp + hub.left.challenge_duration
    # A funded state with a lock: the dispute records the hash of its locks.
    assert tuple(ledger.dispute(hub.left.channel_id)) == (1, deadline1, state.locks_hash())
    assert tuple(ledger2.dispute(hub.left.channel_id)) == (0, 0, ZERO_HASH)
    r2 = ledger2.register(hub.left.as_tuple(), state.as_tuple(), *sigs2, sender=stranger)
    deadline2 = r2.timestamp + hub.left.challenge_duration
    assert tuple(ledger2.dispute(hub.left.channel_id)) == (1, deadline2, state.locks_hash())
    assert tuple(ledger.dispute(hub.left.channel_id)) == (1, deadline1, state.locks_hash())


def test_replay__ledger_final_state_on_other_deployment__refused(
    ledger, second_pair, open_channel, alice, bob, stranger, chain
):
    # close carries no channel id and no contract address: only the EIP-712 domain inside the signed digest
    # binds a final state to one deployment.
    ledger2, _ = second_pair
    params, state0 = open_channel()
    ledger2.deposit(params.channel_id, 0, value=E, sender=alice)
    ledger2.deposit(params.channel_id, 1, value=E, sender=bob)
    final = state0.pay(9 * 10**17, 1).finalized()
    domain1 = _ledger_domain(chain.chain_id, ledger.address)
    domain2 = _ledger_domain(chain.chain_id, ledger2.address)
    sigs1, sigs2 = _sigs(final, domain1, alice, bob), _sigs(final, domain2, alice, bob)
    for target, sigs in (
        (ledger2, sigs1),
        (ledger, sigs2),
        (ledger, (sigs1[0], sigs2[1])),
        (ledger2, (sigs2[0], sigs1[1])),
    ):
        with ape.reverts(LEDGER_WRONG_SIGNER):
            target.close(params.as_tuple(), final.final_tuple(), *sigs, sender=stranger)
    for target in (ledger, ledger2):
        assert tuple(target.holdings(params.channel_id)) == (E, E, False)
    # Each deployment takes the signatures made for it, and pays only from its own deposits.
    payouts = (19 * 10**17, 10**17)
    for target, other, sigs in ((ledger, ledger2, sigs1), (ledger2, ledger, sigs2)):
        before = alice.balance, bob.balance, target.balance, other.balance
        receipt = target.close(params.as_tuple(), final.final_tuple(), *sigs, sender=stranger)
        events = [(bytes(e.channel), e.version, e.payout_a, e.payout_b) for e in receipt.decode_logs(target.Concluded)]
        assert events == [(params.channel_id, final.version, *payouts)]
        assert (alice.balance - before[0], bob.balance - before[1]) == payouts
        assert (before[2] - target.balance, before[3] - other.balance) == (2 * E, 0)
        assert tuple(target.holdings(params.channel_id)) == (0, 0, True)


def test_replay__virtual_state_on_other_deployment__refused(
    virtual, second_pair, open_hub, make_virtual, alice, bob, chain
):
    _, virtual2 = second_pair
    hub = open_hub()
    vp = make_virtual(hub)
    state = VirtualState.initial(vp).pay(10**17, from_alice=False)  # Alice gets everything
    domain1 = _virtual_domain(chain.chain_id, virtual.address)
    domain2 = _virtual_domain(chain.chain_id, virtual2.address)
    assert virtual.DOMAIN_SEPARATOR() == domain1.separator
    assert virtual2.DOMAIN_SEPARATOR() == domain2.separator != domain1.separator
    sigs1, sigs2 = _sigs(state, domain1, alice, bob), _sigs(state, domain2, alice, bob)
    with ape.reverts("virtual: wrong signer"):
        virtual2.register(vp.as_tuple(), state.as_tuple(), *sigs1, sender=alice)
    with ape.reverts("virtual: wrong signer"):
        virtual.register(vp.as_tuple(), state.as_tuple(), *sigs2, sender=alice)
    receipt = virtual.register(vp.as_tuple(), state.as_tuple(), *sigs1, sender=alice)
    deadline = receipt.timestamp + vp.challenge_duration
    assert tuple(virtual.record(vp.channel_id)) == (1, deadline, 2 * 10**17, False)
    # The registration in deployment 1 does not leak into deployment 2's outcome: after the deadline
    # deployment 1 is settled on Alice = 0.2, deployment 2 is still unsettled on the initial split.
    chain.pending_timestamp = deadline
    chain.mine()
    assert chain.blocks.head.timestamp == deadline
    assert tuple(virtual.settlement(vp.as_tuple())) == (vp.channel_id, True, 2 * 10**17, 0)
    assert tuple(virtual2.settlement(vp.as_tuple())) == (vp.channel_id, False, 10**17, 10**17)
    assert tuple(virtual2.record(vp.channel_id)) == (0, 0, 0, False)


# --- (c) another chain ---------------------------------------------------------------------------------


def _fund_on_both_chains(remote, params, deposit, alice, bob) -> None:
    """Both sides deposit one ether (E) into the same channel id on Ape's chain and on chain 4242."""
    deposit(params, 0, E, alice)
    deposit(params, 1, E, bob)
    for side, owner in ((0, alice), (1, bob)):
        data = remote.ledger.encode_abi("deposit", [params.channel_id, side])
        assert remote.send(owner, remote.ledger.address, data, value=E)["status"] == 1


def test_replay__ledger_state_on_chain_4242__refused_there_own_signature_accepted(
    remote, ledger, make_params, deposit, alice, bob, stranger, chain
):
    assert chain.chain_id == APE_CHAIN_ID
    assert remote.w3.eth.chain_id == OTHER_CHAIN_ID
    assert remote.ledger.address == ledger.address  # the only difference left is the chain id
    params = make_params()
    # The same channel, funded on both chains.
    _fund_on_both_chains(remote, params, deposit, alice, bob)
    assert remote.ledger.functions.holdings(params.channel_id).call() == [E, E, False]

    state = LedgerState.initial(params.channel_id, E, E).pay(9 * 10**17, 1)
    domain_ape = _ledger_domain(APE_CHAIN_ID, ledger.address)
    domain_4242 = _ledger_domain(OTHER_CHAIN_ID, ledger.address)
    assert remote.ledger.functions.DOMAIN_SEPARATOR().call() == domain_4242.separator
    assert ledger.DOMAIN_SEPARATOR() == domain_ape.separator != domain_4242.separator
    sigs_ape = _sigs(state, domain_ape, alice, bob)
    sigs_4242 = _sigs(state, domain_4242, alice, bob)

    # Chain 31337's signatures, replayed on chain 4242 in a mined raw transaction.
    replay = remote.ledger.encode_abi("register", [params.as_tuple(), state.as_tuple(), *sigs_ape])
    failed = remote.send(stranger, remote.ledger.address, replay)
    assert failed["status"] == 0
    assert remote.reason(failed) == LEDGER_WRONG_SIGNER
    assert remote.ledger.functions.dispute(params.channel_id).call() == [0, 0, ZERO_HASH]
    # ... and chain 4242's on chain 31337.
    with ape.reverts(LEDGER_WRONG_SIGNER):
        ledger.register(params.as_tuple(), state.as_tuple(), *sigs_4242, sender=stranger)

    # Each chain accepts the signatures made for it.
    good = remote.send(
        stranger,
        remote.ledger.address,
        remote.ledger.encode_abi("register", [params.as_tuple(), state.as_tuple(), *sigs_4242]),
    )
    assert good["status"] == 1
    events = remote.ledger.events.Registered().process_receipt(good)
    assert [(e.args.channel, e.args.version) for e in events] == [(params.channel_id, 1)]
    deadline = remote.w3.eth.get_block(good["blockNumber"])["timestamp"] + params.challenge_duration
    assert remote.ledger.functions.dispute(params.channel_id).call() == [1, deadline, ZERO_HASH]
    receipt = ledger.register(params.as_tuple(), state.as_tuple(), *sigs_ape, sender=stranger)
    assert [e.version for e in receipt.decode_logs(ledger.Registered)] == [1]


def test_replay__ledger_final_state_on_chain_4242__refused_there_own_signature_accepted(
    remote, ledger, make_params, deposit, alice, bob, stranger
):
    # The final state of a channel funded on both chains: close passes no chain id, the signed digest does.
    assert remote.ledger.address == ledger.address
    params = make_params()
    _fund_on_both_chains(remote, params, deposit, alice, bob)
    final = LedgerState.initial(params.channel_id, E, E).pay(9 * 10**17, 1).finalized()
    sigs_ape = _sigs(final, _ledger_domain(APE_CHAIN_ID, ledger.address), alice, bob)
    sigs_4242 = _sigs(final, _ledger_domain(OTHER_CHAIN_ID, ledger.address), alice, bob)

    def close_remote(sigs):
        data = remote.ledger.encode_abi("close", [params.as_tuple(), final.final_tuple(), *sigs])
        return remote.send(stranger, remote.ledger.address, data)

    failed = close_remote(sigs_ape)
    assert failed["status"] == 0
    assert remote.reason(failed) == LEDGER_WRONG_SIGNER
    assert remote.ledger.functions.holdings(params.channel_id).call() == [E, E, False]
    with ape.reverts(LEDGER_WRONG_SIGNER):
        ledger.close(params.as_tuple(), final.final_tuple(), *sigs_4242, sender=stranger)
    assert tuple(ledger.holdings(params.channel_id)) == (E, E, False)

    payouts = (19 * 10**17, 10**17)
    before_remote = [remote.w3.eth.get_balance(account.address) for account in (alice, bob)]
    good = close_remote(sigs_4242)
    assert good["status"] == 1
    events = remote.ledger.events.Concluded().process_receipt(good)
    assert [(e.args.channel, e.args.version, e.args.payout_a, e.args.payout_b) for e in events] == [
        (params.channel_id, final.version, *payouts)
    ]
    after_remote = [remote.w3.eth.get_balance(account.address) for account in (alice, bob)]
    assert (after_remote[0] - before_remote[0], after_remote[1] - before_remote[1]) == payouts
    assert remote.ledger.functions.holdings(params.channel_id).call() == [0, 0, True]
    before = alice.balance, bob.balance
    receipt = ledger.close(params.as_tuple(), final.final_tuple(), *sigs_ape, sender=stranger)
    assert [(e.payout_a, e.payout_b) for e in receipt.decode_logs(ledger.Concluded)] == [payouts]
    assert (alice.balance - before[0], bob.balance - before[1]) == payouts


def test_replay__virtual_state_on_chain_4242__refused_there_own_signature_accepted(
    remote, virtual, open_hub, make_virtual, alice, bob
):
    assert remote.virtual.address == virtual.address
    hub = open_hub()
    vp = make_virtual(hub, validity=2**40)  # far ahead on both chains' clocks
    state = VirtualState.initial(vp).pay(10**17, from_alice=False)
    domain_ape = _virtual_domain(APE_CHAIN_ID, virtual.address)
    domain_4242 = _virtual_domain(OTHER_CHAIN_ID, virtual.address)
    assert remote.virtual.functions.DOMAIN_SEPARATOR().call() == domain_4242.separator
    sigs_ape, sigs_4242 = _sigs(state, domain_ape, alice, bob), _sigs(state, domain_4242, alice, bob)

    failed = remote.send(
        alice,
        remote.virtual.address,
        remote.virtual.encode_abi("register", [vp.as_tuple(), state.as_tuple(), *sigs_ape]),
    )
    assert failed["status"] == 0
    assert remote.reason(failed) == "virtual: wrong signer"
    assert remote.virtual.functions.record(vp.channel_id).call() == [0, 0, 0, False]
    with ape.reverts("virtual: wrong signer"):
        virtual.register(vp.as_tuple(), state.as_tuple(), *sigs_4242, sender=alice)

    good = remote.send(
        alice,
        remote.virtual.address,
        remote.virtual.encode_abi("register", [vp.as_tuple(), state.as_tuple(), *sigs_4242]),
    )
    assert good["status"] == 1
    assert remote.virtual.functions.record(vp.channel_id).call()[0::2] == [1, 2 * 10**17]
    receipt = virtual.register(vp.as_tuple(), state.as_tuple(), *sigs_ape, sender=alice)
    assert [e.balance_alice for e in receipt.decode_logs(virtual.Registered)] == [2 * 10**17]


def test_replay__chain_id_change_on_same_node__separator_follows_and_old_signatures_stop(
    ledger_hashing, ledger, virtual, open_channel, open_hub, make_virtual, alice, bob, stranger, chain, restore_chain_id
):
    # Fork safety: the contracts cache the separator for chain 31337 and rebuild it when chain.id
    # differs. After `anvil_setChainId` the same deployment (same storage, same address) refuses every
    # signature made before the fork and accepts only ones made for the new chain id.
    params, state0 = open_channel()
    hub = open_hub()
    vp = make_virtual(hub)
    state = state0.pay(9 * 10**17, 1)
    vstate = VirtualState.initial(vp).pay(10**17, from_alice=False)
    old_l, new_l = _ledger_domain(APE_CHAIN_ID, ledger.address), _ledger_domain(OTHER_CHAIN_ID, ledger.address)
    old_v, new_v = _virtual_domain(APE_CHAIN_ID, virtual.address), _virtual_domain(OTHER_CHAIN_ID, virtual.address)
    assert ledger.DOMAIN_SEPARATOR() == old_l.separator
    assert virtual.DOMAIN_SEPARATOR() == old_v.separator
    assert ledger.eip712Domain()[3] == APE_CHAIN_ID

    chain.provider.make_request("anvil_setChainId", [OTHER_CHAIN_ID])
    assert int(chain.provider.make_request("eth_chainId", []), 16) == OTHER_CHAIN_ID
    assert ledger.DOMAIN_SEPARATOR() == new_l.separator != old_l.separator
    assert virtual.DOMAIN_SEPARATOR() == new_v.separator != old_v.separator
    assert ledger.eip712Domain()[3] == virtual.eip712Domain()[3] == OTHER_CHAIN_ID
    assert ledger_hashing.state_digest(state.as_tuple(), ledger.DOMAIN_SEPARATOR()) == new_l.digest(state.struct_hash())

    # Pre-fork signatures, mined on the forked chain: refused.
    old = _raw(
        chain,
        stranger,
        ledger,
        ledger.register.encode_input(params.as_tuple(), state.as_tuple(), *_sigs(state, old_l, alice, bob)),
    )
    assert (old["status"], old["reason"]) == (0, LEDGER_WRONG_SIGNER)
    vold = _raw(
        chain,
        alice,
        virtual,
        virtual.register.encode_input(vp.as_tuple(), vstate.as_tuple(), *_sigs(vstate, old_v, alice, bob)),
    )
    assert (vold["status"], vold["reason"]) == (0, "virtual: wrong signer")
    assert tuple(ledger.dispute(params.channel_id))[0:2] == (0, 0)
    assert tuple(virtual.record(vp.channel_id)) == (0, 0, 0, False)
    # Signatures for the new chain id: accepted.
    new = _raw(
        chain,
        stranger,
        ledger,
        ledger.register.encode_input(params.as_tuple(), state.as_tuple(), *_sigs(state, new_l, alice, bob)),
    )
    assert (new["status"], new["reason"], len(new["logs"])) == (1, None, 1)
    assert ledger.dispute(params.channel_id)[0::2] == (1, ZERO_HASH)
    vnew = _raw(
        chain,
        alice,
        virtual,
        virtual.register.encode_input(vp.as_tuple(), vstate.as_tuple(), *_sigs(vstate, new_v, alice, bob)),
    )
    assert (vnew["status"], vnew["reason"], len(vnew["logs"])) == (1, None, 1)
    assert tuple(virtual.record(vp.channel_id))[0::2] == (1, 2 * 10**17)

    # Back on 31337 the cached separator is used again, and the fork's signatures are refused.
    chain.provider.make_request("anvil_setChainId", [APE_CHAIN_ID])
    assert ledger.DOMAIN_SEPARATOR() == old_l.separator
    newer = state.pay(1, 0)
    with ape.reverts(LEDGER_WRONG_SIGNER):
        ledger.register(params.as_tuple(), newer.as_tuple(), *_sigs(newer, new_l, alice, bob), sender=stranger)
    receipt = ledger.register(params.as_tuple(), newer.as_tuple(), *_sigs(newer, old_l, alice, bob), sender=stranger)
    assert [e.version for e in receipt.decode_logs(ledger.Registered)] == [2]
