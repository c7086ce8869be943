"""`ape run gas`: run the standard lifecycles on a fresh local chain; write docs/gas.json and docs/GAS.md."""

import json
from pathlib import Path

import click
from ape import accounts, chain, project
from ape.cli import ConnectedProviderCommand

from perun_vyper.gas_report import measure, render_markdown

DOCS = Path(__file__).resolve().parents[1] / "docs"


@click.command(cls=ConnectedProviderCommand)
def cli():
    """Measure the gas of every lifecycle (receipt gasUsed) and rewrite the gas docs."""
    report = measure(project, accounts.test_accounts, chain)
    (DOCS / "gas.json").write_text(json.dumps(dict(sorted(report.figures.items())), indent=2) + "\n")
    (DOCS / "GAS.md").write_text(render_markdown(report, "make gas"))
    for key, value in sorted(report.figures.items()):
        click.echo(f"{key:45} {value:>10,}")
