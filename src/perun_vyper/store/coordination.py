"""What several processes sharing one store coordinate through it (docs/SCALING.md): leases (who runs the
watchtower, which workers are alive) and the first release of a closing virtual channel, held until the
other endpoint's arrives. The SQL is the same for both backends; ``ChannelStore`` (base.py) builds on it."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from ..core.codec import hexstr, unhex
from ..core.protocol import Update, VirtualFinal
from ..errors import StoreError
from .records import decode_state, encode_state


class Coordination(ABC):
    """Leases and held releases, on a backend's connection (``_execute``) and clock (``_now``)."""

    @abstractmethod
    def _execute(self, query: str, args: Sequence[Any] = ()) -> Any:
        """Run one statement written with ``?`` placeholders; a cursor (``fetchone``, ``fetchall``,
        ``rowcount``, iteration)."""

    @abstractmethod
    def _now(self) -> float:
        """The database's clock in seconds (one clock for every process sharing the store)."""

    def acquire_lease(self, name: str, holder: str, seconds: float) -> bool:
        """Hold (or renew) the lease ``name`` for ``seconds`` by the database's clock, and say whether
        ``holder`` holds it now: it does if nobody held it, it held it already, or the last holder let
        it lapse (died). Committed on return."""
        if seconds <= 0:
            raise StoreError(f"a lease lasts a positive number of seconds, got {seconds}")
        now = self._now()
        self._execute(
            "INSERT INTO perun_leases (name, holder, expires) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE"
            " SET holder = excluded.holder, expires = excluded.expires"
            " WHERE perun_leases.holder = excluded.holder OR perun_leases.expires <= ?",
            (name, holder, now + seconds, now),
        )
        return self.lease_holder(name) == holder

    def release_lease(self, name: str, holder: str) -> None:
        """Give up the lease ``name`` if ``holder`` holds it (another process may take it at once)."""
        self._execute("DELETE FROM perun_leases WHERE name = ? AND holder = ?", (name, holder))

    def lease_holder(self, name: str) -> str | None:
        """Who holds the lease ``name`` now (None: nobody, or it lapsed)."""
        row = self._execute(
            "SELECT holder FROM perun_leases WHERE name = ? AND expires > ?", (name, self._now())
        ).fetchone()
        return None if row is None else str(row[0])

    def live_holders(self, prefix: str) -> list[str]:
        """Who holds the leases whose name starts with ``prefix`` and have not lapsed (each holder once)."""
        rows = self._execute(
            "SELECT DISTINCT holder FROM perun_leases WHERE substr(name, 1, ?) = ? AND expires > ? ORDER BY holder",
            (len(prefix), prefix, self._now()),
        ).fetchall()
        return [str(row[0]) for row in rows]

    def hold_release(self, virtual_id: bytes, leg: str, update: Update) -> None:
        """Keep the first release of a closing virtual channel until the other endpoint's arrives (a hub
        with several workers: the second may reach another one). A repeat replaces the one held."""
        if update.release is None:
            raise StoreError("only a release (an update carrying the final virtual state) is held")
        final = update.release
        text = json.dumps(
            {
                "state": encode_state(update.state),
                "signature": hexstr(update.signature),
                "final": encode_state(final.state),
                "sig_alice": hexstr(final.sig_alice),
                "sig_bob": hexstr(final.sig_bob),
            }
        )
        self._execute(
            "INSERT INTO perun_releases (virtual, leg, release) VALUES (?, ?, ?)"
            " ON CONFLICT (virtual, leg) DO UPDATE SET release = excluded.release",
            (virtual_id, leg, text),
        )

    def held_releases(self, virtual_id: bytes) -> dict[str, Update]:
        """The releases held for ``virtual_id``, by leg."""
        rows = self._execute("SELECT leg, release FROM perun_releases WHERE virtual = ?", (virtual_id,)).fetchall()
        held: dict[str, Update] = {}
        for leg, text in rows:
            data = json.loads(text)
            final = VirtualFinal(
                decode_state("virtual", data["final"]),  # type: ignore[arg-type]
                unhex(data["sig_alice"]),
                unhex(data["sig_bob"]),
            )
            held[str(leg)] = Update(decode_state("ledger", data["state"]), unhex(data["signature"]), final)
        return held

    def drop_releases(self, virtual_id: bytes) -> None:
        self._execute("DELETE FROM perun_releases WHERE virtual = ?", (virtual_id,))
