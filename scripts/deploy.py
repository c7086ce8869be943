"""`ape run deploy`: deploy the Perun adjudicators with an Ape account and print their addresses."""

import click
from ape import project
from ape.cli import ConnectedProviderCommand, account_option


@click.command(cls=ConnectedProviderCommand)
@account_option()
def cli(ecosystem, network, account):
    """Deploy the ledger channel adjudicator."""
    ledger = account.deploy(project.LedgerAdjudicator)
    domain = ledger.eip712Domain()
    if domain[4] != ledger.address:
        raise click.ClickException(
            f"deployed contract answers verifyingContract {domain[4]}, expected {ledger.address}"
        )
    click.echo(f"network   {ecosystem.name}:{network.name} (chain id {domain[3]})")
    click.echo(f"deployer  {account.address}")
    click.echo(f"LedgerAdjudicator  {ledger.address}")
