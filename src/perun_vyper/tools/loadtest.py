"""``make loadtest``: the hub as a service under load, everything on this machine over loopback.

Anvil on a free port, the adjudicators deployed by ``ape run deploy``, Ingrid served by ``--workers``
``ape run hub`` processes (one by default, on a SQLite store; several share a PostgreSQL store, ``--store
postgres``, a server the driver starts with ``pgserver``), and ``--clients`` wallets in ``--processes``
client processes (``load_client``), wallet i with worker i % ``--workers``. Each wallet opens a ledger
channel with the hub; the driver deposits the wallets' sides on-chain and the hub its own
(``ledger.funded``); wallets pair up (wallet 2k is Alice, 2k+1 her Bob, in another process when there are
several) in one virtual channel each pair. Then, for ``--seconds``, every wallet pays the hub
(``ledger.update``, one in flight) and every Alice pays her Bob in the virtual channel (relayed by the
hub, from Alice's worker to Bob's through the store's bus when they differ). At the end every virtual
channel is closed off-chain and every ledger channel closed on-chain by the hub, and every balance is
checked: each wallet's payout on-chain equals its final state and what it paid; the hub got back its
collateral plus exactly the ledger payments it received (its balance on-chain, the gas of every
transaction its account sent added back, whichever worker sent it), so the virtual channels neither gained
nor cost it anything; the adjudicator is left holding nothing. Prints the throughput, the latencies
(p50/p99), the CPU of every process over the pay phase (each worker's, PostgreSQL's), and ``loadtest:
OK`` (exit 0) or ``loadtest: FAILED ...`` (exit 1).

    python -m perun_vyper.tools.loadtest [--clients 100] [--processes 4] [--seconds 20]
        [--workers 1] [--store sqlite|postgres] [--json PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from eth_utils import keccak

from ..contracts import record_path, recorded_pair
from ..core.codec import hexstr, unhex
from ..core.keys import Signer
from ..errors import LoadTestFailed
from .load_procs import (
    Anvil,
    Postgres,
    Processes,
    ProcessLines,
    ape_command,
    cpu_seconds,
    free_port,
    machine_cpu,
    main_thread_seconds,
)
from .load_report import by_worker, ms, percentile, report

E = 10**18
AMOUNT = 10**9  # wei per payment, ledger and virtual
STARTUP = 300.0  # seconds any start-up step (Ape, compiling, the hub) may take
POSTGRES_STARTUP = 60.0  # seconds pgserver may take to init and start PostgreSQL (about 1 s here)
SQLITE_ONE_WORKER = (
    "--workers {n} needs --store postgres: a SQLite store belongs to one hub process, "
    "several workers share a PostgreSQL store"
)


def wallet_key(index: int) -> bytes:
    """A deterministic test key per wallet (fresh addresses: they hold nothing but their payouts)."""
    return keccak(b"perun-vyper loadtest wallet " + index.to_bytes(4, "big"))


class LoadTest:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.procs = Processes()
        self.env = {**os.environ, "APE_DATA_FOLDER": str(tmp / "ape-data"), "PYTHONWARNINGS": "ignore"}
        self.keys = [wallet_key(i) for i in range(args.clients)]
        self.addresses = [Signer(key).address for key in self.keys]
        self.result: dict[str, Any] = {
            "clients": args.clients, "processes": args.processes, "seconds": args.seconds,
            "workers": args.workers, "store": args.store,
        }  # fmt: skip
        # The hub's processes: "hub" when it is one, "hub w0", "hub w1", ... (worker names w0, w1, ...) else.
        self.hub_names = ["hub"] if args.workers == 1 else [f"hub w{i}" for i in range(args.workers)]
        self.postgres = Postgres(tmp / "pg") if args.store == "postgres" else None

    # --- start-up -------------------------------------------------------------------------------------

    def start_chain(self) -> None:
        port = free_port()
        anvil_log = self.tmp / "anvil.log"
        self.anvil_proc = self.procs.start(
            "anvil", ["anvil", "--port", str(port)], self.env, self.args.project, anvil_log, quiet=True
        )
        self.anvil = Anvil(port)
        self.chain_id = self.anvil.wait_ready(60)
        deploy = self.procs.start(
            "deploy",
            ape_command("run", "deploy", "--network", self.anvil.url, "--account", "TEST::0", "--yes",
                        "--deployments-dir", str(self.tmp / "deployments")),
            self.env, self.args.project, self.tmp / "deploy.log",
        )  # fmt: skip
        ProcessLines(deploy.stdout, "ape run deploy").expect(
            lambda line: line.startswith("record"), STARTUP, "its record"
        )  # type: ignore[arg-type]
        deploy.wait(timeout=60)
        pair = recorded_pair(record_path(self.tmp / "deployments", "ethereum", "custom"), self.chain_id)
        if not pair:
            raise LoadTestFailed("ape run deploy recorded no deployment")
        self.ledger, self.virtual = pair["ledger"], pair["virtual"]

    def start_hub(self) -> None:
        """The hub's store (a SQLite file, or PostgreSQL started here), then its workers one after the other,
        each waiting for the last one's listening line: one hub, Ingrid (the same account), on one store."""
        store = str(self.tmp / "hub.db") if self.postgres is None else self.postgres.start(POSTGRES_STARTUP)
        self.hub_procs: list[Any] = []
        self.urls: list[str] = []
        for i, name in enumerate(self.hub_names):
            command = ape_command(
                "run", "hub", "--network", self.anvil.url, "--account", "TEST::3", "--store", store,
                "--ledger", self.ledger, "--virtual", self.virtual, "--collateral", str(self.args.collateral),
                "--listen", "127.0.0.1:0", "--watch-interval", "600", "--max-head-age", str(self.args.max_head_age),
                "--worker", f"w{i}",
            )  # fmt: skip
            # An Ape data folder per worker (Ape caches contract types there; test_workers.py does the same).
            env = {**self.env, "APE_DATA_FOLDER": str(self.tmp / f"ape-data-w{i}")}
            file = name.replace(" ", "-")  # hub.log, or hub-w0.log, hub-w1.log, ...
            proc = self.procs.start(name, command, env, self.args.project, self.tmp / f"{file}.log")
            lines = ProcessLines(proc.stdout, f"ape run hub --worker w{i}", self.tmp / f"{file}.out")  # type: ignore[arg-type]
            line = lines.expect(lambda text: text.startswith("hub 0x"), STARTUP, "its listening line")
            address = line.split()[1]
            if i and address != self.hub_address:
                raise LoadTestFailed(f"hub worker w{i} is {address}, worker w0 {self.hub_address}: not one hub")
            self.hub_address = address
            self.hub_procs.append(proc)
            self.urls.append(line.split(" on ")[1].split()[0])

    def start_clients(self) -> None:
        k = self.args.processes
        self.clients: list[tuple[Any, ProcessLines]] = []
        for p in range(k):
            wallets = [
                {
                    "index": i,
                    "key": hexstr(self.keys[i]),
                    "alice": i % 2 == 0,
                    "peer": self.addresses[i + 1 if i % 2 == 0 else i - 1],
                    # Wallet i with worker i % workers: with two, every Alice and her Bob on different ones.
                    "url": self.urls[i % len(self.urls)],
                }
                for i in range(p, self.args.clients, k)  # wallet i in process i % k: a pair spans two processes
            ]
            config = {
                "url": self.urls[0], "chainId": self.chain_id, "ledger": self.ledger, "virtual": self.virtual,
                "deposit": str(self.args.deposit), "hubDeposit": str(self.args.collateral),
                "virtualFunding": str(self.args.deposit // 10), "amount": str(AMOUNT),
                "dir": str(self.tmp), "timeout": 120.0, "wallets": wallets,
                "rate": self.args.rate, "virtualRate": self.args.virtual_rate,
            }  # fmt: skip
            command = [sys.executable, "-m", "perun_vyper.tools.load_client"]
            proc = self.procs.start(f"client-{p}", command, self.env, self.args.project, self.tmp / f"client-{p}.log")
            self.clients.append((proc, ProcessLines(proc.stdout, f"client process {p}")))  # type: ignore[arg-type]
            self._send(proc, config)

    def _send(self, proc: Any, message: dict[str, Any]) -> None:
        proc.stdin.write(json.dumps(message) + "\n")
        proc.stdin.flush()

    def phase(self, message: dict[str, Any] | None, event: str, timeout: float) -> list[dict[str, Any]]:
        """Send ``message`` to every client process, then wait for each one's ``event``."""
        if message is not None:
            for proc, _ in self.clients:
                self._send(proc, message)
        return [lines.event(event, timeout) for _, lines in self.clients]

    # --- the run --------------------------------------------------------------------------------------

    def run(self) -> None:
        clock = time.monotonic()
        phases: dict[str, float] = {}
        self.result["phaseSeconds"] = phases

        def lap(name: str) -> None:
            nonlocal clock
            phases[name] = round(time.monotonic() - clock, 1)
            clock = time.monotonic()

        self.start_chain()
        self.start_hub()
        lap("chain, deploy, hub")
        for address in self.addresses:
            if self.anvil.balance(address) != 0:
                raise LoadTestFailed(f"wallet {address} holds ETH before the test; its payout could not be checked")
        self.start_clients()
        opened = self.phase(None, "opened", STARTUP)
        lap("channels opened")
        channels = {address: unhex(cid) for event in opened for address, cid in event["channels"].items()}
        funder = self.anvil.accounts()[1]
        deposits = [self.anvil.deposit(self.ledger, funder, channels[a], 0, self.args.deposit) for a in self.addresses]
        for tx in deposits:
            self.anvil.receipt(tx)
        lap("wallets deposited")
        self.hub_start_block = self.anvil.block_number()
        self.hub_start = self.anvil.balance(self.hub_address, self.hub_start_block)
        self.phase({"phase": "funded"}, "funded", STARTUP)
        lap("hub deposited")
        self.phase({"phase": "virtual"}, "virtual", STARTUP)
        lap("virtual channels opened")
        self.pay_phase()
        lap("paid")
        closed = self.phase({"phase": "close"}, "closed", STARTUP)
        self.wallets = [wallet for event in closed for wallet in event["wallets"]]
        self.result["workerPayments"] = by_worker(self.addresses, self.wallets, self.args.workers)
        for proc, _ in self.clients:  # done: each client process closes its stores and exits by itself
            proc.stdin.close()
            proc.wait(timeout=60)
        lap("closed")
        self.check()
        lap("checked")

    def pay_phase(self) -> None:
        seconds = self.args.seconds
        start = time.time() + 1.0  # every process has the line by then
        for proc, _ in self.clients:
            self._send(proc, {"phase": "go", "start": start, "end": start + seconds})
        hubs = {name: proc.pid for name, proc in zip(self.hub_names, self.hub_procs, strict=True)}
        pids = {**hubs, "anvil": self.anvil_proc.pid}
        if self.postgres is not None:
            pids["postgres"] = self.postgres.pid  # the postmaster and its children (a backend per connection)
        pids.update({f"client-{p}": proc.pid for p, (proc, _) in enumerate(self.clients)})
        time.sleep(max(0.0, start - time.time()))
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        loop_before = {pid: main_thread_seconds(pid) for pid in hubs.values()}
        machine_before, load_before = machine_cpu(), os.getloadavg()[0]
        time.sleep(max(0.0, start + seconds - time.time()))
        after = {name: cpu_seconds(pid) for name, pid in pids.items()}
        hub_loop = {
            name: round((main_thread_seconds(pid) - loop_before[pid]) / seconds, 3) for name, pid in hubs.items()
        }
        machine_after = machine_cpu()
        paid = self.phase(None, "paid", 180)
        hub_payments = sum(event["hubPayments"] for event in paid)
        virtual_payments = sum(event["virtualPayments"] for event in paid)
        ledger_latency = [x for event in paid for x in event["ledgerLatency"]]
        virtual_latency = [x for event in paid for x in event["virtualLatency"]]
        busy = machine_after[0] - machine_before[0]
        ours = sum(after[name] - before[name] for name in pids)
        self.result.update(
            hubPayments=hub_payments,
            virtualPayments=virtual_payments,
            hubPaymentsPerSecond=round(hub_payments / seconds, 1),
            virtualPaymentsPerSecond=round(virtual_payments / seconds, 1),
            ledgerLatencyMs={"p50": ms(percentile(ledger_latency, 0.5)), "p99": ms(percentile(ledger_latency, 0.99))},
            virtualLatencyMs={
                "p50": ms(percentile(virtual_latency, 0.5)),
                "p99": ms(percentile(virtual_latency, 0.99)),
            },
            cpu={name: round((after[name] - before[name]) / seconds, 3) for name in pids},
            hubLoopCpu=hub_loop,
            machineCpu={
                "busy": round(busy / seconds, 2),
                "cores": os.cpu_count(),
                "others": round(max(0.0, busy - ours) / seconds, 2),
                "loadavg1Before": round(load_before, 2),
                "loadavg1After": round(os.getloadavg()[0], 2),
            },
            offered={
                "hub": min(self.args.rate, 20) * self.args.clients,
                "virtual": min(self.args.virtual_rate, 20) * self.args.clients // 2,
            },
        )

    # --- the checks -----------------------------------------------------------------------------------

    def check(self) -> None:
        """Every balance, on-chain and in the final states; raises ``LoadTestFailed`` with the first miss."""
        deposit, collateral, problems = self.args.deposit, self.args.collateral, []
        by_address = {w["address"]: w for w in self.wallets}
        if sorted(by_address) != sorted(self.addresses):
            raise LoadTestFailed(f"{len(by_address)} wallets reported, {len(self.addresses)} expected")
        hub_side, hub_txs = 0, set()
        for i, address in enumerate(self.addresses):
            w = by_address[address]
            peer = by_address[self.addresses[i + 1 if i % 2 == 0 else i - 1]]
            virtual = -w["virtualPayments"] if w["alice"] else peer["virtualPayments"]
            expected = deposit - AMOUNT * w["hubPayments"] + AMOUNT * virtual
            expected_hub = collateral + AMOUNT * w["hubPayments"] - AMOUNT * virtual
            on_chain = self.anvil.balance(address)
            if (int(w["balance"]), int(w["hubBalance"]), on_chain) != (expected, expected_hub, expected):
                problems.append(
                    f"wallet {address}: final state ({w['balance']}, {w['hubBalance']}), paid out {on_chain}; "
                    f"expected ({expected}, {expected_hub}) and {expected} paid out"
                )
            hub_side += int(w["hubBalance"])
            hub_txs.update(w["txs"])
        earned = AMOUNT * sum(w["hubPayments"] for w in self.wallets)
        if hub_side != len(self.addresses) * collateral + earned:
            problems.append(f"the hub's final sides sum to {hub_side}, not its collateral plus {earned} earned")
        # The gas of every transaction the hub's account sent since its balance was read, whichever worker
        # sent it; each one a wallet was told of must be among them.
        sent = self.anvil.sent_by(self.hub_address, self.hub_start_block)
        unknown = {tx.lower() for tx in hub_txs} - {tx.lower() for tx in sent}
        if unknown:
            problems.append(f"hub transactions the wallets were told of are not on-chain: {sorted(unknown)[:3]}")
        fees = sum(self.anvil.fee(tx) for tx in sent)
        hub_gain = self.anvil.balance(self.hub_address) - self.hub_start + fees
        if hub_gain != earned:
            problems.append(
                f"the hub's account gained {hub_gain} (gas of its {len(sent)} transactions added back), not the "
                f"{earned} it was paid"
            )
        left = self.anvil.balance(self.ledger)
        if left:
            problems.append(f"the LedgerAdjudicator still holds {left} wei after every channel closed")
        if not self.result["hubPayments"] or (self.args.virtual_rate > 0 and not self.result["virtualPayments"]):
            problems.append("no payments were made")
        self.result.update(balancesChecked=not problems, hubEarned=earned, hubTransactions=len(sent))
        if problems:
            raise LoadTestFailed("; ".join(problems[:5]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=100, help="wallets (an even number, 2-1000)")
    parser.add_argument("--processes", type=int, default=4, help="client processes (1-64)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the pay phase (1-600)")
    parser.add_argument("--workers", type=int, default=1, help="ape run hub processes serving the hub (1-16)")
    parser.add_argument(
        "--store", choices=("sqlite", "postgres"), default="sqlite",
        help="the hub's store: a SQLite file (one worker) or PostgreSQL started with pgserver (any number)",
    )  # fmt: skip
    parser.add_argument("--rate", type=float, default=11.0, help="hub payments/s each wallet offers (max 20)")
    parser.add_argument("--virtual-rate", type=float, default=1.0, help="virtual payments/s each pair offers (max 20)")
    parser.add_argument("--max-head-age", type=float, default=1.0, help="the hub's --max-head-age (seconds)")
    parser.add_argument("--deposit", type=int, default=E, help="wei each wallet deposits")
    parser.add_argument("--collateral", type=int, default=E, help="wei the hub deposits per channel")
    parser.add_argument("--timeout", type=float, default=1200.0, help="hard limit for the whole run (seconds)")
    parser.add_argument("--json", type=Path, default=None, help="also write the summary here")
    parser.add_argument("--keep", type=Path, default=None, help="keep the stores and logs in this new directory")
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="the Ape project (scripts/hub.py)")
    args = parser.parse_args(argv)
    if not (2 <= args.clients <= 1000 and args.clients % 2 == 0 and 1 <= args.processes <= 64):
        parser.error("--clients must be even, 2-1000; --processes 1-64")
    if not 1 <= args.seconds <= 600:
        parser.error("--seconds must be 1-600")
    if args.rate <= 0 or args.virtual_rate < 0:
        parser.error("--rate must be positive, --virtual-rate at least 0")
    if not 1 <= args.workers <= 16:
        parser.error("--workers must be 1-16")
    if args.store == "sqlite" and args.workers > 1:
        parser.error(SQLITE_ONE_WORKER.format(n=args.workers))
    if args.store == "postgres" and importlib.util.find_spec("pgserver") is None:
        print("loadtest: FAILED: --store postgres needs the pgserver package (pip install pgserver); nothing started")
        return 1

    def expire(signum: int, frame: Any) -> None:
        raise LoadTestFailed(f"the load test exceeded its hard limit of {args.timeout:g}s")

    def stopped(signum: int, frame: Any) -> None:
        raise LoadTestFailed(f"stopped by {signal.Signals(signum).name}")

    signal.signal(signal.SIGALRM, expire)
    # The processes run in sessions of their own (a terminal's Ctrl-C reaches only this one): a SIGTERM
    # must end the run through the same clean-up as a failure.
    signal.signal(signal.SIGTERM, stopped)
    signal.alarm(int(args.timeout))
    with tempfile.TemporaryDirectory(prefix="perun-loadtest-") as tmp:
        if args.keep is not None:
            args.keep.mkdir(parents=True)
        test = LoadTest(args, Path(tmp) if args.keep is None else args.keep)
        try:
            test.run()
            outcome = 0
        except (LoadTestFailed, OSError, ValueError) as exc:
            print(f"loadtest: FAILED: {exc}")
            outcome = 1
        finally:
            signal.alarm(0)
            codes = test.procs.stop_all()
            if test.postgres is not None:
                test.postgres.stop()  # after the hub's workers, its clients
        if "hubPayments" in test.result:
            report(test.result)
        if args.json is not None:
            args.json.write_text(json.dumps({**test.result, "exitCodes": codes}, indent=2))
    if outcome == 0:
        print("loadtest: OK (every payout on-chain equals the final states; the hub earned exactly its payments)")
    return outcome


if __name__ == "__main__":
    sys.exit(main())
