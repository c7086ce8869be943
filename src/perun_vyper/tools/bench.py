"""``make bench``: off-chain payments per second between two parties in one process, on one core.

One payment is the whole protocol round: the payer builds the next state, signs it and commits its
proposal; the payee checks the transition, verifies the payer's signature, commits the fully signed
state and countersigns; the payer verifies the countersignature and commits it. Both stores are SQLite
in WAL mode, each its own file; the run is repeated with ``synchronous=FULL`` (an fsync per commit).

    python -m perun_vyper.tools.bench [--payments 20000] [--rounds 5] [--full-payments 1000] [--dir PATH] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import os
import platform
import pstats
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ..client import LedgerChannel, exchange, pay
from ..core.channel import ChannelParams
from ..core.codec import Domain
from ..core.keys import Signer, recover
from ..core.protocol import SignedState
from ..core.state import LedgerState
from ..store import ChannelRecord, Store

ALICE_KEY = bytes.fromhex("a1" * 32)
BOB_KEY = bytes.fromhex("b0" * 32)
DEPOSIT = 10**18
DOMAIN = Domain.ledger(1, "0x" + "5e" * 20)


def environment(directory: Path) -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "unknown"
    try:
        cores = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        cores = "?"
    try:
        coincurve = version("coincurve")
    except PackageNotFoundError:
        coincurve = "absent"
    return {
        "cpu": cpu,
        "cores usable": f"{cores} (of {os.cpu_count()})",
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "coincurve": coincurve,
        "store dir": str(directory),
    }


def _pair(directory: Path, synchronous: str) -> tuple[LedgerChannel, LedgerChannel]:
    alice, bob = Signer(ALICE_KEY), Signer(BOB_KEY)
    params = ChannelParams(alice.address, bob.address, nonce=time.time_ns())
    stores = [Store(directory / f"{name}-{synchronous}-{params.nonce}.db", synchronous) for name in ("alice", "bob")]
    payer = LedgerChannel.open(params, DOMAIN, ALICE_KEY, stores[0], DEPOSIT, DEPOSIT)
    payee = LedgerChannel.open(params, DOMAIN, BOB_KEY, stores[1], DEPOSIT, DEPOSIT)
    exchange(payer, payee)
    for channel in (payer, payee):
        channel.confirm_funding((DEPOSIT, DEPOSIT))  # no chain here: the deposits are taken as made
    return payer, payee


@dataclass
class Result:
    """Payments per second of each round, and the seconds per payment of each protocol step."""

    rates: list[float]
    steps: dict[str, float]

    @property
    def median(self) -> float:
        return statistics.median(self.rates)


def run(directory: Path, synchronous: str, payments: int, rounds: int = 5, warmup: int = 200) -> Result:
    """``rounds`` rounds of ``payments // rounds`` payments of 1 wei from Alice to Bob on one channel; the
    rounds show how much the machine's other load moved the figure."""
    payer, payee = _pair(directory, synchronous)
    for _ in range(warmup):
        pay(payer, payee, 1)
    per_round = max(1, payments // rounds)
    clock = time.perf_counter
    rates, propose, accept, complete = [], 0.0, 0.0, 0.0
    for _ in range(rounds):
        start = clock()
        for _ in range(per_round):
            t0 = clock()
            update = payer.propose_payment(1)
            t1 = clock()
            countersig = payee.accept(update)
            t2 = clock()
            payer.complete(update, countersig)
            t3 = clock()
            propose += t1 - t0
            accept += t2 - t1
            complete += t3 - t2
        rates.append(per_round / (clock() - start))
    assert payee.state.balance_b == DEPOSIT + warmup + rounds * per_round
    payer.store.close()
    payee.store.close()
    n = rounds * per_round
    steps = {
        "payer: build, check, sign, commit": propose / n,
        "payee: check, verify, commit, sign": accept / n,
        "payer: verify, commit": complete / n,
    }
    return Result(rates, steps)


def _per_call(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def breakdown(directory: Path, synchronous: str, calls: int = 3000) -> dict[str, float]:
    """Seconds per payment spent in each part, measured one part at a time with what a payment does."""
    alice, bob = Signer(ALICE_KEY), Signer(BOB_KEY)
    params = ChannelParams(alice.address, bob.address, nonce=time.time_ns())
    state = LedgerState.initial(params.channel_id, DEPOSIT, DEPOSIT).pay(1, 0)
    digest = DOMAIN.digest(state.struct_hash())
    signature = alice.sign(digest)
    store = Store(directory / f"parts-{synchronous}-{params.nonce}.db", synchronous)
    store.add_channel(ChannelRecord(params.channel_id, "ledger", params, DOMAIN, alice.address))
    versions = itertools.count(1)
    updates = itertools.count(1)

    def insert() -> None:
        store.insert_state(
            params.channel_id, SignedState(LedgerState(params.channel_id, next(versions), 1, 1, 1, 1), signature, None)
        )

    parts = {
        "next state (2x: build, re-check)": 2 * _per_call(lambda: state.pay(1, 0), calls),
        "EIP-712 hash + digest (2x)": 2 * _per_call(lambda: DOMAIN.digest(state.struct_hash()), calls),
        "sign (2x)": 2 * _per_call(lambda: alice.sign(digest), calls),
        "recover signer (2x)": 2 * _per_call(lambda: recover(digest, signature), calls),
        "SQLite insert (2x)": 2 * _per_call(insert, calls),
    }
    parts["SQLite add signature (1x)"] = _per_call(
        lambda: store.add_signature(params.channel_id, next(updates), 1, signature), calls
    )
    store.close()
    return parts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=20000, help="payments timed with synchronous=NORMAL")
    parser.add_argument("--rounds", type=int, default=5, help="rounds the NORMAL payments are split into")
    parser.add_argument("--full-payments", type=int, default=1000, help="payments timed with synchronous=FULL")
    parser.add_argument("--dir", type=Path, default=None, help="where the store files go (default: a temp dir)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of the NORMAL run")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="perun-bench-") as tmp:
        directory = Path(tmp)
        print("off-chain payment benchmark (one payment = sign, verify, persist on both sides)")
        for key, value in environment(directory).items():
            print(f"  {key:13} {value}")
        normal = run(directory, "NORMAL", args.payments, args.rounds)
        total = 1 / normal.median
        print(
            f"\nsynchronous=NORMAL: {normal.median:,.0f} payments/s median of {args.rounds} rounds "
            f"(best {max(normal.rates):,.0f}, worst {min(normal.rates):,.0f}; {total * 1e6:.0f} us each, "
            f"{args.payments} payments)"
        )
        print("  per step, timed inside the run:")
        for name, seconds in normal.steps.items():
            print(f"    {name:38} {seconds * 1e6:6.1f} us")
        print("  per part, each timed alone (what one payment does of it):")
        parts = breakdown(directory, "NORMAL")
        for name, seconds in parts.items():
            print(f"    {name:38} {seconds * 1e6:6.1f} us  {seconds / total:5.1%}")
        rest = sum(normal.steps.values()) - sum(parts.values())
        print(f"    {'protocol checks, Python glue (rest)':38} {rest * 1e6:6.1f} us  {rest / total:5.1%}")
        if args.full_payments:
            full = run(directory, "FULL", args.full_payments, rounds=1, warmup=20)
            print(
                f"\nsynchronous=FULL (fsync per commit, 3 per payment): {full.median:,.0f} payments/s "
                f"({1e6 / full.median:.0f} us each, {args.full_payments} payments)"
            )
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            run(directory, "NORMAL", min(args.payments, 5000), rounds=1)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
