"""Reading a subprocess's output (an ``ape run`` script under test) line by line, with timeouts."""

from __future__ import annotations

import queue
import subprocess
import threading
import time


class Output:
    """The subprocess's merged stdout/stderr, read line by line on a thread so that waits can time out."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, prefix: str, timeout: float = 60) -> str:
        """The next line starting with ``prefix``; fails if the process ends or nothing comes in time."""
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"the process ended before {prefix!r}:\n" + "\n".join(self.lines))
            self.lines.append(line)
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no {prefix!r} within {timeout}s:\n" + "\n".join(self.lines))
