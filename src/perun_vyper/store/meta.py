"""What a store file says about itself: the ``perun_meta`` table, and the checks ``Store`` makes on a
file before it writes anything to it.

``perun_meta`` holds ``format`` (always ``perun-vyper store``), ``schema_version`` (``SCHEMA_VERSION``)
and, once a run has named its deployment, the identity: ``chain_id``, ``ledger`` and ``virtual`` (the
checksummed adjudicator addresses), and ``app`` once a run named an AppAdjudicator. A store written before
the table existed (schema version 0: just ``channels`` and ``states``) is adopted on its next open.

Schema versions: 1 admits channels of kind ``ledger`` and ``virtual``; 2 also ``app``. A store of an
older version is migrated when it is opened for writing (``Verdict.migrate``; the backend widens the
kind CHECK in the transaction that records the new version), never by ``peek``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote

from eth_utils import to_checksum_address

from ..core.codec import Domain, hexstr
from ..errors import InvalidParams, StoreError
from .records import Kind, decode_domain

SCHEMA_VERSION = 2
FORMAT = "perun-vyper store"

META_SCHEMA = "CREATE TABLE IF NOT EXISTS perun_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"

_HEADER = b"SQLite format 3\x00"
# The columns of the two tables perun-vyper wrote before perun_meta existed (schema version 0).
_LEGACY = {
    "channels": ("id", "kind", "params", "domain", "owner"),
    "states": ("channel", "version", "state", "sig_a", "sig_b"),
}
_IDENTITY_KEYS = ("chain_id", "ledger", "virtual")
_OTHER_DEPLOYMENT = "pass the store of this deployment (or the --ledger/--virtual it was written for)"
_OTHER_APP = "pass the store of this deployment (or the app adjudicator it was written for)"
_OURS = "pass the store file perun-vyper wrote, or a new path"


@dataclass(frozen=True)
class StoreIdentity:
    """The deployment a store belongs to: every signature it holds is bound to this chain and these
    adjudicators, so it is useless (and misleading) anywhere else. Addresses are kept checksummed.
    ``app`` (the AppAdjudicator) is optional: "" names none, and then the store admits no app channel."""

    chain_id: int
    ledger: str
    virtual: str
    app: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.chain_id, int) or isinstance(self.chain_id, bool) or self.chain_id <= 0:
            raise InvalidParams(f"chain_id must be a positive integer, got {self.chain_id!r}")
        for name in ("ledger", "virtual", *(("app",) if self.app != "" else ())):
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, to_checksum_address(value))
            except (TypeError, ValueError) as exc:
                raise InvalidParams(
                    f"{name} must be an adjudicator address (0x and 40 hex digits), got {value!r}"
                ) from exc

    def describe(self) -> str:
        app = f", app {self.app}" if self.app else ""
        return f"chain {self.chain_id}, ledger {self.ledger}, virtual {self.virtual}{app}"

    def address(self, kind: Kind) -> str:
        """The adjudicator that channels of ``kind`` are signed for."""
        if kind == "ledger":
            return self.ledger
        if kind == "virtual":
            return self.virtual
        if kind != "app":
            raise InvalidParams(f"channels are of kind 'ledger', 'virtual' or 'app', got {kind!r}")
        if not self.app:
            raise StoreError(
                f"the deployment {self.describe()} names no app adjudicator; name one"
                " (StoreIdentity(..., app=address)) to hold app channels"
            )
        return self.app

    def admits(self, kind: Kind, domain: Domain) -> bool:
        """Whether a channel of ``kind`` signed in ``domain`` belongs to this deployment (an app channel
        only if the identity names an app adjudicator)."""
        if kind == "app" and not self.app:
            return False
        return domain.chain_id == self.chain_id and domain.verifying_contract.lower() == self.address(kind).lower()


def describe_domain(kind: Kind, domain: Domain) -> str:
    """A channel's deployment in the words of ``StoreIdentity.describe``."""
    try:
        contract = to_checksum_address(domain.verifying_contract)
    except (TypeError, ValueError):
        contract = domain.verifying_contract
    return f"chain {domain.chain_id}, {kind} {contract}"


@dataclass(frozen=True)
class Verdict:
    """A file ``Store`` may use: the identity it records (after the writes), the meta rows to write
    (added, or replacing the row of that key), and whether its tables are of an older schema version
    the backend migrates before writing them (``schema_version`` is then among the writes)."""

    identity: StoreIdentity | None
    writes: dict[str, str] = field(default_factory=dict)
    migrate: bool = False


def peek(path: Path, identity: StoreIdentity | None, create: bool) -> None:
    """Refuse a file ``Store`` must not touch, by reading it only: no byte of it changes and no
    ``-wal``/``-shm``/``-journal`` file appears. ``settle`` repeats the checks under the write lock."""
    if path.is_dir():
        raise StoreError(f"{path} is a directory; {_OURS}")
    size = path.stat().st_size if path.exists() else 0
    if size == 0:
        if not create:
            cause = "the file is empty" if path.exists() else "the file does not exist"
            raise StoreError(f"{path} holds no perun-vyper store ({cause}); pass the store your wallet or hub wrote")
        return
    with path.open("rb") as file:
        head = file.read(20)
    if head[:16] != _HEADER:
        raise StoreError(f"{path} is not a SQLite database (its first bytes are not the SQLite header); {_OURS}")
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    # Even a read-only connection creates -wal and -shm beside a WAL-mode file (bytes 18 and 19 are 2)
    # and leaves them. Without a -wal no connection has the file open, so reading it as immutable
    # is safe then; with one, the siblings exist already.
    if head[18:20] == b"\x02\x02" and not Path(f"{path}-wal").exists():
        uri += "&immutable=1"
    try:
        db = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"{path} cannot be opened for reading ({exc}); {_OURS}") from exc
    try:
        settle(db, path, identity, create)
    except sqlite3.Error as exc:
        raise StoreError(f"{path} cannot be read as a SQLite database ({exc}); {_OURS}") from exc
    finally:
        db.close()


def settle(db: sqlite3.Connection, path: Path, identity: StoreIdentity | None, create: bool) -> Verdict:
    """Read what the SQLite file holds and decide: refuse it (StoreError), or return what to record."""
    tables = [
        name
        for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
            " ORDER BY name"
        )
    ]
    meta: dict[str, str] = {}
    if "perun_meta" in tables:
        # A table of that name without our columns is not ours: left empty, the file is foreign.
        with suppress(sqlite3.OperationalError):
            meta = dict(db.execute("SELECT key, value FROM perun_meta").fetchall())
    return decide(
        str(path),
        tables,
        meta,
        identity,
        create,
        legacy=lambda: _legacy(db, tables),
        channels=lambda: db.execute("SELECT id, kind, domain FROM channels ORDER BY rowid").fetchall(),
    )


def decide(
    where: str,
    tables: list[str],
    meta: dict[str, str],
    identity: StoreIdentity | None,
    create: bool,
    *,
    legacy: Callable[[], bool],
    channels: Callable[[], Iterable[tuple[bytes, Kind, str]]],
) -> Verdict:
    """The rules of both backends: ``tables`` are the store's tables, ``meta`` what ``perun_meta`` holds,
    ``legacy`` whether the tables are a store of schema version 0, ``channels`` every channel's id, kind
    and encoded domain. Refuse (StoreError), or return what to record."""
    ours = "perun_meta" in tables and meta.get("format") == FORMAT
    writes: dict[str, str] = {}
    migrate = False
    if ours:
        version = _check_version(where, meta)
        recorded = _recorded(where, meta)
        if version < SCHEMA_VERSION:
            writes, migrate = {"schema_version": str(SCHEMA_VERSION)}, True
    elif tables and legacy():
        recorded, migrate = None, True
        writes = {"format": FORMAT, "schema_version": str(SCHEMA_VERSION)}
    elif tables:
        shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
        raise StoreError(
            f"{where} holds another application's tables ({shown}), not a perun-vyper store; nothing was changed."
            f" Pass the store perun-vyper wrote, or a new one"
        )
    elif not create:
        raise StoreError(
            f"{where} holds no perun-vyper store (a database without tables); pass the store your wallet or hub wrote"
        )
    else:
        recorded, writes = None, {"format": FORMAT, "schema_version": str(SCHEMA_VERSION)}
    if identity is None or identity == recorded:
        return Verdict(recorded, writes, migrate)
    if recorded is not None:
        if replace(recorded, app="") != replace(identity, app=""):
            raise StoreError(
                f"{where} is the store of {recorded.describe()}; this run is on {identity.describe()};"
                f" {_OTHER_DEPLOYMENT}"
            )
        if recorded.app:
            if identity.app:
                raise StoreError(
                    f"{where} is the store of {recorded.describe()}; this run is on {identity.describe()}; {_OTHER_APP}"
                )
            return Verdict(recorded, writes, migrate)  # a run that names no app keeps the recorded one
    if "channels" in tables:
        for channel_id, kind, text in channels():
            domain = decode_domain(text)
            if not identity.admits(kind, domain):
                raise StoreError(
                    f"{where} holds channel {hexstr(bytes(channel_id))} of {describe_domain(kind, domain)}; this run is"
                    f" on {identity.describe()}; {_OTHER_DEPLOYMENT}"
                )
    if recorded is None:
        writes.update(chain_id=str(identity.chain_id), ledger=identity.ledger, virtual=identity.virtual)
    if identity.app:
        writes["app"] = identity.app
    return Verdict(identity, writes, migrate)


def _legacy(db: sqlite3.Connection, tables: list[str]) -> bool:
    if set(tables) != set(_LEGACY):
        return False
    return all(
        tuple(row[1] for row in db.execute(f"PRAGMA table_info({name})")) == columns
        for name, columns in _LEGACY.items()
    )


def _check_version(where: str, meta: dict[str, str]) -> int:
    """The store's schema version; refuses one this perun-vyper does not read."""
    text = meta.get("schema_version", "")
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise StoreError(
            f"{where} records schema_version {text!r} in perun_meta, not a version perun-vyper writes;"
            " restore the store from a backup"
        )
    if int(text) > SCHEMA_VERSION:
        raise StoreError(
            f"{where} is a perun-vyper store of schema version {int(text)}, newer than version {SCHEMA_VERSION}"
            " that this perun-vyper reads; upgrade perun-vyper to open it"
        )
    return int(text)


def _recorded(where: str, meta: dict[str, str]) -> StoreIdentity | None:
    present = [key for key in (*_IDENTITY_KEYS, "app") if key in meta]  # app is optional
    if not present:
        return None
    try:
        if not set(_IDENTITY_KEYS) <= set(present):
            raise InvalidParams(f"only {', '.join(present)} recorded")
        if not (meta["chain_id"].isascii() and meta["chain_id"].isdigit()):
            raise InvalidParams(f"chain_id {meta['chain_id']!r}")
        if "app" in meta and not meta["app"]:
            raise InvalidParams("an empty app")
        return StoreIdentity(int(meta["chain_id"]), meta["ledger"], meta["virtual"], meta.get("app", ""))
    except InvalidParams as exc:
        raise StoreError(
            f"{where} records a malformed identity in perun_meta ({exc}); restore the store from a backup"
        ) from exc
