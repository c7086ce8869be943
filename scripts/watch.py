"""`ape run watch`: a watchtower for the channels in a store (docs/SPEC.md, section 10).

    ape run watch --network ethereum:local:foundry --account TEST::4 --store alice.db \\
        --ledger 0x... --virtual 0x... --interval 15

Prints one line per action (observed registration, refutation, close, virtual registration,
conclusion, failed transaction, waiting) and a summary at the end. Without ``--ledger``/``--virtual``
the addresses are read from ``deployments/<ecosystem>-<network>.json`` if that file exists.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from ape import chain, project
from ape.cli import ConnectedProviderCommand, account_option

from perun_vyper.store import Store
from perun_vyper.watchtower import Action, Watchtower, summary

_NAMES = {"ledger": ("ledgeradjudicator", "ledger"), "virtual": ("virtualadjudicator", "virtual")}


def _named_address(mapping: dict, kind: str) -> str | None:
    """``mapping[<name>]`` for one of the kind's names, as ``"0x.."`` or ``{"address": "0x.."}``."""
    for key, value in mapping.items():
        if str(key).lower() in _NAMES[kind]:
            if isinstance(value, dict):
                value = value.get("address")
            if isinstance(value, str) and value.startswith("0x"):
                return value
    return None


def _recorded_pairs(data: Any) -> list[dict[str, str]]:
    """Every ``{ledger, virtual}`` address pair in a deployments record, in file order, whatever the nesting
    (``{"LedgerAdjudicator": "0x..", ...}`` or ``{"contracts": {"LedgerAdjudicator": {"address": ..}}}``)."""
    if isinstance(data, dict):
        pair = {kind: _named_address(data, kind) for kind in _NAMES}
        if all(pair.values()):
            return [pair]  # type: ignore[list-item]
        children = list(data.values())
    elif isinstance(data, list):
        children = data
    else:
        return []
    return [pair for child in children for pair in _recorded_pairs(child)]


def _from_record(path: Path, chain_id: int) -> dict[str, str]:
    """The newest pair recorded in a deployments file (under this chain id if the record is keyed by chain
    id), or an empty dict without a usable record."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if isinstance(data, dict) and str(chain_id) in data:
        data = data[str(chain_id)]
    pairs = _recorded_pairs(data)
    return pairs[-1] if pairs else {}


@click.command(cls=ConnectedProviderCommand)
@account_option()
@click.option("--store", "store_path", required=True, type=click.Path(exists=True, dir_okay=False), help="Store file.")
@click.option("--ledger", "ledger_address", help="LedgerAdjudicator address.")
@click.option("--virtual", "virtual_address", help="VirtualAdjudicator address.")
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
    interval,
    once,
    max_seconds,
    max_actions,
    from_block,
):
    """Answer stale registrations of the store's channels with their latest states; conclude when due."""
    if not (ledger_address and virtual_address):
        path = Path(project.path) / "deployments" / f"{ecosystem.name}-{network.name}.json"
        recorded = _from_record(path, chain.chain_id)
        ledger_address = ledger_address or recorded.get("ledger")
        virtual_address = virtual_address or recorded.get("virtual")
        if not (ledger_address and virtual_address):
            raise click.UsageError(f"pass --ledger and --virtual ({path} records no deployment of this chain)")
    ledger = project.LedgerAdjudicator.at(ledger_address)
    virtual = project.VirtualAdjudicator.at(virtual_address)
    if ledger.VIRTUAL_ADJUDICATOR() != virtual.address:
        raise click.UsageError(f"LedgerAdjudicator {ledger.address} does not read VirtualAdjudicator {virtual.address}")
    actions: list[Action] = []

    def report(action: Action) -> None:
        actions.append(action)
        click.echo(str(action))

    with Store(store_path) as store:
        tower = Watchtower(store, ledger, virtual, account, start_block=from_block)
        click.echo(
            f"watching   {len(store.channels('ledger'))} ledger and {len(store.channels('virtual'))} virtual"
            f" channels of {store_path} on {ecosystem.name}:{network.name} as {account.address}"
            f" (ledger {ledger.address}, virtual {virtual.address}, events from block {tower.next_block})"
        )
        try:
            if once:
                for action in tower.poll():
                    report(action)
            else:
                tower.run(interval, stop_after=max_seconds, max_actions=max_actions, on_action=report)
        except KeyboardInterrupt:
            click.echo("interrupted")
    click.echo(f"summary    {summary(actions)}")
