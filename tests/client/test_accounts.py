"""Ape accounts as channel signers (chain/accounts.py) and the domain read from the adjudicator before the
first signature (chain/domain.py): a wrong chain or contract is refused when the channel is opened, not at
the on-chain close."""

from __future__ import annotations

import json
import secrets

import pytest
from ape_accounts.accounts import KeyfileAccount
from eth_account import Account

from perun_vyper import (
    DOMAIN_VERSION,
    LEDGER_DOMAIN_NAME,
    VIRTUAL_DOMAIN_NAME,
    AccountError,
    ChannelParams,
    DeploymentError,
    Domain,
    InvalidParams,
    LedgerChannel,
    Signer,
)
from perun_vyper.chain import check_domain, read_domain, signer_of
from perun_vyper.tools.deployment import PROXY_ADDRESS
from tests.support.constants import E

PASSPHRASE = "open sesame"


@pytest.fixture
def keyfile(tmp_path, monkeypatch):
    """A keyfile account 'operator' (cheap KDF) and its private key; its passphrase variable unset."""
    monkeypatch.delenv("APE_ACCOUNTS_operator_PASSPHRASE", raising=False)
    key = secrets.token_bytes(32)
    path = tmp_path / "operator.json"
    path.write_text(json.dumps(Account.encrypt(key, PASSPHRASE, kdf="pbkdf2", iterations=2048)))
    return KeyfileAccount(keyfile_path=path), key


def test_signer_of__test_account__its_key(alice):
    signer = signer_of(alice)
    assert isinstance(signer, Signer) and signer.address == alice.address


def test_signer_of__keyfile_with_passphrase_variable__its_key_and_transactions_unattended(
    keyfile, monkeypatch, chain, stranger
):
    account, key = keyfile
    monkeypatch.setenv("APE_ACCOUNTS_operator_PASSPHRASE", PASSPHRASE)
    signer = signer_of(account)
    assert signer.address == account.address == Signer(key).address
    digest = bytes(range(32))
    assert signer.sign(digest) == Signer(key).sign(digest)  # the same libsecp256k1 signer: the same speed
    stranger.transfer(account.address, E)
    receipt = account.transfer(stranger.address, 1)  # no prompt: autosign is on
    assert receipt.sender == account.address and chain.provider.get_nonce(account.address) == 1


def test_signer_of__keyfile_without_passphrase_no_terminal__refused(keyfile):
    account, _ = keyfile
    with pytest.raises(AccountError, match="set APE_ACCOUNTS_operator_PASSPHRASE in the environment"):
        signer_of(account)


def test_signer_of__keyfile_wrong_passphrase__refused(keyfile, monkeypatch):
    account, _ = keyfile
    monkeypatch.setenv("APE_ACCOUNTS_operator_PASSPHRASE", "not it")
    with pytest.raises(AccountError, match=r"^wrong passphrase for keyfile account 'operator'"):
        signer_of(account)


def test_signer_of__account_without_key__refused(chain):
    impersonated = chain.provider.account_manager.test_accounts.impersonate_account(PROXY_ADDRESS)
    with pytest.raises(AccountError, match="cannot sign channel states without a person confirming each one"):
        signer_of(impersonated)


def test_domain_constants__exported_and_match_the_adjudicators(ledger, virtual, chain):
    assert read_domain(ledger, "ledger") == Domain(LEDGER_DOMAIN_NAME, DOMAIN_VERSION, chain.chain_id, ledger.address)
    assert read_domain(virtual, "virtual") == Domain.virtual(chain.chain_id, virtual.address)
    assert (LEDGER_DOMAIN_NAME, VIRTUAL_DOMAIN_NAME, DOMAIN_VERSION) == ("PerunLedger", "PerunVirtual", "1")


def test_read_domain__other_kind__refused(ledger, virtual):
    with pytest.raises(DeploymentError, match=f"^{virtual.address} answers eip712Domain\\(\\) as PerunVirtual v1"):
        read_domain(virtual, "ledger")


def test_read_domain__proxy_address__refused(project):
    proxy = project.LedgerAdjudicator.at(PROXY_ADDRESS)
    with pytest.raises(DeploymentError, match=f"^{PROXY_ADDRESS} does not answer eip712Domain\\(\\) like a perun"):
        read_domain(proxy, "ledger")


@pytest.mark.parametrize("wrong", ["chain id", "contract"])
def test_open__domain_of_another_chain_or_contract__refused_before_signing(
    wrong, ledger, virtual, chain, alice, ingrid, store_at
):
    domain = (
        Domain.ledger(chain.chain_id + 1, ledger.address)
        if wrong == "chain id"
        else Domain.ledger(chain.chain_id, virtual.address)
    )
    store = store_at("alice")
    params = ChannelParams(alice.address, ingrid.address, nonce=secrets.randbelow(2**32))
    refused = r"^the channel's domain is PerunLedger v1 at .* but the adjudicator answers"
    with pytest.raises(InvalidParams, match=refused):
        LedgerChannel.open(params, domain, alice, store, E, E, adjudicator=ledger)
    assert store.channels("ledger") == []  # nothing recorded, nothing signed
    check_domain(Domain.ledger(chain.chain_id, ledger.address), ledger, "ledger")  # the right one passes
