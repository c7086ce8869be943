"""The watchtower against an adversary: the counterparty registers old states while ``Watchtower.poll``
runs from the ``watcher`` account on the store of the honest party.

Every test asserts the exact actions reported, the decoded events of the watchtower's transactions and
the balances before/after: the honest party ends with its latest balance without sending a transaction
(its nonce is unchanged), and the watcher's balance drops by exactly the fees of its own transactions.
"""

from __future__ import annotations

from dataclasses import replace

import ape
import pytest

from perun_vyper import ChannelRecord, Domain, LedgerState, SignedState, VirtualState, open_virtual
from perun_vyper.core.app import AppParams, AppState
from perun_vyper.core.display import utc
from perun_vyper.watchtower import Watchtower, summary
from perun_vyper.watchtower.actions import (
    Closed,
    Concluded,
    Failed,
    Observed,
    PollFailed,
    Refuted,
    VirtualRegistered,
    Waiting,
)
from tests.support.checks import assert_concluded, assert_settled
from tests.support.constants import (
    HOUR,
    LEDGER_PERIOD_OVER,
    LEDGER_STALE,
    LEDGER_WRONG_SIGNER,
    LOCKS_NOT_REGISTERED,
    VIRTUAL_STALE,
    E,
    M,
)

FUND_ALICE = 400 * M  # Alice's virtual funding (asymmetric, so a lock split the wrong way round fails)
FUND_BOB = 200 * M


def _hash(receipt) -> str:
    return str(receipt.txn_hash).lower()


class Wallets:
    """Balances and nonces at a point in time, to compare with later."""

    def __init__(self, *parties):
        self._start = {p.address: (p.balance, p.nonce) for p in parties}

    def gained(self, party) -> int:
        return party.balance - self._start[party.address][0]

    def sent(self, party) -> int:
        return party.nonce - self._start[party.address][1]


def _fees(chain, actions) -> int:
    """What the watcher paid for the transactions behind ``actions``."""
    hashes = [a.tx for a in actions if isinstance(a, Refuted | Closed | VirtualRegistered | Concluded | Failed)]
    return sum(chain.get_receipt(tx).total_fees_paid for tx in hashes if tx is not None)


def _registered(ledger, receipt) -> list[tuple]:
    return [(bytes(e.channel), e.version, e.deadline) for e in receipt.decode_logs(ledger.Registered)]


def _history(state: LedgerState, *payments: tuple[int, int]) -> list[LedgerState]:
    """``state`` and one new version per payment ``(amount, from_side)``."""
    states = [state]
    for amount, side in payments:
        states.append(states[-1].pay(amount, side))
    return states


# --- ledger channels -------------------------------------------------------------------------------


def test_watchtower__stale_ledger_registration__answered_with_latest_and_concluded(
    ledger, chain, open_channel, signed, remember_ledger, tower, alice, bob, watcher
):
    params, initial = open_channel(E, E)
    s0, s1, s2, s3 = _history(initial, (200 * M, 0), (500 * M, 1), (100 * M, 1))  # Alice: 0.8, 1.3, 1.4
    remember_ledger(params, alice, [s0, s1, s2, s3])
    wallets = Wallets(alice, bob, watcher)

    stale = ledger.register(params.as_tuple(), *signed(s1), sender=bob)
    deadline = stale.timestamp + HOUR
    assert _registered(ledger, stale) == [(params.channel_id, 1, deadline)]

    actions = tower.poll()
    refute = chain.get_receipt(actions[1].tx)
    assert actions == [
        Observed("ledger", params.channel_id, 1, deadline, stale.block_number, _hash(stale)),
        Refuted(params.channel_id, 1, 3, _hash(refute)),
    ]
    assert refute.sender == watcher.address
    assert _registered(ledger, refute) == [(params.channel_id, 3, deadline)]  # the deadline is not extended
    assert tuple(ledger.dispute(params.channel_id)) == (3, deadline, bytes(32))  # no locks: no locks hash
    assert tower.poll() == []  # answered: nothing more to do, no second transaction

    chain.mine(timestamp=deadline - 1)
    assert tower.poll() == []
    chain.mine(timestamp=deadline)
    (concluded,) = done = tower.poll()
    assert concluded == Concluded(params.channel_id, 3, (1400 * M, 600 * M), concluded.tx)
    assert_concluded(ledger, chain.get_receipt(concluded.tx), params, 3, 1400 * M, 600 * M)
    assert_settled(ledger, params)
    assert tower.poll() == []

    assert (wallets.gained(alice), wallets.sent(alice)) == (1400 * M, 0)
    assert wallets.gained(bob) == 600 * M - stale.total_fees_paid
    fees = _fees(chain, actions + done)
    assert fees > 0 and wallets.gained(watcher) == -fees and wallets.sent(watcher) == 2
    assert summary(actions + done) == "3 actions: 1 Observed, 1 Refuted, 1 Concluded"


def test_watchtower__stale_registration_when_latest_is_final__answered_with_close(
    ledger, chain, open_channel, signed, remember_ledger, tower, alice, bob, watcher
):
    params, initial = open_channel(E, E)
    s0, s1, s2 = _history(initial, (200 * M, 0), (700 * M, 1))  # Alice: 0.8, then 1.5
    final = s2.finalized()
    remember_ledger(params, alice, [s0, s1, s2, final])
    wallets = Wallets(alice, bob, watcher)

    stale = ledger.register(params.as_tuple(), *signed(s1), sender=bob)
    deadline = stale.timestamp + HOUR
    actions = tower.poll()
    close = chain.get_receipt(actions[1].tx)
    assert actions == [
        Observed("ledger", params.channel_id, 1, deadline, stale.block_number, _hash(stale)),
        Closed(params.channel_id, 1, 3, (1500 * M, 500 * M), _hash(close)),
    ]
    assert close.sender == watcher.address
    assert_concluded(ledger, close, params, 3, 1500 * M, 500 * M)  # at once, long before the deadline
    assert close.timestamp < deadline
    assert_settled(ledger, params)
    assert tower.poll() == []

    assert (wallets.gained(alice), wallets.sent(alice)) == (1500 * M, 0)
    assert wallets.gained(bob) == 500 * M - stale.total_fees_paid
    assert wallets.gained(watcher) == -close.total_fees_paid and wallets.sent(watcher) == 1


def test_watchtower__older_registration_after_refute__reverts_stale_and_watcher_idle(
    ledger, chain, open_channel, signed, remember_ledger, tower, alice, bob, watcher
):
    params, initial = open_channel(E, E)
    s0, s1, s2, s3 = _history(initial, (300 * M, 0), (100 * M, 0), (600 * M, 1))  # Alice: 0.7, 0.6, 1.2
    remember_ledger(params, alice, [s0, s1, s2, s3])
    wallets = Wallets(alice, watcher)

    stale = ledger.register(params.as_tuple(), *signed(s2), sender=bob)
    deadline = stale.timestamp + HOUR
    first = tower.poll()
    assert [type(a) for a in first] == [Observed, Refuted]
    assert first[1] == Refuted(params.channel_id, 2, 3, first[1].tx)

    # Bob tries again, with an even older state and with the one already refuted: both stale.
    head = chain.blocks.head.number
    for old in (s1, s2):
        with ape.reverts(LEDGER_STALE):
            ledger.register(params.as_tuple(), *signed(old), sender=bob)
    assert chain.blocks.head.number == head + 2  # both were mined (and reverted) on Bob's account
    assert tower.poll() == []  # no event, nothing to answer
    assert tuple(ledger.dispute(params.channel_id)) == (3, deadline, bytes(32))

    chain.mine(timestamp=deadline)
    (concluded,) = tower.poll()
    assert concluded == Concluded(params.channel_id, 3, (1200 * M, 800 * M), concluded.tx)
    assert (wallets.gained(alice), wallets.sent(alice)) == (1200 * M, 0)
    assert wallets.gained(watcher) == -_fees(chain, [*first, concluded]) and wallets.sent(watcher) == 2


def test_watchtower__started_late__answers_registration_made_before_it_ran(
    ledger, virtual, store, chain, open_channel, signed, remember_ledger, alice, bob, watcher
):
    params, initial = open_channel(E, 2 * E)
    s0, s1, s2 = _history(initial, (100 * M, 1), (900 * M, 1))  # Alice: 1.1, then 2.0
    remember_ledger(params, alice, [s0, s1, s2])
    wallets = Wallets(alice, watcher)
    stale = ledger.register(params.as_tuple(), *signed(s0), sender=bob)
    deadline = stale.timestamp + HOUR
    chain.mine(timestamp=deadline - 60)  # most of the challenge period has passed

    late = Watchtower(store, ledger, virtual, watcher)  # events from now on: the registration is not among them
    assert late.next_block == chain.blocks.height + 1
    (refuted,) = late.poll()
    assert refuted == Refuted(params.channel_id, 0, 2, refuted.tx)
    assert _registered(ledger, chain.get_receipt(refuted.tx)) == [(params.channel_id, 2, deadline)]

    # A watchtower told to start at the registration's block reports it too, and finds nothing to do.
    replay = Watchtower(store, ledger, virtual, watcher, start_block=stale.block_number)
    assert replay.poll() == [
        Observed("ledger", params.channel_id, 0, deadline, stale.block_number, _hash(stale)),
        Observed("ledger", params.channel_id, 2, deadline, chain.get_receipt(refuted.tx).block_number, refuted.tx),
    ]

    chain.mine(timestamp=deadline)
    (concluded,) = late.poll()
    assert concluded == Concluded(params.channel_id, 2, (2 * E, E), concluded.tx)
    assert replay.poll() == []  # already concluded
    assert (wallets.gained(alice), wallets.sent(alice)) == (2 * E, 0)
    assert wallets.gained(watcher) == -_fees(chain, [refuted, concluded])


def test_watchtower__registered_state_newer_than_store__not_answered_then_concluded_by_registered_outcome(
    ledger, chain, open_channel, signed, remember_ledger, tower, alice, bob, watcher
):
    params, initial = open_channel(E, E)
    s0, s1, s2, s3 = _history(initial, (200 * M, 0), (100 * M, 1), (400 * M, 0))  # Alice: 0.8, 0.9, 0.5
    remember_ledger(params, alice, [s0, s1, s2])  # the store lost v3 (which both signed)
    wallets = Wallets(alice, watcher)

    stale = ledger.register(params.as_tuple(), *signed(s3), sender=bob)
    deadline = stale.timestamp + HOUR
    assert tower.poll() == [
        Observed("ledger", params.channel_id, 3, deadline, stale.block_number, _hash(stale)),
        Waiting(params.channel_id, "registered v3 is not in the store (latest: v2): nothing to answer"),
    ]
    assert tower.poll() == []  # reported once, no transaction: an older state cannot replace v3
    assert wallets.sent(watcher) == 0

    # The outcome was settled at registration and v3 has no locks: concluding needs nothing from the
    # store, so the watchtower releases the funds by the registered v3.
    chain.mine(timestamp=deadline)
    (concluded,) = tower.poll()
    assert concluded == Concluded(params.channel_id, 3, (500 * M, 1500 * M), concluded.tx)
    assert_concluded(ledger, chain.get_receipt(concluded.tx), params, 3, 500 * M, 1500 * M)
    assert_settled(ledger, params)
    assert tower.poll() == []
    assert (wallets.gained(alice), wallets.sent(alice)) == (500 * M, 0)
    assert wallets.gained(watcher) == -_fees(chain, [concluded]) and wallets.sent(watcher) == 1


def test_watchtower__store_holds_badly_signed_state__revert_reported_once_not_retried(
    ledger, chain, store, open_channel, sign, signed, remember_ledger, tower, alice, bob, watcher
):
    params, initial = open_channel(E, E)
    s0, s1 = _history(initial, (200 * M, 0))
    remember_ledger(params, alice, [s0])
    sig_a = sign(s1, alice)
    from perun_vyper import SignedState

    store.save_state(params.channel_id, SignedState(s1, sig_a, sig_a))  # B's signature is A's: corrupt
    stale = ledger.register(params.as_tuple(), *signed(s0), sender=bob)
    nonce = watcher.nonce

    observed, failed = tower.poll()
    assert isinstance(observed, Observed)
    assert failed == Failed(params.channel_id, "register", LEDGER_WRONG_SIGNER, failed.tx)
    assert failed.tx is not None and chain.get_receipt(failed.tx).failed
    assert watcher.nonce == nonce + 1
    for _ in range(2):
        assert tower.poll() == []  # the same transaction in the same situation is not sent again
    assert watcher.nonce == nonce + 1

    chain.mine(timestamp=stale.timestamp + HOUR)
    waiting, concluded = tower.poll()  # by the registered version 0, which the store holds
    assert waiting == Waiting(params.channel_id, "latest v1 came too late: the challenge period is over")
    assert concluded == Concluded(params.channel_id, 0, (E, E), concluded.tx)


def test_watchtower__answer_mined_at_deadline__reverts_then_concludes_registered_state(
    ledger, chain, open_channel, signed, remember_ledger, tower, alice, bob, watcher
):
    params, initial = open_channel(E, E)
    s0, s1, s2 = _history(initial, (200 * M, 0), (500 * M, 1))
    remember_ledger(params, alice, [s0, s1, s2])
    stale = ledger.register(params.as_tuple(), *signed(s1), sender=bob)
    deadline = stale.timestamp + HOUR
    chain.mine(timestamp=deadline - 1)

    # The head is still before the deadline, but the answer is mined at it: too late (a race with time).
    chain.pending_timestamp = deadline
    observed, failed = tower.poll()
    assert observed == Observed("ledger", params.channel_id, 1, deadline, stale.block_number, _hash(stale))
    assert failed == Failed(params.channel_id, "register", LEDGER_PERIOD_OVER, failed.tx)
    assert chain.get_receipt(failed.tx).timestamp == deadline

    # Now the head is at the deadline: the watchtower concludes by the registered state (Bob's v1).
    waiting, concluded = tower.poll()
    assert waiting == Waiting(params.channel_id, "latest v2 came too late: the challenge period is over")
    assert concluded == Concluded(params.channel_id, 1, (800 * M, 1200 * M), concluded.tx)
    assert_settled(ledger, params)


# --- virtual channels ------------------------------------------------------------------------------


@pytest.fixture
def hub_with_virtual(open_hub, make_virtual):
    """A funded hub, a virtual channel (Alice 0.4, Bob 0.2) and both ledger channels' lock states."""
    hub = open_hub()
    vparams = make_virtual(hub, FUND_ALICE, FUND_BOB)
    left = open_virtual(hub.left_state, hub.left, vparams)
    right = open_virtual(hub.right_state, hub.right, vparams)
    v0 = VirtualState.initial(vparams)
    v1 = v0.pay(100 * M, from_alice=True)  # (0.3, 0.3)
    v2 = v1.pay(150 * M, from_alice=True)  # (0.15, 0.45)
    return hub, vparams, left, right, [v0, v1, v2]


def test_watchtower__stale_virtual_registration__answered_and_both_ledgers_concluded_split(
    ledger, virtual, chain, hub_with_virtual, signed, signed_virtual, remember_ledger, remember_virtual,
    tower, alice, bob, ingrid, watcher,
):  # fmt: skip
    hub, vparams, left, right, (v0, v1, v2) = hub_with_virtual
    # The watchtower guards Bob's channels (Ingrid-Bob, the virtual channel) and Ingrid's Alice-Ingrid.
    remember_ledger(hub.right, bob, [hub.right_state, right])
    remember_virtual(vparams, bob, [v0, v1, v2])
    remember_ledger(hub.left, ingrid, [hub.left_state, left])
    wallets = Wallets(alice, bob, ingrid, watcher)

    # Alice registers the old virtual state v1 and her ledger channel; Ingrid registers hers with Bob.
    stale = virtual.register(vparams.as_tuple(), *signed_virtual(v1), sender=alice)
    left_reg = ledger.register(hub.left.as_tuple(), *signed(left, alice, ingrid), sender=alice)
    right_reg = ledger.register(hub.right.as_tuple(), *signed(right, ingrid, bob), sender=ingrid)
    v_deadline = stale.timestamp + HOUR
    deadlines = {hub.left.channel_id: left_reg.timestamp + HOUR, hub.right.channel_id: right_reg.timestamp + HOUR}

    actions = tower.poll()
    answer = chain.get_receipt(actions[3].tx)
    assert actions == [
        Observed("virtual", vparams.channel_id, 1, v_deadline, stale.block_number, _hash(stale)),
        Observed("ledger", hub.left.channel_id, 1, deadlines[hub.left.channel_id], left_reg.block_number,
                 _hash(left_reg)),
        Observed("ledger", hub.right.channel_id, 1, deadlines[hub.right.channel_id], right_reg.block_number,
                 _hash(right_reg)),
        VirtualRegistered(vparams.channel_id, 1, 2, _hash(answer)),
    ]  # fmt: skip
    events = answer.decode_logs(virtual.Registered)
    assert [(bytes(e.channel), e.version, e.deadline, e.balance_alice, e.balance_bob, e.is_final) for e in events] == [
        (vparams.channel_id, 2, v_deadline, 150 * M, 450 * M, False)
    ]
    assert tuple(virtual.record(vparams.channel_id)) == (2, v_deadline, 150 * M, False)
    # Alice's second try with the old state is stale; the watchtower has nothing to do.
    with ape.reverts(VIRTUAL_STALE):
        virtual.register(vparams.as_tuple(), *signed_virtual(v1), sender=alice)
    assert tower.poll() == []

    chain.mine(timestamp=max(v_deadline, *deadlines.values()))
    done = tower.poll()
    assert {a.channel: replace(a, tx="") for a in done} == {
        # Alice-Ingrid: Alice 0.6 + her virtual 0.15; Ingrid 0.8 + Bob's virtual 0.45.
        hub.left.channel_id: Concluded(hub.left.channel_id, 1, (750 * M, 1250 * M), ""),
        # Ingrid-Bob: Ingrid 0.6 + Alice's virtual 0.15; Bob 0.8 + his virtual 0.45.
        hub.right.channel_id: Concluded(hub.right.channel_id, 1, (750 * M, 1250 * M), ""),
    }
    for action in done:
        params = hub.left if action.channel == hub.left.channel_id else hub.right
        assert_concluded(ledger, chain.get_receipt(action.tx), params, 1, 750 * M, 1250 * M)
        assert_settled(ledger, params)
    assert tower.poll() == []

    assert (wallets.gained(bob), wallets.sent(bob)) == (1250 * M, 0)  # his latest: 0.8 + 0.45
    assert wallets.gained(ingrid) == 2 * E - right_reg.total_fees_paid  # neutral: her deposits back
    assert wallets.sent(ingrid) == 1
    assert wallets.gained(watcher) == -_fees(chain, actions + done) and wallets.sent(watcher) == 3


def test_watchtower__ledger_conclusion_waits_for_virtual__registers_latest_at_validity(
    ledger, virtual, chain, hub_with_virtual, signed, remember_ledger, remember_virtual, tower,
    bob, ingrid, watcher,
):  # fmt: skip
    hub, vparams, _, right, (v0, v1, v2) = hub_with_virtual
    remember_ledger(hub.right, bob, [hub.right_state, right])
    remember_virtual(vparams, bob, [v0, v1, v2])
    wallets = Wallets(bob, watcher)

    # Ingrid wants her collateral: she registers the ledger state with the lock. Nobody registered the
    # virtual channel, and before its validity only Alice or Bob may.
    reg = ledger.register(hub.right.as_tuple(), *signed(right, ingrid, bob), sender=ingrid)
    deadline = reg.timestamp + HOUR
    assert vparams.validity > deadline
    not_yet = f"a ledger dispute waits for this channel; only Alice or Bob may register before {utc(vparams.validity)}"
    assert tower.poll() == [
        Observed("ledger", hub.right.channel_id, 1, deadline, reg.block_number, _hash(reg)),
        Waiting(vparams.channel_id, not_yet),
    ]
    chain.mine(timestamp=deadline)
    unsettled = f"conclusion waits for virtual channel 0x{vparams.channel_id.hex()} to settle"
    assert tower.poll() == [Waiting(hub.right.channel_id, unsettled)]

    chain.mine(timestamp=vparams.validity)
    (registered,) = tower.poll()
    assert registered == VirtualRegistered(vparams.channel_id, None, 2, registered.tx)
    receipt = chain.get_receipt(registered.tx)
    # Mined in the block after the one at `validity`: Anvil may stamp it a wall-clock second later.
    assert vparams.validity <= receipt.timestamp <= vparams.validity + 5
    v_deadline = receipt.timestamp + HOUR
    events = receipt.decode_logs(virtual.Registered)
    assert [(e.version, e.deadline, e.balance_alice, e.balance_bob) for e in events] == [
        (2, v_deadline, 150 * M, 450 * M)
    ]
    assert tower.poll() == []  # still waiting for the virtual deadline: reported once already

    chain.mine(timestamp=v_deadline)
    (concluded,) = tower.poll()
    assert concluded == Concluded(hub.right.channel_id, 1, (750 * M, 1250 * M), concluded.tx)
    assert (wallets.gained(bob), wallets.sent(bob)) == (1250 * M, 0)
    assert wallets.gained(watcher) == -_fees(chain, [registered, concluded])


def test_watchtower__registered_locks_not_in_store__waits_and_sends_nothing(
    ledger, chain, hub_with_virtual, signed, remember_ledger, tower, bob, ingrid, watcher
):
    hub, vparams, _, right, _ = hub_with_virtual
    remember_ledger(hub.right, bob, [hub.right_state])  # Bob's store lost the lock-carrying v1 (both signed it)
    wallets = Wallets(bob, watcher)

    reg = ledger.register(hub.right.as_tuple(), *signed(right, ingrid, bob), sender=ingrid)
    deadline = reg.timestamp + HOUR
    assert tuple(ledger.dispute(hub.right.channel_id)) == (1, deadline, right.locks_hash())
    assert tower.poll() == [
        Observed("ledger", hub.right.channel_id, 1, deadline, reg.block_number, _hash(reg)),
        Waiting(hub.right.channel_id, "registered v1 is not in the store (latest: v0): nothing to answer"),
    ]
    # Past the deadline the registered locks are needed to conclude, and the store does not have them.
    chain.mine(timestamp=deadline)
    missing = "cannot conclude: the locks of the registered v1 are not in the store"
    assert tower.poll() == [Waiting(hub.right.channel_id, missing)]
    assert tower.poll() == []  # reported once
    assert (wallets.gained(watcher), wallets.sent(watcher)) == (0, 0)
    assert tuple(ledger.holdings(hub.right.channel_id)) == (E, E, False)

    # Whoever holds the locks concludes once the virtual channel settled (at expiry, nobody registered it);
    # other locks than the registered ones are refused.
    chain.mine(timestamp=vparams.expiry)
    with ape.reverts(LOCKS_NOT_REGISTERED):
        ledger.conclude(hub.right.as_tuple(), sender=ingrid)
    receipt = ledger.conclude(hub.right.as_tuple(), right.locks_tuple(), [vparams.as_tuple()], sender=ingrid)
    assert_concluded(ledger, receipt, hub.right, 1, E, E)  # the initial split: each side its lock back
    assert_settled(ledger, hub.right)
    assert tower.poll() == []
    assert (wallets.gained(bob), wallets.sent(bob)) == (E, 0)


def test_watchtower__run__stops_after_max_actions_or_time(
    ledger, chain, open_channel, signed, remember_ledger, tower, alice, bob
):
    params, initial = open_channel(E, E)
    s0, s1 = _history(initial, (200 * M, 1))
    remember_ledger(params, alice, [s0, s1])
    assert tower.run(0.05, stop_after=0.2) == []
    ledger.register(params.as_tuple(), *signed(s0), sender=bob)
    seen = []
    actions = tower.run(0.05, stop_after=30, max_actions=2, on_action=seen.append)
    assert [type(a) for a in actions] == [Observed, Refuted] and seen == actions
    assert replace(actions[1], tx="") == Refuted(params.channel_id, 0, 1, "")


def test_watchtower__store_holds_an_app_channel__ledger_registration_answered_app_channel_left_alone(
    ledger, chain, open_channel, signed, remember_ledger, tower, store, alice, bob
):
    app = AppParams(str(alice.address), str(bob.address), "0x" + "5a" * 20, nonce=chain.blocks.height)
    record = ChannelRecord(app.channel_id, "app", app, Domain.app(chain.chain_id, "0x" + "a9" * 20), str(alice.address))
    store.add_channel(record)  # before the ledger channel: readers of all channels meet it first
    kept = SignedState(AppState.initial(app.channel_id, E, E, b"\x01\x02"), b"a" * 65, b"b" * 65)
    store.save_state(app.channel_id, kept)
    params, initial = open_channel(E, E)
    s0, s1 = _history(initial, (200 * M, 1))
    remember_ledger(params, alice, [s0, s1])
    stale = ledger.register(params.as_tuple(), *signed(s0), sender=bob)

    actions = tower.poll()
    assert actions == [
        Observed("ledger", params.channel_id, 0, stale.timestamp + HOUR, stale.block_number, _hash(stale)),
        Refuted(params.channel_id, 0, 1, actions[1].tx),
    ]
    assert ledger.dispute(params.channel_id)[0] == 1  # refuted: the latest version is registered
    assert tower.poll() == []
    assert store.channels("app") == [record] and store.history(app.channel_id) == [kept]


class _FlakyLedger:
    """The ledger adjudicator, except that ``dispute`` of one channel fails like an unreachable node."""

    def __init__(self, ledger, broken: bytes):
        self._ledger, self._broken = ledger, broken

    def __getattr__(self, name):
        return getattr(self._ledger, name)

    def dispute(self, channel, **kwargs):
        if channel == self._broken:
            raise ape.exceptions.ProviderError("connection refused")
        return self._ledger.dispute(channel, **kwargs)


def test_watchtower__read_error_on_one_channel__reported_once_others_answered(
    ledger, virtual, store, chain, open_channel, signed, remember_ledger, alice, bob, watcher
):
    broken, broken_initial = open_channel(E, E)
    params, initial = open_channel(E, E)
    s0, s1 = _history(initial, (200 * M, 1))
    remember_ledger(broken, alice, [broken_initial])
    remember_ledger(params, alice, [s0, s1])
    tower = Watchtower(store, _FlakyLedger(ledger, broken.channel_id), virtual, watcher)
    ledger.register(params.as_tuple(), *signed(s0), sender=bob)

    observed, *answers = tower.poll()
    assert isinstance(observed, Observed) and observed.channel == params.channel_id
    # One answer per channel, in the store's order of channels (by id: the nonces decide it).
    by_channel = {answer.channel: answer for answer in answers}
    assert len(answers) == len(by_channel) == 2
    assert by_channel[broken.channel_id] == Waiting(broken.channel_id, "cannot read the channel: connection refused")
    refuted = by_channel[params.channel_id]
    assert refuted == Refuted(params.channel_id, 0, 1, refuted.tx)
    assert tower.poll() == []  # the same error is not reported again


def test_watchtower__run__poll_error_reported_and_loop_goes_on(tower, monkeypatch):
    calls = []

    def poll():
        calls.append(None)
        if len(calls) == 1:
            raise ape.exceptions.ProviderError("node down")
        return []

    monkeypatch.setattr(tower, "poll", poll)
    assert tower.run(0.01, stop_after=0.05) == [PollFailed("node down")]
    assert len(calls) >= 2  # polled again after the failure
