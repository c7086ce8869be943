"""Schema version 2: a store of version 1 (or 0) admits no app channel (the kind CHECK of its channels
table); opened for writing it is migrated, all or nothing, in the transaction that records version 2.
The old schemas are written here as perun-vyper wrote them, so the migration runs on real old stores."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from perun_vyper import ChannelParams, ChannelRecord, Store, StoreError, StoreIdentity, open_store
from perun_vyper.store import meta as meta_module
from perun_vyper.store import postgres as postgres_module
from perun_vyper.store import sqlite as sqlite_module
from perun_vyper.store.base import parties
from perun_vyper.store.records import encode_domain, encode_params, encode_state
from tests.conftest import postgres_schema
from tests.support.parties import ALICE, BOB, INGRID, LEDGER_DOMAIN, snapshot
from tests.support.stores import (
    APP_IDENTITY,
    APP_PARAMS,
    APP_RECORD,
    APP_S0,
    APP_S1,
    LEDGER,
    LEDGER_RECORD,
    PARAMS,
    STATE,
    VIRTUAL,
    app_signed,
)

# The SQLite schema of version 1 (and of version 0: its first two tables), as perun-vyper wrote it.
V1_SQLITE = (
    """CREATE TABLE IF NOT EXISTS channels (
    id BLOB PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('ledger', 'virtual')),
    params TEXT NOT NULL,
    domain TEXT NOT NULL,
    owner TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS states (
    channel BLOB NOT NULL REFERENCES channels (id),
    version INTEGER NOT NULL,
    state TEXT NOT NULL,
    sig_a BLOB,
    sig_b BLOB,
    PRIMARY KEY (channel, version)
)""",
    "CREATE TABLE IF NOT EXISTS perun_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS perun_leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires REAL NOT NULL)",
    """CREATE TABLE IF NOT EXISTS perun_releases (
    virtual BLOB NOT NULL,
    leg TEXT NOT NULL,
    release TEXT NOT NULL,
    PRIMARY KEY (virtual, leg)
)""",
)

# The PostgreSQL schema of version 1, as perun-vyper wrote it.
V1_POSTGRES = (
    """CREATE TABLE IF NOT EXISTS channels (
    id bytea PRIMARY KEY,
    added bigint GENERATED ALWAYS AS IDENTITY,
    kind text NOT NULL CHECK (kind IN ('ledger', 'virtual')),
    params text NOT NULL,
    domain text NOT NULL,
    owner text NOT NULL,
    party_a text NOT NULL,
    party_b text NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS channels_party_a ON channels (party_a, kind)",
    "CREATE INDEX IF NOT EXISTS channels_party_b ON channels (party_b, kind)",
    """CREATE TABLE IF NOT EXISTS states (
    channel bytea NOT NULL REFERENCES channels (id),
    version bigint NOT NULL,
    state text NOT NULL,
    sig_a bytea,
    sig_b bytea,
    PRIMARY KEY (channel, version)
)""",
    "CREATE TABLE IF NOT EXISTS perun_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS perun_leases (
    name text PRIMARY KEY,
    holder text NOT NULL,
    expires double precision NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS perun_releases (
    virtual bytea NOT NULL,
    leg text NOT NULL,
    release text NOT NULL,
    PRIMARY KEY (virtual, leg)
)""",
)

# A second ledger channel whose id sorts before the first one's: channels() must keep the order added.
EARLY = next(
    ChannelParams(ALICE, INGRID, nonce=n)
    for n in range(100)
    if ChannelParams(ALICE, INGRID, nonce=n).channel_id < PARAMS.channel_id
)
EARLY_RECORD = ChannelRecord(EARLY.channel_id, "ledger", EARLY, LEDGER_DOMAIN, ALICE)
V1_FORMAT = {"format": "perun-vyper store", "schema_version": "1"}
V1_META = V1_FORMAT | {"chain_id": "31337", "ledger": LEDGER, "virtual": VIRTUAL}


def _channel_row(record: ChannelRecord) -> tuple:
    return (record.channel_id, record.kind, encode_params(record.params), encode_domain(record.domain), record.owner)


def v1_sqlite(path: Path, version: int = 1, meta: dict[str, str] = V1_META) -> None:
    """A store of schema ``version`` (1 recording ``meta``, or 0: no perun_meta) as perun-vyper wrote it: the
    ledger channel with its state, then ``EARLY`` (a smaller id, added later), a lease."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    for statement in V1_SQLITE if version else V1_SQLITE[:2]:
        db.execute(statement)
    if version:
        db.executemany("INSERT INTO perun_meta VALUES (?, ?)", meta.items())
        db.execute("INSERT INTO perun_leases VALUES ('watchtower', 'worker-1', 1e12)")
    db.executemany(
        "INSERT INTO channels VALUES (?, ?, ?, ?, ?)", [_channel_row(LEDGER_RECORD), _channel_row(EARLY_RECORD)]
    )
    db.execute(
        "INSERT INTO states VALUES (?, 0, ?, ?, ?)",
        (PARAMS.channel_id, encode_state(STATE.state), STATE.sig_a, STATE.sig_b),
    )
    db.close()


def sqlite_rows(path: Path, query: str) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


def channels_ddl(path: Path) -> str:
    return sqlite_rows(path, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'channels'")[0][0]


def admits_app_row(path: Path) -> bool:
    """Whether the channels table takes a row of kind app (tried in a transaction rolled back)."""
    db = sqlite3.connect(path)
    try:
        db.execute("INSERT INTO channels VALUES (?, ?, ?, ?, ?)", _channel_row(APP_RECORD))
    except sqlite3.IntegrityError as exc:
        assert "CHECK constraint failed" in str(exc)
        return False
    finally:
        db.rollback()
        db.close()
    return True


def stored_app_channel(store) -> None:
    """An app channel and two states in ``store``, read back."""
    store.add_channel(APP_RECORD)
    store.save_state(APP_PARAMS.channel_id, app_signed(APP_S0))
    store.save_state(APP_PARAMS.channel_id, app_signed(APP_S1))
    assert store.tip(APP_PARAMS.channel_id) == (app_signed(APP_S1), app_signed(APP_S1))
    assert store.channels_of(BOB, "app") == [APP_RECORD]


# --- SQLite -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recorded", "identity"),
    [(V1_FORMAT, None), (V1_META, APP_IDENTITY)],  # a run that names an app adopts it (the store recorded none)
    ids=["without-identity", "identity-app-adopted"],
)
def test_open__version_1_sqlite__migrated_channels_in_order_app_channel_stored(tmp_path, recorded, identity):
    path = tmp_path / "hub.db"
    v1_sqlite(path, meta=recorded)
    assert not admits_app_row(path)  # the old CHECK: an app channel was refused
    with Store(path, identity=identity, create=False) as store:
        assert store.identity == identity
        assert snapshot(store) == [(LEDGER_RECORD, [STATE]), (EARLY_RECORD, [])]  # as added, not by id
        assert store.lease_holder("watchtower") == "worker-1"
        stored_app_channel(store)
        with pytest.raises(StoreError, match=r"^channel 0x0909.* is not in .*; add it with add_channel first$"):
            store.insert_state(b"\x09" * 32, STATE)  # the states' foreign key holds on the new table
    app = {"app": APP_IDENTITY.app} if identity else {}
    assert dict(sqlite_rows(path, "SELECT key, value FROM perun_meta")) == recorded | {"schema_version": "2"} | app
    assert "'ledger', 'virtual', 'app'" in channels_ddl(path)
    assert sqlite_rows(path, "PRAGMA foreign_key_check") == []
    tables = sqlite_rows(path, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    assert tables == [("channels",), ("perun_leases",), ("perun_meta",), ("perun_releases",), ("states",)]
    with Store(path) as store:
        assert store.channels() == [LEDGER_RECORD, EARLY_RECORD, APP_RECORD]
        assert [parties(record) for record in store.channels()] == [(ALICE, BOB), (ALICE, INGRID), (ALICE, BOB)]


def test_open__version_0_sqlite__adopted_as_version_2_app_channel_stored(tmp_path):
    path = tmp_path / "wallet.db"
    v1_sqlite(path, version=0)
    with Store(path, identity=APP_IDENTITY) as store:
        assert snapshot(store) == [(LEDGER_RECORD, [STATE]), (EARLY_RECORD, [])]
        stored_app_channel(store)
    assert dict(sqlite_rows(path, "SELECT key, value FROM perun_meta")) == V1_META | {
        "schema_version": "2",
        "app": APP_IDENTITY.app,
    }


def test_open__version_1_sqlite_refused__left_at_version_1_unchanged(tmp_path):
    path = tmp_path / "hub.db"
    v1_sqlite(path)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="is the store of chain 31337"):
        Store(path, identity=StoreIdentity(1, LEDGER, VIRTUAL))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hub.db"]  # peek wrote nothing, not even a -wal


def test_open__sqlite_migration_fails_midway__version_1_and_channels_intact(tmp_path, monkeypatch):
    path = tmp_path / "hub.db"
    v1_sqlite(path)
    ddl = channels_ddl(path)
    # Fails after the new table was filled and the old one dropped: the transaction must undo both.
    broken = (*sqlite_module.MIGRATE[:3], "SELECT no_such_function()", *sqlite_module.MIGRATE[3:])
    monkeypatch.setattr(sqlite_module, "MIGRATE", broken)
    with pytest.raises(StoreError) as refused:
        Store(path, identity=APP_IDENTITY)  # the app would be adopted too
    assert str(refused.value) == (
        f"{path}: migrating the store to schema version 2 failed (no such function: no_such_function); nothing was"
        " changed"
    )
    assert dict(sqlite_rows(path, "SELECT key, value FROM perun_meta")) == V1_META
    assert channels_ddl(path) == ddl and not admits_app_row(path)
    assert sqlite_rows(path, "SELECT rowid, id FROM channels ORDER BY rowid") == [
        (1, PARAMS.channel_id),
        (2, EARLY.channel_id),
    ]
    assert "perun_channels_v2" not in {name for (name,) in sqlite_rows(path, "SELECT name FROM sqlite_master")}
    monkeypatch.undo()
    with Store(path, identity=APP_IDENTITY) as store:  # the next open migrates
        assert snapshot(store) == [(LEDGER_RECORD, [STATE]), (EARLY_RECORD, [])]
        stored_app_channel(store)


def test_open__version_2_store_by_a_perun_vyper_of_version_1__refused_unchanged(tmp_path, monkeypatch):
    path = tmp_path / "hub.db"
    with Store(path) as store:
        store.add_channel(APP_RECORD)
    before = path.read_bytes()
    monkeypatch.setattr(meta_module, "SCHEMA_VERSION", 1)  # what an older perun-vyper reads
    with pytest.raises(StoreError) as refused:
        Store(path)
    assert str(refused.value) == (
        f"{path} is a perun-vyper store of schema version 2, newer than version 1 that this perun-vyper reads;"
        " upgrade perun-vyper to open it"
    )
    assert path.read_bytes() == before


# --- PostgreSQL ---------------------------------------------------------------------------------------


def v1_postgres(url: str, name: str) -> str:
    """A schema holding a store of version 1 as perun-vyper wrote it (as ``v1_sqlite``); its store URL."""
    target = postgres_schema(url, name)
    with psycopg.connect(target, autocommit=True) as db:
        for statement in V1_POSTGRES:
            db.execute(statement)
        for key, value in V1_META.items():
            db.execute("INSERT INTO perun_meta VALUES (%s, %s)", (key, value))
        for record in (LEDGER_RECORD, EARLY_RECORD):
            db.execute(
                "INSERT INTO channels (id, kind, params, domain, owner, party_a, party_b)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (*_channel_row(record), *parties(record)),
            )
        db.execute(
            "INSERT INTO states VALUES (%s, 0, %s, %s, %s)",
            (PARAMS.channel_id, encode_state(STATE.state), STATE.sig_a, STATE.sig_b),
        )
    return target


def kind_checks(target: str) -> list[tuple[str, str]]:
    """The CHECK constraints on channels.kind: their names and definitions."""
    with psycopg.connect(target) as db:
        return db.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'c'"
            " AND conrelid = 'channels'::regclass ORDER BY conname"
        ).fetchall()


def postgres_meta(target: str) -> dict[str, str]:
    with psycopg.connect(target) as db:
        return dict(db.execute("SELECT key, value FROM perun_meta").fetchall())


@pytest.mark.parametrize("constraint", ["channels_kind_check", "kinds we take"], ids=["as-created", "renamed"])
def test_open__version_1_postgres__migrated_app_channel_stored(postgres, constraint):
    target = v1_postgres(postgres, "hub")
    if constraint != "channels_kind_check":  # the name is read from the catalog, not assumed
        with psycopg.connect(target, autocommit=True) as db:
            db.execute(f'ALTER TABLE channels RENAME CONSTRAINT channels_kind_check TO "{constraint}"')
    assert kind_checks(target) == [(constraint, "CHECK ((kind = ANY (ARRAY['ledger'::text, 'virtual'::text])))")]
    with open_store(target, identity=APP_IDENTITY, create=False) as store:
        assert snapshot(store) == [(LEDGER_RECORD, [STATE]), (EARLY_RECORD, [])]
        stored_app_channel(store)
    assert kind_checks(target) == [
        (constraint, "CHECK ((kind = ANY (ARRAY['ledger'::text, 'virtual'::text, 'app'::text])))")
    ]
    assert postgres_meta(target) == V1_META | {"schema_version": "2", "app": APP_IDENTITY.app}
    with open_store(target) as store:
        assert store.channels() == [LEDGER_RECORD, EARLY_RECORD, APP_RECORD]


def test_open__postgres_migration_fails_midway__version_1_and_constraint_intact(postgres, monkeypatch):
    target = v1_postgres(postgres, "hub")
    checks = kind_checks(target)
    # The old CHECK is dropped, then adding the new one fails: the transaction must restore the old one.
    monkeypatch.setattr(postgres_module, "KIND_CHECK", "CHECK (no_such_column IS NULL)")
    with pytest.raises(StoreError) as refused:
        open_store(target, identity=APP_IDENTITY)  # the app would be adopted too
    assert str(refused.value).endswith(
        '(column "no_such_column" does not exist); nothing was changed'
    ) and "migrating the store to schema version 2 failed" in str(refused.value)
    assert kind_checks(target) == checks
    assert postgres_meta(target) == V1_META
    with psycopg.connect(target) as db, pytest.raises(psycopg.errors.CheckViolation):
        db.execute(
            "INSERT INTO channels (id, kind, params, domain, owner, party_a, party_b) VALUES (%s, 'app', '', '', '',"
            " '', '')",
            (APP_PARAMS.channel_id,),
        )
    monkeypatch.undo()
    with open_store(target, identity=APP_IDENTITY) as store:
        assert snapshot(store) == [(LEDGER_RECORD, [STATE]), (EARLY_RECORD, [])]
        stored_app_channel(store)
