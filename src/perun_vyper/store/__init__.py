"""Durable storage of channels and signed states: one interface (``ChannelStore``), two backends
(``Store``: SQLite, the default; ``PostgresStore``: PostgreSQL, shared by several hub workers), chosen by
``open_store`` from a URL or a path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.protocol import SignedState
from ..errors import StoreError
from .base import ChannelStore
from .meta import SCHEMA_VERSION, StoreIdentity
from .postgres import PostgresStore, redact
from .records import ChannelRecord, Kind
from .sqlite import Store

__all__ = [
    "SCHEMA_VERSION",
    "ChannelRecord",
    "ChannelStore",
    "Kind",
    "PostgresStore",
    "SignedState",
    "Store",
    "StoreError",
    "StoreIdentity",
    "open_store",
    "store_kind",
]

_SQLITE = "sqlite:///"
_POSTGRES = ("postgresql://", "postgres://")


def store_kind(target: str | Path) -> str:
    """``"postgres"`` for a PostgreSQL URL, ``"sqlite"`` for ``sqlite:///path`` or a plain path; refuses
    any other URL scheme."""
    text = str(target)
    if text.startswith(_POSTGRES):
        return "postgres"
    if text.startswith(_SQLITE) or "://" not in text:
        return "sqlite"
    scheme = text.split("://", 1)[0]
    raise StoreError(
        f"{redact(text)}: stores of scheme {scheme!r} are not supported; pass a file path, sqlite:///path or "
        "postgresql://user@host/dbname"
    )


def open_store(
    target: str | Path, *, identity: StoreIdentity | None = None, create: bool = True, **sqlite: Any
) -> ChannelStore:
    """The store at ``target``: ``postgresql://...`` (or ``postgres://``) opens a ``PostgresStore``;
    ``sqlite:///path`` (relative; ``sqlite:////abs/path`` absolute, as SQLAlchemy writes them) or a plain
    path a SQLite ``Store`` (``sqlite`` takes its options, e.g. ``synchronous``)."""
    text = str(target)
    if store_kind(text) == "postgres":
        if sqlite:
            raise StoreError(f"{', '.join(sqlite)} apply to SQLite stores only")
        return PostgresStore(text, identity=identity, create=create)
    path = text[len(_SQLITE) :] if text.startswith(_SQLITE) else target
    if not str(path):
        raise StoreError("sqlite:/// names no file; pass sqlite:///path/to/store.db")
    return Store(path, identity=identity, create=create, **sqlite)
