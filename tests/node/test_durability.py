"""Durability of the hub service with real processes: `ape run hub` on the test's Anvil is killed with
SIGKILL at a random moment while four wallets pay it as fast as they can, then started again on the same
store and port. After each restart every wallet (restarted too, from its own store) resumes, and then:
every state a wallet holds fully signed, the hub holds too (nothing it acknowledged is lost), the wallet
has no proposal left in flight, and both stores end equal state for state.

The seed of the kill moments is in every failure message; the test is bounded (two kills, each within a
second of load, every wait with a timeout)."""

from __future__ import annotations

import asyncio
import random
import time

from perun_vyper import open_store
from perun_vyper.core.codec import hexstr
from perun_vyper.errors import PerunError
from perun_vyper.node import HubClient
from perun_vyper.tools.demo_hub import HubProcess
from perun_vyper.tools.load_procs import free_port
from tests.node.conftest import run
from tests.node.test_hub_cli import ROOT, _env, _hub_command
from tests.support.constants import E

USERS = 4
KILLS = 2


async def _pay_until_killed(
    client: HubClient, channel_id: bytes, acknowledged: dict[bytes, object], killed: asyncio.Event
) -> int:
    """Pay the hub 1 wei at a time until the hub goes away; the states it countersigned are recorded. A
    payment refused while the hub still runs fails the test: the load is honest, so nothing may be refused."""
    paid = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            acknowledged[channel_id] = await client.pay(channel_id, 1)
        except PerunError as exc:
            if not killed.is_set():
                raise AssertionError(f"payment {paid + 1} refused while the hub ran: {exc}") from None
            return paid
        paid += 1
    raise AssertionError("the hub was not killed within 30 s")


def test_hub_killed_under_load__restarted__nothing_acknowledged_lost_every_wallet_resumes(
    ledger, virtual, chain, domain, accounts, store_target, store_at, tmp_path
):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    port = free_port()
    hub_target = store_target("hub")
    command = _hub_command(
        chain.provider.uri, hub_target, str(ledger.address), str(virtual.address),
        "--listen", f"127.0.0.1:{port}", "--watch-interval", "60",
        # The wallets pay as fast as they can: the per-connection rate limit (tested in test_session) is
        # lifted so that only the kill ends the load.
        "--rate", "1000000", "--burst", "1000000",
    )  # fmt: skip
    hub = HubProcess(command, ROOT, _env(tmp_path), echo=lambda _line: None)
    lines: list[str] = []  # every run's output
    users = [accounts[6 + index] for index in range(USERS)]
    stores = [store_at(f"user{index}") for index in range(USERS)]
    url = f"ws://127.0.0.1:{port}"

    def wallet(index: int) -> HubClient:
        return HubClient(url, users[index].private_key, stores[index], domain, adjudicator=ledger, timeout=20)

    async def open_all() -> list[bytes]:
        channels = []
        for index in range(USERS):
            async with wallet(index) as client:
                channel = await client.open_channel(E, E)
                client.deposit(channel.channel_id, E, users[index])
                await client.funded(channel.channel_id)
                channels.append(channel.channel_id)
        return channels

    async def load_then_kill(channels: list[bytes], kill_after: float) -> tuple[dict[bytes, object], list[int]]:
        acknowledged: dict[bytes, object] = {}
        clients = [wallet(index) for index in range(USERS)]
        for client in clients:
            await client.connect()
            await client.login()
        killed = asyncio.Event()

        async def kill_later() -> None:
            await asyncio.sleep(kill_after)
            hub.kill()  # blocks until the process is gone: no payment is answered between the kill and the set
            killed.set()

        pairs = zip(clients, channels, strict=True)
        *paid, _ = await asyncio.gather(
            *(_pay_until_killed(client, cid, acknowledged, killed) for client, cid in pairs), kill_later()
        )
        for client in clients:
            await client.close()
        return acknowledged, list(paid)

    async def resume_all(channels: list[bytes]) -> list[tuple[object, object, object]]:
        views = []
        for index, channel_id in enumerate(channels):
            async with wallet(index) as client:
                await client.resume()
                channel = client.channel(channel_id)
                [entry] = await client.hub_channels()
                views.append((channel.latest, channel.pending(), entry))
        return views

    try:
        hub.start()
        channels = run(open_all(), 120)
        for kill in range(KILLS):
            kill_after = rng.uniform(0.2, 1.0)
            acknowledged, paid = run(load_then_kill(channels, kill_after), 60)
            lines += hub.lines
            hub.start()
            views = run(resume_all(channels), 120)
            context = f"seed {seed}, kill {kill} after {kill_after:.2f}s, payments {paid}"
            assert all(count > 0 for count in paid), context
            for channel_id, (latest, pending, entry) in zip(channels, views, strict=True):
                assert pending is None, context
                assert latest.fully_signed, context
                # Nothing the hub acknowledged is lost: the wallet's latest is at least that version...
                assert latest.state.version >= acknowledged[channel_id].state.version, context
                # ...and the hub holds exactly the wallet's latest, both signatures included.
                assert entry.latest.state.version == latest.state.version, context
                assert (entry.latest.sig_a, entry.latest.sig_b) == (hexstr(latest.sig_a), hexstr(latest.sig_b))
        hub.stop()  # SIGTERM: its stopped line and exit code 0, or HubUnavailable
        lines += hub.lines
    finally:
        hub.kill()
    with open_store(hub_target) as hub_store:
        for channel_id, store in zip(channels, stores, strict=True):
            assert hub_store.latest(channel_id) == store.latest(channel_id), f"seed {seed}"
    assert not any("Traceback" in line for line in lines)
