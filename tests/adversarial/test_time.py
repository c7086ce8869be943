"""Time boundaries (issue "adversarial", protocol attacks): challenge-duration bounds and every deadline
probed at ``timestamp == deadline`` and one second either side.

A reverting transaction is still mined and consumes the timestamp set with ``chain.pending_timestamp``;
Anvil accepts several blocks with the same timestamp, so one second can be probed with a failing and a
succeeding call. Every probe asserts the timestamp of the block it ran in. Unit tests already check
the ledger register/conclude boundaries with one duration (``tests/unit/ledger/test_register.py``,
``test_conclude.py``); here both bounds of the duration, the virtual adjudicator's three clocks
(dispute deadline, validity, expiry) and the ledger conclusion that waits for a virtual channel.
"""

from __future__ import annotations

from dataclasses import replace

import ape
import pytest
from eth_abi import encode
from eth_utils import keccak

from perun_vyper import (
    ETH,
    MAX_CHALLENGE_DURATION,
    MIN_CHALLENGE_DURATION,
    LedgerState,
    Lock,
    VirtualState,
    compact,
    open_virtual,
    sign_digest,
)
from perun_vyper.core.codec import CHANNEL_PARAMS, VIRTUAL_PARAMS
from tests.support.constants import (
    LEDGER_PERIOD_NOT_OVER,
    LEDGER_PERIOD_OVER,
    LEDGER_RANGE,
    LOCKS_NOT_REGISTERED,
    NO_SIG,
    ONLY_ENDPOINTS,
    PARAMS_NOT_LOCKS,
    VIRTUAL_EXPIRED,
    VIRTUAL_NOT_SETTLED,
    VIRTUAL_PERIOD_OVER,
    VIRTUAL_RANGE,
    ZERO_HASH,
    E,
)
from tests.support.reverts import assert_view_reverts

FUND = 10**17  # each side's virtual funding (make_virtual's default)
OUT_OF_RANGE = [MIN_CHALLENGE_DURATION - 1, MAX_CHALLENGE_DURATION + 1]


# --- helpers ----------------------------------------------------------------------------------------


def _ok_at(chain, t: int, fn, *args, **kwargs):
    """Run a transaction in a block with timestamp exactly ``t``."""
    chain.pending_timestamp = t
    receipt = fn(*args, **kwargs)
    assert not receipt.failed
    assert receipt.timestamp == t
    return receipt


def _reverts_at(chain, t: int, reason: str, fn, *args, **kwargs) -> None:
    """Run a transaction that must revert with ``reason`` in a block with timestamp exactly ``t``."""
    chain.pending_timestamp = t
    head = chain.blocks.head.number
    with ape.reverts(reason):
        fn(*args, **kwargs)
    assert chain.blocks.head.number == head + 1  # mined, not just estimated
    assert chain.blocks.head.timestamp == t


def _view_at(chain, t: int) -> None:
    """Mine an empty block at ``t`` so that views read ``block.timestamp == t``."""
    chain.pending_timestamp = t
    chain.mine()
    assert chain.blocks.head.timestamp == t


def _start(chain) -> int:
    """A timestamp safely after the head block."""
    return chain.blocks.head.timestamp + 100


def _virtual_id(fields: tuple) -> bytes:
    """The virtual channel id of raw parameters (VirtualParams would refuse out-of-range ones)."""
    types = ["bytes32", "address", "address", "address", "address", "address", "uint256", "bytes32", "bytes32",
             "uint256", "uint256", "uint64", "uint64", "uint256"]  # fmt: skip
    return keccak(encode(types, [VIRTUAL_PARAMS.type_hash, *fields]))


def _ledger_id(fields: tuple) -> bytes:
    """The ETH ledger channel id of raw parameters (ChannelParams would refuse out-of-range ones)."""
    types = ["bytes32", "address", "address", "address", "uint64", "uint256"]
    digest = keccak(encode(types, [CHANNEL_PARAMS.type_hash, *fields]))
    return (int.from_bytes(digest, "big") & ~(1 << 255)).to_bytes(32, "big")


# --- ledger: duration bounds and the register / conclude deadline -------------------------------------


@pytest.mark.parametrize("offset", [-1, 0, 1])
@pytest.mark.parametrize("duration", [MIN_CHALLENGE_DURATION, MAX_CHALLENGE_DURATION])
def test_time__ledger_deadline__exactly_one_of_register_and_conclude_is_open(
    ledger, open_channel, signed, alice, bob, stranger, watcher, chain, duration, offset
):
    params, state0 = open_channel(challenge_duration=duration)
    state1 = state0.pay(3 * 10**17, 0)
    state2 = state1.pay(10**17, 1)
    t0 = _start(chain)
    first = _ok_at(chain, t0, ledger.register, params.as_tuple(), *signed(state1), sender=stranger)
    deadline = t0 + duration
    assert [e.deadline for e in first.decode_logs(ledger.Registered)] == [deadline]
    t = deadline + offset
    before_a, before_b = alice.balance, bob.balance
    if offset < 0:
        # One second before: conclusion is closed, a newer state still replaces (deadline unchanged).
        _reverts_at(chain, t, LEDGER_PERIOD_NOT_OVER, ledger.conclude, params.as_tuple(),
                    sender=stranger)  # fmt: skip
        receipt = _ok_at(chain, t, ledger.register, params.as_tuple(), *signed(state2), sender=watcher)
        assert [(e.version, e.deadline) for e in receipt.decode_logs(ledger.Registered)] == [(2, deadline)]
        assert tuple(ledger.dispute(params.channel_id)) == (2, deadline, ZERO_HASH)
        # ... and the deadline itself is where conclusion opens, on the newer state.
        receipt = _ok_at(chain, deadline, ledger.conclude, params.as_tuple(), sender=stranger)
        expected = (8 * 10**17, 12 * 10**17)
    else:
        # At and after the deadline: registration is over, even for the newer state; conclusion is open.
        _reverts_at(chain, t, LEDGER_PERIOD_OVER, ledger.register, params.as_tuple(),
                    *signed(state2), sender=watcher)  # fmt: skip
        assert tuple(ledger.dispute(params.channel_id)) == (1, deadline, ZERO_HASH)
        receipt = _ok_at(chain, t, ledger.conclude, params.as_tuple(), sender=stranger)
        expected = (7 * 10**17, 13 * 10**17)
    assert [(e.payout_a, e.payout_b) for e in receipt.decode_logs(ledger.Concluded)] == [expected]
    assert (alice.balance - before_a, bob.balance - before_b) == expected
    assert tuple(ledger.holdings(params.channel_id)) == (0, 0, True)
    assert tuple(ledger.dispute(params.channel_id)) == (0, 0, ZERO_HASH)


@pytest.mark.parametrize("duration", OUT_OF_RANGE)
def test_time__ledger_duration_out_of_range__every_params_entry_refuses(
    ledger, ledger_hashing, token, alice, bob, stranger, chain, duration
):
    eth_params = (alice.address, bob.address, ETH, duration, 4242)
    token_params = (alice.address, bob.address, token.address, duration, 4242)
    state = LedgerState(b"\x01" * 32, 1, 1, 1, 1, 1)
    final = replace(state, is_final=True)
    assert_view_reverts(ledger_hashing.channel_id, eth_params, reason=LEDGER_RANGE)
    with ape.reverts(LEDGER_RANGE):
        ledger.register(eth_params, state.as_tuple(), NO_SIG, NO_SIG, sender=stranger)
    with ape.reverts(LEDGER_RANGE):
        ledger.close(eth_params, final.final_tuple(), NO_SIG, NO_SIG, sender=stranger)
    with ape.reverts(LEDGER_RANGE):
        ledger.conclude(eth_params, sender=stranger)
    with ape.reverts(LEDGER_RANGE):
        ledger.conclude(eth_params, [(b"\x01" * 32, 1, 1)], [], sender=stranger)
    token.approve(ledger.address, 10, sender=alice)
    with ape.reverts(LEDGER_RANGE):
        ledger.deposit_token(token_params, 0, 10, sender=alice)
    assert token.balanceOf(ledger.address) == 0


@pytest.mark.parametrize("duration", [MAX_CHALLENGE_DURATION + 1])
def test_time__ledger_duration_out_of_range__eth_deposit_by_id_is_accepted_and_stuck(
    ledger_hashing, ledger, alice, bob, stranger, chain, duration
):
    # Documented trade-off (SPEC §2, §8): `deposit` sees only the channel id, so it cannot check the
    # duration. ETH sent to the id of out-of-range parameters is accepted, and then no entry point can
    # ever pay it out: every one of them checks the parameters first. Only the client's ChannelParams
    # check (InvalidParams) stands between a user and this loss.
    fields = (alice.address, bob.address, ETH, duration, 7)
    channel = _ledger_id(fields)
    before = ledger.balance
    ledger.deposit(channel, 0, value=E, sender=alice)
    ledger.deposit(channel, 1, value=E, sender=bob)
    assert tuple(ledger.holdings(channel)) == (E, E, False)
    assert ledger.balance - before == 2 * E
    state = LedgerState(channel, 1, E, E, E, E)
    final = replace(state, is_final=True)
    sigs = [
        compact(
            sign_digest(
                who.private_key, ledger_hashing.state_digest(signed_state.as_tuple(), ledger.DOMAIN_SEPARATOR())
            )
        )
        for signed_state in (state, final)
        for who in (alice, bob)
    ]
    with ape.reverts(LEDGER_RANGE):
        ledger.register(fields, state.as_tuple(), *sigs[:2], sender=stranger)
    with ape.reverts(LEDGER_RANGE):
        ledger.close(fields, final.final_tuple(), *sigs[2:], sender=stranger)
    with ape.reverts(LEDGER_RANGE):
        ledger.conclude(fields, sender=stranger)
    assert tuple(ledger.holdings(channel)) == (E, E, False)
    assert ledger.balance - before == 2 * E


# --- virtual: duration bounds and the dispute deadline -------------------------------------------------


@pytest.mark.parametrize("offset", [-1, 0, 1])
@pytest.mark.parametrize("duration", [MIN_CHALLENGE_DURATION, MAX_CHALLENGE_DURATION])
def test_time__virtual_dispute_deadline__newer_state_until_deadline_settled_from_it(
    virtual, open_hub, make_virtual, signed_virtual, alice, bob, watcher, chain, duration, offset
):
    hub = open_hub()
    t0 = _start(chain)
    vp = make_virtual(hub, validity=t0 + 10 * 86400, challenge_duration=duration)
    state1 = VirtualState.initial(vp).pay(4 * 10**16, from_alice=True)
    state2 = state1.pay(10**16, from_alice=True)
    first = _ok_at(chain, t0, virtual.register, vp.as_tuple(), *signed_virtual(state1), sender=alice)
    deadline = t0 + duration
    assert [(e.version, e.deadline) for e in first.decode_logs(virtual.Registered)] == [(1, deadline)]
    # Unsettled one second before the deadline.
    _view_at(chain, deadline - 1)
    assert tuple(virtual.settlement(vp.as_tuple())) == (vp.channel_id, False, 6 * 10**16, 14 * 10**16)
    t = deadline + offset
    if offset < 0:
        receipt = _ok_at(chain, t, virtual.register, vp.as_tuple(), *signed_virtual(state2), sender=watcher)
        assert [(e.version, e.deadline) for e in receipt.decode_logs(virtual.Registered)] == [(2, deadline)]
        expected = (5 * 10**16, 15 * 10**16)
    else:
        _reverts_at(chain, t, VIRTUAL_PERIOD_OVER, virtual.register, vp.as_tuple(),
                    *signed_virtual(state2), sender=bob)  # fmt: skip
        # The "same state again is a no-op" path closes too.
        _reverts_at(chain, t, VIRTUAL_PERIOD_OVER, virtual.register, vp.as_tuple(),
                    *signed_virtual(state1), sender=alice)  # fmt: skip
        expected = (6 * 10**16, 14 * 10**16)
    _view_at(chain, max(t, deadline))
    assert tuple(virtual.settlement(vp.as_tuple())) == (vp.channel_id, True, *expected)
    assert virtual.record(vp.channel_id)[1] == deadline


@pytest.mark.parametrize("duration", OUT_OF_RANGE)
def test_time__virtual_duration_out_of_range__refused(
    virtual_hashing, virtual, ledger, open_hub, alice, bob, ingrid, chain, duration
):
    hub = open_hub()
    fields = (alice.address, bob.address, ingrid.address, ETH, ledger.address, chain.chain_id, hub.left.channel_id,
              hub.right.channel_id, FUND, FUND, chain.blocks.head.timestamp + 86400, duration, 1)  # fmt: skip
    state = (_virtual_id(fields), 0, FUND, FUND, False)
    assert_view_reverts(virtual_hashing.virtual_id, fields, reason=VIRTUAL_RANGE)
    assert_view_reverts(virtual.settlement, fields, reason=VIRTUAL_RANGE)
    with ape.reverts(VIRTUAL_RANGE):
        virtual.register(fields, state, NO_SIG, NO_SIG, sender=alice)


@pytest.mark.parametrize("duration", [MAX_CHALLENGE_DURATION + 1])
def test_time__lock_on_out_of_range_virtual_channel__conclude_impossible_only_close_recovers(
    ledger, virtual, open_hub, signed, signed_final, alice, bob, ingrid, stranger, chain, duration
):
    # A lock names a virtual channel only by id. If Alice and Ingrid sign a lock for parameters the
    # virtual adjudicator refuses (perun_vyper.VirtualParams would not build them), `settlement`
    # reverts for them, so `conclude` can never split the lock: the registered state can never be
    # concluded. Only a cooperative close (a newer final state both sign) gets the funds out.
    hub = open_hub()
    fields = (alice.address, bob.address, ingrid.address, ETH, ledger.address, chain.chain_id, hub.left.channel_id,
              hub.right.channel_id, FUND, FUND, chain.blocks.head.timestamp, duration, 1)  # fmt: skip
    lock = Lock(_virtual_id(fields), FUND, FUND)
    state = LedgerState(hub.left.channel_id, 1, E - FUND, E - FUND, E, E, (lock,))
    t0 = _start(chain)
    _ok_at(chain, t0, ledger.register, hub.left.as_tuple(), *signed(state, alice, ingrid), sender=stranger)
    deadline = t0 + hub.left.challenge_duration
    assert tuple(ledger.dispute(hub.left.channel_id)) == (1, deadline, state.locks_hash())
    late = deadline + MAX_CHALLENGE_DURATION + 1
    _reverts_at(chain, late, VIRTUAL_RANGE, ledger.conclude, hub.left.as_tuple(), state.locks_tuple(), [fields],
                sender=stranger)  # fmt: skip
    _reverts_at(chain, late, PARAMS_NOT_LOCKS, ledger.conclude, hub.left.as_tuple(),
                state.locks_tuple(), [], sender=stranger)  # fmt: skip
    # Leaving the lock out is no way around it: conclude needs exactly the registered locks.
    _reverts_at(chain, late, LOCKS_NOT_REGISTERED, ledger.conclude, hub.left.as_tuple(), [], [],
                sender=stranger)  # fmt: skip
    assert tuple(ledger.holdings(hub.left.channel_id)) == (E, E, False)
    final = LedgerState(hub.left.channel_id, 2, E, E, E, E, (), True)
    before = (alice.balance, ingrid.balance)
    receipt = _ok_at(chain, late, ledger.close, hub.left.as_tuple(), *signed_final(final, alice, ingrid),
                     sender=stranger)  # fmt: skip
    assert [(e.version, e.payout_a, e.payout_b) for e in receipt.decode_logs(ledger.Concluded)] == [(2, E, E)]
    assert (alice.balance - before[0], ingrid.balance - before[1]) == (E, E)
    assert tuple(ledger.holdings(hub.left.channel_id)) == (0, 0, True)
    assert tuple(ledger.dispute(hub.left.channel_id)) == (0, 0, ZERO_HASH)


# --- virtual: validity (third parties may open only from it) -------------------------------------------


def test_time__virtual_validity__third_parties_open_from_validity_endpoints_before(
    virtual, open_hub, make_virtual, signed_virtual, alice, bob, ingrid, watcher, chain
):
    hub = open_hub()
    t0 = _start(chain)
    validity = t0 + 1000
    vp1, vp2, vp3, vp4 = (make_virtual(hub, validity=validity) for _ in range(4))
    before = ONLY_ENDPOINTS
    for who in (ingrid, watcher):
        _reverts_at(chain, validity - 1, before, virtual.register, vp1.as_tuple(),
                    *signed_virtual(VirtualState.initial(vp1)), sender=who)  # fmt: skip
    assert tuple(virtual.record(vp1.channel_id)) == (0, 0, 0, False)
    # Endpoints may open in that same second.
    for vp, who in ((vp2, alice), (vp4, bob)):
        receipt = _ok_at(chain, validity - 1, virtual.register, vp.as_tuple(),
                         *signed_virtual(VirtualState.initial(vp)), sender=who)  # fmt: skip
        assert [e.deadline for e in receipt.decode_logs(virtual.Registered)] == [validity - 1 + vp.challenge_duration]
    # From validity on, anyone.
    receipt = _ok_at(chain, validity, virtual.register, vp1.as_tuple(), *signed_virtual(VirtualState.initial(vp1)),
                     sender=ingrid)  # fmt: skip
    assert [e.deadline for e in receipt.decode_logs(virtual.Registered)] == [validity + vp1.challenge_duration]
    receipt = _ok_at(chain, validity + 1, virtual.register, vp3.as_tuple(),
                     *signed_virtual(VirtualState.initial(vp3)), sender=watcher)  # fmt: skip
    assert [e.deadline for e in receipt.decode_logs(virtual.Registered)] == [validity + 1 + vp3.challenge_duration]


# --- virtual: expiry (opening refused, settlement fallback) --------------------------------------------


class LockedHub:
    """A hub whose two ledger channels each carry the lock of one virtual channel ``vp``."""

    def __init__(self, ledger, chain, signed, alice, ingrid, bob, stranger, hub, vp, t0):
        self.ledger, self.chain, self.signed = ledger, chain, signed
        self.alice, self.ingrid, self.bob, self.stranger = alice, ingrid, bob, stranger
        self.hub, self.vp, self.t0 = hub, vp, t0
        self.left = open_virtual(hub.left_state, hub.left, vp)
        self.right = open_virtual(hub.right_state, hub.right, vp)

    def register_ledgers(self, t: int) -> None:
        """Register both lock states at ``t`` (ledger challenge duration 3600)."""
        for params, state, a, b in (
            (self.hub.left, self.left, self.alice, self.ingrid),
            (self.hub.right, self.right, self.ingrid, self.bob),
        ):
            receipt = _ok_at(self.chain, t, self.ledger.register, params.as_tuple(), *self.signed(state, a, b),
                             sender=self.stranger)  # fmt: skip
            assert [e.deadline for e in receipt.decode_logs(self.ledger.Registered)] == [t + params.challenge_duration]
            assert tuple(self.ledger.dispute(params.channel_id))[2] == state.locks_hash()


@pytest.fixture
def locked_hub(ledger, open_hub, make_virtual, signed, alice, ingrid, bob, stranger, chain):
    """``locked_hub(validity_delay, virtual_duration)``: a LockedHub with ``validity = t0 + delay``."""

    def _make(validity_delay: int, virtual_duration: int = 3600) -> LockedHub:
        hub = open_hub()
        t0 = _start(chain)
        vp = make_virtual(hub, validity=t0 + validity_delay, challenge_duration=virtual_duration)
        return LockedHub(ledger, chain, signed, alice, ingrid, bob, stranger, hub, vp, t0)

    return _make


def _conclude_both(setup: LockedHub, t: int) -> list[tuple[int, int]]:
    """Conclude both ledger channels at ``t``; return [(payout_a, payout_b)] of left and right."""
    out = []
    for params, state in ((setup.hub.left, setup.left), (setup.hub.right, setup.right)):
        receipt = _ok_at(setup.chain, t, setup.ledger.conclude, params.as_tuple(), state.locks_tuple(),
                         [setup.vp.as_tuple()], sender=setup.stranger)  # fmt: skip
        out.extend((e.payout_a, e.payout_b) for e in receipt.decode_logs(setup.ledger.Concluded))
    return out


def _probe_conclude_reverts(setup: LockedHub, t: int, reason: str) -> None:
    for params, state in ((setup.hub.left, setup.left), (setup.hub.right, setup.right)):
        _reverts_at(setup.chain, t, reason, setup.ledger.conclude, params.as_tuple(), state.locks_tuple(),
                    [setup.vp.as_tuple()], sender=setup.stranger)  # fmt: skip


def test_time__virtual_expiry__opening_refused_from_expiry_second(
    virtual, open_hub, make_virtual, signed_virtual, alice, bob, ingrid, chain
):
    hub = open_hub()
    validity = _start(chain) + 1000
    vp_bob, vp_ingrid, vp_late = (make_virtual(hub, validity=validity) for _ in range(3))
    expiry = validity + vp_late.challenge_duration
    _view_at(chain, expiry - 1)
    assert tuple(virtual.settlement(vp_late.as_tuple())) == (vp_late.channel_id, False, FUND, FUND)
    # E-1: still open, for an endpoint and for a third party (validity passed).
    for vp, who in ((vp_bob, bob), (vp_ingrid, ingrid)):
        receipt = _ok_at(chain, expiry - 1, virtual.register, vp.as_tuple(), *signed_virtual(VirtualState.initial(vp)),
                         sender=who)  # fmt: skip
        assert [e.deadline for e in receipt.decode_logs(virtual.Registered)] == [expiry - 1 + vp.challenge_duration]
    # E and E+1: refused for everyone, whatever the state.
    better_for_bob = VirtualState.initial(vp_late).pay(FUND, from_alice=True)
    for t, who in ((expiry, alice), (expiry, bob), (expiry, ingrid), (expiry + 1, bob)):
        _reverts_at(chain, t, VIRTUAL_EXPIRED, virtual.register, vp_late.as_tuple(),
                    *signed_virtual(better_for_bob), sender=who)  # fmt: skip
    assert tuple(virtual.record(vp_late.channel_id)) == (0, 0, 0, False)
    assert tuple(virtual.settlement(vp_late.as_tuple())) == (vp_late.channel_id, True, FUND, FUND)
    # The two opened at E-1 are not settled by the fallback: they wait for their own deadline.
    assert tuple(virtual.settlement(vp_bob.as_tuple()))[1] is False
    assert tuple(virtual.settlement(vp_ingrid.as_tuple()))[1] is False


def test_time__virtual_expiry__ledger_conclude_waits_for_the_fallback_second(
    virtual, locked_hub, signed_virtual, alice, bob, ingrid, chain
):
    setup = locked_hub(validity_delay=5000)
    setup.register_ledgers(setup.t0)
    vp = setup.vp
    expiry = vp.validity + vp.challenge_duration
    assert setup.t0 + setup.hub.left.challenge_duration < expiry - 1  # the ledger deadlines are long past
    _view_at(chain, expiry - 1)
    assert tuple(virtual.settlement(vp.as_tuple())) == (vp.channel_id, False, FUND, FUND)
    _probe_conclude_reverts(setup, expiry - 1, VIRTUAL_NOT_SETTLED)
    before = (alice.balance, ingrid.balance, bob.balance)
    payouts = _conclude_both(setup, expiry)
    # Initial split: every lock returns exactly what each side locked.
    assert payouts == [(E, E), (E, E)]
    assert (alice.balance - before[0], ingrid.balance - before[1], bob.balance - before[2]) == (
        E, 2 * E, E)  # fmt: skip
    # The outcome is final: registration stays closed afterwards.
    _reverts_at(chain, expiry + 1, VIRTUAL_EXPIRED, virtual.register, vp.as_tuple(),
                *signed_virtual(VirtualState.initial(vp).pay(FUND, from_alice=True)), sender=bob)  # fmt: skip


def test_time__virtual_registered_one_second_before_expiry__settles_at_its_own_deadline(
    virtual, locked_hub, signed_virtual, ingrid, chain
):
    # The latest a virtual dispute can end: opened at E-1, it settles at E-1+Tv (< V + 2Tv). The expiry
    # fallback never applies to it.
    setup = locked_hub(validity_delay=5000)
    setup.register_ledgers(setup.t0)
    vp = setup.vp
    expiry = vp.validity + vp.challenge_duration
    state = VirtualState.initial(vp).pay(3 * 10**16, from_alice=True)  # Alice 0.07, Bob 0.13
    receipt = _ok_at(chain, expiry - 1, virtual.register, vp.as_tuple(), *signed_virtual(state), sender=ingrid)
    settles = expiry - 1 + vp.challenge_duration
    assert [e.deadline for e in receipt.decode_logs(virtual.Registered)] == [settles]
    assert settles < vp.validity + 2 * vp.challenge_duration
    for t, params, ledger_state in ((expiry, setup.hub.left, setup.left), (settles - 1, setup.hub.right, setup.right)):
        _reverts_at(chain, t, VIRTUAL_NOT_SETTLED, setup.ledger.conclude, params.as_tuple(),
                    ledger_state.locks_tuple(), [vp.as_tuple()], sender=setup.stranger)  # fmt: skip
    payouts = _conclude_both(setup, settles)
    a, b = 7 * 10**16, 13 * 10**16
    assert payouts == [(9 * 10**17 + a, 9 * 10**17 + b), (9 * 10**17 + a, 9 * 10**17 + b)]
    # Ingrid: b in the left channel, a in the right one -> exactly her 2 ETH back.
    assert payouts[0][1] + payouts[1][0] == 2 * E


# --- ledger conclude with a lock whose virtual channel settles at that second --------------------------


@pytest.mark.parametrize(
    ("ledgers_at", "reason_before"),
    [
        # Ledger deadline t0+7200 == the virtual deadline: both clocks open conclusion in the same second.
        (3600, LEDGER_PERIOD_NOT_OVER),
        # Ledger deadline t0+3600 is long past: the virtual channel alone holds conclusion back.
        (0, VIRTUAL_NOT_SETTLED),
    ],
    ids=["ledger_deadline_same_second", "ledger_deadline_earlier"],
)
def test_time__ledger_conclude_with_lock__opens_the_second_the_virtual_channel_settles(
    ledger, virtual, locked_hub, signed_virtual, alice, bob, ingrid, chain, ledgers_at, reason_before
):
    setup = locked_hub(validity_delay=86400, virtual_duration=7200)
    vp, t0 = setup.vp, setup.t0
    state = VirtualState.initial(vp).pay(8 * 10**16, from_alice=False)  # Alice 0.18, Bob 0.02
    receipt = _ok_at(chain, t0, virtual.register, vp.as_tuple(), *signed_virtual(state), sender=alice)
    settles = t0 + 7200
    assert [e.deadline for e in receipt.decode_logs(virtual.Registered)] == [settles]
    setup.register_ledgers(t0 + ledgers_at)
    assert ledger.dispute(setup.hub.left.channel_id)[1] == t0 + ledgers_at + 3600
    _view_at(chain, settles - 1)
    assert tuple(virtual.settlement(vp.as_tuple()))[1] is False
    _probe_conclude_reverts(setup, settles - 1, reason_before)
    before = (alice.balance, ingrid.balance, bob.balance)
    payouts = _conclude_both(setup, settles)
    a, b = 18 * 10**16, 2 * 10**16
    assert payouts == [(9 * 10**17 + a, 9 * 10**17 + b), (9 * 10**17 + a, 9 * 10**17 + b)]
    assert (alice.balance - before[0], ingrid.balance - before[1], bob.balance - before[2]) == (
        9 * 10**17 + a, 2 * E, 9 * 10**17 + b)  # fmt: skip
