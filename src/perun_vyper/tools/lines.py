"""A child process's output read line by line on a daemon thread, so that every wait on it has a time
bound: what ``ape run demo``, ``make loadtest`` and the CLI tests use to follow ``ape run hub`` and the
other processes they start."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path


class Lines:
    """The lines of ``stream`` as they come. Each line taken is kept in ``seen``, appended to ``log`` (if
    given) as it is read, and passed to ``echo`` (if given) as it is taken."""

    def __init__(
        self, stream: Iterable[str], *, log: Path | None = None, echo: Callable[[str], None] | None = None
    ) -> None:
        self.seen: list[str] = []
        self.ended = False  # the stream is closed and every line of it was taken
        self._echo = echo
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream, log), daemon=True).start()

    def _pump(self, stream: Iterable[str], log: Path | None) -> None:
        with (log or Path(os.devnull)).open("a") as out:
            for line in stream:
                out.write(line)
                out.flush()
                self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def take(self, timeout: float) -> str | None:
        """The next line, or None if none comes within ``timeout`` seconds or the output ended (``ended``)."""
        if self.ended:
            return None
        try:
            line = self._queue.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return None
        if line is None:
            self.ended = True
            return None
        self.seen.append(line)
        if self._echo is not None:
            self._echo(line)
        return line

    def until(self, match: Callable[[str], bool], timeout: float) -> str | None:
        """Take lines until one ``match``es and return it; None if the output ends first (``ended``) or
        nothing matches within ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            line = self.take(left)
            if line is None:
                return None
            if match(line):
                return line
        return None

    def within(self, seconds: float) -> list[str]:
        """The lines that come within ``seconds`` (0: those already read), until the output ends."""
        taken: list[str] = []
        end = time.monotonic() + seconds
        while (line := self.take(max(end - time.monotonic(), 0.0))) is not None:
            taken.append(line)
            if seconds and time.monotonic() >= end:
                break
        return taken
