"""``make scaling``: what one store carries, measured on the hub's own update path (docs/SCALING.md).

Each writer is a process playing one hub worker: it holds ``--channels`` ledger channels of Ingrid with
as many users (opened in the store, version 0 signed by both, deposits taken as made: no chain here) and
countersigns the users' payments (``Hub.acting`` + ``LedgerChannel.accept``: the row lock, the channel
read again under it, the checks, the signature check, the countersignature and the commit), round-robin
over its channels for ``--seconds``. The users' updates are signed beforehand, so a writer's time is the
hub's alone. Several writers share one PostgreSQL store (each its own channels, as workers serving
different wallets do); a SQLite store is measured with one writer (it belongs to one process).

Prints, per store and writer count: updates/s (all writers together), the mean time per update in a
writer, the CPU seconds per update of the writers and of the PostgreSQL server (all its processes, from
/proc), which is what the extrapolation in docs/SCALING.md divides by, and the bytes the store takes per
stored state (table and indexes; the SQLite file after a checkpoint).

    python -m perun_vyper.tools.scaling [--writers 1,2] [--channels 50] [--seconds 5] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pgserver
import psycopg
from eth_utils import keccak

from ..client import Hub
from ..core.channel import ChannelParams
from ..core.codec import Domain
from ..core.keys import Signer
from ..core.protocol import Update
from ..core.state import LedgerState
from ..store import open_store
from .load_procs import server_seconds

INGRID_KEY = keccak(b"perun-vyper scaling ingrid")
DOMAIN = Domain.ledger(1, "0x" + "5e" * 20)
VIRTUAL_DOMAIN = Domain.virtual(1, "0x" + "5f" * 20)
DEPOSIT = 10**18
WARMUP = 5  # updates per channel before the clock starts


def _user_key(writer: int, index: int) -> bytes:
    return keccak(b"perun-vyper scaling user %d %d" % (writer, index))


def _writer(target: str, writer: int, channels: int, seconds: float, start: Any, results: Any) -> None:
    """One hub worker's update path on its own channels; puts (updates, seconds, cpu) in ``results``."""
    store = open_store(target)
    hub = Hub(INGRID_KEY, store, virtual_domain=VIRTUAL_DOMAIN, max_validity=86400, clock=lambda: 0)
    users = [Signer(_user_key(writer, index)) for index in range(channels)]
    opened = []
    for user in users:
        params = ChannelParams(user.address, hub.address, nonce=time.time_ns())
        channel = hub.open_channel(params, DOMAIN, DEPOSIT, DEPOSIT)
        initial = LedgerState.initial(params.channel_id, DEPOSIT, DEPOSIT)
        with hub.acting(params.channel_id):
            channel.accept(Update(initial, user.sign(DOMAIN.digest(initial.struct_hash()))))
        channel.confirm_funding((DEPOSIT, DEPOSIT))
        opened.append((channel, user))
    # Enough signed payments for any writer at a few thousand updates/s (signing is not timed).
    per_channel = int(seconds * 20000 / channels) + WARMUP + 10
    queues = []
    for channel, user in opened:
        state, updates = channel.state, []
        for _ in range(per_channel):
            state = state.pay(1, 0)
            updates.append(Update(state, user.sign(DOMAIN.digest(state.struct_hash()))))
        queues.append(updates)
    next_update = [0] * channels

    def countersign(index: int) -> None:
        channel = opened[index][0]
        with hub.acting(channel.channel_id):
            channel.accept(queues[index][next_update[index]])
        next_update[index] += 1

    for done in range(WARMUP * channels):  # prepared statements, caches: not what is measured
        countersign(done % channels)
    start.wait()
    cpu0, began = time.process_time(), time.perf_counter()
    done = 0
    while time.perf_counter() - began < seconds:
        countersign(done % channels)
        done += 1
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu0
    store.close()
    results.put((done, elapsed, cpu))


def measure(target: str, writers: int, channels: int, seconds: float, server_pid: int | None) -> dict[str, Any]:
    """``writers`` processes on the store at ``target``; their aggregate and the server's CPU per update."""
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(writers + 1), context.Queue()
    procs = [
        context.Process(target=_writer, args=(target, w, channels, seconds, start, results)) for w in range(writers)
    ]
    for proc in procs:
        proc.start()
    start.wait(timeout=300)
    server0 = server_seconds(server_pid) if server_pid else 0.0
    outcomes = [results.get(timeout=seconds + 120) for _ in procs]
    server = (server_seconds(server_pid) - server0) if server_pid else 0.0
    for proc in procs:
        proc.join(timeout=60)
        if proc.exitcode != 0:
            raise RuntimeError(f"a writer ended with exit code {proc.exitcode}")
    updates = sum(done for done, _, _ in outcomes)
    elapsed = max(seconds for _, seconds, _ in outcomes)
    writer_cpu = sum(cpu for _, _, cpu in outcomes)
    return {
        "writers": writers,
        "channels": writers * channels,
        "updates": updates,
        "updatesPerSecond": round(updates / elapsed, 1),
        "msPerUpdate": round(1000 * sum(s / max(1, done) for done, s, _ in outcomes) / writers, 3),
        "writerCpuUsPerUpdate": round(1e6 * writer_cpu / max(1, updates), 1),
        "serverCpuUsPerUpdate": round(1e6 * server / max(1, updates), 1) if server_pid else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", default="1,2", help="writer counts to measure on PostgreSQL (comma-separated)")
    parser.add_argument("--channels", type=int, default=50, help="channels per writer")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds each measurement runs")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    counts = [int(part) for part in args.writers.split(",") if part.strip()]
    if not counts or min(counts) < 1 or args.channels < 1 or args.seconds <= 0:
        parser.error("--writers takes positive counts, --channels and --seconds positive values")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="perun-scaling-") as tmp:
        path = Path(tmp) / "hub.db"
        row = measure(str(path), 1, args.channels, args.seconds, None)
        with open_store(path) as store:
            store._execute("PRAGMA wal_checkpoint(TRUNCATE)")
            states = store._execute("SELECT count(*) FROM states").fetchone()[0]
        rows.append({"store": "sqlite", **row, "bytesPerState": round(path.stat().st_size / states)})
        server = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop")
        try:
            url = server.get_uri()
            for count in counts:
                schema = f"scaling_{count}"
                with psycopg.connect(url, autocommit=True) as db:
                    db.execute(f"CREATE SCHEMA {schema}")
                target = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
                row = measure(target, count, args.channels, args.seconds, server.get_pid())
                with psycopg.connect(target, autocommit=True) as db:
                    size, states = db.execute(
                        "SELECT pg_total_relation_size('states'), (SELECT count(*) FROM states)"
                    ).fetchone()
                rows.append({"store": "postgres", **row, "bytesPerState": round(size / states)})
        finally:
            server.cleanup()
    print(
        f"store updates on the hub's path ({args.channels} channels per writer, {args.seconds:g} s each, "
        f"{os.cpu_count()} cores)"
    )
    print("store     writers  updates/s  ms/update  writer CPU us/update  server CPU us/update  bytes/state")
    for row in rows:
        server_cpu = "-" if row["serverCpuUsPerUpdate"] is None else f"{row['serverCpuUsPerUpdate']:.0f}"
        print(
            f"{row['store']:<9} {row['writers']:>7}  {row['updatesPerSecond']:>9.0f}  {row['msPerUpdate']:>9.3f}"
            f"  {row['writerCpuUsPerUpdate']:>20.0f}  {server_cpu:>20}  {row['bytesPerState']:>11}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
