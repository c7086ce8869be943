"""LedgerAdjudicator's constructor: it names the virtual adjudicator whose outcomes split locks."""

import ape
import rlp
from eth_utils import keccak, to_checksum_address


def _create_address(sender: str, nonce: int) -> str:
    return to_checksum_address(keccak(rlp.encode([bytes.fromhex(sender[2:]), nonce]))[12:])


def test_init__virtual_adjudicator_is_an_account__reverts(project, deployer, stranger, chain):
    target = _create_address(deployer.address, deployer.nonce)
    with ape.reverts("ledger: virtual adjudicator is not a contract"):
        deployer.deploy(project.LedgerAdjudicator, stranger)
    # The failed creation left no code where the contract would have been.
    assert chain.provider.get_code(target) == b""


def test_init__virtual_adjudicator_is_a_contract__deploys_naming_it(project, deployer, virtual, chain):
    target = _create_address(deployer.address, deployer.nonce)
    ledger = deployer.deploy(project.LedgerAdjudicator, virtual)
    assert ledger.address == target
    assert ledger.VIRTUAL_ADJUDICATOR() == virtual.address
    assert ledger.eip712Domain()[1:5] == ("PerunLedger", "1", chain.chain_id, ledger.address)
