"""Reading a subprocess's output (an ``ape run`` script under test) line by line, with timeouts."""

from __future__ import annotations

import subprocess

from perun_vyper.tools.lines import Lines


class Output:
    """The subprocess's merged stdout/stderr (``perun_vyper.tools.lines.Lines``); ``lines`` is what was read."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self._lines = Lines(proc.stdout)
        self.lines = self._lines.seen

    def until(self, prefix: str | tuple[str, ...], timeout: float = 60) -> str:
        """The next line starting with ``prefix`` (or one of several); fails if the process ends or nothing
        comes in time."""
        line = self._lines.until(lambda text: text.startswith(prefix), timeout)
        if line is None:
            ended = "the process ended before" if self._lines.ended else f"no line within {timeout}s starting with"
            raise AssertionError(f"{ended} {prefix!r}:\n" + "\n".join(self.lines))
        return line
