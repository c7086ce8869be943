"""What ``ape run demo`` reports: its phases with their transactions and gas, its checks, the summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.display import amount


@dataclass
class Phase:
    """One phase of the demo: the transactions mined while it ran (whoever sent them) and their gas."""

    name: str
    receipts: list[Any] = field(default_factory=list)
    note: str = ""
    start_block: int = 0  # the head when the phase began; its transactions are in the blocks after it

    @property
    def gas(self) -> int:
        return sum(int(r.gas_used) for r in self.receipts)

    def fees(self, address: str) -> int:
        """The fees ``address`` paid for the phase's transactions it sent."""
        sender = address.lower()
        return sum(int(r.total_fees_paid) for r in self.receipts if str(r.sender).lower() == sender)


@dataclass
class Check:
    what: str
    expected: int
    actual: int

    @property
    def ok(self) -> bool:
        return self.expected == self.actual


@dataclass
class Result:
    phases: list[Phase] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    payments: int = 0
    payment_seconds: float = 0.0
    paced_seconds: float = 0.0  # of payment_seconds, waited to stay within the hub's rate limit
    parties: list[tuple[str, str]] = field(default_factory=list)  # (name, address): whose fees the summary shows

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def payments_per_second(self) -> float:
        return self.payments / self.payment_seconds if self.payment_seconds else 0.0


def summary_lines(result: Result) -> list[str]:
    """The summary table: phases with transactions and gas, throughput, each party's fees, checks."""
    lines = ["", f"{'phase':52} {'txs':>4} {'gas':>12}  notes", "-" * 100]
    for phase in result.phases:
        lines.append(f"{phase.name:52} {len(phase.receipts):>4} {phase.gas:>12,}  {phase.note}")
    lines.append("-" * 100)
    total_txs = sum(len(p.receipts) for p in result.phases)
    lines.append(f"{'total':52} {total_txs:>4} {sum(p.gas for p in result.phases):>12,}")
    lines.append("")
    lines.append(
        f"off-chain payments: {result.payments:,} in {result.payment_seconds:.2f} s = "
        f"{result.payments_per_second:,.0f} payments/s (over WebSocket through the hub: sign, verify, persist "
        "on both sides)"
    )
    if result.paced_seconds:
        lines.append(
            f"  of which {result.paced_seconds:.2f} s waiting to stay within the hub's per-connection rate limit "
            "(hub.info limits)"
        )
    if result.parties:
        lines += ["", "transaction fees paid, every phase (each party's balance checks subtract its own):"]
        width = max(len(name) for name, _ in result.parties)
        for name, address in result.parties:
            paid = sum(phase.fees(address) for phase in result.phases)
            lines.append(f"   {name:{width}}  {amount(paid)}")
    lines.append("")
    for check in result.checks:
        lines.append(f"[{'ok' if check.ok else 'FAILED'}] {check.what}")
    passed = sum(check.ok for check in result.checks)
    lines.append("")
    lines.append(f"{passed}/{len(result.checks)} checks passed" + ("" if result.ok else " -- DEMO FAILED"))
    return lines
