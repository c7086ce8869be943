"""`ape run hub`: Ingrid's hub as a network service (docs/API.md), with her watchtower in the same process.

    ape run hub --network ethereum:local:foundry --account ingrid --store hub.db \\
        --collateral 2000000000000000000 --listen 127.0.0.1:8765

Wallets connect over WebSocket (JSON-RPC 2.0). Ingrid's channel key is the account's key (the hub signs
states itself, thousands per second, so it holds the key; a keyfile account is unlocked once, from
``APE_ACCOUNTS_<alias>_PASSPHRASE`` or a prompt). Every ``--watch-interval`` seconds the watchtower
guards the store's channels (SPEC 10) and prints what it did, one line per action. Prints one line when
listening and one when stopped (SIGINT or SIGTERM, exit 0); any bad input ends in one ``Error:`` line
saying what to change, with exit code 1. Without ``--ledger``/``--virtual`` the addresses are read from
``deployments/<ecosystem>-<network>.json``, and with them the AppAdjudicator and SlaApp if recorded
(``--app``/``--sla`` name them by hand): the hub then serves SLA app channels as the provider, answering
each request with an acknowledgement (docs/API.md 11).

``--store`` is a SQLite file (this process's alone: a second hub on it is refused) or a PostgreSQL URL,
which several such processes (workers, ``--worker NAME``) share: each channel is then acted on under its
lock in the database, notifications reach wallets on other workers through it, and one worker at a time
runs the watchtower (SPEC 11.2, docs/SCALING.md).
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import os
import signal
import socket
from pathlib import Path

import click
from ape import chain, project
from ape.cli import account_option

from perun_vyper import Domain, Hub
from perun_vyper.client.app_hub import AppHub, acknowledgement, sla_service
from perun_vyper.contracts import record_path
from perun_vyper.node import HubServer, Limits, Policy
from perun_vyper.node.bus import PostgresBus
from perun_vyper.node.guard import HubGuard
from perun_vyper.store import StoreIdentity
from perun_vyper.tools.cli import (
    OperatorCommand,
    attach_adjudicators,
    attach_apps,
    open_store,
    serve_alone,
    unattended_signer,
)
from perun_vyper.watchtower import Watchtower

# Loopback by default: exposing the hub is a decision (put a TLS terminator in front, docs/API.md 1).
# 8765 stays clear of the node ports a hub usually runs next to (8545 HTTP, 8546 WebSocket).
DEFAULT_LISTEN = "127.0.0.1:8765"
# A path prefix: with it set, the event loop and the worker thread are profiled (cProfile, one per thread)
# while serving and written to <prefix>.loop and <prefix>.worker at stop (README, "Hub service load").
PROFILE_ENV = "PERUN_HUB_PROFILE"


def _listen_address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.ClickException(f"--listen {value} is not HOST:PORT; pass e.g. --listen {DEFAULT_LISTEN}")
    return host.strip("[]"), int(port)


async def _serve(server: HubServer, guard: HubGuard, host: str, port: int, describe: str) -> str:
    """Listen and watch until a signal; returns the signal's name. The server is closed in any case (the
    work handed to its worker thread finishes first)."""
    try:
        try:
            await server.start(host, port)
        except OSError as exc:
            raise click.ClickException(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick a free address with --listen HOST:PORT"
            ) from None
        stop = asyncio.Event()
        received: list[str] = []
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda name=sig.name: (received.append(name), stop.set()))
        # Everything built so far (Ape, web3, the project's contract types, the restored channels: some
        # 10^5 objects) lives as long as the process: moved out of the cyclic collector's reach, a full
        # collection no longer scans it, which otherwise stalls every wallet's answer for ~50-100 ms.
        gc.freeze()
        profiles = (cProfile.Profile(), cProfile.Profile()) if os.environ.get(PROFILE_ENV) else None
        if profiles is not None:
            profiles[0].enable()
            await server.work(profiles[1].enable)  # cProfile follows the thread that enables it
        click.echo(f"hub {server.hub.address} listening on {server.url} {describe}")
        watching = asyncio.create_task(guard.run())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({watching, stopping}, return_when=asyncio.FIRST_COMPLETED)
        for task in (watching, stopping):
            task.cancel()
        await asyncio.gather(watching, stopping, return_exceptions=True)
        if profiles is not None:
            profiles[0].disable()
            await server.work(profiles[1].disable)
            profiles[0].dump_stats(os.environ[PROFILE_ENV] + ".loop")
            profiles[1].dump_stats(os.environ[PROFILE_ENV] + ".worker")
        if not watching.cancelled() and watching.exception() is not None:
            raise watching.exception()  # type: ignore[misc]  # a bug in the loop: not hidden behind a clean stop
        return received[0]
    finally:
        await server.close()


@click.command(cls=OperatorCommand)
@account_option()
@click.option("--store", "store_path", required=True, help="Store: a file path, sqlite:///path or postgresql://...")
@click.option("--listen", default=DEFAULT_LISTEN, show_default=True, help="HOST:PORT to accept wallets on.")
@click.option("--ledger", "ledger_address", help="LedgerAdjudicator address.")
@click.option("--virtual", "virtual_address", help="VirtualAdjudicator address.")
@click.option("--app", "app_address", help="AppAdjudicator address (with --sla: serve SLA app channels).")
@click.option("--sla", "sla_address", help="SlaApp address.")
@click.option(
    "--sla-price", type=click.IntRange(min=0), default=0, show_default=True, help="Least wei per SLA request."
)
@click.option("--collateral", type=click.IntRange(min=0), required=True, help="Most wei the hub puts in a channel.")
@click.option("--max-validity", type=click.IntRange(min=1), default=7 * 86400, show_default=True, help="Seconds.")
@click.option("--confirmations", type=click.IntRange(min=0), default=0, show_default=True, help="Blocks per deposit.")
@click.option("--watch-interval", type=click.FloatRange(min=0.1), default=5.0, show_default=True, help="Seconds.")
@click.option(
    "--max-head-age",
    type=click.FloatRange(min=0, max=60),
    default=0.0,
    show_default=True,
    help="Seconds a signing decision may use the last head read (0: one eth_blockNumber per signature).",
)
@click.option(
    "--worker",
    "worker_id",
    help="This worker's name among the hub's workers sharing a PostgreSQL store (default: host:pid).",
)
@click.option(
    "--lease",
    type=click.FloatRange(min=1),
    help="Seconds a worker's watchtower lease lasts before another takes over (default: 3 x --watch-interval, "
    "at least 2).",
)
@click.option("--rate", type=click.FloatRange(min=1), default=50.0, show_default=True, help="Frames/s per connection.")
@click.option("--burst", type=click.IntRange(min=1), default=100, show_default=True, help="Frames at once.")
def cli(
    ecosystem,
    network,
    account,
    store_path,
    listen,
    ledger_address,
    virtual_address,
    app_address,
    sla_address,
    sla_price,
    collateral,
    max_validity,
    confirmations,
    watch_interval,
    max_head_age,
    worker_id,
    lease,
    rate,
    burst,
):
    """Serve Ingrid's hub to wallets and guard its channels on-chain until SIGINT or SIGTERM."""
    host, port = _listen_address(listen)
    if lease is not None and lease <= watch_interval:
        raise click.ClickException(
            f"--lease {lease:g} is not longer than --watch-interval {watch_interval:g}; a worker renews its lease"
            " every round, so pass a lease of a few intervals"
        )
    record = record_path(Path(project.path) / "deployments", ecosystem.name, network.name)
    ledger, virtual = attach_adjudicators(ledger_address, virtual_address, record, project, chain)
    by_hand = ledger_address is not None or virtual_address is not None
    attached = attach_apps(app_address, sla_address, None if by_hand else record, project, chain)
    signer = unattended_signer(account)
    chain_id = chain.chain_id
    app_adjudicator = "" if attached is None else attached[0].address
    store = open_store(store_path, identity=StoreIdentity(chain_id, ledger.address, virtual.address, app_adjudicator))
    alone = None
    try:
        alone = serve_alone(store)
        hub = Hub(
            signer,
            store,
            virtual_domain=Domain.virtual(chain_id, virtual.address),
            max_validity=max_validity,
            clock=lambda: int(chain.blocks.head.timestamp),
            adjudicator=ledger,
            confirmations=confirmations,
            max_head_age=max_head_age,
        )
        apps = None
        if attached is not None:
            services = {attached[1]: sla_service(acknowledgement(hub.address), min_price=sla_price)}
            apps = AppHub(hub, Domain.app(chain_id, app_adjudicator), services, adjudicator=attached[0])
        worker = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        server = HubServer(
            hub,
            Domain.ledger(chain_id, ledger.address),
            Policy(collateral=collateral),
            Limits(rate_per_second=rate, burst=burst),
            account=account,
            # Several workers share a PostgreSQL store: they reach each other's wallets through it.
            bus=PostgresBus(store.target, worker) if store.shared else None,
            apps=apps,
        )
        tower = Watchtower(store, ledger, virtual, account)
        guard = HubGuard(server, tower, watch_interval, click.echo, lease=lease, apps=apps)
        describe = f"chain={chain_id} ledger={ledger.address} virtual={virtual.address}"
        describe += " apps=none" if attached is None else f" app={app_adjudicator} sla={attached[1]}"
        if store.shared:
            describe += f" worker={worker} store={store.location}"
        stopped_by = asyncio.run(_serve(server, guard, host, port, describe))
    finally:
        store.close()
        if alone is not None:
            alone.close()
    click.echo(f"hub {hub.address} stopped ({stopped_by})")
