"""Regression tests of the review findings, each on Anvil with the honest party's exact payout.

Finding 1 (SPEC 11.1): a party signs nothing the chain could no longer enforce: (a) Ingrid's releases
after Alice registered her leg, (b) a lock after a leg was registered, (c) Bob's lock or virtual payment
after Ingrid registered his leg; payments after a registration or close to a virtual expiry; a state
signed just before a registration is still enforced. Finding 2 (SPEC 9.1): a lock follows the virtual
outcome only in a leg of the asset, ledger adjudicator and chain the virtual channel names. Finding 6:
deposits count only with enough confirmations. (Finding 5 is a documentation decision.)

``watcher`` funds every ledger channel (a deposit is credited to the side named, whoever sends it) and
sends every transaction a party need not send itself, so a party's balance changes only by its payouts
and by the fees of the few transactions it sends itself, which ``Net.charge`` records.
"""

from __future__ import annotations

import itertools

import ape
import pytest

from perun_vyper import (
    ETH,
    Domain,
    Hub,
    InvalidParams,
    LedgerChannel,
    LedgerState,
    RefusedUpdate,
    Store,
    Unenforceable,
    Update,
    VirtualChannel,
    VirtualFinal,
    VirtualParams,
    VirtualState,
    close_virtual,
    compact,
    exchange,
    lock_for,
    open_virtual,
    open_virtual_channel,
    pay,
    sign_state,
)
from perun_vyper.chain import REACTION_TIME
from tests.support.constants import VIRTUAL_CONCLUDED, E

FA, FB = 3 * 10**17, 10**17  # Alice's and Bob's virtual funding
TOTAL = FA + FB
P = 5 * 10**16  # a payment
HOUR, DAY = 3600, 86400
_nonces = itertools.count(1)


# --- helpers ---------------------------------------------------------------------------------------


def _snapshot(store: Store) -> list:
    """Everything a store holds, to show that a refusal wrote nothing."""
    return [(record, store.history(record.channel_id)) for record in store.channels()]


def _forge(state, account, domain: Domain, release: VirtualFinal | None = None) -> Update:
    """An update ``account`` signed with its key, whatever its own client would say."""
    return Update(state, sign_state(account.private_key, state, domain), release)


def _final(state: VirtualState, alice, bob, virtual_domain: Domain) -> VirtualFinal:
    """A virtual state signed by Alice and Bob with their keys (not their clients)."""
    return VirtualFinal(
        state, sign_state(alice.private_key, state, virtual_domain), sign_state(bob.private_key, state, virtual_domain)
    )


def _refused(action, *args, channel: bytes) -> str:
    """Run ``action(*args)``: it must raise Unenforceable naming ``channel``. Returns the situation."""
    with pytest.raises(Unenforceable) as refused:
        action(*args)
    assert refused.value.channel == channel
    return refused.value.situation


def _vargs(evidence: VirtualFinal) -> tuple:
    return evidence.state.as_tuple(), compact(evidence.sig_alice), compact(evidence.sig_bob)


def _concluded(adjudicator, receipt) -> tuple[int, int]:
    (event,) = receipt.decode_logs(adjudicator.Concluded)
    return int(event.payout_a), int(event.payout_b)


def _fund(adjudicator, params, side: int, amount: int, watcher) -> None:
    if params.is_eth:
        adjudicator.deposit(params.channel_id, side, value=amount, sender=watcher)
        return
    token = ape.Contract(params.asset)
    token.mint(watcher, amount, sender=watcher)
    token.approve(adjudicator.address, amount, sender=watcher)
    adjudicator.deposit_token(params.as_tuple(), side, amount, sender=watcher)


def _vparams(left, right, validity: int, **named) -> VirtualParams:
    """A virtual channel over ``left`` (Alice, Ingrid) and ``right`` (Ingrid, Bob); ``named`` gives its
    asset, ledger_adjudicator and chain_id."""
    people = (left.participant_a, right.participant_b, left.participant_b)
    return VirtualParams(*people, left.channel_id, right.channel_id, FA, FB, validity, HOUR, next(_nonces), **named)


def _on(adjudicator, chain_id: int) -> dict:
    return {"ledger_adjudicator": adjudicator.address, "chain_id": chain_id}


def _funded_legs(adjudicator, make_params, alice, bob, ingrid, watcher, right_asset=ETH):
    """(Alice, Ingrid) in ETH and (Ingrid, Bob) in ``right_asset`` on ``adjudicator``, funded (E, E)."""
    legs = ((make_params(alice, ingrid), (alice, ingrid)), (make_params(ingrid, bob, asset=right_asset), (ingrid, bob)))
    for params, _ in legs:
        for side in (0, 1):
            _fund(adjudicator, params, side, E, watcher)
    return legs


def _lock_state(params, virtual: VirtualParams) -> LedgerState:
    """Version 1 of a channel funded (E, E), holding ``virtual``'s lock."""
    lock = lock_for(params, virtual)
    return LedgerState(params.channel_id, 1, E - lock.amount_a, E - lock.amount_b, E, E, (lock,))


def _settle_on_chain(adjudicator, domain, virtual, virtual_domain, legs, vp, chain, alice, bob, watcher):
    """Register a final virtual state paying Bob everything, then register both legs' lock states (signed
    with the participants' keys, no client) and conclude them. Returns each leg's Concluded payouts."""
    final = _final(VirtualState(vp.channel_id, 1, 0, vp.total, True), alice, bob, virtual_domain)
    virtual.register(vp.as_tuple(), *_vargs(final), sender=watcher)
    deadline = 0
    for params, (a, b) in legs:
        state = _lock_state(params, vp)
        signatures = (compact(sign_state(account.private_key, state, domain)) for account in (a, b))
        adjudicator.register(params.as_tuple(), state.as_tuple(), *signatures, sender=watcher)
        deadline = max(deadline, int(adjudicator.dispute(params.channel_id)[1]))
    chain.pending_timestamp = deadline
    return [
        _concluded(
            adjudicator,
            adjudicator.conclude(params.as_tuple(), [lock_for(params, vp).as_tuple()], [vp.as_tuple()], sender=watcher),
        )
        for params, _ in legs
    ]


class Net:
    """Alice - Ingrid - Bob on Anvil: ``alice`` (Alice's side of Alice-Ingrid), ``left`` and ``right``
    (Ingrid's sides, in her hub), ``bob`` (Bob's side of Ingrid-Bob); each channel funded (E, E)."""

    def __init__(self, tmp_path, chain, virtual_domain, alice, bob, ingrid, watcher, legs) -> None:
        (left, left_domain, left_ledger), (right, right_domain, right_ledger) = legs
        self.chain = chain
        self.hub = Hub(
            ingrid.private_key,
            Store(tmp_path / "ingrid.db"),
            virtual_domain=virtual_domain,
            max_validity=30 * DAY,
            clock=lambda: chain.pending_timestamp,
            adjudicator=left_ledger,
        )
        self.alice = LedgerChannel.open(
            left, left_domain, alice.private_key, Store(tmp_path / "alice.db"), E, E, adjudicator=left_ledger
        )
        self.left = self.hub.open_channel(left, left_domain, E, E)
        if right_ledger is left_ledger:
            self.right = self.hub.open_channel(right, right_domain, E, E)
        else:  # Ingrid's leg on another deployment reads that one
            self.right = LedgerChannel.open(
                right, right_domain, ingrid.private_key, self.hub.store, E, E, adjudicator=right_ledger
            )
            self.hub.channels[self.right.channel_id] = self.right
        self.bob = LedgerChannel.open(
            right, right_domain, bob.private_key, Store(tmp_path / "bob.db"), E, E, adjudicator=right_ledger
        )
        exchange(self.alice, self.left)
        exchange(self.right, self.bob)
        for params, _, adjudicator in legs:
            for side in (0, 1):
                _fund(adjudicator, params, side, E, watcher)
        self.start = {account.address: account.balance for account in (alice, bob, ingrid)}
        self.fees = dict.fromkeys(self.start, 0)

    def charge(self, account, receipt):
        """Record the fee of a transaction ``account`` sent itself."""
        self.fees[account.address] += receipt.total_fees_paid
        return receipt

    def gain(self, account) -> int:
        """What ``account`` received in ETH since funding, its own fees aside."""
        return account.balance - self.start[account.address] + self.fees[account.address]

    def virtual(self, **kwargs) -> VirtualParams:
        """A virtual channel over both legs: validity a day ahead, the legs' asset, adjudicator, chain."""
        domain = self.alice.domain
        kwargs.setdefault("asset", self.alice.params.asset)
        kwargs.setdefault("ledger_adjudicator", domain.verifying_contract)
        kwargs.setdefault("chain_id", domain.chain_id)
        return _vparams(self.alice.params, self.bob.params, self.chain.pending_timestamp + DAY, **kwargs)

    def dispute_both_legs(self, adjudicator, watcher) -> tuple[tuple[int, int], tuple[int, int]]:
        """Alice's and Bob's watcher register their legs; once both periods are over Ingrid concludes
        both. Returns the Concluded payouts of (Alice-Ingrid, Ingrid-Bob)."""
        self.alice.register(sender=watcher)
        self.bob.register(sender=watcher)
        self.chain.pending_timestamp = max(self.alice.dispute()[1], self.bob.dispute()[1])
        left = _concluded(adjudicator, self.left.conclude(sender=watcher))
        return left, _concluded(adjudicator, self.right.conclude(sender=watcher))


@pytest.fixture
def build(tmp_path, chain, virtual_domain, make_params, domain, ledger, alice, bob, ingrid, watcher):
    """``build(right_asset=ETH, right_on=(domain, ledger))``: a funded network; the Ingrid-Bob leg may
    hold another asset or live on another deployment."""

    def _build(right_asset=ETH, right_on=None) -> Net:
        right_domain, right_ledger = right_on or (domain, ledger)
        legs = (
            (make_params(alice, ingrid), domain, ledger),
            (make_params(ingrid, bob, asset=right_asset), right_domain, right_ledger),
        )
        return Net(tmp_path, chain, virtual_domain, alice, bob, ingrid, watcher, legs)

    return _build


@pytest.fixture
def net(build) -> Net:
    return build()


@pytest.fixture
def ledger2(project, deployer, virtual):
    """A second LedgerAdjudicator deployment over the same VirtualAdjudicator."""
    return deployer.deploy(project.LedgerAdjudicator, virtual)


@pytest.fixture
def domain2(ledger2, chain) -> Domain:
    return Domain.ledger(chain.chain_id, ledger2.address)


# --- Finding 1(a): Ingrid's releases after Alice registered her leg --------------------------------


def _alice_registers_then_asks_for_releases(net, chain, virtual, virtual_domain, domain, alice, bob, watcher):
    """Alice registers her leg (with the lock), its period ends, then Alice and Bob sign F1 (all to Bob)
    and propose both releases: Ingrid refuses, naming the Alice-Ingrid channel, and writes nothing.
    Returns the virtual params, F1's evidence and F2 (all to Alice) signed by both."""
    params = net.virtual()
    va, vb = open_virtual_channel(net.hub, net.alice, net.bob, params, virtual_domain, adjudicator=virtual)
    pay(va, vb, P)
    net.alice.register(sender=watcher)  # Alice, through her watcher: version 1, which holds the lock
    version, deadline, locks_hash = net.left.dispute()
    assert (version, locks_hash) == (1, net.left.state.locks_hash())
    chain.mine(timestamp=deadline + 1)
    _refused(va.propose_final, channel=params.ledger_alice)  # Alice's own client would sign nothing more

    f1 = _final(VirtualState(params.channel_id, 2, 0, TOTAL, True), alice, bob, virtual_domain)
    to_left = _forge(close_virtual(net.alice.state, net.alice.params, params, f1.state), alice, domain, f1)
    to_right = _forge(close_virtual(net.bob.state, net.bob.params, params, f1.state), bob, domain, f1)
    before = _snapshot(net.hub.store)
    situation = _refused(net.hub.accept_releases, to_left, to_right, channel=params.ledger_alice)
    assert situation.startswith(f"in dispute on-chain: version 1 registered, deadline {deadline}")
    assert _snapshot(net.hub.store) == before
    f2 = _final(VirtualState(params.channel_id, 3, TOTAL, 0, True), alice, bob, virtual_domain)
    return params, f1, f2


def test_finding1a__release_refused_after_alice_registered__alice_settles_f2_ingrid_neutral(
    net, chain, ledger, virtual, virtual_domain, domain, alice, bob, ingrid, watcher
):
    params, _, f2 = _alice_registers_then_asks_for_releases(
        net, chain, virtual, virtual_domain, domain, alice, bob, watcher
    )
    virtual.register(params.as_tuple(), *_vargs(f2), sender=watcher)  # Alice settles F2: all to her
    net.right.register(sender=watcher)  # Ingrid registers Ingrid-Bob, still holding the lock
    chain.pending_timestamp = net.right.dispute()[1]
    left = _concluded(ledger, net.left.conclude(sender=watcher))
    right = _concluded(ledger, net.right.conclude(sender=watcher))
    assert left == (E - FA + TOTAL, E - FB)  # (Alice, Ingrid): the lock pays Alice by F2
    assert right == (E - FA + TOTAL, E - FB)  # (Ingrid, Bob): Ingrid receives Alice's F2 balance
    assert left[1] + right[0] == 2 * E  # Ingrid: exactly her deposits
    assert (net.gain(alice), net.gain(ingrid), net.gain(bob)) == (E + FB, 2 * E, E - FB)


def test_finding1a__ingrid_registers_f1_first__alice_f2_reverts_ingrid_neutral(
    net, chain, ledger, virtual, virtual_domain, domain, alice, bob, ingrid, watcher
):
    params, f1, f2 = _alice_registers_then_asks_for_releases(
        net, chain, virtual, virtual_domain, domain, alice, bob, watcher
    )
    net.charge(ingrid, net.hub.register_final(f1, virtual, sender=ingrid))  # Ingrid settles the record at F1
    version, _, balance_alice, is_final = virtual.record(params.channel_id)
    assert (version, balance_alice, is_final) == (2, 0, True)
    with ape.reverts(VIRTUAL_CONCLUDED):
        virtual.register(params.as_tuple(), *_vargs(f2), sender=watcher)
    net.right.register(sender=watcher)
    chain.pending_timestamp = net.right.dispute()[1]
    left = _concluded(ledger, net.left.conclude(sender=watcher))
    right = _concluded(ledger, net.right.conclude(sender=watcher))
    assert left == (E - FA, E - FB + TOTAL)  # (Alice, Ingrid): Ingrid receives Bob's F1 balance
    assert right == (E - FA, E - FB + TOTAL)  # (Ingrid, Bob): Bob receives his F1 balance
    assert left[1] + right[0] == 2 * E
    assert (net.gain(alice), net.gain(ingrid), net.gain(bob)) == (E - FA, 2 * E, E + FA)


# --- Finding 1(b), 1(c): locks and virtual payments over a registered leg --------------------------


def test_finding1b__lock_refused_after_version0_registered(net, chain, ledger, alice, ingrid, watcher, stranger):
    agreed = net.virtual()
    net.hub.agree_virtual(agreed)  # agreed before the registration
    net.alice.register(sender=stranger)  # version 0 of Alice-Ingrid, registered by someone
    _, deadline, _ = net.left.dispute()
    chain.mine(timestamp=deadline + 1)
    before = _snapshot(net.hub.store)
    situation = _refused(net.hub.agree_virtual, net.virtual(), channel=net.left.channel_id)
    assert situation.startswith(f"in dispute on-chain: version 0 registered, deadline {deadline}")
    _refused(net.hub.propose_lock, agreed, "alice", channel=net.left.channel_id)
    assert _snapshot(net.hub.store) == before and net.left.pending() is None
    assert _concluded(ledger, net.alice.conclude(sender=watcher)) == (E, E)
    assert (net.gain(alice), net.gain(ingrid)) == (E, E)


def test_finding1c__bob_refuses_lock_when_ingrid_registered_his_leg(
    net, chain, ledger, virtual_domain, domain, bob, ingrid, watcher
):
    net.right.register(sender=watcher)  # Ingrid registers Ingrid-Bob (version 0); Bob's client saw nothing
    _, deadline, _ = net.bob.dispute()
    chain.mine(timestamp=deadline + 1)
    params = net.virtual()
    VirtualChannel.open(net.bob, params, virtual_domain)  # Bob agrees to the virtual channel
    _refused(net.hub.agree_virtual, params, channel=net.right.channel_id)  # Ingrid's hub would not even agree
    lock = _forge(open_virtual(net.right.state, net.right.params, params), ingrid, domain)
    before = _snapshot(net.bob.store)
    situation = _refused(net.bob.accept, lock, channel=net.right.channel_id)
    assert situation.startswith(f"in dispute on-chain: version 0 registered, deadline {deadline}")
    assert _snapshot(net.bob.store) == before
    assert _concluded(ledger, net.bob.conclude(sender=watcher)) == (E, E)
    assert (net.gain(ingrid), net.gain(bob)) == (E, E)


def test_finding1c__bob_refuses_virtual_payment_when_his_leg_registered(
    net, chain, ledger, virtual, virtual_domain, alice, bob, ingrid, watcher
):
    params = net.virtual()
    va, vb = open_virtual_channel(net.hub, net.alice, net.bob, params, virtual_domain, adjudicator=virtual)
    pay(va, vb, P)
    net.right.register(sender=watcher)  # Ingrid registers Ingrid-Bob (version 1, the lock)
    update = va.propose_payment(P)  # Alice's leg is open: she signs
    before = _snapshot(net.bob.store)
    assert _refused(vb.accept, update, channel=net.right.channel_id).startswith("in dispute on-chain: version 1")
    _refused(vb.propose_payment, 1, channel=net.right.channel_id)
    assert _snapshot(net.bob.store) == before
    net.charge(bob, vb.register(sender=bob))  # Bob enforces the latest state he signed (before validity)
    net.alice.register(sender=watcher)
    deadlines = (virtual.record(params.channel_id)[1], net.left.dispute()[1], net.right.dispute()[1])
    chain.pending_timestamp = max(deadlines)
    assert _concluded(ledger, net.left.conclude(sender=watcher)) == (E - P, E + P)
    assert _concluded(ledger, net.right.conclude(sender=watcher)) == (E - P, E + P)
    assert (net.gain(alice), net.gain(ingrid), net.gain(bob)) == (E - P, 2 * E, E + P)


# --- Finding 1: payments after a registration, and close to a virtual channel's expiry -------------


def _pair(tmp_path, make_params, domain, ledger, first, second, confirmations=0):
    params = make_params(first, second)
    store = {first: Store(tmp_path / "a.db"), second: Store(tmp_path / "b.db")}
    options = {"adjudicator": ledger, "confirmations": confirmations}
    channels = [LedgerChannel.open(params, domain, x.private_key, store[x], E, E, **options) for x in (first, second)]
    exchange(*channels)
    return channels


def test_finding1__ledger_payment_after_registration_refused(
    tmp_path, make_params, domain, ledger, chain, alice, bob, watcher
):
    a, b = _pair(tmp_path, make_params, domain, ledger, alice, bob)
    for side in (0, 1):
        _fund(ledger, a.params, side, E, watcher)
    start = (alice.balance, bob.balance)
    pay(a, b, P)
    b.register(sender=watcher)
    _, deadline, _ = a.dispute()
    payouts = None
    for phase in ("challenge period", "deadline passed", "concluded"):
        if phase == "deadline passed":
            chain.mine(timestamp=deadline + 1)
        if phase == "concluded":
            payouts = _concluded(ledger, a.conclude(sender=watcher))
        expected = f"in dispute on-chain: version 1 registered, deadline {deadline}"
        expected = "concluded on-chain" if payouts else expected
        before = (_snapshot(a.store), _snapshot(b.store))
        for proposer, receiver, account in ((a, b, alice), (b, a, bob)):
            assert _refused(proposer.propose_payment, 1, channel=a.channel_id).startswith(expected)
            forged = _forge(proposer.state.pay(1, proposer.side), account, domain)
            assert _refused(receiver.accept, forged, channel=a.channel_id).startswith(expected)
        assert (_snapshot(a.store), _snapshot(b.store)) == before
    assert payouts == (E - P, E + P)
    assert (alice.balance - start[0], bob.balance - start[1]) == (E - P, E + P)


def test_finding1__virtual_payment_after_virtual_registration_refused(
    net, chain, ledger, virtual, virtual_domain, alice, bob, ingrid, watcher
):
    params = net.virtual()
    va, vb = open_virtual_channel(net.hub, net.alice, net.bob, params, virtual_domain, adjudicator=virtual)
    pay(va, vb, P)
    net.charge(alice, va.register(sender=alice))  # before validity only Alice or Bob opens a dispute
    _, deadline, _, _ = virtual.record(params.channel_id)
    for phase in ("registered", "settled"):
        if phase == "settled":
            chain.mine(timestamp=deadline + 1)
        before = (_snapshot(va.store), _snapshot(vb.store))
        for proposer, receiver, account in ((va, vb, alice), (vb, va, bob)):
            situation = f"registered on-chain: version 1, deadline {deadline}"
            assert _refused(proposer.propose_payment, 1, channel=params.channel_id) == situation
            forged = _forge(proposer.state.pay(1, from_alice=proposer.side == 0), account, virtual_domain)
            assert _refused(receiver.accept, forged, channel=params.channel_id) == situation
        assert (_snapshot(va.store), _snapshot(vb.store)) == before
    assert net.dispute_both_legs(ledger, watcher) == ((E - P, E + P), (E - P, E + P))
    assert (net.gain(alice), net.gain(ingrid), net.gain(bob)) == (E - P, 2 * E, E + P)


def test_finding1__virtual_payment_within_reaction_time_of_expiry_refused(
    net, chain, ledger, virtual, virtual_domain, alice, bob, ingrid, watcher
):
    params = net.virtual()
    va, vb = open_virtual_channel(net.hub, net.alice, net.bob, params, virtual_domain, adjudicator=virtual)
    chain.mine(timestamp=params.expiry - REACTION_TIME - 1)
    pay(va, vb, P)  # one second before the reaction window: still signed
    chain.mine(timestamp=params.expiry - REACTION_TIME)
    before = (_snapshot(va.store), _snapshot(vb.store))
    situation = f"{REACTION_TIME}s from its expiry {params.expiry} (reaction time {REACTION_TIME}s)"
    for proposer, receiver, account in ((va, vb, alice), (vb, va, bob)):
        assert _refused(proposer.propose_payment, 1, channel=params.channel_id) == situation
        forged = _forge(proposer.state.pay(1, from_alice=proposer.side == 0), account, virtual_domain)
        assert _refused(receiver.accept, forged, channel=params.channel_id) == situation
    assert (_snapshot(va.store), _snapshot(vb.store)) == before
    vb.register(sender=watcher)  # past validity anyone registers: Bob's watcher, before expiry
    assert virtual.record(params.channel_id)[0] == 1
    assert net.dispute_both_legs(ledger, watcher) == ((E - P, E + P), (E - P, E + P))
    assert (net.gain(alice), net.gain(ingrid), net.gain(bob)) == (E - P, 2 * E, E + P)


# --- Finding 1: a state signed just before a registration is still enforced ------------------------


def test_finding1__v2_signed_before_ingrid_registers_v1__alice_gets_v2(net, chain, ledger, alice, ingrid, watcher):
    pay(net.alice, net.left, 10**17)  # v1: Alice pays Ingrid 0.1
    pay(net.left, net.alice, 3 * 10**17)  # v2: Ingrid pays Alice 0.3
    v1 = net.left.store.state(net.left.channel_id, 1)
    net.charge(
        ingrid,
        ledger.register(
            net.left.params.as_tuple(), v1.state.as_tuple(), compact(v1.sig_a), compact(v1.sig_b), sender=ingrid
        ),
    )
    assert net.alice.dispute()[0] == 1
    with pytest.raises(Unenforceable):  # Alice signs nothing more, but holds v2
        net.alice.propose_payment(1)
    net.alice.register(sender=watcher)  # before the deadline
    version, deadline, _ = net.alice.dispute()
    assert version == 2
    chain.pending_timestamp = deadline
    assert _concluded(ledger, net.alice.conclude(sender=watcher)) == (E + 2 * 10**17, E - 2 * 10**17)
    assert (net.gain(alice), net.gain(ingrid)) == (E + 2 * 10**17, E - 2 * 10**17)


# --- Finding 2: an ETH leg and a token leg ---------------------------------------------------------


@pytest.mark.parametrize("named", ["eth", "token"])
def test_finding2__eth_and_token_legs__only_the_named_asset_follows_the_outcome(
    named, make_params, token, ledger, domain, virtual, virtual_domain, chain, alice, bob, ingrid, watcher
):
    legs = _funded_legs(ledger, make_params, alice, bob, ingrid, watcher, right_asset=token)
    asset = ETH if named == "eth" else token.address
    vp = _vparams(legs[0][0], legs[1][0], chain.pending_timestamp + DAY, asset=asset, **_on(ledger, chain.chain_id))
    eth = (alice.balance, ingrid.balance)
    tokens = (token.balanceOf(ingrid), token.balanceOf(bob))
    eth_leg, token_leg = _settle_on_chain(ledger, domain, virtual, virtual_domain, legs, vp, chain, alice, bob, watcher)
    follows = (E - FA, E + FA)  # the final state pays Bob's side everything: FA moves to the right
    assert (eth_leg, token_leg) == ((follows, (E, E)) if named == "eth" else ((E, E), follows))
    assert (alice.balance - eth[0], ingrid.balance - eth[1]) == eth_leg
    assert (token.balanceOf(ingrid) - tokens[0], token.balanceOf(bob) - tokens[1]) == token_leg


def test_finding2__hub_refuses_virtual_over_eth_and_token_legs(
    build, token, ledger, virtual_domain, alice, bob, ingrid, watcher
):
    net = build(right_asset=token.address)
    before = _snapshot(net.hub.store)
    for asset, refused_leg, holds in ((ETH, net.right, token.address), (token.address, net.left, ETH)):
        with pytest.raises(RefusedUpdate) as refused:
            net.hub.agree_virtual(net.virtual(asset=asset))
        assert not isinstance(refused.value, Unenforceable)
        message = str(refused.value)
        assert f"ledger channel 0x{refused_leg.channel_id.hex()}" in message
        assert f"the ledger channel holds {holds}, the virtual channel {asset}" in message
    with pytest.raises(InvalidParams, match="cannot be funded"):  # Bob's client refuses too
        VirtualChannel.open(net.bob, net.virtual(asset=ETH), virtual_domain)
    assert _snapshot(net.hub.store) == before
    tokens = (token.balanceOf(ingrid), token.balanceOf(bob))
    exchange(net.alice, net.left, net.alice.propose_final())
    exchange(net.right, net.bob, net.right.propose_final())
    assert _concluded(ledger, net.alice.close(sender=watcher)) == (E, E)
    assert _concluded(ledger, net.bob.close(sender=watcher)) == (E, E)
    assert (net.gain(alice), net.gain(ingrid), net.gain(bob)) == (E, E, 0)
    assert (token.balanceOf(ingrid) - tokens[0], token.balanceOf(bob) - tokens[1]) == (E, E)


# --- Finding 2 (deployments and chains): a lock names its ledger adjudicator and chain -------------


@pytest.mark.parametrize("case", ["first ledger named", "other chain named", "control: this ledger and chain"])
def test_finding2__lock_on_second_deployment__moves_only_if_named(
    case, ledger, ledger2, domain2, make_params, virtual, virtual_domain, chain, alice, bob, ingrid, watcher
):
    legs = _funded_legs(ledger2, make_params, alice, bob, ingrid, watcher)
    named, chain_id = {
        "first ledger named": (ledger, chain.chain_id),
        "other chain named": (ledger2, chain.chain_id + 1),
        "control: this ledger and chain": (ledger2, chain.chain_id),
    }[case]
    vp = _vparams(legs[0][0], legs[1][0], chain.pending_timestamp + DAY, asset=ETH, **_on(named, chain_id))
    start = {account: account.balance for account in (alice, bob, ingrid)}
    payouts = _settle_on_chain(ledger2, domain2, virtual, virtual_domain, legs, vp, chain, alice, bob, watcher)
    moved = case.startswith("control")
    expected = [(E - FA, E + FA)] * 2 if moved else [(E, E)] * 2
    assert payouts == expected
    gains = {account: account.balance - start[account] for account in start}
    assert gains == {alice: expected[0][0], ingrid: expected[0][1] + expected[1][0], bob: expected[1][1]}


def test_finding2__hub_refuses_legs_on_different_adjudicators_or_chain(
    build, ledger, ledger2, domain2, chain, alice, bob, ingrid, watcher
):
    net = build(right_on=(domain2, ledger2))
    before = _snapshot(net.hub.store)
    cases = (
        (ledger.address, chain.chain_id, net.right, ledger2.address),
        (ledger2.address, chain.chain_id, net.left, ledger.address),
        (ledger.address, chain.chain_id + 1, net.left, ledger.address),
    )
    for named, chain_id, refused_leg, lives_on in cases:
        with pytest.raises(RefusedUpdate) as refused:
            net.hub.agree_virtual(net.virtual(ledger_adjudicator=named, chain_id=chain_id))
        message = str(refused.value).lower()
        assert f"ledger channel 0x{refused_leg.channel_id.hex()}" in message
        assert f"lives on {lives_on.lower()} (chain {chain.chain_id})" in message
        assert f"names {named.lower()} (chain {chain_id})" in message
    assert _snapshot(net.hub.store) == before
    exchange(net.alice, net.left, net.alice.propose_final())
    exchange(net.right, net.bob, net.right.propose_final())
    assert _concluded(ledger, net.alice.close(sender=watcher)) == (E, E)
    assert _concluded(ledger2, net.bob.close(sender=watcher)) == (E, E)
    assert (net.gain(alice), net.gain(ingrid), net.gain(bob)) == (E, 2 * E, E)


# --- Finding 6: a deposit counts only once it is deep enough (confirmations) -----------------------


def test_finding6__confirmations__deposit_counted_only_three_blocks_deep(
    tmp_path, make_params, domain, ledger, chain, alice, bob, watcher
):
    a, b = _pair(tmp_path, make_params, domain, ledger, alice, bob, confirmations=3)
    start = (alice.balance, bob.balance)
    _fund(ledger, a.params, 0, E, watcher)
    _fund(ledger, a.params, 1, E, watcher)  # mined at the head block
    with pytest.raises(RefusedUpdate, match=r"only \(0, 0\) are known on-chain; deposit first"):
        a.propose_payment(P)
    chain.mine(2)  # Alice's deposit now has three blocks on top, Bob's two
    assert a.chain.ledger(a.channel_id).deposits == (E, 0)
    with pytest.raises(RefusedUpdate, match=rf"only \({E}, 0\) are known on-chain; deposit first"):
        a.propose_payment(P)
    assert a.pending() is None
    chain.mine(1)
    pay(a, b, P)
    exchange(b, a, b.propose_final())
    assert _concluded(ledger, a.close(sender=watcher)) == (E - P, E + P)
    assert (alice.balance - start[0], bob.balance - start[1]) == (E - P, E + P)
