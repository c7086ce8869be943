"""`ape run deploy`: deploy the Perun adjudicators with an Ape account and print their addresses."""

import click
from ape import project
from ape.cli import ConnectedProviderCommand, account_option


@click.command(cls=ConnectedProviderCommand)
@account_option()
def cli(ecosystem, network, account):
    """Deploy the virtual channel adjudicator, then the ledger adjudicator that reads it."""
    virtual = account.deploy(project.VirtualAdjudicator)
    ledger = account.deploy(project.LedgerAdjudicator, virtual)
    for contract in (virtual, ledger):
        answered = contract.eip712Domain()[4]
        if answered != contract.address:
            raise click.ClickException(
                f"{contract.contract_type.name} answers verifyingContract {answered}, expected {contract.address}"
            )
    if ledger.VIRTUAL_ADJUDICATOR() != virtual.address:
        raise click.ClickException("LedgerAdjudicator does not point at the deployed VirtualAdjudicator")
    click.echo(f"network             {ecosystem.name}:{network.name} (chain id {ledger.eip712Domain()[3]})")
    click.echo(f"deployer            {account.address}")
    click.echo(f"VirtualAdjudicator  {virtual.address}")
    click.echo(f"LedgerAdjudicator   {ledger.address}")
