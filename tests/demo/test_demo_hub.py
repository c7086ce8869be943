"""The demo's handling of the hub process (``HubProcess``: start, output, SIGSTOP/SIGCONT, SIGTERM, kill,
bounded waits) against a stand-in hub script, and the pacing that keeps wallets within the hub's rate
limit. No chain needed."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from perun_vyper.errors import HubUnavailable
from perun_vyper.tools.demo_hub import HubProcess, Pacer

HUB = "0x" + "ab" * 20
STAND_IN = f"""
import signal, sys, time
print("INFO: Connecting to a node.", flush=True)
print("hub {HUB} listening on ws://127.0.0.1:5555 chain=31337", flush=True)
def stop(sig, frame):
    print("hub {HUB} stopped (SIGTERM)", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
i = 0
while True:
    print(f"tick {{i}}", flush=True)
    i += 1
    time.sleep(0.05)
"""


def _hub(tmp_path: Path, script: str, shown: list[str]) -> HubProcess:
    return HubProcess([sys.executable, "-c", script], tmp_path, dict(os.environ), shown.append)


def test_hub_process__start_pause_resume_sigterm__lines_prefixed_exit_0(tmp_path):
    shown: list[str] = []
    hub = _hub(tmp_path, STAND_IN, shown)
    try:
        assert hub.start(timeout=30) == "ws://127.0.0.1:5555"
        assert hub.address == HUB
        assert shown == [
            "[hub] INFO: Connecting to a node.",
            f"[hub] hub {HUB} listening on ws://127.0.0.1:5555 chain=31337",
        ]
        assert any(line.startswith("tick ") for line in hub.watch(0.5))
        hub.pause()
        time.sleep(0.2)
        hub.drain()  # what it printed before it stopped
        assert hub.watch(0.4) == []  # stopped: nothing more
        hub.resume()
        assert any(line.startswith("tick ") for line in hub.watch(0.5))
        hub.pause()  # a stopped hub is continued before SIGTERM
        assert hub.stop(timeout=10) == f"hub {HUB} stopped (SIGTERM)"
        assert shown[-1] == f"[hub] hub {HUB} stopped (SIGTERM)"
        assert hub.exit_code == 0
        assert all(line.startswith("[hub] ") for line in shown)
    finally:
        hub.kill()


def test_hub_process__ends_before_listening__one_line_error_with_its_last_line(tmp_path):
    hub = _hub(tmp_path, "import sys; print('Error: no contract at --ledger 0x12'); sys.exit(1)", [])
    with pytest.raises(HubUnavailable) as raised:
        hub.start(timeout=30)
    assert str(raised.value) == (
        "the hub process ended (exit code 1) before 'listening on'; its last line: "
        "'Error: no contract at --ledger 0x12'"
    )


def test_hub_process__silent__bounded_wait_then_killed(tmp_path):
    hub = _hub(tmp_path, "import time; time.sleep(60)", [])
    started = time.monotonic()
    with pytest.raises(HubUnavailable, match=r"^no 'listening on' line from the hub within 0.5s; it printed nothing$"):
        hub.start(timeout=0.5)
    hub.kill()
    assert time.monotonic() - started < 10
    assert hub.exit_code == -9  # SIGKILL
    with pytest.raises(HubUnavailable, match="the hub process is not running"):
        hub.pause()


def test_pacer__beyond_half_the_burst__waits_for_the_busier_endpoint_only():
    async def scenario() -> tuple[float, float]:
        pacer = Pacer(rate_per_second=100, burst=4, users=3)  # 90/s, 2 frames at once
        for _ in range(2):
            await pacer.take(0, 1)
        assert pacer.waited == 0
        await pacer.take(2, 1)  # user 1 has no token left: waits ~1/90 s
        after_one = pacer.waited
        await pacer.take(2)  # user 2 still has one
        return after_one, pacer.waited

    after_one, total = asyncio.run(scenario())
    assert 0 < after_one <= 1 / 90 + 1e-9
    assert total == after_one
