"""The SQLite backend (the default): one file in WAL mode, one row per channel and per signed state
version, used by one process (a wallet, or a hub with one worker). ``base.py`` holds the queries.

Durability levels (``synchronous``):
- ``"NORMAL"`` (default): a committed write survives the process being killed at any point (SIGKILL,
  OOM, crash). In WAL mode SQLite then skips the fsync per commit, so a power cut may lose the last
  commits; this is what lets one core persist thousands of payments a second.
- ``"FULL"``: every commit is fsynced, so it also survives a power cut, at the cost of one disk flush
  per commit.

What the file is (``meta.py``): before writing anything, ``Store`` reads the file and refuses one that
is not a SQLite database, holds another application's tables, is of a newer schema, or (``create=False``)
holds no store; a refused file is left byte for byte as it was.

Identity: signatures are bound to one chain and its adjudicators, so a store belongs to one deployment.
Opened with ``identity=StoreIdentity(chain_id, ledger, virtual)`` (and ``app=`` to hold app channels), a
store records it (after checking that the channels it already holds are of that deployment) and from
then on refuses a run on another deployment and a channel of another domain. Opened without
``identity``, no deployment is checked or recorded (``add_channel`` still refuses a foreign channel if
the store recorded one earlier).

An older store (schema version 1, or 0) is migrated to version 2 when opened (``MIGRATE``), all or
nothing; ``peek`` never writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from ..errors import StoreError
from .base import ChannelStore, Mark
from .meta import META_SCHEMA, SCHEMA_VERSION, StoreIdentity, peek, settle
from .records import KIND_CHECK

_CHANNELS = """CREATE TABLE {name} (
    id BLOB PRIMARY KEY,
    kind TEXT NOT NULL {kind_check},
    params TEXT NOT NULL,
    domain TEXT NOT NULL,
    owner TEXT NOT NULL
)"""

# One statement each: executescript would commit the transaction they run in.
SCHEMA = (
    _CHANNELS.format(name="IF NOT EXISTS channels", kind_check=KIND_CHECK),
    """CREATE TABLE IF NOT EXISTS states (
    channel BLOB NOT NULL REFERENCES channels (id),
    version INTEGER NOT NULL,
    state TEXT NOT NULL,
    sig_a BLOB,
    sig_b BLOB,
    PRIMARY KEY (channel, version)
)""",
    META_SCHEMA,
    "CREATE TABLE IF NOT EXISTS perun_leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires REAL NOT NULL)",
    """CREATE TABLE IF NOT EXISTS perun_releases (
    virtual BLOB NOT NULL,
    leg TEXT NOT NULL,
    release TEXT NOT NULL,
    PRIMARY KEY (virtual, leg)
)""",
)


# To schema version 2 (app channels): SQLite cannot alter a CHECK, so the channels table of an older store
# is rebuilt, with foreign keys off (dropping the table that states refers to must leave states alone) and
# the rowids copied (channels() orders by them). The states' reference names the table, so it holds again
# once the new table is renamed. Run in the transaction that records the new schema_version: a crash
# leaves the old table and version.
MIGRATE = (
    _CHANNELS.format(name="perun_channels_v2", kind_check=KIND_CHECK),
    "INSERT INTO perun_channels_v2 (rowid, id, kind, params, domain, owner)"
    " SELECT rowid, id, kind, params, domain, owner FROM channels ORDER BY rowid",
    "DROP TABLE channels",
    "ALTER TABLE perun_channels_v2 RENAME TO channels",
)
UPSERT_META = "INSERT INTO perun_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"


class Store(ChannelStore):
    """One party's channels and signed states in one SQLite file (WAL mode)."""

    shared = False

    def __init__(
        self,
        path: str | Path,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        *,
        identity: StoreIdentity | None = None,
        create: bool = True,
    ) -> None:
        """Open (or, with ``create``, start) the store at ``path``. ``identity`` names the deployment
        this run is on: recorded on first use, refused if the store belongs to another one."""
        super().__init__()
        if synchronous not in ("NORMAL", "FULL"):
            raise StoreError(f"synchronous must be 'NORMAL' or 'FULL', got {synchronous!r}")
        self.path = Path(path)
        self.location = self.target = str(self.path)
        peek(self.path, identity, create)
        # Autocommit mode: every write below opens and commits its own transaction explicitly.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"{self.path}: SQLite refused WAL mode ({mode}); use a local file system")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            # Off while the store is set up (a migration rebuilds channels; the pragma cannot change inside
            # a transaction), on for everything after.
            self._db.execute("PRAGMA foreign_keys=OFF")
            with self.transaction():
                # peek read without a lock: decide again under the write lock, so that two first opens
                # of one file (two processes) cannot both record an identity or both migrate.
                verdict = settle(self._db, self.path, identity, create)
                if verdict.migrate:
                    self._migrate()
                for statement in SCHEMA:
                    self._db.execute(statement)
                self._db.executemany(UPSERT_META, verdict.writes.items())
            self._db.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            self._db.close()
            raise
        self._identity = verdict.identity

    def _migrate(self) -> None:
        try:
            for statement in MIGRATE:
                self._db.execute(statement)
        except sqlite3.Error as exc:
            raise StoreError(
                f"{self.path}: migrating the store to schema version {SCHEMA_VERSION} failed ({exc}); nothing was"
                " changed"
            ) from exc

    def close(self) -> None:
        self._db.close()

    def _execute(self, query: str, args: Sequence[Any] = ()) -> Any:
        return self._db.execute(query, args)

    def _begin(self) -> None:
        # IMMEDIATE takes the write lock now: no other connection writes until this transaction ends.
        self._db.execute("BEGIN IMMEDIATE")

    def lock_channel(self, channel_id: bytes) -> Mark | None:
        self._require_transaction("lock_channel")  # BEGIN IMMEDIATE already excludes every other writer
        return self.mark(channel_id)

    def lock_name(self, name: str) -> None:
        self._require_transaction("lock_name")

    def _missing_reference(self, exc: Exception) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and "FOREIGN KEY" in str(exc)

    def _now(self) -> float:
        return float(self._db.execute("SELECT (julianday('now') - 2440587.5) * 86400.0").fetchone()[0])
