"""The command line around ``ape run demo``: where the stores may go, progress without a terminal, Ape's log
level for the demo and its hub, and ``--keep`` (the chain left running, with the commands to inspect it).
Each refusal is one sentence naming the cause and the fix; nothing is written before the checks pass."""

from __future__ import annotations

import logging
import os
import shlex
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from ..core.display import plural

QUIET = "WARNING"  # Ape's level unless the user passes -v: no `INFO: Confirmed ...` per transaction
PROGRESS_MARKS = (25, 50, 75, 100)  # percent of the payments after which a pipe gets a line
FIX = "pass a new or empty directory, or leave --store-dir out for a temporary one"


def store_dir_problem(path: Path) -> str | None:
    """Why the demo cannot put its stores in ``path``, or None: a new directory (created with its
    parents) or an existing empty one is fine; a file, a directory with something in it (the demo would
    mix its stores with what is there, or overwrite them) or a place where no directory can be made is not."""
    if path.exists():
        if not path.is_dir():
            return f"--store-dir {path} is a file, not a directory; {FIX}"
        try:
            entries = sum(1 for _ in path.iterdir())
        except OSError as exc:
            return f"--store-dir {path} cannot be read ({exc.strerror}); {FIX}"
        if entries:
            return f"--store-dir {path} is not empty ({plural(entries, 'entry', 'entries')} in it); {FIX}"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"--store-dir {path} is not writable; {FIX}"
        return None
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"--store-dir {path} cannot be created: {ancestor} is a file; {FIX}"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"--store-dir {path} cannot be created: {ancestor} is not writable; {FIX}"
    return None


def make_store_dir(path: Path) -> str | None:
    """Create ``path`` (checked by ``store_dir_problem``); the reason if the file system still refuses."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"--store-dir {path} cannot be created ({exc.strerror}); {FIX}"
    return None


def hub_log_level(level: int) -> str:
    """The ``--verbosity`` for the hub process: the demo's own Ape level by name (the hub's output is
    shown among the demo's); a level with no name Ape accepts (-v DISABLE) as ERROR."""
    name = logging.getLevelName(level)
    return name if name in ("ERROR", "WARNING", "SUCCESS", "INFO", "DEBUG") else "ERROR"


def line_progress(echo: Callable[[str], None], label: str) -> Callable[[Iterable[int], int], Iterator[int]]:
    """A progress for output that is not a terminal (a pipe, a CI log): a bar's redraws are lost there, so
    one line after each quarter of the steps, at most four lines."""

    def progress(steps: Iterable[int], length: int) -> Iterator[int]:
        marks = {max(1, length * mark // 100) for mark in PROGRESS_MARKS} if length else set()
        for done, step in enumerate(steps, 1):
            yield step
            if done in marks:  # reached when the caller asks for the next step: this one is done
                echo(f"{label} {done}/{length} ({done * 100 // length}%)")

    return progress


def keep_lines(
    uri: str,
    chain_id: int,
    ledger: str,
    virtual: str,
    stores: list[tuple[str, int, Path]],
    project: Path,
) -> list[str]:
    """What ``--keep`` prints: the node, the adjudicators, and for each store (name, test account index,
    path) the exact ``ape run watch`` command that connects to this chain (``APE_FOUNDRY_HOST`` makes
    ape-foundry use the running Anvil instead of starting one)."""
    lines = [
        "",
        "the chain keeps running (--keep); Ctrl-C stops it",
        f"   node               {uri} (chain id {chain_id})",
        f"   LedgerAdjudicator  {ledger}",
        f"   VirtualAdjudicator {virtual}",
        f"   watch a party's store once (from {project}):",
    ]
    width = max(len(name) for name, _, _ in stores)
    for name, account, path in stores:
        command = [
            "ape", "run", "watch", "--network", "ethereum:local:foundry", "--account", f"TEST::{account}",
            "--store", str(path), "--ledger", ledger, "--virtual", virtual, "--once",
        ]  # fmt: skip
        lines.append(f"   {name:{width}}  APE_FOUNDRY_HOST={shlex.quote(uri)} {shlex.join(command)}")
    return lines


def wait_for_stop(ready: Callable[[], Any] = lambda: None) -> str:
    """Block until SIGINT or SIGTERM; returns its name. ``ready`` runs once the handlers are in place (a
    signal before that would end the process the default way, with a traceback)."""
    stopped = threading.Event()
    received: list[str] = []

    def handler(signum: int, frame: Any) -> None:
        received.append(signal.Signals(signum).name)
        stopped.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        ready()
        while not stopped.wait(0.5):  # a timeout: the handler runs in this thread between waits
            pass
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    return received[0]
