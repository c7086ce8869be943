"""The crash tests' shared parts (tests/client/test_crash.py, test_app_crash.py): running a party process
that is SIGKILLed or exits, and checking the parties' stores between its runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perun_vyper import ChannelStore, Domain, SignedState, open_store, verify
from perun_vyper.tools.lines import Lines

ROOT = Path(__file__).parents[2]


def run(
    script: Path,
    stores: Sequence[str],
    *args: str,
    kill_after: float | None = None,
    dies: bool = False,
    clock_from: str | None = None,
) -> list[str]:
    """Run ``script`` over the parties' ``stores``: to its end (exit code 0, or -9 if it ``dies`` by its own
    SIGKILL), or SIGKILLed by us ``kill_after`` seconds after its start, or after its first line starting
    with ``clock_from`` (so that a slow start on a busy machine does not eat the time). Returns its stdout
    lines."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, str(script), *stores, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    if kill_after is None:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == (-9 if dies else 0), err
        return out.splitlines()
    if clock_from is None:
        time.sleep(kill_after)
        proc.kill()  # SIGKILL: no handler, no flush, no atexit
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == -9, f"the party process ended on its own ({proc.returncode}): {err}"
        return out.splitlines()
    assert proc.stdout is not None and proc.stderr is not None
    lines = Lines(proc.stdout)
    started = lines.until(lambda line: line.startswith(clock_from), 120) is not None
    if started:
        time.sleep(kill_after)
    proc.kill()
    proc.wait(30)
    lines.within(30)  # the rest, up to the end of the output
    err = proc.stderr.read()
    assert started, f"no {clock_from!r} line from the party process ({proc.returncode}): {lines.seen} {err}"
    assert proc.returncode == -9, f"the party process ended on its own ({proc.returncode}): {err}"
    return lines.seen


@dataclass(frozen=True)
class Watched:
    """A channel the checker reads: its id, the stores (party names) of side A and B, and their signers."""

    channel_id: bytes
    names: tuple[str, str]
    signers: tuple[str, str]


StateCheck = Callable[[Any, Any], None]
"""``check_state(state, previous)``: the invariants of one stored state (``previous``: the state of the
version before it in the same store, None for version 0); fails by an assertion."""


class Checker:
    """Reads the parties' stores between runs (no process holds them then).

    ``proposer(version)``, when given, names the side that proposes each version (None: either), and the
    update in flight must then be held by that side."""

    def __init__(
        self,
        targets: dict[str, str],
        channels: dict[str, Watched],
        domain: Domain,
        check_state: StateCheck,
        proposer: Callable[[int], int | None] | None = None,
    ) -> None:
        self.targets = targets
        self.channels = channels
        self.domain = domain
        self.check_state = check_state
        self.proposer = proposer
        self.verified: dict[tuple[str, str], int] = {}  # (party, channel) -> highest version verified
        self.caught: dict[str, int] = {"proposal only": 0, "countersigned, not completed": 0}  # kill points seen
        self.in_flight: dict[str, tuple[str, int] | None] = {}  # channel -> (its proposer, version) at the last check

    def check(self, acked: dict[str, int]) -> dict[str, int]:
        """All the invariants; returns each channel's latest version both parties agree on."""
        stores = {name: open_store(target) for name, target in self.targets.items()}
        try:
            return {label: self._channel(stores, label, acked.get(label, -1)) for label in self.channels}
        finally:
            for store in stores.values():
                store.close()

    def _channel(self, stores: dict[str, ChannelStore], label: str, acked: int) -> int:
        watched = self.channels[label]
        names = watched.names
        self.in_flight[label] = None
        if not all(any(r.channel_id == watched.channel_id for r in stores[n].channels()) for n in names):
            assert acked < 0, f"{label}: a party lost the channel after acknowledging version {acked}"
            return -1
        histories = {name: stores[name].history(watched.channel_id) for name in names}
        latest = {}
        for side, name in enumerate(names):
            history = histories[name]
            assert [s.state.version for s in history] == list(range(len(history))), f"{name} {label}: gap"
            assert all(s.fully_signed for s in history[:-1]), f"{name} {label}: a signature missing below the newest"
            self._verify(label, name, side, watched, history)
            signed = [s for s in history if s.fully_signed]
            latest[name] = signed[-1] if signed else None
            if acked >= 0:  # every acknowledged version is stored, signed by both, in both stores
                assert len(history) > acked, f"{name} lost {label} v{acked}"
                assert all(s.fully_signed for s in history[: acked + 1]), f"{name} lost a signature of {label}"
        first, second = (latest[name] for name in names)
        if first is None or second is None:
            assert acked < 0
            return -1
        behind, ahead = sorted((first, second), key=lambda s: s.state.version)
        behind_name = names[0] if behind is first else names[1]
        gap = ahead.state.version - behind.state.version
        assert gap in (0, 1), f"{label}: latest versions {first.state.version} and {second.state.version}"
        newest = max(len(history) for history in histories.values()) - 1
        assert newest <= behind.state.version + 1, f"{label}: v{newest} stored, agreed v{behind.state.version}"
        if gap == 1:  # the one update in flight: the party behind holds it as its own proposal
            held = histories[behind_name][-1]
            assert held.state == ahead.state and not held.fully_signed, f"{label}: not the in-flight update"
            self._in_flight(label, behind_name, ahead.state.version)
            self.caught["countersigned, not completed"] += 1
        else:
            proposing = [name for name in names if not histories[name][-1].fully_signed]
            if proposing:
                assert len(proposing) == 1, f"{label}: both parties hold a proposal of their own"
                self._in_flight(label, proposing[0], len(histories[proposing[0]]) - 1)
                self.caught["proposal only"] += 1
        common = min(len(histories[names[0]]), len(histories[names[1]]))
        for version in range(self.verified.get((label, "common"), 0), common):
            a, b = histories[names[0]][version], histories[names[1]][version]
            assert a.state == b.state, f"{label} v{version}: the parties hold different states"
        self.verified[(label, "common")] = max(0, common - 1)
        return behind.state.version

    def _in_flight(self, label: str, name: str, version: int) -> None:
        expected = None if self.proposer is None else self.proposer(version)
        if expected is not None:
            names = self.channels[label].names
            assert name == names[expected], f"{label}: {name} holds v{version}, {names[expected]}'s to propose"
        self.in_flight[label] = (name, version)

    def _verify(self, label: str, name: str, side: int, watched: Watched, history: list[SignedState]) -> None:
        start = self.verified.get((label, name), 0)
        for index in range(start, len(history)):
            signed = history[index]
            self.check_state(signed.state, history[index - 1].state if index else None)
            digest = self.domain.digest(signed.state.struct_hash())
            assert (signed.sig_a, signed.sig_b)[side] is not None, f"{name} stored a state without its own signature"
            for signer, signature in zip(watched.signers, (signed.sig_a, signed.sig_b), strict=True):
                if signature is not None:
                    verify(digest, signature, signer)
        self.verified[(label, name)] = max(0, len(history) - 1)  # the newest may gain a signature later
