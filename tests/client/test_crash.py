"""THE crash test: a process running three parties (crash_party.py) is SIGKILLed at random points and
restarted; nothing it acknowledged is lost, the parties agree up to the one update in flight, every
stored signature verifies, funds are conserved, and after the last restart the parties pay on."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

from perun_vyper import ChannelStore, LedgerState, SignedState, open_store, verify
from tests.client.crash_party import CHANNELS, DEPOSIT, DOMAIN, KEYS

SCRIPT = Path(__file__).with_name("crash_party.py")
KILLS = 5


def _run(targets: dict[str, str], *args: str, kill_after: float | None = None, dies: bool = False) -> list[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SCRIPT.parents[2]), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), *(targets[name] for name in KEYS), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    if kill_after is None:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == (-9 if dies else 0), err
    else:
        time.sleep(kill_after)
        proc.kill()  # SIGKILL: no handler, no flush, no atexit
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == -9, f"the party process ended on its own ({proc.returncode}): {err}"
    return out.splitlines()


def _acks(lines: list[str]) -> dict[str, list[int]]:
    acks: dict[str, list[int]] = {"left": [], "right": []}
    for line in lines:
        words = line.split()
        if len(words) == 3 and words[0] == "ack":
            acks[words[1]].append(int(words[2]))
    return acks


class Checker:
    """Reads the three stores between runs (no process holds them then)."""

    def __init__(self, targets: dict[str, str]) -> None:
        self.targets = targets
        self.verified: dict[tuple[str, str], int] = {}  # (party, channel) -> highest version verified
        self.caught: dict[str, int] = {"proposal only": 0, "countersigned, not completed": 0}  # kill points seen

    def check(self, acked: dict[str, int]) -> dict[str, int]:
        """All the invariants; returns each channel's latest version both parties agree on."""
        stores = {name: open_store(target) for name, target in self.targets.items()}
        try:
            return {label: self._channel(stores, label, acked.get(label, -1)) for label in CHANNELS}
        finally:
            for store in stores.values():
                store.close()

    def _channel(self, stores: dict[str, ChannelStore], label: str, acked: int) -> int:
        params, names = CHANNELS[label]
        if not all(any(r.channel_id == params.channel_id for r in stores[n].channels()) for n in names):
            assert acked < 0, f"{label}: a party lost the channel after acknowledging version {acked}"
            return -1
        histories = {name: stores[name].history(params.channel_id) for name in names}
        latest = {}
        for side, name in enumerate(names):
            history = histories[name]
            assert [s.state.version for s in history] == list(range(len(history))), f"{name} {label}: gap"
            self._verify(label, name, side, params, history)
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
        if gap == 1:  # the one update in flight: the party behind holds it as its own proposal
            newest = histories[behind_name][-1]
            assert newest.state == ahead.state and not newest.fully_signed, f"{label}: not the in-flight update"
            self.caught["countersigned, not completed"] += 1
        elif any(not histories[name][-1].fully_signed for name in names):
            self.caught["proposal only"] += 1
        common = min(len(histories[names[0]]), len(histories[names[1]]))
        for version in range(self.verified.get((label, "common"), 0), common):
            a, b = histories[names[0]][version], histories[names[1]][version]
            assert a.state == b.state, f"{label} v{version}: the parties hold different states"
        self.verified[(label, "common")] = max(0, common - 1)
        return behind.state.version

    def _verify(self, label: str, name: str, side: int, params, history: list[SignedState]) -> None:
        start = self.verified.get((label, name), 0)
        for signed in history[start:]:
            state = signed.state
            assert isinstance(state, LedgerState)
            assert (state.funding_a, state.funding_b) == (DEPOSIT, DEPOSIT) and state.locks == ()
            assert state.balance_a + state.balance_b == 2 * DEPOSIT  # conserved (also checked on decoding)
            digest = DOMAIN.digest(state.struct_hash())
            assert (signed.sig_a, signed.sig_b)[side] is not None, f"{name} stored a state without its own signature"
            for signer, signature in ((params.participant_a, signed.sig_a), (params.participant_b, signed.sig_b)):
                if signature is not None:
                    verify(digest, signature, signer)
        self.verified[(label, name)] = max(0, len(history) - 1)  # the newest may gain a signature later


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
        lines = _run(targets, "--seed", str(rng.getrandbits(32)), kill_after=delay)
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
