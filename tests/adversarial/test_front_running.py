"""Front-running (issue "adversarial", protocol attacks): an adversary sees the honest transaction in the
mempool and gets its own transactions mined before it, in the same block.

Anvil's auto-mine is switched off, every transaction is sent raw (``eth_sendTransaction`` from the
accounts Anvil holds unlocked, legacy gas price), and one block is mined at a chosen timestamp. Anvil
orders a block by gas price (then nonce), so the adversary outbids the honest party; each test checks
the order in the mined block, every transaction's status and decoded revert reason, and that the honest
party ends with the balance of its latest state after a bounded, counted number of its own
transactions (fees included, to the wei).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from perun_vyper import VirtualState, open_virtual
from tests.support.constants import (
    LEDGER_CONCLUDED,
    LEDGER_DISPUTED,
    LEDGER_PERIOD_NOT_OVER,
    LEDGER_PERIOD_OVER,
    LEDGER_STALE,
    LOCKS_NOT_REGISTERED,
    ONLY_ENDPOINTS,
    VIRTUAL_NOT_SETTLED,
    VIRTUAL_PERIOD_OVER,
    VIRTUAL_STALE,
    ZERO_HASH,
    E,
)
from tests.support.reverts import revert_reason

GWEI = 10**9
HIGH, MID, LOW = 50 * GWEI, 2 * GWEI, 1 * GWEI
MAX_HONEST_TXS = 2  # register the latest state, then conclude


@dataclass
class Mined:
    """One transaction of a mined block."""

    sender: str
    tx_hash: str
    index: int
    status: int
    reason: str | None
    logs: int
    fee: int


class Mempool:
    """Raw transactions from unlocked accounts, mined into blocks at chosen timestamps."""

    def __init__(self, chain):
        self.chain = chain
        self.rpc = chain.provider.make_request
        self.sent: dict[str, list[str]] = {}  # sender address -> its transaction hashes

    def set_automine(self, on: bool) -> None:
        self.rpc("evm_setAutomine", [on])

    def block(self, timestamp: int, *txs) -> list[Mined]:
        """Send ``txs`` = (sender, contract, calldata, gas_price[, value]) into the mempool with auto-mine
        off, mine them in one block at ``timestamp`` and return them in the order they were *sent*."""
        head = self.chain.blocks.head.number
        self.set_automine(False)
        try:
            hashes = []
            for sender, contract, data, gas_price, *value in txs:
                tx = {
                    "from": sender.address,
                    "to": contract.address,
                    "data": "0x" + bytes(data).hex(),
                    "gas": hex(1_000_000),
                    "gasPrice": hex(gas_price),
                }
                if value:
                    tx["value"] = hex(value[0])
                tx_hash = self.rpc("eth_sendTransaction", [tx])
                hashes.append(tx_hash)
                self.sent.setdefault(sender.address, []).append(tx_hash)
            assert self.chain.blocks.head.number == head  # nothing mined yet: all are pending together
            self.rpc("evm_mine", [{"timestamp": timestamp}])
        finally:
            self.set_automine(True)
        block = self.rpc("eth_getBlockByNumber", ["latest", False])
        assert int(block["number"], 16) == head + 1
        assert int(block["timestamp"], 16) == timestamp
        assert len(block["transactions"]) == len(txs)
        out = []
        for (sender, *_), tx_hash in zip(txs, hashes, strict=True):
            receipt = self.rpc("eth_getTransactionReceipt", [tx_hash])
            status = int(receipt["status"], 16)
            reason = None
            if status == 0:
                trace = self.rpc("debug_traceTransaction", [tx_hash, {"disableStack": True, "disableMemory": True}])
                data = bytes.fromhex(trace["returnValue"][2:])
                reason = revert_reason(data)
            out.append(
                Mined(
                    sender=sender.address,
                    tx_hash=tx_hash,
                    index=block["transactions"].index(tx_hash),
                    status=status,
                    reason=reason,
                    logs=len(receipt["logs"]),
                    fee=int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16),
                )
            )
        return out

    def fees(self, account) -> int:
        total = 0
        for tx_hash in self.sent.get(account.address, []):
            receipt = self.rpc("eth_getTransactionReceipt", [tx_hash])
            total += int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
        return total


@pytest.fixture
def mempool(chain):
    pool = Mempool(chain)
    yield pool
    pool.set_automine(True)  # whatever happened in the test


class Honest:
    """Counts the honest party's own transactions and checks its balance against the fees it paid."""

    def __init__(self, account, mempool: Mempool, chain):
        self.account, self.mempool, self.chain = account, mempool, chain
        self.balance0 = account.balance
        self.nonce0 = chain.provider.get_nonce(account.address)

    @property
    def tx_count(self) -> int:
        count = self.chain.provider.get_nonce(self.account.address) - self.nonce0
        assert count == len(self.mempool.sent.get(self.account.address, []))  # every one of them counted
        return count

    def assert_received(self, amount: int, txs: int) -> None:
        assert self.tx_count == txs <= MAX_HONEST_TXS
        assert self.account.balance - self.balance0 == amount - self.mempool.fees(self.account)


def _order(results: list[Mined]) -> list[str]:
    return [r.sender for r in sorted(results, key=lambda r: r.index)]


def _outcomes(results: list[Mined]) -> list[tuple[int, str | None, int]]:
    return [(r.status, r.reason, r.logs) for r in results]


# --- ledger channel -------------------------------------------------------------------------------------


@pytest.fixture
def ledger_race(open_channel):
    """Alice-Bob, 1 ETH each. s1: Bob paid Alice 0.4 (A 1.4, B 0.6); s2 (latest): Alice paid Bob 0.7
    (A 0.7, B 1.3). Alice, the adversary, wants s1; honest Bob wants s2."""
    params, s0 = open_channel()
    s1 = s0.pay(4 * 10**17, 1)
    s2 = s1.pay(7 * 10**17, 0)
    return params, s0, s1, s2


def _start(chain) -> int:
    return chain.blocks.head.timestamp + 100


@pytest.mark.parametrize("copier", ["stranger", "alice"])
def test_front_running__same_state_copied_first__honest_register_is_noop_and_pays(
    ledger, ledger_race, signed, mempool, chain, bob, request, copier
):
    params, _, _, s2 = ledger_race
    adversary = request.getfixturevalue(copier)
    honest = Honest(bob, mempool, chain)
    register_s2 = ledger.register.encode_input(params.as_tuple(), *signed(s2))
    t0 = _start(chain)
    # Bob broadcasts s2; the adversary copies the calldata and outbids him.
    res = mempool.block(t0, (bob, ledger, register_s2, LOW), (adversary, ledger, register_s2, HIGH))
    assert _order(res) == [adversary.address, bob.address]
    # Bob's transaction still succeeds (the no-op: nothing logged), the copy opened the dispute.
    assert _outcomes(res) == [(1, None, 0), (1, None, 1)]
    deadline = t0 + params.challenge_duration
    assert tuple(ledger.dispute(params.channel_id)) == (2, deadline, ZERO_HASH)
    res = mempool.block(deadline, (bob, ledger, ledger.conclude.encode_input(params.as_tuple()), LOW))
    assert _outcomes(res) == [(1, None, 1)]
    honest.assert_received(13 * 10**17, txs=2)


def test_front_running__older_states_around_honest_one__newer_replaces(
    ledger, ledger_race, signed, mempool, chain, alice, bob, stranger
):
    params, s0, s1, s2 = ledger_race
    honest = Honest(bob, mempool, chain)
    t0 = _start(chain)
    # Alice front-runs Bob's s2 with s0 and has an accomplice back-run it with s1.
    res = mempool.block(
        t0,
        (bob, ledger, ledger.register.encode_input(params.as_tuple(), *signed(s2)), MID),
        (stranger, ledger, ledger.register.encode_input(params.as_tuple(), *signed(s1)), LOW),
        (alice, ledger, ledger.register.encode_input(params.as_tuple(), *signed(s0)), HIGH),
    )
    assert _order(res) == [alice.address, bob.address, stranger.address]
    assert _outcomes(res) == [(1, None, 1), (0, LEDGER_STALE, 0), (1, None, 1)]
    # The deadline is the one Alice's registration fixed; Bob's state is the registered one.
    deadline = t0 + params.challenge_duration
    assert tuple(ledger.dispute(params.channel_id)) == (2, deadline, ZERO_HASH)
    # At the deadline Alice tries to conclude on other terms first (conclude takes no state: the most she
    # can pass is a lock list, which the lock-free registered state refuses); Bob concludes on s2.
    forged_lock = (params.channel_id, 7 * 10**17, 0)
    res = mempool.block(
        deadline,
        (bob, ledger, ledger.conclude.encode_input(params.as_tuple()), LOW),
        (alice, ledger, ledger.conclude.encode_input(params.as_tuple(), [forged_lock], []), HIGH),
    )
    assert _order(res) == [alice.address, bob.address]
    assert _outcomes(res) == [(1, None, 1), (0, LOCKS_NOT_REGISTERED, 0)]
    honest.assert_received(13 * 10**17, txs=2)


@pytest.mark.parametrize("adversary_first", [True, False], ids=["adversary_first", "honest_first"])
@pytest.mark.parametrize("offset", [-1, 0], ids=["one_second_before_deadline", "at_deadline"])
def test_front_running__conclude_races_refutation_at_deadline(
    ledger, ledger_race, signed, mempool, chain, alice, bob, offset, adversary_first
):
    params, _, s1, s2 = ledger_race
    t0 = _start(chain)
    mempool.block(t0, (alice, ledger, ledger.register.encode_input(params.as_tuple(), *signed(s1)), LOW))
    deadline = t0 + params.challenge_duration
    honest = Honest(bob, mempool, chain)
    conclude_s1 = (alice, ledger, ledger.conclude.encode_input(params.as_tuple()),
                   HIGH if adversary_first else LOW)  # fmt: skip
    refute_s2 = (bob, ledger, ledger.register.encode_input(params.as_tuple(), *signed(s2)),
                 LOW if adversary_first else HIGH)  # fmt: skip
    res = mempool.block(deadline + offset, conclude_s1, refute_s2)
    first, second = (alice, bob) if adversary_first else (bob, alice)
    assert _order(res) == [first.address, second.address]
    if offset < 0:
        # One second before the deadline Bob wins whatever the order: conclusion is not open yet.
        assert _outcomes(res) == [(0, LEDGER_PERIOD_NOT_OVER, 0), (1, None, 1)]
        assert tuple(ledger.dispute(params.channel_id)) == (2, deadline, ZERO_HASH)
        res = mempool.block(deadline, (bob, ledger, ledger.conclude.encode_input(params.as_tuple()), LOW))
        assert _outcomes(res) == [(1, None, 1)]
        honest.assert_received(13 * 10**17, txs=2)
    else:
        # At the deadline Bob has lost whatever the order: the answer had to be mined before it
        # (SPEC §4, Timing). Alice's conclusion pays s1.
        late = LEDGER_CONCLUDED if adversary_first else LEDGER_PERIOD_OVER
        assert _outcomes(res) == [(1, None, 1), (0, late, 0)]
        assert tuple(ledger.holdings(params.channel_id)) == (0, 0, True)
        honest.assert_received(6 * 10**17, txs=1)


@pytest.mark.parametrize("adversary_first", [True, False], ids=["adversary_first", "honest_first"])
def test_front_running__register_races_top_up__top_up_refused_or_returned(
    ledger, ledger_race, signed, mempool, chain, alice, bob, adversary_first
):
    # Deposits are refused while a dispute is registered (its payouts were settled at registration). Bob
    # tops up 0.5 ETH; Alice registers her favourite stale state s1 in the same block. Either the dispute
    # comes first and Bob's deposit is refused (he keeps the ETH), or the deposit lands first and s1 (which
    # does not account for it) returns it to Bob at conclusion. Bob answers with s2 and concludes.
    params, _, s1, s2 = ledger_race
    top_up = 5 * 10**17
    balance0, nonce0 = bob.balance, chain.provider.get_nonce(bob.address)
    t0 = _start(chain)
    register_s1 = (alice, ledger, ledger.register.encode_input(params.as_tuple(), *signed(s1)),
                   HIGH if adversary_first else LOW)  # fmt: skip
    deposit = (bob, ledger, ledger.deposit.encode_input(params.channel_id, 1), LOW if adversary_first else HIGH, top_up)
    res = mempool.block(t0, register_s1, deposit)
    first, second = (alice, bob) if adversary_first else (bob, alice)
    assert _order(res) == [first.address, second.address]
    deadline = t0 + params.challenge_duration
    if adversary_first:
        assert _outcomes(res) == [(1, None, 1), (0, LEDGER_DISPUTED, 0)]
        deposits = (E, E)
    else:
        assert _outcomes(res) == [(1, None, 1), (1, None, 1)]
        deposits = (E, E + top_up)
    assert tuple(ledger.holdings(params.channel_id)) == (*deposits, False)
    assert tuple(ledger.dispute(params.channel_id)) == (1, deadline, ZERO_HASH)
    # Bob's answer (the deadline stays) and his conclusion.
    res = mempool.block(t0 + 1, (bob, ledger, ledger.register.encode_input(params.as_tuple(), *signed(s2)), LOW))
    assert _outcomes(res) == [(1, None, 1)]
    assert tuple(ledger.dispute(params.channel_id)) == (2, deadline, ZERO_HASH)
    res = mempool.block(deadline, (bob, ledger, ledger.conclude.encode_input(params.as_tuple()), LOW))
    assert _outcomes(res) == [(1, None, 1)]
    assert tuple(ledger.holdings(params.channel_id)) == (0, 0, True)
    # Bob: s2's 1.3 ETH, the top-up never lost (refused, or sent and paid back), three transactions' fees.
    assert chain.provider.get_nonce(bob.address) - nonce0 == len(mempool.sent[bob.address]) == 3
    assert bob.balance - balance0 == 13 * 10**17 - mempool.fees(bob)


# --- virtual channel --------------------------------------------------------------------------------------


@dataclass
class VirtualRace:
    hub: object
    vp: object
    right: object  # the Ingrid-Bob ledger state holding the lock
    w1: VirtualState  # Bob paid Alice: Alice 0.15, Bob 0.05 (what Alice wants)
    w2: VirtualState  # latest, Alice paid Bob: Alice 0.06, Bob 0.14


@pytest.fixture
def virtual_race(ledger, open_hub, make_virtual, signed, ingrid, bob, chain) -> VirtualRace:
    """A hub with a virtual channel (Tv = 7200) locked in Ingrid-Bob; Ingrid registered that lock state
    (ledger deadline long before the virtual one), so Bob's own transactions are the virtual answer and
    the ledger conclusion."""
    hub = open_hub()
    vp = make_virtual(hub, challenge_duration=7200)
    right = open_virtual(hub.right_state, hub.right, vp)
    ledger.register(hub.right.as_tuple(), *signed(right, ingrid, bob), sender=ingrid)
    w1 = VirtualState.initial(vp).pay(5 * 10**16, from_alice=False)
    w2 = w1.pay(9 * 10**16, from_alice=True)
    return VirtualRace(hub, vp, right, w1, w2)


def _bob_concludes(ledger, mempool, bob, race: VirtualRace, t: int) -> None:
    data = ledger.conclude.encode_input(race.hub.right.as_tuple(), race.right.locks_tuple(), [race.vp.as_tuple()])
    res = mempool.block(t, (bob, ledger, data, LOW))
    assert _outcomes(res) == [(1, None, 1)]


@pytest.mark.parametrize("copier", ["alice", "stranger"])
def test_front_running__virtual_same_state_copied_first__honest_register_succeeds(
    ledger, virtual, virtual_race, signed_virtual, mempool, chain, bob, request, copier
):
    race = virtual_race
    adversary = request.getfixturevalue(copier)
    honest = Honest(bob, mempool, chain)
    register_w2 = virtual.register.encode_input(race.vp.as_tuple(), *signed_virtual(race.w2))
    t0 = _start(chain)
    res = mempool.block(t0, (bob, virtual, register_w2, LOW), (adversary, virtual, register_w2, HIGH))
    assert _order(res) == [adversary.address, bob.address]
    if copier == "alice":
        # The copy registers; Bob's identical registration is the no-op.
        assert _outcomes(res) == [(1, None, 0), (1, None, 1)]
    else:
        # A third party cannot open a virtual dispute before validity: the copy fails, Bob's registers.
        assert _outcomes(res) == [(1, None, 1), (0, ONLY_ENDPOINTS, 0)]
    deadline = t0 + race.vp.challenge_duration
    assert tuple(virtual.record(race.vp.channel_id)) == (2, deadline, 6 * 10**16, False)
    _bob_concludes(ledger, mempool, bob, race, deadline)
    honest.assert_received(9 * 10**17 + 14 * 10**16, txs=2)


def test_front_running__virtual_older_states_around_honest_one__newer_replaces(
    ledger, virtual, virtual_race, signed_virtual, mempool, chain, alice, bob, stranger
):
    race = virtual_race
    honest = Honest(bob, mempool, chain)
    t0 = _start(chain)
    res = mempool.block(
        t0,
        (bob, virtual, virtual.register.encode_input(race.vp.as_tuple(), *signed_virtual(race.w2)), MID),
        (stranger, virtual, virtual.register.encode_input(race.vp.as_tuple(), *signed_virtual(race.w1)), LOW),
        (alice, virtual, virtual.register.encode_input(race.vp.as_tuple(), *signed_virtual(race.w1)), HIGH),
    )
    assert _order(res) == [alice.address, bob.address, stranger.address]
    assert _outcomes(res) == [(1, None, 1), (0, VIRTUAL_STALE, 0), (1, None, 1)]
    deadline = t0 + race.vp.challenge_duration
    assert tuple(virtual.record(race.vp.channel_id)) == (2, deadline, 6 * 10**16, False)
    _bob_concludes(ledger, mempool, bob, race, deadline)
    honest.assert_received(9 * 10**17 + 14 * 10**16, txs=2)


@pytest.mark.parametrize("offset", [-1, 0], ids=["one_second_before_deadline", "at_deadline"])
def test_front_running__ledger_conclude_races_virtual_refutation_at_virtual_deadline(
    ledger, virtual, virtual_race, signed_virtual, mempool, chain, alice, bob, offset
):
    race = virtual_race
    t0 = _start(chain)
    res = mempool.block(
        t0, (alice, virtual, virtual.register.encode_input(race.vp.as_tuple(), *signed_virtual(race.w1)), LOW)
    )
    assert _outcomes(res) == [(1, None, 1)]
    deadline = t0 + race.vp.challenge_duration
    assert ledger.dispute(race.hub.right.channel_id)[1] < deadline - 1  # only the virtual clock matters
    honest = Honest(bob, mempool, chain)
    # Alice outbids Bob: she concludes Bob's ledger channel (anyone may) before his virtual answer.
    conclude = ledger.conclude.encode_input(race.hub.right.as_tuple(), race.right.locks_tuple(), [race.vp.as_tuple()])
    refute = virtual.register.encode_input(race.vp.as_tuple(), *signed_virtual(race.w2))
    res = mempool.block(deadline + offset, (alice, ledger, conclude, HIGH), (bob, virtual, refute, LOW))
    assert _order(res) == [alice.address, bob.address]
    if offset < 0:
        assert _outcomes(res) == [(0, VIRTUAL_NOT_SETTLED, 0), (1, None, 1)]
        assert tuple(virtual.record(race.vp.channel_id)) == (2, deadline, 6 * 10**16, False)
        _bob_concludes(ledger, mempool, bob, race, deadline)
        honest.assert_received(9 * 10**17 + 14 * 10**16, txs=2)
    else:
        # Too late at the deadline: the ledger settles on w1 and Bob's answer is refused.
        assert _outcomes(res) == [(1, None, 1), (0, VIRTUAL_PERIOD_OVER, 0)]
        assert tuple(ledger.holdings(race.hub.right.channel_id)) == (0, 0, True)
        honest.assert_received(9 * 10**17 + 5 * 10**16, txs=1)
