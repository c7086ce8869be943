"""`ape run demo`: a hub network working end to end on the local chain, every balance checked. The hub runs
as its own process (`ape run hub` on this chain); the users are its clients over WebSocket."""

import sys
import tempfile
import warnings
from pathlib import Path

import click
from ape import accounts, chain, project
from ape.cli import verbosity_option
from ape.logging import logger

from perun_vyper.errors import PerunError
from perun_vyper.tools.cli import OperatorCommand
from perun_vyper.tools.demo import Demo, summary_lines
from perun_vyper.tools.demo_cli import (
    QUIET,
    hub_log_level,
    keep_lines,
    line_progress,
    make_store_dir,
    store_dir_problem,
    wait_for_stop,
)

# Ape's config models make pydantic-settings warn on stderr when the contracts compile: not the demo's news.
warnings.filterwarnings("ignore", module="pydantic_settings")


def _check_store_dir(ctx, param, value):
    # At parsing, before the chain starts or anything is deployed or written.
    if value is not None and (problem := store_dir_problem(value)):
        raise click.ClickException(problem)
    return value


@click.command(cls=OperatorCommand)
@verbosity_option(
    logger,
    default=QUIET,
    help=f"Ape's log level: ERROR, WARNING, SUCCESS, INFO (a line per transaction) or DEBUG; {QUIET} unless given.",
)
@click.option("--users", default=3, show_default=True, help="Users with a ledger channel to Ingrid (2-7).")
@click.option("--payments", default=1000, show_default=True, help="Off-chain payments over the virtual channels.")
@click.option("--seed", default=1, show_default=True, help="Seed of the payment amounts and directions.")
@click.option(
    "--store-dir",
    type=click.Path(path_type=Path),
    default=None,
    callback=_check_store_dir,
    help="Where each party's SQLite store goes: a new directory (created) or an existing empty one; a file or "
    "a directory with something in it is refused before anything runs (default: a new temporary directory).",
)
@click.option(
    "--keep",
    is_flag=True,
    help="Afterwards keep the chain running and print how to inspect it (the node, the adjudicators, the "
    "`ape run watch` command for each store) until Ctrl-C or SIGTERM.",
)
def cli(network, users, payments, seed, store_dir, keep):
    """Deploy, start the hub process, open ledger and virtual channels over its WebSocket API, pay, close;
    then a dispute with the hub offline and a stale-state attack the hub's watchtower answers. Exits
    non-zero if any balance check fails. Ape's per-transaction lines are off unless -v INFO (or DEBUG)."""
    if not network.is_local:
        raise click.UsageError("the demo moves test-account funds around; run it on a local network only")

    def with_bar(steps, length):
        # click's progress bar is a context manager; the demo only needs an iterable.
        with click.progressbar(steps, length=length, label="   paying", show_pos=True) as bar:
            yield from bar

    directory = store_dir or Path(tempfile.mkdtemp(prefix="perun-demo-"))
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
            progress=with_bar if sys.stdout.isatty() else line_progress(click.echo, "   paid"),
            hub_log_level=hub_log_level(logger.level),
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if problem := make_store_dir(directory):
        raise click.ClickException(problem)
    click.echo(f"stores in {directory}")
    try:
        result = demo.run()
    except PerunError as exc:
        raise click.ClickException(str(exc)) from None
    for line in summary_lines(result):
        click.echo(line)
    if keep:
        stores = [(name, index, directory / f"{name}.sqlite") for name, index in demo.store_accounts()]
        addresses = str(demo.ledger.address), str(demo.virtual.address)
        lines = keep_lines(chain.provider.uri, chain.chain_id, *addresses, stores, Path(project.path))

        def show():  # once Ctrl-C is ours: a test (or a user) may act on the printed commands at once
            for line in lines:
                click.echo(line)

        stopped_by = wait_for_stop(show)
        click.echo(f"{stopped_by}: stopping the chain")
    if not result.ok:
        raise SystemExit(1)
