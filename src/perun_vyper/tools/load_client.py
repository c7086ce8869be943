"""One client process of ``make loadtest`` (``tools/loadtest.py`` starts several): a group of wallets
(``HubClient``), each with its own store, in one asyncio loop, driven phase by phase over stdin/stdout.

The driver writes one JSON line to stdin per phase; the process answers with one JSON line on stdout
when the phase is done (``{"event": ...}``), or ``{"event": "error"}`` and exit code 1. Logging goes to
stderr, so stdout carries only these lines. The phases:

- config (the first line): open a ledger channel per wallet, each with the hub worker its entry names
  (``url``; the hub may run several processes on one store) -> ``opened`` (channel ids);
- ``funded``: the driver deposited every wallet's side on-chain; each wallet calls ``ledger.funded`` (the
  hub deposits its side and answers with the holdings it read on-chain) and then ``confirm_funding``.
  **A load-test shortcut:** these wallets have no chain connection (no Ape, no web3: start-up and memory),
  so they take the deposits as the driver and the hub report them instead of reading them themselves;
- ``virtual``: every Alice opens a virtual channel with her Bob (in another process when there are
  several); Bob's wallet accepts by its default policy (he locks nothing) -> ``virtual`` once every Alice
  here returned and every Bob here holds the lock;
- ``go``: from wall-clock ``start`` to ``end`` every wallet pays the hub in a loop (one payment in flight,
  at most ``rate`` per second) and every Alice pays her Bob in the virtual channel (one in flight, at most
  ``virtualRate`` per second) -> ``paid`` (counts, latencies);
- ``close``: every virtual channel is closed off-chain, then every ledger channel finalized and closed on-
  chain by the hub -> ``closed`` (each wallet's final state and the hub's transactions).

A loop sends its next payment when the last one is answered, but not before ``1/rate`` seconds after
the last one started: the offered load is fixed (``rate`` x wallets), so the latencies measured are those
of a hub given that load, not of a queue that grows as long as the clients can push. Both rates are
capped below the hub's per-connection rate limit (``hub.info`` limits), as a polite wallet does.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.codec import Domain, hexstr
from ..core.state import LedgerState
from ..errors import LoadTestFailed, PerunError
from ..node import HubClient
from ..store import Store

PHASE_TIMEOUT = 600.0  # no phase waits longer for the driver's next line
MAX_PAYMENTS = 10_000_000  # a loop's bound in count, besides its end time
# Each of a wallet's two payment loops sends at most this share of the hub's per-connection frame rate, so
# a wallet (Alice: her payments to the hub and to Bob; Bob: his to the hub and his countersignatures) stays
# below the hub's limit (docs/API.md 1).
RATE_SHARE = 0.4


@dataclass
class Pacer:
    """A token bucket that keeps one loop's frames at ``rate`` per second."""

    rate: float
    next_at: float = 0.0

    async def wait(self) -> None:
        now = time.monotonic()
        if self.next_at > now:
            await asyncio.sleep(self.next_at - now)
        self.next_at = max(now, self.next_at) + 1 / self.rate


@dataclass
class Wallet:
    client: HubClient
    peer: str | None
    alice: bool
    channel: bytes = b""
    virtual: bytes = b""
    hub_payments: int = 0
    virtual_payments: int = 0
    ledger_latency: list[float] = field(default_factory=list)
    virtual_latency: list[float] = field(default_factory=list)
    txs: list[str] = field(default_factory=list)


def emit(event: str, **values: Any) -> None:
    print(json.dumps({"event": event, **values}), flush=True)


async def _bounded(coro: Any, what: str, timeout: float) -> Any:
    start = time.monotonic()
    try:
        return await asyncio.wait_for(coro, timeout)
    except TimeoutError:
        # Also a wallet call's own timeout (HubClient.timeout), which ends the phase sooner.
        raise LoadTestFailed(f"{what} timed out after {time.monotonic() - start:.0f}s") from None


class Group:
    """The wallets of this process and what each phase does with them."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        chain_id = int(config["chainId"])
        ledger = Domain.ledger(chain_id, config["ledger"])
        virtual = Domain.virtual(chain_id, config["virtual"])
        directory = Path(config["dir"])
        self.timeout = float(config["timeout"])
        self.amount = int(config["amount"])
        self.stores: list[Store] = []
        self.wallets: list[Wallet] = []
        for entry in config["wallets"]:
            store = Store(directory / f"wallet-{entry['index']}.db")
            self.stores.append(store)
            # Each wallet's own hub worker (``url`` of its entry) when the hub runs several.
            url = entry.get("url", config["url"])
            client = HubClient(url, entry["key"], store, ledger, timeout=self.timeout, virtual_domain=virtual)
            self.wallets.append(Wallet(client, entry.get("peer"), bool(entry.get("alice"))))

    async def each(self, fn: Any, what: str) -> list[Any]:
        return await _bounded(asyncio.gather(*(fn(w) for w in self.wallets)), what, PHASE_TIMEOUT)

    # --- phases ---------------------------------------------------------------------------------------

    async def open(self) -> None:
        deposit, hub_deposit = int(self.config["deposit"]), int(self.config["hubDeposit"])

        async def one(w: Wallet) -> None:
            await w.client.connect()
            await w.client.login()
            w.channel = (await w.client.open_channel(deposit, hub_deposit)).channel_id

        await self.each(one, "opening the ledger channels")
        emit("opened", channels={w.client.address: hexstr(w.channel) for w in self.wallets})

    async def funded(self) -> None:
        async def one(w: Wallet) -> None:
            result = await w.client.funded(w.channel)
            if result.deposit_tx is not None:
                w.txs.append(result.deposit_tx)
            holdings = (int(result.holdings.deposit_a), int(result.holdings.deposit_b))
            w.client.channel(w.channel).confirm_funding(holdings)  # the load-test shortcut (module doc)

        await self.each(one, "funding the ledger channels")
        emit("funded")

    async def open_virtual(self) -> None:
        funding = int(self.config["virtualFunding"])

        async def one(w: Wallet) -> None:
            if w.alice:
                assert w.peer is not None
                w.virtual = (await w.client.open_virtual(w.peer, funding)).channel_id
                return
            # Bob: his wallet accepts and locks by itself (its handler task); wait until the lock is his.
            ledger = w.client.channel(w.channel)
            for _ in range(int(self.timeout / 0.02)):
                held = [v for v in w.client.virtuals.values() if v.ledger_holds_lock()]
                if held and ledger.pending() is None:
                    w.virtual = held[0].channel_id
                    return
                await asyncio.sleep(0.02)
            raise LoadTestFailed(f"{w.client.address} holds no virtual channel lock after {self.timeout:g}s")

        await self.each(one, "opening the virtual channels")
        emit("virtual")

    async def pay(self, start: float, end: float) -> None:
        """Pay from wall-clock ``start`` to ``end`` (the driver's clock is this machine's)."""
        await asyncio.sleep(max(0.0, start - time.time()))
        stop = time.monotonic() + (end - time.time())
        cap = RATE_SHARE * self.wallets[0].client.info.limits.rate_per_second  # type: ignore[union-attr]
        rate, virtual_rate = min(cap, float(self.config["rate"])), min(cap, float(self.config["virtualRate"]))

        async def ledger_loop(w: Wallet) -> None:
            pacer = Pacer(rate)
            for _ in range(MAX_PAYMENTS):
                await pacer.wait()
                if time.monotonic() >= stop:
                    return
                sent = time.perf_counter()
                await w.client.pay(w.channel, self.amount)  # returns once the countersignature is verified
                w.ledger_latency.append(time.perf_counter() - sent)
                w.hub_payments += 1

        async def virtual_loop(w: Wallet) -> None:
            pacer = Pacer(virtual_rate)
            for _ in range(MAX_PAYMENTS):
                await pacer.wait()
                if time.monotonic() >= stop:
                    return
                sent = time.perf_counter()
                await w.client.pay_virtual(w.virtual, self.amount)
                w.virtual_latency.append(time.perf_counter() - sent)
                w.virtual_payments += 1

        loops = [ledger_loop(w) for w in self.wallets]
        loops += [virtual_loop(w) for w in self.wallets if w.alice and virtual_rate > 0]
        await _bounded(asyncio.gather(*loops), "the pay phase", end - time.time() + self.timeout)
        emit(
            "paid",
            hubPayments=sum(w.hub_payments for w in self.wallets),
            virtualPayments=sum(w.virtual_payments for w in self.wallets),
            ledgerLatency=[round(x, 6) for w in self.wallets for x in w.ledger_latency],
            virtualLatency=[round(x, 6) for w in self.wallets for x in w.virtual_latency],
        )

    async def close(self) -> None:
        async def one(w: Wallet) -> dict[str, Any]:
            ledger = w.client.channel(w.channel)
            if w.alice:
                await w.client.close_virtual(w.virtual)
            else:  # Bob releases by himself once Alice's final state arrives (his handler task)
                for _ in range(int(self.timeout / 0.02)):
                    if not ledger.state.locks and ledger.pending() is None:  # type: ignore[union-attr]
                        break
                    await asyncio.sleep(0.02)
                else:
                    raise LoadTestFailed(f"{w.client.address}'s virtual channel was not released in time")
            await w.client.finalize(w.channel)
            tx = await w.client.close_channel(w.channel)
            if tx is not None:
                w.txs.append(tx)
            state = ledger.state
            assert isinstance(state, LedgerState) and state.is_final
            return {
                "address": w.client.address,
                "alice": w.alice,
                "balance": str(state.balance_a),
                "hubBalance": str(state.balance_b),
                "hubPayments": w.hub_payments,
                "virtualPayments": w.virtual_payments if w.alice else 0,
                "txs": w.txs,
            }

        emit("closed", wallets=await self.each(one, "closing the channels"))

    async def shutdown(self) -> None:
        await asyncio.gather(*(w.client.close() for w in self.wallets), return_exceptions=True)
        for store in self.stores:
            store.close()


async def _line(reader: asyncio.StreamReader) -> dict[str, Any]:
    line = await _bounded(reader.readline(), "waiting for the driver", PHASE_TIMEOUT)
    if not line:
        raise LoadTestFailed("the driver closed stdin")
    return json.loads(line)


async def main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    group = Group(await _line(reader))
    try:
        await group.open()
        for _ in range(4):
            command = await _line(reader)
            if command["phase"] == "funded":
                await group.funded()
            elif command["phase"] == "virtual":
                await group.open_virtual()
            elif command["phase"] == "go":
                # PERUN_CLIENT_PROFILE=<prefix>: a cProfile of this process's pay phase, <prefix>.<pid>.
                profile = cProfile.Profile() if os.environ.get("PERUN_CLIENT_PROFILE") else None
                if profile is not None:
                    profile.enable()
                await group.pay(float(command["start"]), float(command["end"]))
                if profile is not None:
                    profile.disable()
                    profile.dump_stats(f"{os.environ['PERUN_CLIENT_PROFILE']}.{os.getpid()}")
            elif command["phase"] == "close":
                await group.close()
                return
    finally:
        await group.shutdown()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        asyncio.run(main())
    except (PerunError, OSError, ValueError) as exc:
        emit("error", message=f"{type(exc).__name__}: {exc}")
        sys.exit(1)
