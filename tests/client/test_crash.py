"""THE crash test: a process running three parties (crash_party.py) is SIGKILLed at random points and
restarted; nothing it acknowledged is lost, the parties agree up to the one update in flight, every
stored signature verifies, funds are conserved, and after the last restart the parties pay on."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

from perun_vyper import LedgerState
from tests.client.crash_party import CHANNELS, DEPOSIT, DOMAIN, KEYS
from tests.support.crash import Checker as StoreChecker
from tests.support.crash import Watched, run

SCRIPT = Path(__file__).with_name("crash_party.py")
KILLS = 5


def _run(
    targets: dict[str, str],
    *args: str,
    kill_after: float | None = None,
    dies: bool = False,
    clock_from: str | None = None,
) -> list[str]:
    return run(SCRIPT, [targets[name] for name in KEYS], *args, kill_after=kill_after, dies=dies, clock_from=clock_from)


def _acks(lines: list[str]) -> dict[str, list[int]]:
    acks: dict[str, list[int]] = {"left": [], "right": []}
    for line in lines:
        words = line.split()
        if len(words) == 3 and words[0] == "ack":
            acks[words[1]].append(int(words[2]))
    return acks


def _ledger_state(state: LedgerState, previous: LedgerState | None) -> None:
    assert isinstance(state, LedgerState)
    assert (state.funding_a, state.funding_b) == (DEPOSIT, DEPOSIT) and state.locks == ()
    assert state.balance_a + state.balance_b == 2 * DEPOSIT  # conserved (also checked on decoding)


class Checker(StoreChecker):
    """Reads the three stores between runs (no process holds them then)."""

    def __init__(self, targets: dict[str, str]) -> None:
        channels = {
            label: Watched(params.channel_id, names, (params.participant_a, params.participant_b))
            for label, (params, names) in CHANNELS.items()
        }
        super().__init__(targets, channels, DOMAIN, _ledger_state)


def _targets(store_target) -> dict[str, str]:
    """The three parties' stores on this test's backend."""
    return {name: store_target(name) for name in KEYS}


def test_crash__sigkill_at_random_points__nothing_acknowledged_is_lost(store_target):
    seed = int(os.environ.get("PERUN_CRASH_SEED", time.time_ns() % 2**32))
    rng = random.Random(seed)
    targets = _targets(store_target)
    checker = Checker(targets)
    acked: dict[str, int] = {}
    total = 0
    for kill in range(KILLS):
        delay = rng.uniform(0.2, 1.5) if kill else rng.uniform(0.05, 0.6)  # the first may land in the opening
        # After the first kill, timed from "ready": a slow start on a busy machine does not eat the time.
        lines = _run(
            targets, "--seed", str(rng.getrandbits(32)), kill_after=delay, clock_from="ready " if kill else None
        )
        for label, versions in _acks(lines).items():
            assert versions == sorted(set(versions)), f"seed {seed}: {label} acknowledged out of order"
            if versions:
                assert versions[0] > acked.get(label, 0), f"seed {seed}: {label} acknowledged v{versions[0]} twice"
                acked[label] = versions[-1]
                total += len(versions)
        agreed = checker.check(acked)
        for label, version in acked.items():
            assert agreed[label] >= version, f"seed {seed}: {label} acknowledged v{version}, agreed {agreed[label]}"
    print(f"seed {seed}: {total} payments acknowledged over {KILLS} killed runs; kills caught {checker.caught}")
    assert total > 100, f"seed {seed}: only {total} payments acknowledged in {KILLS} runs; the kills came too early"
    lines = _run(targets, "--payments", "300", "--seed", str(seed))
    assert lines[-1] == "done" and lines[0].startswith("ready ")
    final = _acks(lines)
    assert sum(len(v) for v in final.values()) == 300
    for label, versions in final.items():
        if versions:
            assert versions[0] > acked.get(label, 0)
            acked[label] = versions[-1]
    agreed = checker.check(acked)
    assert agreed == acked  # after a clean exit nothing is in flight


def test_crash__sigkill_right_after_each_protocol_step__recovered(store_target):
    """The three windows of one payment, each hit on purpose: after the proposal is committed, after the
    receiver committed and countersigned, after the proposer committed (before it printed the ack)."""
    targets = _targets(store_target)
    checker = Checker(targets)
    acked: dict[str, int] = {}
    expected = {"proposed": "proposal only", "accepted": "countersigned, not completed"}
    for step in ("proposed", "accepted", "completed"):
        caught = dict(checker.caught)
        lines = _run(targets, "--seed", "7", "--die-at", step, "--die-after", "40", dies=True)
        for label, versions in _acks(lines).items():
            if versions:
                assert versions[0] > acked.get(label, 0)
                acked[label] = versions[-1]
        assert sum(len(v) for v in _acks(lines).values()) == 40
        agreed = checker.check(acked)
        assert all(agreed[label] >= version for label, version in acked.items())
        if step in expected:
            assert checker.caught[expected[step]] == caught[expected[step]] + 1
        else:  # completed: both hold the update fully signed, one version beyond the acknowledged ones
            assert sum(agreed.values()) == sum(acked.values()) + 1
    lines = _run(targets, "--payments", "50", "--seed", "8")
    assert lines[-1] == "done" and sum(len(v) for v in _acks(lines).values()) == 50
