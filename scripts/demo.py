"""`ape run demo`: a hub network working end to end on the local chain, every balance checked. The hub runs
as its own process (`ape run hub` on this chain); the users are its clients over WebSocket."""

import tempfile
from pathlib import Path

import click
from ape import accounts, chain, project
from ape.cli import ConnectedProviderCommand

from perun_vyper.errors import PerunError
from perun_vyper.tools.demo import Demo, summary_lines


@click.command(cls=ConnectedProviderCommand)
@click.option("--users", default=3, show_default=True, help="Users with a ledger channel to Ingrid (2-7).")
@click.option("--payments", default=1000, show_default=True, help="Off-chain payments over the virtual channels.")
@click.option("--seed", default=1, show_default=True, help="Seed of the payment amounts and directions.")
@click.option(
    "--store-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where each party's SQLite store goes (default: a new temporary directory).",
)
def cli(network, users, payments, seed, store_dir):
    """Deploy, start the hub process, open ledger and virtual channels over its WebSocket API, pay, close;
    then a dispute with the hub offline and a stale-state attack the hub's watchtower answers. Exits
    non-zero if any balance check fails."""
    if not network.is_local:
        raise click.UsageError("the demo moves test-account funds around; run it on a local network only")
    directory = store_dir or Path(tempfile.mkdtemp(prefix="perun-demo-"))

    def with_bar(steps, length):
        # click's progress bar is a context manager; the demo only needs an iterable.
        with click.progressbar(steps, length=length, label="   paying", show_pos=True) as bar:
            yield from bar

    try:
        demo = Demo(
            project,
            chain,
            accounts.test_accounts,
            directory,
            users=users,
            payments=payments,
            seed=seed,
            echo=click.echo,
            progress=with_bar,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    directory.mkdir(parents=True, exist_ok=True)
    click.echo(f"stores in {directory}")
    try:
        result = demo.run()
    except PerunError as exc:
        raise click.ClickException(str(exc)) from None
    for line in summary_lines(result):
        click.echo(line)
    if not result.ok:
        raise SystemExit(1)
