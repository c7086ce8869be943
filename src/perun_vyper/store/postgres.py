"""The PostgreSQL backend: the store a hub with several workers shares (docs/SCALING.md).

The tables are those of the SQLite store (``bytea`` for blobs), in the schema the connection's
``search_path`` names first (``current_schema()``), so one database can hold several stores, one per
schema. ``base.py`` holds the queries; this module supplies the connection and the locks:

- ``lock_channel``: ``SELECT ... FOR UPDATE`` of the channel's row, held to the end of the transaction,
  so per channel one worker at a time re-reads, checks, signs and writes (READ COMMITTED: each statement
  after the lock sees every commit made before it).
- ``lock_name``: a transaction-level advisory lock on a hash of the name.
- the database clock (``clock_timestamp()``) for leases, one clock for workers on several machines.

Durability: a commit returns once PostgreSQL has flushed its WAL (``synchronous_commit`` on, the server
default), so a committed state survives the worker and the database server being killed. What the
operator backs up, and how to restore, is in docs/SCALING.md.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from ..errors import StoreError
from .base import ChannelStore, Mark, parties
from .meta import META_SCHEMA, SCHEMA_VERSION, StoreIdentity, decide
from .records import KIND_CHECK, ChannelRecord, Kind, encode_domain, encode_params

SCHEMA = (
    f"""CREATE TABLE IF NOT EXISTS channels (
    id bytea PRIMARY KEY,
    added bigint GENERATED ALWAYS AS IDENTITY,
    kind text NOT NULL {KIND_CHECK},
    params text NOT NULL,
    domain text NOT NULL,
    owner text NOT NULL,
    party_a text NOT NULL,
    party_b text NOT NULL
)""",
    # A hub with many channels finds a user's without reading them all (channel.list, opening, routes).
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
    META_SCHEMA,
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

# To schema version 2 (app channels): the kind CHECK of an older store is replaced, in the transaction that
# records the new schema_version. Its name is read from the catalog (PostgreSQL named it at CREATE TABLE).
_KIND_CHECKS = (
    "SELECT c.conname FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid"
    " JOIN pg_namespace n ON n.oid = t.relnamespace JOIN pg_attribute a ON a.attrelid = t.oid"
    " WHERE n.nspname = ? AND t.relname = 'channels' AND c.contype = 'c' AND a.attname = 'kind'"
    " AND c.conkey = ARRAY[a.attnum] ORDER BY c.conname"
)

# Taken while a store is first set up, so two workers starting at once do not both create the tables
# or both record an identity (any 64-bit constant; this one spells "perunvyp").
_SETUP_LOCK = 0x706572756E767970


def redact(url: str) -> str:
    """``url`` without its password (in the user part, or libpq's ``password`` parameter), for messages
    and logs."""
    parts = urlsplit(url)
    if parts.password is not None:
        netloc = parts.netloc.rsplit("@", 1)
        user = (parts.username or "") + "@"
        url = urlunsplit(parts._replace(netloc=user + netloc[-1]))
    base, mark, query = url.partition("?")
    kept = [pair for pair in query.split("&") if pair.split("=", 1)[0].strip().lower() != "password"]
    return (base + mark + "&".join(kept)) if kept else base


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@functools.cache
def _dialect(query: str) -> str:
    # base.py writes ``?`` placeholders (SQLite's); psycopg takes ``%s``. No query holds a literal ? or %.
    return query.replace("?", "%s")


class PostgresStore(ChannelStore):
    """One party's channels and signed states in a PostgreSQL database (a hub's, shared by its workers).

    ``url`` is a libpq connection URL (``postgresql://user:password@host:5432/dbname``; a Unix socket
    with ``?host=/path``; a schema with ``?options=-csearch_path%3Dname``)."""

    shared = True
    _ADDED = "added"

    def __init__(self, url: str, *, identity: StoreIdentity | None = None, create: bool = True) -> None:
        super().__init__()
        self.url = self.target = url
        self._closed = False
        self.location = redact(url)
        self._db = self._connect()
        try:
            with self.transaction():
                self._execute("SELECT pg_advisory_xact_lock(?)", (_SETUP_LOCK,))
                schema = self._execute("SELECT current_schema()").fetchone()[0]
                if schema is None:
                    raise StoreError(
                        f"{self.location}: the search_path names no existing schema; create it first"
                        " (CREATE SCHEMA name) or connect with a search_path that names one"
                    )
                self.location = f"{self.location} (schema {schema})"
                verdict = self._settle(schema, identity, create)
                if verdict.migrate:
                    self._migrate(schema)
                for statement in SCHEMA:
                    self._execute(statement)
                for key, value in verdict.writes.items():
                    self._execute(
                        "INSERT INTO perun_meta (key, value) VALUES (?, ?)"
                        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (key, value),
                    )
        except BaseException:
            self._db.close()
            raise
        self._identity = verdict.identity

    def _connect(self) -> Any:
        try:
            return psycopg.connect(self.url, autocommit=True)
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise StoreError(
                f"cannot connect to the PostgreSQL store {self.location} ({reason}); check the URL, that the server"
                " runs and that the role may log in"
            ) from exc

    def _fresh(self) -> None:
        """Outside a transaction, replace a connection the server or the network broke (a restarted or
        failed-over database): the work that broke it was rolled back, nothing else is lost."""
        if self._depth == 0 and (self._db.broken or self._db.closed) and not self._closed:
            self._db = self._connect()

    def _settle(self, schema: str, identity: StoreIdentity | None, create: bool) -> Any:
        tables = [
            str(name)
            for (name,) in self._execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name",
                (schema,),
            ).fetchall()
        ]
        meta: dict[str, str] = {}
        if "perun_meta" in tables:
            columns = {
                str(name)
                for (name,) in self._execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
                    (schema, "perun_meta"),
                ).fetchall()
            }
            if {"key", "value"} <= columns:  # a table of that name without our columns is not ours
                meta = {str(k): str(v) for k, v in self._execute("SELECT key, value FROM perun_meta").fetchall()}
        return decide(
            self.location,
            tables,
            meta,
            identity,
            create,
            legacy=lambda: False,  # PostgreSQL stores began with schema version 1
            channels=lambda: self._execute("SELECT id, kind, domain FROM channels ORDER BY added").fetchall(),
        )

    def _migrate(self, schema: str) -> None:
        try:
            names = [str(name) for (name,) in self._execute(_KIND_CHECKS, (schema,)).fetchall()]
            for name in names:
                self._execute(f"ALTER TABLE channels DROP CONSTRAINT {_quoted(name)}")
            name = names[0] if names else "channels_kind_check"
            self._execute(f"ALTER TABLE channels ADD CONSTRAINT {_quoted(name)} {KIND_CHECK}")
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(
                f"{self.location}: migrating the store to schema version {SCHEMA_VERSION} failed ({reason}); nothing"
                " was changed"
            ) from exc

    def _insert_channel(self, record: ChannelRecord) -> None:
        party_a, party_b = parties(record)
        self._execute(
            "INSERT INTO channels (id, kind, params, domain, owner, party_a, party_b) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            (
                record.channel_id,
                record.kind,
                encode_params(record.params),
                encode_domain(record.domain),
                record.owner,
                party_a,
                party_b,
            ),
        )

    def channels_of(self, address: str, kind: Kind) -> list[ChannelRecord]:
        rows = self._execute(
            "SELECT id, kind, params, domain, owner FROM channels WHERE kind = ? AND (party_a = ? OR party_b = ?)"
            " ORDER BY added",
            (kind, address, address),
        ).fetchall()
        return [self._record(*row) for row in rows]

    def close(self) -> None:
        self._closed = True
        self._db.close()

    def _execute(self, query: str, args: Sequence[Any] = ()) -> Any:
        self._fresh()
        return self._db.execute(_dialect(query), args)

    def _begin(self) -> None:
        self._fresh()
        self._db.execute("BEGIN")

    def _rollback(self) -> None:
        if self._db.broken or self._db.closed:
            return  # the server ended the transaction with the connection
        self._db.execute("ROLLBACK")

    def lock_channel(self, channel_id: bytes) -> Mark | None:
        self._require_transaction("lock_channel")
        self._execute("SELECT 1 FROM channels WHERE id = ? FOR UPDATE", (channel_id,))
        # A statement of its own: under READ COMMITTED a statement reads the snapshot taken when it began,
        # so a mark read in the locking statement (a join) would predate the commit it waited for.
        return self.mark(channel_id)

    def lock_name(self, name: str) -> None:
        self._require_transaction("lock_name")
        self._execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (name,))

    def _missing_reference(self, exc: Exception) -> bool:
        return isinstance(exc, psycopg.errors.ForeignKeyViolation)

    def _now(self) -> float:
        return float(self._execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()[0])
