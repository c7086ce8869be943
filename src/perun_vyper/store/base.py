"""The store interface every backend implements, and the SQL both backends share.

A store holds one party's channels and the states signed in them. Everything a party signs or receives
is written here, and the write is committed before the party answers (sends its countersignature or
acts on a received one), so after a crash the store gives back every channel and its newest states.

``ChannelStore`` is the interface and the common implementation: the queries are the same for SQLite
(``sqlite.py``, one file, one process) and PostgreSQL (``postgres.py``, shared by several hub workers);
a backend supplies the connection, the placeholders, the transaction statements and the locks.

Shared stores (``shared`` is True: PostgreSQL). Several processes may then write the same channel, so
a client's memory of a channel can be behind the database. Whoever acts on a channel of a shared store
does it in ``transaction()`` after ``lock_channel`` and re-reads the channel under that lock (``Hub``
does, SPEC 11.2): per channel, one writer at a time, and never two states of one version signed. The
``(channel, version)`` primary key is the last line: a second, different state of a version is never
inserted, and a countersignature leaves only after its insert committed.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..core.codec import hexstr
from ..core.protocol import SignedState
from ..core.virtual import VirtualParams
from ..errors import StoreError
from .coordination import Coordination
from .meta import StoreIdentity, describe_domain
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

_CHANNEL_COLUMNS = "SELECT id, kind, params, domain, owner FROM channels"

Mark = tuple[int, bool]  # (the newest stored version of a channel, whether both parties signed it)


def parties(record: ChannelRecord) -> tuple[str, str]:
    """Who takes part in a channel: a ledger or app channel's participants A and B, a virtual channel's Alice
    and Bob."""
    params = record.params
    if isinstance(params, VirtualParams):
        return params.alice, params.bob
    return params.participant_a, params.participant_b


class ChannelStore(Coordination):
    """One party's channels and signed states (the interface; ``Store`` is SQLite, ``PostgresStore``
    PostgreSQL). ``location`` names the store in messages: its file, or its database URL without the
    password."""

    location: str
    #: What ``open_store`` takes to open this store again (a path, or the full database URL).
    target: str
    #: The column that orders channels as they were added.
    _ADDED: str = "rowid"
    #: Whether other processes may write this store's channels (then act on a channel only under
    #: ``lock_channel``, after re-reading it).
    shared: bool = False

    def __init__(self) -> None:
        self._depth = 0  # transactions open (nested ones join the outermost)
        self._on_commit: list[Callable[[], None]] = []
        self._identity: StoreIdentity | None = None
        self._kinds: dict[bytes, Kind] = {}  # channel id -> kind, of channels read once

    # --- what a backend supplies ----------------------------------------------------------------------

    @abstractmethod
    def _begin(self) -> None:
        """Start a transaction that writes (SQLite takes the database's write lock here)."""

    def _rollback(self) -> None:
        """End the open transaction, writing nothing."""
        self._execute("ROLLBACK")

    @abstractmethod
    def close(self) -> None:
        """Close the connection; the store cannot be used afterwards."""

    @abstractmethod
    def lock_channel(self, channel_id: bytes) -> Mark | None:
        """Inside ``transaction()``: hold ``channel_id`` until the transaction ends, so that no other
        process acts on it meanwhile (nothing more to take where the transaction already excludes every
        other writer); returns the channel's ``mark`` read under the lock."""

    @abstractmethod
    def lock_name(self, name: str) -> None:
        """Inside ``transaction()``: hold the lock called ``name`` until the transaction ends (serialises
        what is not one channel, e.g. counting a user's channels before adding one)."""

    @abstractmethod
    def _missing_reference(self, exc: Exception) -> bool:
        """Whether ``exc`` is a foreign-key violation (a state of a channel the store does not hold)."""

    # --- identity and transactions --------------------------------------------------------------------

    @property
    def identity(self) -> StoreIdentity | None:
        """The deployment this store records, or None if no run has named one yet."""
        return self._identity

    def __enter__(self) -> ChannelStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

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
        self._begin()
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth, self._on_commit = 0, []
            self._rollback()
            raise
        self._depth = 0
        self._execute("COMMIT")
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

    def _require_transaction(self, what: str) -> None:
        if not self._depth:
            raise StoreError(f"{what} holds only inside store.transaction(); call it there")

    # --- channels -------------------------------------------------------------------------------------

    def add_channel(self, record: ChannelRecord) -> None:
        """Remember a channel. Adding the same channel again is a no-op; different data is refused."""
        if self._identity is not None and not self._identity.admits(record.kind, record.domain):
            raise StoreError(
                f"channel {hexstr(record.channel_id)} is of {describe_domain(record.kind, record.domain)}, but"
                f" {self.location} is the store of {self._identity.describe()}; add it to the store of its deployment"
            )
        # Inserted unless present, then compared: two processes adding one channel both end here.
        self._insert_channel(record)
        if self.channel(record.channel_id) != record:
            raise StoreError(f"channel {hexstr(record.channel_id)} is already stored with other parameters")

    def _insert_channel(self, record: ChannelRecord) -> None:
        self._execute(
            "INSERT INTO channels (id, kind, params, domain, owner) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (
                record.channel_id,
                record.kind,
                encode_params(record.params),
                encode_domain(record.domain),
                record.owner,
            ),
        )

    def channels_of(self, address: str, kind: Kind) -> list[ChannelRecord]:
        """The channels of ``kind`` that ``address`` takes part in (a ledger or app channel's participants, a
        virtual channel's Alice and Bob), in the order they were added."""
        return [record for record in self.channels(kind) if address in parties(record)]

    def channels(self, kind: Kind | None = None) -> list[ChannelRecord]:
        """The store's channels (of ``kind``, or all), in the order they were added."""
        if kind:
            rows = self._execute(_CHANNEL_COLUMNS + f" WHERE kind = ? ORDER BY {self._ADDED}", (kind,))
        else:
            rows = self._execute(_CHANNEL_COLUMNS + f" ORDER BY {self._ADDED}")
        return [self._record(*row) for row in rows.fetchall()]

    def channel(self, channel_id: bytes) -> ChannelRecord:
        row = self._execute(_CHANNEL_COLUMNS + " WHERE id = ?", (channel_id,)).fetchone()
        if row is None:
            raise StoreError(f"channel {hexstr(channel_id)} is not in {self.location}; add it with add_channel first")
        return self._record(*row)

    # --- states ---------------------------------------------------------------------------------------

    def save_state(self, channel_id: bytes, signed: SignedState) -> None:
        """Persist a state and the signatures held for it (committed on return).

        Saving a version again may add a missing signature; it may not change the state or replace a
        signature already stored, since a party that holds two different states of one version has been
        cheated or has a bug, and the store keeps the first.
        """
        kind = self._kind(channel_id)
        if self.insert_state(channel_id, signed):
            return
        existing = self._execute(
            "SELECT state, sig_a, sig_b FROM states WHERE channel = ? AND version = ?",
            (channel_id, signed.state.version),
        ).fetchone()
        old_text, old_a, old_b = existing
        if decode_state(kind, old_text) != signed.state:
            raise StoreError(
                f"channel {hexstr(channel_id)} already holds a different state at version {signed.state.version}"
            )
        for old, new in ((old_a, signed.sig_a), (old_b, signed.sig_b)):
            if old is not None and new is not None and bytes(old) != new:
                raise StoreError(f"channel {hexstr(channel_id)} version {signed.state.version}: signature differs")
        self._execute(
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

    def mark(self, channel_id: bytes) -> Mark | None:
        """The newest stored version of a channel and whether both signed it, or None: all a client needs
        to tell whether its memory of the channel is current (a version's state never changes once
        stored; only the missing signature of a proposal is added)."""
        row = self._execute(
            "SELECT version, sig_a IS NOT NULL AND sig_b IS NOT NULL FROM states WHERE channel = ?"
            " ORDER BY version DESC LIMIT 1",
            (channel_id,),
        ).fetchone()
        return None if row is None else (int(row[0]), bool(row[1]))

    def tip(self, channel_id: bytes) -> tuple[SignedState | None, SignedState | None]:
        """``(latest(channel_id), newest(channel_id))`` in one read: what a client re-reads under a
        channel's lock."""
        kind = self._kind(channel_id)
        rows = self._execute(
            "SELECT state, sig_a, sig_b FROM states WHERE channel = ? ORDER BY version DESC LIMIT 2", (channel_id,)
        ).fetchall()
        if not rows:
            return None, None
        top = [self._signed(kind, *row) for row in rows]
        if top[0].fully_signed:
            return top[0], top[0]
        if len(top) == 2 and top[1].fully_signed:
            return top[1], top[0]
        return self.latest(channel_id), top[0]  # a gap below the newest: never written by this client

    def newest(self, channel_id: bytes) -> SignedState | None:
        """The highest version stored, signed by both or not (a proposal in flight), or None."""
        return self._one(
            "SELECT state, sig_a, sig_b FROM states WHERE channel = ? ORDER BY version DESC LIMIT 1", channel_id
        )

    def history(self, channel_id: bytes) -> list[SignedState]:
        """Every stored version, oldest first."""
        kind = self._kind(channel_id)
        rows = self._execute(
            "SELECT state, sig_a, sig_b FROM states WHERE channel = ? ORDER BY version", (channel_id,)
        ).fetchall()
        return [self._signed(kind, *row) for row in rows]

    def state(self, channel_id: bytes, version: int) -> SignedState | None:
        """One stored version, or None."""
        kind = self._kind(channel_id)
        row = self._execute(
            "SELECT state, sig_a, sig_b FROM states WHERE channel = ? AND version = ?", (channel_id, version)
        ).fetchone()
        return None if row is None else self._signed(kind, *row)

    def insert_state(self, channel_id: bytes, signed: SignedState) -> bool:
        """Persist a version not stored yet (committed on return) and return True; False, changing
        nothing, if the version is already stored (then ``save_state`` decides whether the write is
        compatible). One statement: the client's per-payment write.
        """
        try:
            cursor = self._execute(
                "INSERT INTO states (channel, version, state, sig_a, sig_b) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (channel, version) DO NOTHING",
                (channel_id, signed.state.version, encode_state(signed.state), signed.sig_a, signed.sig_b),
            )
        except Exception as exc:
            if self._missing_reference(exc):
                raise StoreError(
                    f"channel {hexstr(channel_id)} is not in {self.location}; add it with add_channel first"
                ) from exc
            raise
        return cursor.rowcount == 1

    def add_signature(self, channel_id: bytes, version: int, side: int, signature: bytes) -> bool:
        """Fill the missing signature of ``side`` (0 = A / Alice, 1 = B / Bob) of a stored version
        (committed on return) and return True; False, changing nothing, if that version is not stored or
        already holds a signature for the side (``save_state`` then tells a repeat from a conflict).
        """
        column = ("sig_a", "sig_b")[side]
        cursor = self._execute(
            f"UPDATE states SET {column} = ? WHERE channel = ? AND version = ? AND {column} IS NULL",
            (signature, channel_id, version),
        )
        return cursor.rowcount == 1

    # --- rows -----------------------------------------------------------------------------------------

    def _kind(self, channel_id: bytes) -> Kind:
        """The kind of a stored channel (it never changes: kept after the first read)."""
        kind = self._kinds.get(channel_id)
        if kind is None:
            kind = self._kinds[channel_id] = self.channel(channel_id).kind
        return kind

    def _one(self, query: str, channel_id: bytes) -> SignedState | None:
        kind = self._kind(channel_id)
        row = self._execute(query, (channel_id,)).fetchone()
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
