"""What ``make loadtest`` prints: the summary of a run (its JSON result), and the statistics it uses."""

from __future__ import annotations

from typing import Any


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def report(result: dict[str, Any]) -> None:
    cpu, machine = result["cpu"], result["machineCpu"]
    ledger, virtual = result["ledgerLatencyMs"], result["virtualLatencyMs"]
    workers = f"{result['workers']} hub worker" + ("s" if result["workers"] > 1 else "")
    print(
        f"\nhub service load: {result['clients']} clients in {result['processes']} processes, {workers} on a "
        f"{result['store']} store, {result['seconds']} s"
    )
    print("  phases (s): " + ", ".join(f"{name} {seconds}" for name, seconds in result["phaseSeconds"].items()))
    print(
        f"  hub payments (ledger.update, countersigned): {result['hubPayments']:>8}  "
        f"{result['hubPaymentsPerSecond']:>8.1f}/s  p50 {ledger['p50']} ms  p99 {ledger['p99']} ms"
    )
    print(
        f"  virtual payments (relayed by the hub):       {result['virtualPayments']:>8}  "
        f"{result['virtualPaymentsPerSecond']:>8.1f}/s  p50 {virtual['p50']} ms  p99 {virtual['p99']} ms"
    )
    if result["workers"] > 1 and "workerPayments" in result:
        served = ", ".join(f"{name} {n['hub']} + {n['virtual']}" for name, n in result["workerPayments"].items())
        print(f"  served by each worker (hub + virtual payments of the wallets connected to it): {served}")
    offered = result["offered"]
    print(f"  offered: {offered['hub']:.0f} hub payments/s, {offered['virtual']:.0f} virtual payments/s")
    print("  CPU over the pay phase (cores):")
    loops = result["hubLoopCpu"]
    for name, cores in cpu.items():
        detail = ""
        if name in loops:
            detail = f"  (event loop {loops[name]:.2f}, channel worker and others the rest)"
        elif name == "postgres":
            detail = "  (the postmaster and its backends)"
        print(f"    {name:10} {cores:6.2f}{detail}")
    print(
        f"    {'machine':10} {machine['busy']:6.2f} of {machine['cores']} busy, {machine['others']:.2f} of it other "
        f"processes; load average {machine['loadavg1Before']} -> {machine['loadavg1After']}"
    )
    if result["hubPayments"]:
        work = result["hubPayments"] + result["virtualPayments"]
        per = result["seconds"] / work * 1e6
        clients = sum(cores for name, cores in cpu.items() if name.startswith("client"))
        hubs, loop = sum(cpu[name] for name in loops), sum(loops.values())
        postgres = f", postgres {cpu['postgres'] * per:.0f} us" if "postgres" in cpu else ""
        print(
            f"  CPU per payment (ledger + virtual): hub {hubs * per:.0f} us (event loop "
            f"{loop * per:.0f} us){postgres}, clients {clients * per:.0f} us"
        )


def by_worker(addresses: list[str], wallets: list[dict[str, Any]], workers: int) -> dict[str, dict[str, int]]:
    """The payments each worker served: the hub payments of the wallets connected to it (wallet i to worker
    i mod ``workers``), and the virtual payments of its Alices (each relayed to her Bob's worker)."""
    index = {address: i for i, address in enumerate(addresses)}
    counts = {f"w{k}": {"hub": 0, "virtual": 0} for k in range(workers)}
    for wallet in wallets:
        served = counts[f"w{index[wallet['address']] % workers}"]
        served["hub"] += wallet["hubPayments"]
        served["virtual"] += wallet["virtualPayments"]
    return counts
