"""Several hub workers sharing one PostgreSQL store, as real processes (`ape run hub --store postgresql://...`)
on the test's Anvil: the same update sent to two workers at once, two different updates of one version sent
to two workers at once, a worker killed under load, the watchtower's leader killed during a dispute.

What must hold whatever the interleaving (SPEC 11.2): per channel and version the store holds one state,
every countersignature a wallet got is of that state, nothing a worker acknowledged is lost, and a stale
registration is answered by whichever worker holds the watchtower's lease. Every wait is bounded; the
seed of random kill moments is in every failure message."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest
from websockets.asyncio.client import connect

from perun_vyper import LedgerState, Signer, calls, open_store
from perun_vyper.core.codec import hexstr, unhex
from perun_vyper.core.keys import verify
from perun_vyper.core.protocol import Update
from perun_vyper.errors import PerunError
from perun_vyper.node import HubClient
from perun_vyper.node.schema import update_to_msg
from perun_vyper.tools.demo_hub import HubProcess
from perun_vyper.tools.load_procs import free_port
from tests.conftest import postgres_schema
from tests.node.conftest import login, run
from tests.node.test_hub_cli import ROOT, _env, _hub_command
from tests.support.constants import E

HOUR = 3600


@pytest.fixture
def hub_store(postgres) -> str:
    """The URL of the PostgreSQL store (a fresh schema) every worker of the test's hub shares."""
    return postgres_schema(postgres, "hub")


@pytest.fixture
def start_workers(hub_store, ledger, virtual, chain, tmp_path) -> Iterator[Callable[..., list[HubProcess]]]:
    """``start_workers(names, *extra)``: one ``ape run hub`` per name on the shared store, each on its own
    port and Ape data folder, started one after the other (each waits for its ``listening`` line)."""
    started: list[HubProcess] = []

    def _start(names: list[str], *extra: str) -> list[HubProcess]:
        workers = []
        for name in names:
            command = _hub_command(
                chain.provider.uri, hub_store, str(ledger.address), str(virtual.address),
                "--listen", f"127.0.0.1:{free_port()}", "--worker", name, *extra,
            )  # fmt: skip
            worker = HubProcess(command, ROOT, _env(tmp_path / name), echo=lambda _line: None)
            started.append(worker)
            worker.start()
            workers.append(worker)
        return workers

    yield _start
    for worker in started:
        worker.kill()
    for worker in started:
        assert not any("Traceback" in line for line in worker.lines), worker.lines


def _wallet(url: str, account, store_path: Path, domain, ledger) -> HubClient:
    return HubClient(url, account.private_key, open_store(store_path), domain, adjudicator=ledger, timeout=20)


async def _open_funded(client: HubClient, account) -> bytes:
    channel = await client.open_channel(E, E)
    client.deposit(channel.channel_id, E, account)
    await client.funded(channel.channel_id)
    return channel.channel_id


async def _update(ws, update: Update, request_id: int) -> dict:
    """``ledger.update`` on a raw connection: its answer (notifications arriving meanwhile are skipped:
    a worker tells the wallet's connections to the other worker of every update, through the bus)."""
    params = {"update": msgspec.to_builtins(update_to_msg(update))}
    await ws.send(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "ledger.update", "params": params}))
    while True:
        answer = json.loads(await asyncio.wait_for(ws.recv(), 20))
        if answer.get("id") == request_id:
            return answer


def test_same_update_to_two_workers_at_once__one_state_per_version__same_countersignature(
    start_workers, hub_store, ledger, virtual, chain, domain, alice, tmp_path
):
    first, second = start_workers(["w1", "w2"], "--watch-interval", "60", "--rate", "500", "--burst", "500")

    async def scenario():
        async with _wallet(first.url, alice, tmp_path / "alice.db", domain, ledger) as client:
            channel_id = await _open_funded(client, alice)
            channel = client.channel(channel_id)
            async with connect(first.url) as ws1, connect(second.url) as ws2:
                for ws in (ws1, ws2):
                    assert "result" in await login(ws, alice.private_key)
                # The same update, at once to both workers, 10 times: both answer with one countersignature.
                for round_ in range(10):
                    update = channel.propose_payment(1 + round_)
                    a, b = await asyncio.gather(_update(ws1, update, 2 * round_), _update(ws2, update, 2 * round_ + 1))
                    assert "result" in a and "result" in b, (a, b)
                    assert a["result"]["signature"] == b["result"]["signature"]
                    channel.complete(update, unhex(a["result"]["signature"]))
                # Two different states of one version, at once to both workers, 10 times: one is
                # countersigned, the other refused, and the next round builds on the one countersigned.
                signer = Signer(alice.private_key)
                base = channel.state
                accepted: list[tuple[LedgerState, bytes]] = []
                for round_ in range(10):
                    states = [base.pay(1, channel.side), base.pay(2, channel.side)]
                    updates = [Update(s, signer.sign(channel.digest(s))) for s in states]
                    answers = await asyncio.gather(
                        _update(ws1, updates[0], 100 + 2 * round_), _update(ws2, updates[1], 101 + 2 * round_)
                    )
                    won = [index for index, answer in enumerate(answers) if "result" in answer]
                    assert len(won) == 1, answers
                    lost = answers[1 - won[0]]
                    assert f"version {base.version + 1} is already signed differently" in lost["error"]["message"]
                    accepted.append((states[won[0]], unhex(answers[won[0]]["result"]["signature"])))
                    base = states[won[0]]
        return channel_id, accepted

    channel_id, accepted = run(scenario(), 180)
    with open_store(hub_store) as store:
        history = store.history(channel_id)
        assert [signed.state.version for signed in history] == list(range(len(history)))
        assert all(signed.fully_signed for signed in history)
        by_version = {signed.state.version: signed for signed in history}
        hub_side = store.channel(channel_id).params.side_of(first.address)
        for state, countersig in accepted:
            stored = by_version[state.version]
            assert stored.state == state  # the one countersigned is the one stored, for every race
            assert (stored.sig_a, stored.sig_b)[hub_side] == countersig
            verify(domain.digest(state.struct_hash()), countersig, unhex(first.address))
        assert history[-1].state == accepted[-1][0]


def test_worker_killed_under_load__wallet_moves_to_another__nothing_acknowledged_lost(
    start_workers, hub_store, ledger, virtual, chain, domain, accounts, tmp_path
):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    first, second = start_workers(["w1", "w2"], "--watch-interval", "60", "--rate", "500", "--burst", "500")
    users = [accounts[6], accounts[7]]
    paths = [tmp_path / f"user{index}.db" for index in range(2)]

    async def scenario():
        # User 0 pays through worker 1 (killed at a random moment), user 1 through worker 2 throughout.
        clients = [_wallet(w.url, u, p, domain, ledger) for w, u, p in zip((first, second), users, paths, strict=True)]
        for client in clients:
            await client.connect()
            await client.login()
        channels = [await _open_funded(client, user) for client, user in zip(clients, users, strict=True)]
        acknowledged: dict[int, object] = {}

        killed = asyncio.Event()

        async def pay(index: int, stop_at: float) -> int:
            count = 0
            while time.monotonic() < stop_at:
                try:
                    acknowledged[index] = await clients[index].pay(channels[index], 1)
                except PerunError as exc:
                    # Only user 0's worker is killed; any other refusal of this honest load fails the test.
                    if index != 0 or not killed.is_set():
                        raise AssertionError(f"user {index}: payment {count + 1} refused: {exc}") from None
                    return count
                count += 1
            return count

        async def kill_later() -> None:
            await asyncio.sleep(kill_after)
            first.kill()  # blocks until the process is gone: no payment is answered between the kill and the set
            killed.set()

        kill_after = rng.uniform(0.2, 1.0)
        *paid, _ = await asyncio.gather(
            pay(0, time.monotonic() + 30), pay(1, time.monotonic() + kill_after + 1.5), kill_later()
        )
        for client in clients:
            await client.close()
        # User 0 reconnects to worker 2 with its store and resumes: what worker 1 left is completed there.
        async with _wallet(second.url, users[0], paths[0], domain, ledger) as moved:
            await moved.resume()
            for _ in range(5):
                acknowledged[0] = await moved.pay(channels[0], 1)
            latest = moved.channel(channels[0]).latest
            pending = moved.channel(channels[0]).pending()
        return channels, acknowledged, paid, latest, pending, kill_after

    channels, acknowledged, paid, latest, pending, kill_after = run(scenario(), 180)
    context = f"seed {seed}, kill after {kill_after:.2f}s, payments {paid}"
    assert paid[0] > 0 and paid[1] > 0, context
    assert pending is None and latest.fully_signed, context
    assert latest.state.version == acknowledged[0].state.version, context
    with open_store(hub_store) as store:
        for index, channel_id in enumerate(channels):
            with open_store(paths[index]) as wallet_store:
                assert store.latest(channel_id) == wallet_store.latest(channel_id), context
            versions = [signed.state.version for signed in store.history(channel_id)]
            assert versions == list(range(len(versions))), context
        assert store.latest(channels[1]).state.version >= acknowledged[1].state.version, context


def test_leader_killed_during_dispute__another_worker_takes_the_lease_and_answers(
    start_workers, hub_store, ledger, virtual, chain, domain, alice, ingrid, tmp_path
):
    [first] = start_workers(["w1"], "--watch-interval", "0.3", "--lease", "2")
    first.until(lambda line: line.startswith("leading    worker w1"), "w1 leading", 30)
    [second] = start_workers(["w2"], "--watch-interval", "0.3", "--lease", "2")
    second.until(lambda line: line.startswith("standby    worker w2: w1"), "w2 standing by", 30)

    async def scenario():
        async with _wallet(second.url, alice, tmp_path / "alice.db", domain, ledger) as client:
            channel_id = await _open_funded(client, alice)
            for _ in range(3):
                await client.pay(channel_id, 1)
            return channel_id, client.channel(channel_id).latest

    channel_id, latest = run(scenario(), 120)
    with open_store(tmp_path / "alice.db") as store:
        stale = store.state(channel_id, 1)
        params = store.channel(channel_id).params
    first.pause()  # the leader stops mid-round: it cannot answer the registration below
    receipt = ledger.register(*calls.register(params, stale), sender=alice)
    first.kill()
    leading = second.until(lambda line: line.startswith("leading    worker w2"), "w2 takes over", 30)
    refuted = second.until(lambda line: line.startswith("refuted "), "w2 answers", 30)
    assert leading == "leading    worker w2 guards the hub's channels (lease 2s)"
    assert refuted.startswith(f"refuted    ledger {hexstr(channel_id)} v1 -> v{latest.state.version} tx=0x")
    assert chain.get_receipt(refuted.split("tx=")[1]).sender == ingrid.address
    version, deadline, _ = ledger.dispute(channel_id)
    assert (int(version), int(deadline)) == (latest.state.version, receipt.timestamp + HOUR)
    # After the challenge period, the new leader concludes by the latest state: Alice gets her balance in it.
    side = params.side_of(alice.address)
    before = chain.provider.get_balance(alice.address)
    chain.mine(timestamp=int(deadline) + 1)
    concluded = second.until(lambda line: line.startswith("concluded "), "w2 concludes", 30)
    assert concluded.startswith(f"concluded  ledger {hexstr(channel_id)} v{latest.state.version} payout_a=")
    assert tuple(ledger.holdings(channel_id))[2] is True
    state = latest.state
    assert chain.provider.get_balance(alice.address) - before == (state.balance_a, state.balance_b)[side]


def test_second_hub_on_one_sqlite_store__refused_in_one_line__first_keeps_serving(
    ledger, virtual, chain, alice, domain, tmp_path
):
    store = tmp_path / "hub.db"
    command = _hub_command(chain.provider.uri, store, str(ledger.address), str(virtual.address), "--listen")
    first = HubProcess([*command, f"127.0.0.1:{free_port()}"], ROOT, _env(tmp_path / "w1"), echo=lambda _line: None)
    try:
        first.start()
        done = subprocess.run(
            [*command, f"127.0.0.1:{free_port()}"], cwd=ROOT, env=_env(tmp_path / "w2"),
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 1
        assert done.stderr.splitlines() == [
            f"Error: {store} is served by another `ape run hub` process; a SQLite store belongs to one process:"
            " stop the other one, or run several workers on a shared PostgreSQL store (--store postgresql://...)"
        ]

        async def still_serving():
            async with _wallet(first.url, alice, tmp_path / "alice.db", domain, ledger) as client:
                return await client.open_channel(E, E)

        assert run(still_serving(), 60).latest.fully_signed
    finally:
        first.kill()
    assert not any("Traceback" in line for line in first.lines)


def test_lease_not_longer_than_watch_interval__refused_in_one_line(hub_store, ledger, virtual, chain, tmp_path):
    command = _hub_command(
        chain.provider.uri, hub_store, str(ledger.address), str(virtual.address),
        "--watch-interval", "5", "--lease", "5",
    )  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "Error: --lease 5 is not longer than --watch-interval 5; a worker renews its lease every round, so pass a"
        " lease of a few intervals"
    ]
