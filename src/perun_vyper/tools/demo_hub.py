"""The hub of ``ape run demo`` as its own process: ``ape run hub`` started on the demo's chain, its output
read line by line (every line shown prefixed ``[hub]``), paused and continued (the hub offline), and
stopped with SIGTERM. Every wait is bounded; ``kill`` ends the process whatever state it is in."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import HubUnavailable
from .lines import Lines

LISTENING = re.compile(r"^hub (0x[0-9a-fA-F]{40}) listening on (ws://\S+)")
PREFIX = "[hub] "


class HubProcess:
    """``command`` (an ``ape run hub`` command line) run in ``cwd`` with ``env``; ``echo`` shows its lines."""

    def __init__(
        self, command: Sequence[str], cwd: Path, env: dict[str, str], echo: Callable[[str], None] = print
    ) -> None:
        self.command = list(command)
        self.cwd = cwd
        self.env = env
        self.echo = echo
        self.lines: list[str] = []  # every line read so far
        self.url = ""
        self.address = ""
        self.paused = False
        self._proc: subprocess.Popen[str] | None = None
        self._output: Lines | None = None

    # --- lifecycle ------------------------------------------------------------------------------------

    def start(self, timeout: float = 120.0) -> str:
        """Start the hub and wait for its ``listening on`` line; returns its ``ws://`` URL."""
        self._proc = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        assert self._proc.stdout is not None
        self._output = Lines(self._proc.stdout, echo=lambda line: self.echo(PREFIX + line))
        self.lines = self._output.seen
        match = LISTENING.match(self.until(lambda line: LISTENING.match(line) is not None, "listening on", timeout))
        assert match is not None
        self.address, self.url = match.group(1), match.group(2)
        return self.url

    @property
    def exit_code(self) -> int | None:
        """The process's exit code once it ended (a negative signal number if killed), else None."""
        return None if self._proc is None else self._proc.poll()

    def pause(self) -> None:
        """SIGSTOP: the hub (its server and its watchtower) is offline until ``resume``."""
        self._signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """SIGCONT: the hub runs again where it stopped."""
        self._signal(signal.SIGCONT)
        self.paused = False

    def stop(self, timeout: float = 30.0) -> str:
        """SIGTERM, then wait for its ``stopped`` line and exit code 0; returns that line."""
        if self.paused:
            self.resume()
        self._signal(signal.SIGTERM)
        line = self.until(lambda line: line.startswith("hub ") and " stopped " in line, "stopped", timeout)
        assert self._proc is not None
        try:
            code = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise HubUnavailable(f"the hub process did not exit within {timeout:g}s of SIGTERM") from None
        self.drain()
        if code != 0:
            raise HubUnavailable(f"the hub process exited with code {code} after SIGTERM")
        return line

    def kill(self) -> None:
        """End the process at once if it still runs (after a failure); shows what it printed last."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.kill()  # SIGKILL ends a stopped process too
        with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL cannot be ignored: never long
            proc.wait(10)
        self.drain()

    def _signal(self, sig: signal.Signals) -> None:
        if self._proc is None or self._proc.poll() is not None:
            raise HubUnavailable(f"the hub process is not running (exit code {self._returncode()}); {self._last()}")
        self._proc.send_signal(sig)

    # --- output ---------------------------------------------------------------------------------------

    def until(self, match: Callable[[str], bool], what: str, timeout: float) -> str:
        """Show lines until one ``match``es and return it; ``HubUnavailable`` if the process ends first or
        nothing matches within ``timeout`` seconds."""
        assert self._output is not None
        line = self._output.until(match, timeout)
        if line is not None:
            return line
        if self._output.ended:
            raise HubUnavailable(
                f"the hub process ended (exit code {self._returncode()}) before {what!r}; {self._last()}"
            )
        raise HubUnavailable(f"no {what!r} line from the hub within {timeout:g}s; {self._last()}")

    def watch(self, seconds: float) -> list[str]:
        """Show the lines that come within ``seconds``; returns them."""
        return [] if self._output is None else self._output.within(seconds)

    def drain(self) -> list[str]:
        """Show the lines already read, without waiting."""
        return self.watch(0)

    def _returncode(self) -> int | None:
        if self._proc is None:
            return None
        try:
            return self._proc.wait(1)
        except subprocess.TimeoutExpired:
            return None

    def _last(self) -> str:
        return f"its last line: {self.lines[-1]!r}" if self.lines else "it printed nothing"


class Pacer:
    """Keeps each wallet's connection within the hub's published limit (``hub.info`` ``limits``: frames per
    second and burst, docs/API.md 1): a frame beyond it would be answered with 1004 and not run. A payment
    costs one frame from each endpoint (the update, the countersignature); ``take`` waits until both have
    one. It keeps a margin (90% of the rate, half the burst) for the other frames and the clocks' skew."""

    def __init__(self, rate_per_second: float, burst: int, users: int, clock: Callable[[], float] = time.monotonic):
        self.rate = rate_per_second * 0.9
        self.capacity = max(1.0, burst / 2)
        self.tokens = [self.capacity] * users
        self.clock = clock
        self.last = clock()
        self.waited = 0.0  # seconds spent waiting for the limit

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = [min(self.capacity, t + (now - self.last) * self.rate) for t in self.tokens]
        self.last = now

    async def take(self, *users: int) -> None:
        self._refill()
        short = 1.0 - min(self.tokens[u] for u in users)
        if short > 0:
            delay = short / self.rate
            await asyncio.sleep(delay)
            self.waited += delay
            self._refill()
        for u in users:
            self.tokens[u] -= 1.0
