"""`ape run watch`: a watchtower for the channels in a store (docs/SPEC.md, section 10).

    ape run watch --network ethereum:local:foundry --account TEST::4 --store alice.db \\
        --ledger 0x... --virtual 0x... --interval 15

Prints one line per action (observed registration, refutation, close, virtual registration,
conclusion, failed transaction, waiting) and a summary at the end. Without ``--ledger``/``--virtual``
the addresses are read from ``deployments/<ecosystem>-<network>.json`` if that file exists, and with them
the AppAdjudicator recorded beside them (``--app`` names it by hand): the store's app channels are then
guarded too (``AppWatcher`` on watch-only views: a stale registration answered with the latest state both
signed, a dispute concluded when due; no move is made without the owner's key).
"""

from __future__ import annotations

from pathlib import Path

import click
from ape import chain, project
from ape.cli import account_option

from perun_vyper.contracts import record_path, recorded_apps
from perun_vyper.core.display import plural
from perun_vyper.store import StoreIdentity
from perun_vyper.tools.cli import OperatorCommand, attach_adjudicators, contract_at, open_store, unattended_signer
from perun_vyper.watchtower import Action, Watchtower, summary
from perun_vyper.watchtower.app import store_watcher
from perun_vyper.watchtower.watchtower import run_rounds


@click.command(cls=OperatorCommand)
@account_option()
@click.option("--store", "store_path", required=True, help="Store: a file path, sqlite:///path or postgresql://...")
@click.option("--ledger", "ledger_address", help="LedgerAdjudicator address.")
@click.option("--virtual", "virtual_address", help="VirtualAdjudicator address.")
@click.option("--app", "app_address", help="AppAdjudicator address (guard the store's app channels too).")
@click.option("--interval", type=click.FloatRange(min=0), default=15.0, show_default=True, help="Seconds per poll.")
@click.option("--once", is_flag=True, help="Poll once, then exit.")
@click.option("--max-seconds", type=click.FloatRange(min=0), help="Exit after about this many seconds.")
@click.option("--max-actions", type=click.IntRange(min=1), help="Exit once this many actions were reported.")
@click.option("--from-block", type=click.IntRange(min=0), help="First block whose events are reported.")
def cli(
    ecosystem,
    network,
    account,
    store_path,
    ledger_address,
    virtual_address,
    app_address,
    interval,
    once,
    max_seconds,
    max_actions,
    from_block,
):
    """Answer stale registrations of the store's channels with their latest states; conclude when due."""
    record = record_path(Path(project.path) / "deployments", ecosystem.name, network.name)
    ledger, virtual = attach_adjudicators(ledger_address, virtual_address, record, project, chain)
    by_hand = ledger_address is not None or virtual_address is not None
    if app_address is None and not by_hand:
        app_address = (recorded_apps(record, chain.chain_id) or {}).get("app")
    apps = None if app_address is None else contract_at("app", app_address, project.AppAdjudicator, chain)[0]
    unattended_signer(account)  # a keyfile account sends the watchtower's transactions without a prompt
    identity = StoreIdentity(chain.chain_id, ledger.address, virtual.address, "" if apps is None else apps.address)
    store = open_store(store_path, identity=identity, create=False)
    actions: list[Action] = []

    def report(action: Action) -> None:
        actions.append(action)
        click.echo(str(action))

    with store:
        tower = Watchtower(store, ledger, virtual, account, start_block=from_block)
        kinds = ("ledger", "virtual") if apps is None else ("ledger", "virtual", "app")
        counts = [plural(len(store.channels(kind)), f"{kind} channel") for kind in kinds]
        guarded = f"ledger {ledger.address}, virtual {virtual.address}"
        if apps is not None:
            guarded += f", app {apps.address}"
        click.echo(
            f"watching   {', '.join(counts[:-1])} and {counts[-1]} of {store.location} on {ecosystem.name}:"
            f"{network.name} as {account.address} ({guarded}, events from block {tower.next_block})"
        )
        # App disputes are rebuilt from their events, read back from the head and never before --from-block.
        app_tower = None if apps is None else store_watcher(store, apps, account, from_block or 0)

        def poll() -> list[Action]:
            return tower.poll() + (app_tower.poll() if app_tower is not None else [])

        try:
            if once:
                for action in poll():
                    report(action)
            else:
                run_rounds(poll, interval, stop_after=max_seconds, max_actions=max_actions, on_action=report)
        except KeyboardInterrupt:
            click.echo("interrupted")
    click.echo(f"summary    {summary(actions)}")
