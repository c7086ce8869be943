"""The PostgreSQL store: the identity rules of tests/client/test_store_identity.py where a schema plays the
part of the file (a refused schema is left as it was: the same tables, the same rows), how ``open_store``
picks a backend and names a store without its password, and the coordination several hub workers use on
one store (leases, held releases, channel and name locks), the latter on both backends."""

from __future__ import annotations

import re
import threading
import time

import psycopg
import pytest

from perun_vyper import (
    ChannelParams,
    LedgerState,
    PostgresStore,
    Store,
    StoreError,
    StoreIdentity,
    Update,
    VirtualFinal,
    VirtualParams,
    VirtualState,
    close_virtual,
    open_store,
    open_virtual,
)
from perun_vyper.store import redact
from tests.conftest import postgres_schema, with_search_path
from tests.support.constants import E
from tests.support.parties import (
    ALICE,
    ALICE_KEY,
    BOB,
    BOB_KEY,
    INGRID,
    NOW,
    VIRTUAL_DOMAIN,
    forge,
    snapshot,
)
from tests.support.stores import IDENTITY, LEDGER, LEDGER_RECORD, PARAMS, STATE, VIRTUAL

RECORD = LEDGER_RECORD
OURS = ["channels", "perun_leases", "perun_meta", "perun_releases", "states"]

# A virtual channel over Alice - Ingrid and Ingrid - Bob, for the releases a hub holds.
LEFT, RIGHT = ChannelParams(ALICE, INGRID, nonce=1), ChannelParams(INGRID, BOB, nonce=2)
VPARAMS = VirtualParams(
    ALICE,
    BOB,
    INGRID,
    LEFT.channel_id,
    RIGHT.channel_id,
    300,
    100,
    NOW + 86400,
    3600,
    1,
    ledger_adjudicator=LEDGER,
    chain_id=31337,
)


def _schema(url: str, name: str) -> tuple[str, str]:
    """A new, empty schema in the session's server: its store URL and its name."""
    target = postgres_schema(url, name)
    return target, target.rsplit("search_path%3D", 1)[1]


def _shown(target: str, schema: str) -> str:
    """How messages name the store at ``target``: its URL without a password, and its schema."""
    return f"{redact(target)} (schema {schema})"


def _tables(url: str, schema: str) -> list[str]:
    with psycopg.connect(url) as db:
        rows = db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY table_name", (schema,)
        ).fetchall()
    return [name for (name,) in rows]


def _rows(url: str, schema: str, table: str) -> list[tuple]:
    with psycopg.connect(url) as db:
        return db.execute(f"SELECT * FROM {schema}.{table} ORDER BY 1").fetchall()


def _sql(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as db:
        for statement in statements:
            db.execute(statement)


def _final(balance_alice: int) -> VirtualFinal:
    """The final virtual state (Alice ``balance_alice``) signed by Alice and Bob."""
    final = VirtualState(VPARAMS.channel_id, 5, balance_alice, VPARAMS.total - balance_alice, is_final=True)
    return VirtualFinal(
        final, forge(final, ALICE_KEY, VIRTUAL_DOMAIN).signature, forge(final, BOB_KEY, VIRTUAL_DOMAIN).signature
    )


def _release(leg: ChannelParams, key: bytes, balance_alice: int = 250) -> Update:
    """An endpoint's release in ``leg``: the ledger update replacing the lock by the final outcome."""
    locked = open_virtual(LedgerState.initial(leg.channel_id, E, E), leg, VPARAMS)
    evidence = _final(balance_alice)
    return forge(close_virtual(locked, leg, VPARAMS, evidence.state), key, release=evidence)


# --- identity: what a schema holds --------------------------------------------------------------------


def test_open__schema_with_another_apps_table__refused_unchanged(postgres):
    target, schema = _schema(postgres, "app")
    _sql(target, "CREATE TABLE notes (text text)", "INSERT INTO notes VALUES ('channel ids, one a line')")
    with pytest.raises(StoreError) as refused:
        open_store(target)
    assert str(refused.value) == (
        f"{_shown(target, schema)} holds another application's tables (notes), not a perun-vyper store; nothing"
        " was changed. Pass the store perun-vyper wrote, or a new one"
    )
    assert _tables(postgres, schema) == ["notes"]
    assert _rows(postgres, schema, "notes") == [("channel ids, one a line",)]


def test_open__table_named_perun_meta_with_other_columns__refused_unchanged(postgres):
    target, schema = _schema(postgres, "app")
    _sql(target, "CREATE TABLE perun_meta (name text)")
    with pytest.raises(StoreError, match=r"holds another application's tables \(perun_meta\), not a perun-vyper"):
        open_store(target)
    assert _tables(postgres, schema) == ["perun_meta"]


def test_open__empty_schema_without_create__refused_still_empty(postgres):
    target, schema = _schema(postgres, "wallet")
    with pytest.raises(StoreError) as refused:
        open_store(target, create=False)
    assert str(refused.value) == (
        f"{_shown(target, schema)} holds no perun-vyper store (a database without tables); pass the store your"
        " wallet or hub wrote"
    )
    assert _tables(postgres, schema) == []


def test_open__existing_store_without_create__opens_with_channels_intact(postgres):
    target, _ = _schema(postgres, "wallet")
    with open_store(target) as store:
        store.add_channel(RECORD)
        store.save_state(PARAMS.channel_id, STATE)
    with open_store(target, create=False) as store:
        assert isinstance(store, PostgresStore)
        assert snapshot(store) == [(RECORD, [STATE])]


def test_open__new_store__tables_and_meta_with_format_and_version_only(postgres):
    target, schema = _schema(postgres, "wallet")
    with open_store(target) as store:
        assert store.identity is None and store.shared
    assert _tables(postgres, schema) == OURS
    assert _rows(postgres, schema, "perun_meta") == [("format", "perun-vyper store"), ("schema_version", "2")]


def test_open__newer_schema_version__refused_unchanged(postgres):
    target, schema = _schema(postgres, "wallet")
    with open_store(target) as store:
        store.add_channel(RECORD)
    _sql(target, "UPDATE perun_meta SET value = '3' WHERE key = 'schema_version'")
    meta = _rows(postgres, schema, "perun_meta")
    with pytest.raises(StoreError) as refused:
        open_store(target)
    assert str(refused.value) == (
        f"{_shown(target, schema)} is a perun-vyper store of schema version 3, newer than version 2 that this"
        " perun-vyper reads; upgrade perun-vyper to open it"
    )
    assert _rows(postgres, schema, "perun_meta") == meta
    assert _tables(postgres, schema) == OURS


def test_open__store_of_another_deployment__refused_unchanged(postgres):
    target, schema = _schema(postgres, "hub")
    with open_store(target, identity=IDENTITY) as store:
        store.add_channel(RECORD)
    meta = _rows(postgres, schema, "perun_meta")
    assert ("chain_id", "31337") in meta and ("ledger", IDENTITY.ledger) in meta
    other = StoreIdentity(1, "0x" + "11" * 20, VIRTUAL)
    with pytest.raises(StoreError) as refused:
        open_store(target, identity=other)
    assert str(refused.value) == (
        f"{_shown(target, schema)} is the store of chain 31337, ledger {IDENTITY.ledger}, virtual {IDENTITY.virtual};"
        f" this run is on chain 1, ledger {other.ledger}, virtual {IDENTITY.virtual};"
        " pass the store of this deployment (or the --ledger/--virtual it was written for)"
    )
    assert _rows(postgres, schema, "perun_meta") == meta
    with open_store(target) as store:  # no identity named: the recorded one still shows
        assert store.identity == IDENTITY


def test_open__identity_for_channels_of_another_deployment__refused_not_recorded(postgres):
    target, schema = _schema(postgres, "hub")
    with open_store(target) as store:
        store.add_channel(RECORD)
    other = StoreIdentity(1, LEDGER, VIRTUAL)
    with pytest.raises(StoreError) as refused:
        open_store(target, identity=other)
    assert str(refused.value) == (
        f"{_shown(target, schema)} holds channel 0x{PARAMS.channel_id.hex()} of chain 31337, ledger"
        f" {IDENTITY.ledger}; this run is on {other.describe()};"
        " pass the store of this deployment (or the --ledger/--virtual it was written for)"
    )
    assert _rows(postgres, schema, "perun_meta") == [("format", "perun-vyper store"), ("schema_version", "2")]


def test_open__search_path_names_missing_schema__refused_create_schema_named(postgres):
    target = with_search_path(postgres, "no_such_schema")
    with pytest.raises(StoreError) as refused:
        open_store(target)
    assert str(refused.value) == (
        f"{redact(target)}: the search_path names no existing schema; create it first (CREATE SCHEMA name) or"
        " connect with a search_path that names one"
    )
    assert _tables(postgres, "no_such_schema") == []


# --- open_store: backends, connection, names ----------------------------------------------------------


@pytest.mark.parametrize(
    "credentials",
    ["u:secretpw@/db?host={missing}", "u@/db?host={missing}&password=secretpw"],
    ids=["in-user-part", "as-parameter"],
)
def test_open__unreachable_server__refused_without_the_password(tmp_path, credentials):
    missing = tmp_path / "no-such-directory"
    with pytest.raises(StoreError) as refused:
        open_store("postgresql://" + credentials.format(missing=missing))
    message = str(refused.value)
    assert message.startswith(f"cannot connect to the PostgreSQL store postgresql://u@/db?host={missing} (")
    assert message.endswith("); check the URL, that the server runs and that the role may log in")
    assert "secretpw" not in message
    assert not missing.exists()


def test_location__password_in_user_part__hidden_target_keeps_it(postgres):
    target, schema = _schema(postgres, "hub")
    scheme, rest = target.split("://", 1)
    user, server = rest.split("@", 1)
    with_password = f"{scheme}://{user.split(':')[0]}:secretpw@{server}"
    with open_store(with_password) as store:
        assert store.location == f"{scheme}://{user.split(':')[0]}@{server} (schema {schema})"
        assert store.target == with_password  # what reopens it
    with open_store(store.target) as again:
        assert again.location == store.location


def test_location__password_as_url_parameter__hidden_target_keeps_it(postgres):
    target, schema = _schema(postgres, "hub")
    with open_store(target) as store:
        shown = store.location
    with open_store(target + "&password=secretpw") as store:
        assert store.location == shown == f"{redact(target)} (schema {schema})"
        assert store.target == target + "&password=secretpw"


def test_open_store__unsupported_scheme__refused_naming_the_supported_ones():
    with pytest.raises(StoreError) as refused:
        open_store("mysql://x")
    assert str(refused.value) == (
        "mysql://x: stores of scheme 'mysql' are not supported; pass a file path, sqlite:///path or"
        " postgresql://user@host/dbname"
    )


def test_open_store__sqlite_url__sqlite_store_at_that_path(tmp_path):
    path = tmp_path / "wallet.db"
    with open_store(f"sqlite:///{path}") as store:
        assert isinstance(store, Store) and not store.shared
        assert store.path == path and store.location == str(path)
        store.add_channel(RECORD)
    with open_store(path, create=False) as store:
        assert store.channels() == [RECORD]


def test_open_store__sqlite_option_for_postgres__refused(postgres):
    target, schema = _schema(postgres, "wallet")
    with pytest.raises(StoreError, match=r"^synchronous apply to SQLite stores only$"):
        open_store(target, synchronous="FULL")
    assert _tables(postgres, schema) == []


# --- leases (both backends) ---------------------------------------------------------------------------


def test_acquire_lease__free__first_holder_gets_it(store_at):
    store = store_at("hub")
    assert store.lease_holder("watch") is None
    assert store.acquire_lease("watch", "worker-1", 30)
    assert store.lease_holder("watch") == "worker-1"


def test_acquire_lease__held__second_holder_refused_while_live(store_at):
    store = store_at("hub")
    store.acquire_lease("watch", "worker-1", 30)
    assert not store.acquire_lease("watch", "worker-2", 30)
    assert store.lease_holder("watch") == "worker-1"


def test_acquire_lease__same_holder__renewed_beyond_the_first_term(store_at):
    store = store_at("hub")
    assert store.acquire_lease("watch", "worker-1", 0.3)
    assert store.acquire_lease("watch", "worker-1", 30)
    time.sleep(0.4)  # the first term is over; the renewed one is not
    assert store.lease_holder("watch") == "worker-1"
    assert not store.acquire_lease("watch", "worker-2", 30)


def test_release_lease__by_its_holder__another_takes_it(store_at):
    store = store_at("hub")
    store.acquire_lease("watch", "worker-1", 30)
    store.release_lease("watch", "worker-2")  # not the holder: nothing changes
    assert store.lease_holder("watch") == "worker-1"
    store.release_lease("watch", "worker-1")
    assert store.lease_holder("watch") is None
    assert store.acquire_lease("watch", "worker-2", 30)
    assert store.lease_holder("watch") == "worker-2"


def test_acquire_lease__lapsed__another_takes_it(store_at):
    store = store_at("hub")
    store.acquire_lease("watch", "worker-1", 0.3)
    time.sleep(0.4)
    assert store.lease_holder("watch") is None
    assert store.acquire_lease("watch", "worker-2", 30)
    assert store.lease_holder("watch") == "worker-2"


@pytest.mark.parametrize("seconds", [0, -1.5])
def test_acquire_lease__not_positive_seconds__refused(store_at, seconds):
    store = store_at("hub")
    with pytest.raises(
        StoreError, match=rf"^a lease lasts a positive number of seconds, got {re.escape(str(seconds))}$"
    ):
        store.acquire_lease("watch", "worker-1", seconds)
    assert store.lease_holder("watch") is None


def test_live_holders__prefix__live_leases_of_that_prefix_only(store_at):
    store = store_at("hub")
    store.acquire_lease("worker/1", "b", 30)  # holders, not the names' suffixes, come back
    store.acquire_lease("worker/2", "a", 30)
    store.acquire_lease("worker/3", "gone", 0.3)
    store.acquire_lease("watch", "a", 30)
    store.acquire_lease("workers", "x", 30)
    assert store.live_holders("worker/") == ["a", "b", "gone"]
    time.sleep(0.4)
    assert store.live_holders("worker/") == ["a", "b"]
    assert store.live_holders("nobody/") == []


# --- held releases (both backends) --------------------------------------------------------------------


def test_hold_release__both_legs__held_by_leg_until_dropped(store_at):
    store = store_at("hub")
    alice_release, bob_release = _release(LEFT, ALICE_KEY), _release(RIGHT, BOB_KEY)
    assert store.held_releases(VPARAMS.channel_id) == {}
    store.hold_release(VPARAMS.channel_id, "alice", alice_release)
    assert store.held_releases(VPARAMS.channel_id) == {"alice": alice_release}
    store.hold_release(VPARAMS.channel_id, "bob", bob_release)
    assert store.held_releases(VPARAMS.channel_id) == {"alice": alice_release, "bob": bob_release}
    assert store.held_releases(b"\x09" * 32) == {}
    store.drop_releases(VPARAMS.channel_id)
    assert store.held_releases(VPARAMS.channel_id) == {}


def test_hold_release__repeat__replaces_the_one_held(store_at):
    store = store_at("hub")
    first, second = _release(LEFT, ALICE_KEY, 250), _release(LEFT, ALICE_KEY, 200)
    assert first != second
    store.hold_release(VPARAMS.channel_id, "alice", first)
    store.hold_release(VPARAMS.channel_id, "alice", second)
    assert store.held_releases(VPARAMS.channel_id) == {"alice": second}


def test_hold_release__update_without_final_state__refused(store_at):
    store = store_at("hub")
    bare = forge(LedgerState.initial(LEFT.channel_id, E, E), ALICE_KEY)
    with pytest.raises(StoreError, match=r"^only a release \(an update carrying the final virtual state\) is held$"):
        store.hold_release(VPARAMS.channel_id, "alice", bare)
    assert store.held_releases(VPARAMS.channel_id) == {}


# --- locks (both backends; the wait between connections on PostgreSQL) -------------------------------

# A channel's lock, and a named one (what is not one channel: e.g. counting a user's channels).
LOCKS = pytest.mark.parametrize(
    ("method", "argument"),
    [("lock_channel", PARAMS.channel_id), ("lock_name", "user:alice")],
    ids=["lock_channel", "lock_name"],
)


@LOCKS
def test_lock__outside_transaction__refused(store_at, method, argument):
    store = store_at("hub")
    store.add_channel(RECORD)
    with pytest.raises(StoreError, match=rf"^{method} holds only inside store.transaction\(\); call it there$"):
        getattr(store, method)(argument)
    assert not store.in_transaction


@LOCKS
def test_lock__inside_transaction__held_and_writes_committed(store_at, method, argument):
    store = store_at("hub")
    store.add_channel(RECORD)
    with store.transaction():
        getattr(store, method)(argument)
        assert store.in_transaction
        store.save_state(PARAMS.channel_id, STATE)
    assert not store.in_transaction
    with open_store(store.target) as other:  # committed: another connection sees it
        assert other.latest(PARAMS.channel_id) == STATE


@LOCKS
def test_lock__second_connection__waits_until_the_first_commits(postgres, method, argument):
    target, _ = _schema(postgres, "hub")
    first, second = open_store(target), open_store(target)
    try:
        first.add_channel(RECORD)
        reaching, done = threading.Event(), threading.Event()
        seen: list[object] = []

        def contend() -> None:
            try:
                with second.transaction():
                    reaching.set()
                    mark = getattr(second, method)(argument)
                    seen.append((mark, second.newest(PARAMS.channel_id)))  # re-read under the lock
            except Exception as exc:  # reported by the assertions below
                seen.append(exc)
            finally:
                done.set()

        with first.transaction():
            getattr(first, method)(argument)
            first.save_state(PARAMS.channel_id, STATE)
            worker = threading.Thread(target=contend, daemon=True)
            worker.start()
            assert reaching.wait(5)
            time.sleep(0.3)
            assert not done.is_set()  # blocked behind the first connection's lock
        assert done.wait(5)
        worker.join(5)
        # It saw the first connection's commit once it held the lock; lock_channel's mark too (read in a
        # statement after the wait, not from the snapshot the locking statement began with).
        mark = (STATE.state.version, True) if method == "lock_channel" else None
        assert seen == [(mark, STATE)]
    finally:
        first.close()
        second.close()
