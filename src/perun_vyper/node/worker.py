"""The hub's channel worker: one thread that runs every piece of channel work in arrival order (docs/API.md
8), handing results back to the event loop in batches.

Why not ``ThreadPoolExecutor(max_workers=1)`` with ``run_in_executor``: that wakes the event loop once per
result (a byte through its self-pipe, then the GIL handed back and forth), which under load cost about as
much as the rest of handing a payment back (``make loadtest``, README "Hub service load"). Here the worker
hands back everything it finished since the last hand-back in one wake-up, as soon as nothing else is
queued or ``MAX_BATCH`` results wait, so no result waits for more than the work queued before it, as
before. A result leaves the worker only after its function returned (for an update: after the store
committed it), and every submitted function runs, even if the caller stopped waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

MAX_BATCH = 32  # results handed back in one wake-up of the event loop at most

_Done = tuple[asyncio.Future[Any], bool, Any]  # (future, succeeded, result or exception)


class ChannelWorker:
    """One thread running submitted functions in order; ``submit`` is called from the event loop."""

    def __init__(self, name: str = "hub-channels") -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], asyncio.Future[Any]] | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], Any]) -> asyncio.Future[Any]:
        """Queue ``fn`` behind the work submitted before it; the future resolves in the calling loop."""
        if self._closed:
            raise RuntimeError("the channel worker is shut down")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put((fn, future))
        return future

    def shutdown(self) -> None:
        """Run what is queued, then stop the thread (blocks until it has)."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        done: list[_Done] = []
        while True:
            if done and (len(done) >= MAX_BATCH or self._queue.empty()):
                self._hand_back(done)
                done = []
            item = self._queue.get()
            if item is None:
                self._hand_back(done)
                return
            fn, future = item
            try:
                done.append((future, True, fn()))
            except BaseException as exc:  # handed to the caller, as run_in_executor does
                done.append((future, False, exc))

    @staticmethod
    def _hand_back(done: list[_Done]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Done]] = {}
        for entry in done:  # one event loop serves a hub; grouped anyway
            by_loop.setdefault(entry[0].get_loop(), []).append(entry)
        for loop, entries in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_resolve, entries)


def _resolve(done: list[_Done]) -> None:
    for future, succeeded, value in done:
        if future.cancelled():
            continue
        if succeeded:
            future.set_result(value)
        else:
            future.set_exception(value)
