"""Stateful fuzzing of a hub run by two workers on one PostgreSQL store (SPEC 11.2), without a chain.

Each worker is a ``Hub`` with its own connection and its own memory of the channels, as two `ape run hub`
processes have; the users are ``LedgerChannel`` clients with their own SQLite stores. Every channel
operation of a worker runs as the service runs it (``Hub.acting``: the channel's lock, the channel read
again when another worker moved it), and hypothesis interleaves them: a user pays through either
worker, sends its proposal in flight again to the other one (a lost answer), repeats an update already
countersigned, tries a second state of a version at the other worker, the hub proposes at one worker and
the user's countersignature arrives at the other, a worker restarts with empty memory.

Invariants: per channel the hub's store holds versions 0..n, one state each, every one the state the
model recorded as countersigned; every countersignature any worker gave is the one stored; a user and the
hub's store hold the same latest state whenever nothing is in flight. (Truly concurrent workers, as
processes: tests/node/test_workers.py.)"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from perun_vyper import ChannelParams, Hub, LedgerChannel, Signer, Store, open_store
from perun_vyper.core.protocol import Update
from perun_vyper.errors import RefusedUpdate
from tests.conftest import postgres_schema
from tests.support.constants import E
from tests.support.parties import (
    ALICE_KEY,
    BOB_KEY,
    INGRID_KEY,
    LEDGER_DOMAIN,
    MAX_VALIDITY,
    NOW,
    VIRTUAL_DOMAIN,
)

USER_KEYS = {"alice": ALICE_KEY, "bob": BOB_KEY}
WORKERS = (0, 1)
AMOUNT = st.integers(1, 10**15)


class WorkersMachine(RuleBasedStateMachine):
    """Two workers of one hub, two users, one ledger channel each."""

    url = ""  # the session's PostgreSQL (set by the test below)

    def __init__(self) -> None:
        super().__init__()
        self.target = postgres_schema(self.url, "workers")
        self.directory = Path(tempfile.mkdtemp(prefix="perun-workers-machine-"))
        self.hubs: list[Hub] = [self._worker() for _ in WORKERS]
        self.users: dict[str, LedgerChannel] = {}
        self.model: dict[bytes, dict[int, object]] = {}  # channel -> version -> the state countersigned
        self.hub_proposal: dict[str, Update] = {}  # the hub's proposal in flight per user, if any

    def _worker(self) -> Hub:
        return Hub(INGRID_KEY, open_store(self.target), virtual_domain=VIRTUAL_DOMAIN, max_validity=MAX_VALIDITY,
                   clock=lambda: NOW)  # fmt: skip

    def _hub_channel(self, worker: int, user: str) -> LedgerChannel:
        channel = self.hubs[worker].channel(self.users[user].channel_id)
        channel.confirm_funding((E, E))  # no chain: the deposits are taken as made, by every worker
        return channel

    def _record(self, update_state: object, version: int, channel_id: bytes) -> None:
        known = self.model.setdefault(channel_id, {})
        assert known.get(version, update_state) == update_state, "two states countersigned for one version"
        known[version] = update_state

    @initialize()
    def open_channels(self) -> None:
        for index, (user, key) in enumerate(USER_KEYS.items()):
            params = ChannelParams(Signer(key).address, self.hubs[0].address, nonce=index + 1)
            mine = LedgerChannel.open(params, LEDGER_DOMAIN, key, Store(self.directory / f"{user}.db"), E, E)
            hub = self.hubs[index % 2]
            with hub.serialised(f"open:{mine.address}"):
                theirs = hub.open_channel(params, LEDGER_DOMAIN, E, E)
                with hub.acting(params.channel_id):
                    countersig = theirs.accept(mine.pending())
            mine.complete(mine.pending(), countersig)
            mine.confirm_funding((E, E))
            self.users[user] = mine
            self._record(mine.state, 0, params.channel_id)

    # --- the user proposes ------------------------------------------------------------------------------

    @precondition(lambda self: any(self._idle(user) for user in self.users))
    @rule(data=st.data(), amount=AMOUNT)
    def user_proposes(self, data: st.DataObject, amount: int) -> None:
        user = data.draw(st.sampled_from([u for u in self.users if self._idle(u)]), label="user")
        mine = self.users[user]
        if (mine.state.balance_a, mine.state.balance_b)[mine.side] >= amount:
            mine.propose_payment(amount)

    @precondition(lambda self: bool(self._proposing()))
    @rule(data=st.data(), worker=st.sampled_from(WORKERS), answered=st.booleans())
    def user_sends(self, data: st.DataObject, worker: int, answered: bool) -> None:
        """The user's proposal in flight to either worker, again if it was sent before; ``answered``
        False: the countersignature is lost on the way back (the user sends again later)."""
        user = data.draw(st.sampled_from(self._proposing()), label="user")
        mine = self.users[user]
        update = mine.pending()
        hub = self.hubs[worker]
        with hub.acting(mine.channel_id):
            countersig = self._hub_channel(worker, user).accept(update)
        self._record(update.state, update.version, mine.channel_id)
        stored = hub.store.state(mine.channel_id, update.version)
        assert (stored.sig_a, stored.sig_b)[1 - mine.side] == countersig  # the countersignature stored
        if answered:
            mine.complete(update, countersig)

    @precondition(lambda self: bool(self.users))
    @rule(data=st.data(), worker=st.sampled_from(WORKERS))
    def user_repeats_latest(self, data: st.DataObject, worker: int) -> None:
        """An update countersigned earlier, again: answered with the stored countersignature."""
        user = data.draw(st.sampled_from(sorted(self.users)), label="user")
        mine = self.users[user]
        latest = mine.latest
        hub = self.hubs[worker]
        with hub.acting(mine.channel_id):
            countersig = self._hub_channel(worker, user).accept(Update(latest.state, self._own(user, latest)))
        assert countersig == (latest.sig_a, latest.sig_b)[1 - mine.side]

    @precondition(lambda self: bool(self._countersigned_in_flight()))
    @rule(data=st.data(), worker=st.sampled_from(WORKERS), amount=AMOUNT)
    def user_signs_second_state(self, data: st.DataObject, worker: int, amount: int) -> None:
        """A second state of a version one worker countersigned, signed with the user's key, at either
        worker: refused, nothing written (a worker must never sign two states of one version)."""
        user = data.draw(st.sampled_from(self._countersigned_in_flight()), label="user")
        mine = self.users[user]
        first = mine.pending()
        other = mine.state.pay(amount, mine.side) if amount % 2 else mine.state.top_up(amount, 1 - mine.side)
        if other == first.state:
            other = mine.state.pay(amount + 1, mine.side)
        before = self.hubs[0].store.history(mine.channel_id)
        hub = self.hubs[worker]
        try:
            with hub.acting(mine.channel_id):
                self._hub_channel(worker, user).accept(Update(other, Signer(USER_KEYS[user]).sign(mine.digest(other))))
        except RefusedUpdate as exc:
            assert f"version {first.version} is already signed differently" in str(exc), str(exc)
        else:
            raise AssertionError(f"worker {worker} countersigned a second state of version {first.version}")
        assert self.hubs[0].store.history(mine.channel_id) == before

    # --- the hub proposes, the user answers at either worker ------------------------------------------

    @precondition(lambda self: any(self._idle(user) for user in self.users))
    @rule(data=st.data(), worker=st.sampled_from(WORKERS), amount=AMOUNT)
    def hub_proposes(self, data: st.DataObject, worker: int, amount: int) -> None:
        user = data.draw(st.sampled_from([u for u in self.users if self._idle(u)]), label="user")
        mine = self.users[user]
        if (mine.state.balance_a, mine.state.balance_b)[1 - mine.side] < amount:
            return
        hub = self.hubs[worker]
        with hub.acting(mine.channel_id):
            update = self._hub_channel(worker, user).propose_payment(amount)
        self.hub_proposal[user] = update

    @precondition(lambda self: bool(self.hub_proposal))
    @rule(data=st.data(), worker=st.sampled_from(WORKERS))
    def user_countersigns(self, data: st.DataObject, worker: int) -> None:
        user = data.draw(st.sampled_from(sorted(self.hub_proposal)), label="user")
        update = self.hub_proposal.pop(user)
        mine = self.users[user]
        countersig = mine.accept(update)
        hub = self.hubs[worker]
        with hub.acting(mine.channel_id):
            signed = self._hub_channel(worker, user).complete(update, countersig)
        assert signed == mine.latest
        self._record(update.state, update.version, mine.channel_id)

    # --- a worker restarts ----------------------------------------------------------------------------

    @rule(worker=st.sampled_from(WORKERS))
    def worker_restarts(self, worker: int) -> None:
        self.hubs[worker].store.close()
        self.hubs[worker] = self._worker()

    # --- helpers ----------------------------------------------------------------------------------------

    def _idle(self, user: str) -> bool:
        return self.users[user].pending() is None and user not in self.hub_proposal

    def _proposing(self) -> list[str]:
        return [user for user in self.users if self.users[user].pending() is not None]

    def _countersigned_in_flight(self) -> list[str]:
        """Users whose proposal in flight a worker countersigned (the answer was lost)."""
        found = []
        for user in self._proposing():
            pending = self.users[user].pending()
            if self.model.get(self.users[user].channel_id, {}).get(pending.version) == pending.state:
                found.append(user)
        return found

    def _own(self, user: str, signed) -> bytes:
        return (signed.sig_a, signed.sig_b)[self.users[user].side]

    # --- invariants -------------------------------------------------------------------------------------

    @invariant()
    def one_state_per_version_as_countersigned(self) -> None:
        store = self.hubs[0].store
        for channel_id, versions in self.model.items():
            history = store.history(channel_id)
            assert [signed.state.version for signed in history] == list(range(len(history)))
            for signed in history:
                if signed.state.version in versions:
                    assert signed.state == versions[signed.state.version]

    @invariant()
    def user_and_hub_agree_when_idle(self) -> None:
        for user, mine in self.users.items():
            if self._idle(user):
                assert self.hubs[1].store.latest(mine.channel_id) == mine.latest

    def teardown(self) -> None:
        for hub in self.hubs:
            hub.store.close()
        for mine in self.users.values():
            mine.store.close()


def test_two_workers_one_store__interleaved__one_state_per_version(postgres):
    WorkersMachine.url = postgres
    run_state_machine_as_test(WorkersMachine)
