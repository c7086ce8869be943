"""LedgerAdjudicator's constructor: it names the virtual adjudicator whose outcomes split locks."""

import ape


def test_init__virtual_adjudicator_is_an_account__reverts(project, deployer, stranger, chain):
    with ape.reverts("ledger: virtual adjudicator is not a contract"):
        deployer.deploy(project.LedgerAdjudicator, stranger)
    # The failed creation left no code behind.
    receipt = chain.history[deployer.address][-1]
    assert receipt.failed
    assert receipt.contract_address is None or chain.provider.get_code(receipt.contract_address) == b""


def test_init__virtual_adjudicator_is_a_contract__deploys_naming_it(project, deployer, virtual, chain):
    ledger = deployer.deploy(project.LedgerAdjudicator, virtual)
    assert ledger.VIRTUAL_ADJUDICATOR() == virtual.address
    assert ledger.eip712Domain()[1:5] == ("PerunLedger", "1", chain.chain_id, ledger.address)
