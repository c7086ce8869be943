"""Durable channel store: SQLite in WAL mode, one row per channel and per signed state version.

Everything a party signs or receives is written here, and the write is committed before the party
answers (sends its countersignature or acts on a received one). After a crash, ``Store`` reopened on
the same file gives back every channel and its newest states.

Durability levels (``synchronous``):
- ``"NORMAL"`` (default): a committed write survives the process being killed at any point (SIGKILL,
  OOM, crash). In WAL mode SQLite then skips the fsync per commit, so a power cut may lose the last
  commits; this is what lets one core persist thousands of payments a second.
- ``"FULL"``: every commit is fsynced, so it also survives a power cut, at the cost of one disk flush
  per commit.

What the file is (``meta.py``): before writing anything, ``Store`` reads the file and refuses one that
is not a SQLite database, holds another application's tables, is of a newer schema, or (``create=False``)
holds no store; a refused file is left byte for byte as it was.

Identity: signatures are bound to one chain and two adjudicators, so a store belongs to one deployment.
Opened with ``identity=StoreIdentity(chain_id, ledger, virtual)``, a store records it (after checking
that the channels it already holds are of that deployment) and from then on refuses a run on another
deployment and a channel of another domain. Opened without ``identity``, no deployment is checked
or recorded (``add_channel`` still refuses a foreign channel if the store recorded one earlier).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from ..core.codec import hexstr
from ..core.protocol import SignedState
from ..errors import StoreError
from .meta import META_SCHEMA, StoreIdentity, describe_domain, peek, settle
from .records import (
    ChannelRecord,
    Kind,
    decode_domain,
    decode_params,
    decode_state,
    encode_domain,
    encode_params,
    encode_state,
)

# One statement each: executescript would commit the transaction they run in.
_SCHEMA = (
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
    META_SCHEMA,
)


class Store:
    """One party's channels and signed states in one SQLite file (WAL mode)."""

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
        if synchronous not in ("NORMAL", "FULL"):
            raise StoreError(f"synchronous must be 'NORMAL' or 'FULL', got {synchronous!r}")
        self.path = Path(path)
        peek(self.path, identity, create)
        # Autocommit mode: every write below opens and commits its own transaction explicitly.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._depth = 0  # transactions open (nested ones join the outermost)
        self._on_commit: list[Callable[[], None]] = []
        try:
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"{self.path}: SQLite refused WAL mode ({mode}); use a local file system")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute("PRAGMA foreign_keys=ON")
            with self.transaction():
                # peek read without a lock: decide again under the write lock, so that two first opens
                # of one file (two processes) cannot both record an identity.
                verdict = settle(self._db, self.path, identity, create)
                for statement in _SCHEMA:
                    self._db.execute(statement)
                self._db.executemany("INSERT INTO perun_meta (key, value) VALUES (?, ?)", verdict.writes.items())
        except BaseException:
            self._db.close()
            raise
        self._identity = verdict.identity

    @property
    def identity(self) -> StoreIdentity | None:
        """The deployment this store records, or None if no run has named one yet."""
        return self._identity

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes: they are committed together when the outermost block ends, or not at all. A
        block inside another joins it."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth, self._on_commit = 0, []
            self._db.execute("ROLLBACK")
            raise
        self._depth = 0
        self._db.execute("COMMIT")
        done, self._on_commit = self._on_commit, []
        for callback in done:
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the writes made so far are committed: at once outside a transaction,
        when the outermost one commits inside it, never if it rolls back. A client updates its memory
        this way, so memory never runs ahead of the store."""
        if self._depth:
            self._on_commit.append(callback)
        else:
            callback()

    def add_channel(self, record: ChannelRecord) -> None:
        """Remember a channel. Adding the same channel again is a no-op; different data is refused."""
        if self._identity is not None and not self._identity.admits(record.kind, record.domain):
            raise StoreError(
                f"channel {hexstr(record.channel_id)} is of {describe_domain(record.kind, record.domain)}, but"
                f" {self.path} is the store of {self._identity.describe()}; add it to the store of its deployment"
            )
        params, domain = encode_params(record.params), encode_domain(record.domain)
        query = "SELECT id, kind, params, domain, owner FROM channels WHERE id = ?"
        existing = self._db.execute(query, (record.channel_id,)).fetchone()
        if existing is not None:
            if self._record(*existing) != record:
                raise StoreError(f"channel {hexstr(record.channel_id)} is already stored with other parameters")
            return
        self._db.execute(
            "INSERT INTO channels (id, kind, params, domain, owner) VALUES (?, ?, ?, ?, ?)",
            (record.channel_id, record.kind, params, domain, record.owner),
        )

    def channels(self, kind: Kind | None = None) -> list[ChannelRecord]:
        query = "SELECT id, kind, params, domain, owner FROM channels"
        rows = self._db.execute(query + " WHERE kind = ?", (kind,)) if kind else self._db.execute(query)
        return [self._record(*row) for row in rows]

    def channel(self, channel_id: bytes) -> ChannelRecord:
        row = self._db.execute(
            "SELECT id, kind, params, domain, owner FROM channels WHERE id = ?", (channel_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"channel {hexstr(channel_id)} is not in {self.path}; add it with add_channel first")
        return self._record(*row)

    def save_state(self, channel_id: bytes, signed: SignedState) -> None:
        """Persist a state and the signatures held for it (committed on return).

        Saving a version again may add a missing signature; it may not change the state or replace a
        signature already stored, since a party that holds two different states of one version has been
        cheated or has a bug, and the store keeps the first.
        """
        kind = self.channel(channel_id).kind
        text = encode_state(signed.state)
        existing = self._db.execute(
            "SELECT state, sig_a, sig_b FROM states WHERE channel = ? AND version = ?",
            (channel_id, signed.state.version),
        ).fetchone()
        if existing is None:
            self._db.execute(
                "INSERT INTO states (channel, version, state, sig_a, sig_b) VALUES (?, ?, ?, ?, ?)",
                (channel_id, signed.state.version, text, signed.sig_a, signed.sig_b),
            )
            return
        old_text, old_a, old_b = existing
        if decode_state(kind, old_text) != signed.state:
            raise StoreError(
                f"channel {hexstr(channel_id)} already holds a different state at version {signed.state.version}"
            )
        for old, new in ((old_a, signed.sig_a), (old_b, signed.sig_b)):
            if old is not None and new is not None and bytes(old) != new:
                raise StoreError(f"channel {hexstr(channel_id)} version {signed.state.version}: signature differs")
        self._db.execute(
            "UPDATE states SET sig_a = COALESCE(sig_a, ?), sig_b = COALESCE(sig_b, ?)"
            " WHERE channel = ? AND version = ?",
            (signed.sig_a, signed.sig_b, channel_id, signed.state.version),
        )

    def latest(self, channel_id: bytes) -> SignedState | None:
        """The highest version both parties signed, or None."""
        return self._one(
            "SELECT state, sig_a, sig_b FROM states WHERE channel = ? AND sig_a IS NOT NULL AND sig_b IS NOT NULL"
            " ORDER BY version DESC LIMIT 1",
            channel_id,
        )

    def newest(self, channel_id: bytes) -> SignedState | None:
        """The highest version stored, signed by both or not (a proposal in flight), or None."""
        return self._one(
            "SELECT state, sig_a, sig_b FROM states WHERE channel = ? ORDER BY version DESC LIMIT 1", channel_id
        )

    def history(self, channel_id: bytes) -> list[SignedState]:
        """Every stored version, oldest first."""
        kind = self.channel(channel_id).kind
        rows = self._db.execute(
            "SELECT state, sig_a, sig_b FROM states WHERE channel = ? ORDER BY version", (channel_id,)
        )
        return [self._signed(kind, *row) for row in rows]

    def state(self, channel_id: bytes, version: int) -> SignedState | None:
        """One stored version, or None."""
        kind = self.channel(channel_id).kind
        row = self._db.execute(
            "SELECT state, sig_a, sig_b FROM states WHERE channel = ? AND version = ?", (channel_id, version)
        ).fetchone()
        return None if row is None else self._signed(kind, *row)

    def insert_state(self, channel_id: bytes, signed: SignedState) -> bool:
        """Persist a version not stored yet (committed on return) and return True; False, changing
        nothing, if the version is already stored (then ``save_state`` decides whether the write is
        compatible). One statement: the client's per-payment write.
        """
        try:
            self._db.execute(
                "INSERT INTO states (channel, version, state, sig_a, sig_b) VALUES (?, ?, ?, ?, ?)",
                (channel_id, signed.state.version, encode_state(signed.state), signed.sig_a, signed.sig_b),
            )
        except sqlite3.IntegrityError as exc:
            if "FOREIGN KEY" in str(exc):
                raise StoreError(
                    f"channel {hexstr(channel_id)} is not in {self.path}; add it with add_channel first"
                ) from exc
            return False
        return True

    def add_signature(self, channel_id: bytes, version: int, side: int, signature: bytes) -> bool:
        """Fill the missing signature of ``side`` (0 = A / Alice, 1 = B / Bob) of a stored version
        (committed on return) and return True; False, changing nothing, if that version is not stored or
        already holds a signature for the side (``save_state`` then tells a repeat from a conflict).
        """
        column = ("sig_a", "sig_b")[side]
        cursor = self._db.execute(
            f"UPDATE states SET {column} = ? WHERE channel = ? AND version = ? AND {column} IS NULL",
            (signature, channel_id, version),
        )
        return cursor.rowcount == 1

    def _one(self, query: str, channel_id: bytes) -> SignedState | None:
        kind = self.channel(channel_id).kind
        row = self._db.execute(query, (channel_id,)).fetchone()
        return None if row is None else self._signed(kind, *row)

    @staticmethod
    def _signed(kind: Kind, text: str, sig_a: bytes | None, sig_b: bytes | None) -> SignedState:
        return SignedState(
            decode_state(kind, text),
            None if sig_a is None else bytes(sig_a),
            None if sig_b is None else bytes(sig_b),
        )

    @staticmethod
    def _record(channel_id: bytes, kind: Kind, params: str, domain: str, owner: str) -> ChannelRecord:
        return ChannelRecord(bytes(channel_id), kind, decode_params(kind, params), decode_domain(domain), owner)
