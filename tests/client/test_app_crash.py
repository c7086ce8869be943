"""The crash test of app channels: a process running the SLA client and its provider (crash_app.py) is
SIGKILLed at each step of the protocol and at random points, and restarted; nothing it acknowledged is
lost, the parties agree up to the one move in flight, held by the party whose move it is, every stored
signature verifies, every stored state is the SLA move the app accepts with funds conserved, and after
the restart the parties move on from whatever state is latest."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from perun_vyper import AppState
from perun_vyper.core import sla
from perun_vyper.core.sla import SlaData
from tests.client.crash_app import DEPOSIT, DOMAIN, KEYS, PARAMS, TERMS, answer_to, mover, request_for
from tests.support.crash import Checker, Watched, run

SCRIPT = Path(__file__).with_name("crash_app.py")
KILLS = 4
CHANNEL = "sla"


def _run(
    targets: dict[str, str],
    *args: str,
    kill_after: float | None = None,
    dies: bool = False,
    clock_from: str | None = None,
) -> list[str]:
    stores = [targets[name] for name in KEYS]
    return run(SCRIPT, stores, *args, kill_after=kill_after, dies=dies, clock_from=clock_from)


def _acks(lines: list[str]) -> list[int]:
    return [int(words[1]) for words in map(str.split, lines) if len(words) == 2 and words[0] == "ack"]


def _ready(lines: list[str]) -> int | None:
    """The version both parties hold once recovered (both print the same), or None if killed before."""
    if not lines or not lines[0].startswith("ready "):
        return None
    versions = {int(word.split("=")[1]) for word in lines[0].split()[1:]}
    assert len(versions) == 1, f"the parties recovered to different versions: {lines[0]}"
    return versions.pop()


def _sla_state(state: AppState, previous: AppState | None) -> None:
    assert isinstance(state, AppState) and state.channel == PARAMS.channel_id and not state.is_final
    assert (state.funding_a, state.funding_b) == (DEPOSIT, DEPOSIT)
    assert state.balance_a + state.balance_b == 2 * DEPOSIT  # conserved (also checked on decoding)
    data = SlaData.decode(state.app_data)
    if previous is None:
        assert state == AppState.initial(PARAMS.channel_id, DEPOSIT, DEPOSIT, TERMS)
        return
    sla.check(previous, state, mover(state.version))  # the move the app accepts, by the party whose move it is
    if mover(state.version) == sla.CLIENT:
        assert data.request == request_for(state.version), f"v{state.version}: not the loop's request"
    else:
        assert data.response == answer_to(data.request), f"v{state.version}: not the loop's answer"


def _checker(targets: dict[str, str]) -> Checker:
    watched = Watched(PARAMS.channel_id, ("alice", "bob"), (PARAMS.participant_a, PARAMS.participant_b))
    return Checker(targets, {CHANNEL: watched}, DOMAIN, _sla_state, mover)


def _targets(store_target) -> dict[str, str]:
    """The two parties' stores on this test's backend."""
    return {name: store_target(name) for name in KEYS}


@pytest.mark.parametrize("step", ["proposed", "accepted", "completed"])
def test_app_crash__sigkill_right_after_a_protocol_step__recovered(store_target, step):
    """One window of a move, hit on purpose twice: in a request (the client's move), then in an answer
    (the provider's), each run restarted from what the kill left."""
    targets = _targets(store_target)
    checker = _checker(targets)
    recovered = 0  # the version both hold once the next run recovered
    for die_after, proposer in ((40, "alice"), (8, "bob")):
        caught = dict(checker.caught)
        lines = _run(targets, "--die-at", step, "--die-after", str(die_after), dies=True)
        assert _ready(lines) == recovered, f"{step}: {lines[:1]}"
        acks = _acks(lines)
        assert acks == list(range(recovered + 1, recovered + 1 + die_after)), f"{step}: acknowledged {acks}"
        killed = acks[-1] + 1  # the version of the move the kill hit
        agreed = checker.check({CHANNEL: acks[-1]})[CHANNEL]
        if step == "completed":  # both hold the move fully signed, one version beyond the acknowledged ones
            assert agreed == killed and checker.in_flight[CHANNEL] is None and checker.caught == caught
        else:  # the proposer holds its own proposal; the receiver has it fully signed once it accepted
            kind = "proposal only" if step == "proposed" else "countersigned, not completed"
            assert agreed == acks[-1] and checker.in_flight[CHANNEL] == (proposer, killed)
            assert checker.caught[kind] == caught[kind] + 1
        recovered = killed  # resume completes the move in flight
    lines = _run(targets, "--moves", "30")
    assert _ready(lines) == recovered and lines[-1] == "done"
    acks = _acks(lines)
    assert acks == list(range(recovered + 1, recovered + 31))  # the parties move on from the latest state
    assert checker.check({CHANNEL: acks[-1]})[CHANNEL] == acks[-1] and checker.in_flight[CHANNEL] is None


def test_app_crash__sigkill_at_random_points__nothing_acknowledged_is_lost(store_target):
    seed = int(os.environ.get("PERUN_CRASH_SEED", time.time_ns() % 2**32))
    print(f"seed {seed}")  # shown with any failure, the helpers' assertions included
    rng = random.Random(seed)
    targets = _targets(store_target)
    checker = _checker(targets)
    acked, agreed, total = -1, -1, 0
    for kill in range(KILLS):
        if kill:  # in the loop: timed from the ready line
            lines = _run(targets, kill_after=rng.uniform(0.3, 1.0), clock_from="ready ")
        else:  # timed from the start: may land in the opening, or before it
            lines = _run(targets, kill_after=rng.uniform(0.05, 1.5))
        ready, acks = _ready(lines), _acks(lines)
        if ready is not None:  # recovered to what the last run left: all it agreed, plus its move in flight
            assert agreed <= ready <= agreed + 1, f"seed {seed}: recovered to v{ready}, agreed v{agreed} before"
        if acks:
            assert ready is not None and acks == list(range(ready + 1, ready + 1 + len(acks))), f"seed {seed}"
            acked = acks[-1]
            total += len(acks)
        agreed = checker.check({CHANNEL: acked})[CHANNEL]  # every acknowledged version in both stores, signed
    print(f"seed {seed}: {total} moves acknowledged over {KILLS} killed runs; kills caught {checker.caught}")
    assert total > 50, f"seed {seed}: only {total} moves acknowledged in {KILLS} runs; the kills came too early"
    lines = _run(targets, "--moves", "100")
    ready, acks = _ready(lines), _acks(lines)
    assert ready is not None and agreed <= ready <= agreed + 1 and lines[-1] == "done", f"seed {seed}: {lines[:1]}"
    assert acks == list(range(ready + 1, ready + 101)), f"seed {seed}: the parties did not move on"
    final = checker.check({CHANNEL: acks[-1]})[CHANNEL]
    assert final == acks[-1] and checker.in_flight[CHANNEL] is None, f"seed {seed}: in flight after a clean exit"
