"""The processes of ``make loadtest`` and the driver's view of the chain: Anvil, ``ape run deploy``,
``ape run hub`` (one process per worker), the client processes, PostgreSQL (``pgserver``) when the hub's
store is one; reading their output with time bounds, their CPU time from ``/proc``, and plain JSON-RPC
to Anvil (the driver needs no Ape and no web3 of its own).

Everything listens on 127.0.0.1 only (PostgreSQL on a Unix socket only). Every process started here is
ended by ``Processes.stop_all`` (SIGTERM, then SIGKILL after a grace period) and PostgreSQL by
``Postgres.stop``, which the driver calls in a ``finally``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from ..errors import LoadTestFailed
from .lines import Lines

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def free_port() -> int:
    """A port free on 127.0.0.1 now (Anvil takes a port number, not 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ProcessLines(Lines):
    """A load-test process's output (``tools.lines.Lines``, copied to ``log``) with the failures of the
    load test: ``LoadTestFailed`` naming the process when it ends first or nothing comes in time."""

    def __init__(self, stream: IO[str], name: str, log: Path | None = None) -> None:
        super().__init__(stream, log=log)
        self.name = name

    def expect(self, predicate: Any, timeout: float, what: str) -> str:
        """The next line for which ``predicate`` holds; ``LoadTestFailed`` if the process ends first or
        nothing comes within ``timeout`` seconds."""
        line = self.until(predicate, timeout)
        if line is not None:
            return line
        if self.ended:
            tail = "\n".join(self.seen[-20:])
            raise LoadTestFailed(f"{self.name} ended before {what}; its last lines:\n{tail}")
        raise LoadTestFailed(f"{self.name}: no {what} within {timeout:g}s")

    def event(self, name: str, timeout: float) -> dict[str, Any]:
        """The next ``{"event": name}`` line of a client process (an ``error`` event fails at once)."""

        def wanted(line: str) -> bool:
            return line.startswith("{") and json.loads(line).get("event") in (name, "error")

        message: dict[str, Any] = json.loads(self.expect(wanted, timeout, f"the {name!r} event"))
        if message["event"] == "error":
            raise LoadTestFailed(f"{self.name}: {message['message']}")
        return message


@dataclass
class Processes:
    """Every process the load test started, so that all of them end whatever happens."""

    started: list[tuple[str, subprocess.Popen[str]]] = field(default_factory=list)

    def start(
        self, name: str, command: list[str], env: dict[str, str], cwd: Path, log: Path, *, quiet: bool = False
    ) -> subprocess.Popen[str]:
        """Start ``command`` in a session (process group) of its own, so that ending it ends what it
        started too (node_modules/.bin/anvil is a wrapper around the binary). stderr goes to ``log``, and
        stdout too when ``quiet`` (Anvil logs every transaction: an unread pipe would fill and block it)."""
        with log.open("w") as err:
            proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL if quiet else subprocess.PIPE,
                stdout=err if quiet else subprocess.PIPE,
                stderr=err,
                text=True,
                bufsize=1,
                start_new_session=True,
            )
        self.started.append((name, proc))
        return proc

    def stop_all(self, grace: float = 20.0) -> dict[str, int | None]:
        """SIGTERM every process group still running (last started first), SIGKILL what is left after
        ``grace`` seconds; returns each leader's exit code (None: killed)."""
        for _, proc in reversed(self.started):
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        codes: dict[str, int | None] = {}
        for name, proc in reversed(self.started):
            try:
                codes[name] = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                codes[name] = None
            _signal_group(proc, signal.SIGKILL)  # whatever of its group outlived it
            if codes[name] is None:
                proc.wait(timeout=10)
        return codes


def _signal_group(proc: subprocess.Popen[str], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)  # the group we created for it (start_new_session): its id is its pid


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    for _ in range(1000):  # bounded: a process tree of the load test is a handful of processes
        if not todo:
            break
        current = todo.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its descendants (all threads), from /proc."""
    total = 0
    for member in _descendants(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    return total / CLOCK_TICKS


def server_seconds(pid: int) -> float:
    """CPU time so far of a server that forks a process per connection (PostgreSQL's postmaster): its own,
    its children's that ended (cutime, cstime: counted once the server reaped them) and its live
    descendants', from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    reaped = int(fields[13]) + int(fields[14])  # cutime, cstime (fields 16, 17 of stat)
    return cpu_seconds(pid) + reaped / CLOCK_TICKS


def main_thread_seconds(pid: int) -> float:
    """User + system CPU time of a process's main thread only (the hub's event loop; its other busy thread
    is the channel worker), from /proc/<pid>/task/<pid>/stat."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat (all processes, ours or not)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    total = sum(values[:8])  # up to steal; guest time is counted in user already
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


class Anvil:
    """Plain JSON-RPC to the Anvil the load test started (its accounts are unlocked: it signs for them)."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self._ids = 0

    def call(self, method: str, *params: Any) -> Any:
        self._ids += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._ids, "method": method, "params": list(params)}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        if "error" in answer:
            raise LoadTestFailed(f"Anvil refused {method}: {answer['error']}")
        return answer["result"]

    def wait_ready(self, timeout: float) -> int:
        """The chain id once Anvil answers."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                return int(self.call("eth_chainId"), 16)
            except OSError:
                time.sleep(0.1)
        raise LoadTestFailed(f"Anvil did not answer on {self.url} within {timeout:g}s")

    def accounts(self) -> list[str]:
        return list(self.call("eth_accounts"))

    def balance(self, address: str, block: int | None = None) -> int:
        return int(self.call("eth_getBalance", address, "latest" if block is None else hex(block)), 16)

    def block_number(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def sent_by(self, address: str, after: int) -> list[str]:
        """Every transaction ``address`` sent in the blocks after block ``after``, up to the latest."""
        sent = []
        for number in range(after + 1, self.block_number() + 1):
            block = self.call("eth_getBlockByNumber", hex(number), True)
            sent += [tx["hash"] for tx in block["transactions"] if tx["from"].lower() == address.lower()]
        return sent

    def deposit(self, ledger: str, sender: str, channel: bytes, side: int, amount: int) -> str:
        """``LedgerAdjudicator.deposit(channel, side)`` with ``amount`` wei from ``sender``: anyone may deposit
        for either side (contracts/modules/asset_holder.vy), so the driver funds the wallets' sides."""
        data = function_signature_to_4byte_selector("deposit(bytes32,uint256)") + encode(
            ["bytes32", "uint256"], [channel, side]
        )
        tx = {"from": sender, "to": ledger, "value": hex(amount), "data": "0x" + data.hex()}
        return str(self.call("eth_sendTransaction", tx))

    def receipt(self, tx: str, timeout: float = 30.0) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            receipt = self.call("eth_getTransactionReceipt", tx)
            if receipt is not None:
                if int(receipt["status"], 16) != 1:
                    raise LoadTestFailed(f"transaction {tx} reverted")
                return dict(receipt)
            time.sleep(0.05)
        raise LoadTestFailed(f"transaction {tx} not mined within {timeout:g}s")

    def fee(self, tx: str) -> int:
        """What the sender of a mined transaction paid for gas."""
        receipt = self.receipt(tx)
        return int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)


class Postgres:
    """The hub's PostgreSQL server (the ``pgserver`` package: PostgreSQL 16 in ``directory``, listening on
    a Unix socket there only). ``start`` is bounded; ``stop`` ends the server whatever ``start`` got to."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.server: Any = None
        self._starting: threading.Thread | None = None

    def start(self, timeout: float) -> str:
        """Start the server within ``timeout`` seconds; its URL (the database ``postgres``)."""
        with warnings.catch_warnings():  # platformdirs warns on import when XDG_RUNTIME_DIR is not set
            warnings.simplefilter("ignore")
            import pgserver  # the driver checks up front that it is installed

        failed: list[BaseException] = []

        def run() -> None:
            try:
                self.server = pgserver.get_server(self.directory, cleanup_mode="stop")
            except Exception as exc:  # handed to the driver's thread below
                failed.append(exc)

        self._starting = threading.Thread(target=run, daemon=True)
        self._starting.start()
        self._starting.join(timeout)
        log = self.directory / "log"
        if failed:
            raise LoadTestFailed(f"PostgreSQL (pgserver) did not start: {failed[0]}; see {log}")
        if self.server is None:
            raise LoadTestFailed(f"PostgreSQL (pgserver) did not start within {timeout:g}s; see {log}")
        return str(self.server.get_uri())

    @property
    def pid(self) -> int:
        """The postmaster's pid (the backends are its children)."""
        return int(self.server.get_pid())

    def stop(self, grace: float = 20.0) -> None:
        """Stop the server (``pg_ctl stop``); a start still under way is waited for a while, and a server
        left without a handle is ended through its ``postmaster.pid``."""
        if self._starting is None:
            return
        self._starting.join(grace)
        if self.server is not None:
            try:
                self.server.cleanup()
                return
            except Exception as exc:  # whatever pg_ctl did, the postmaster is ended below
                print(f"loadtest: pgserver could not stop PostgreSQL ({exc}); ending it by its pid", file=sys.stderr)
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.directory / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGINT)  # the postmaster's "fast" shutdown; SIGKILL after the grace period
            end = time.monotonic() + grace
            while time.monotonic() < end and Path(f"/proc/{pid}").exists():
                time.sleep(0.1)
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)


def ape_command(*args: str) -> list[str]:
    """``ape`` of this interpreter's environment (the venv), not whichever is first on PATH."""
    return [str(Path(sys.executable).with_name("ape")), *args]
