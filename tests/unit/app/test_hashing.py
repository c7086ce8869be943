"""The app channel's hashing, three ways: the off-chain code (perun_vyper.core.app), the adjudicator's own
modules (the AppHashing harness) and eth-account's typed-data encoder as the oracle."""

import pytest

from perun_vyper import ETH
from perun_vyper.core.app import AppParams, AppState, Registration
from perun_vyper.core.codec import APP_STATE
from tests.support import typed_data

APP_STATE_TYPE = (
    "AppState(bytes32 channel,uint64 version,uint256 balanceA,uint256 balanceB,uint256 fundingA,uint256 fundingB,"
    "bytes appData,bool isFinal)"
)


@pytest.fixture(scope="module")
def app_hashing(project, deployer):
    return deployer.deploy(project.AppHashing)


def test_type_string__equals_the_contract():
    assert APP_STATE.encode_type == APP_STATE_TYPE


@pytest.mark.parametrize("asset", ["eth", "token"])
@pytest.mark.parametrize("nonce", [0, 1, 2**256 - 1])
def test_channel_id__matches_contract(app_hashing, sla, token, alice, bob, asset, nonce):
    params = AppParams(
        str(alice.address),
        str(bob.address),
        str(sla.address),
        ETH if asset == "eth" else str(token.address),
        nonce=nonce,
    )
    assert app_hashing.channel_id(params.as_tuple()) == params.channel_id
    # The id is the ledger id of the funding parameters (deposit_token takes those), kind bit included.
    assert params.channel_id == params.funding_params.channel_id
    assert (params.channel_id[0] >= 0x80) == (asset == "token")


def test_channel_id__other_app_or_nonce__other_channel(alice, bob, sla, apps):
    base = AppParams(str(alice.address), str(bob.address), str(sla.address), nonce=7)
    other_app = AppParams(str(alice.address), str(bob.address), str(apps.address), nonce=7)
    other_nonce = AppParams(str(alice.address), str(bob.address), str(sla.address), nonce=8)
    assert len({base.channel_id, other_app.channel_id, other_nonce.channel_id}) == 3


@pytest.mark.parametrize("data", [b"", b"\x01", bytes(range(256)) * 2], ids=["empty", "one-byte", "512-bytes"])
def test_state_hash__matches_contract(app_hashing, data):
    state = AppState(b"\x42" * 32, 2**64 - 1, 3, 4, 5, 2, data, True)
    assert app_hashing.state_hash(state.as_tuple()) == state.struct_hash()


def test_state_digest__matches_contract_and_eth_account(app_hashing, apps, app_domain):
    state = AppState(b"\x42" * 32, 9, 3, 4, 5, 2, b"\xde\xad\xbe\xef" * 10, False)
    digest = app_domain.digest(state.struct_hash())
    assert app_hashing.state_digest(state.as_tuple(), apps.DOMAIN_SEPARATOR()) == digest
    document = typed_data.document(
        "AppState",
        {
            "AppState": typed_data.fields(
                ("channel", "bytes32"),
                ("version", "uint64"),
                ("balanceA", "uint256"),
                ("balanceB", "uint256"),
                ("fundingA", "uint256"),
                ("fundingB", "uint256"),
                ("appData", "bytes"),
                ("isFinal", "bool"),
            )
        },
        "PerunApp",
        app_domain.chain_id,
        apps.address,
        {
            "channel": state.channel,
            "version": 9,
            "balanceA": 3,
            "balanceB": 4,
            "fundingA": 5,
            "fundingB": 2,
            "appData": state.app_data,
            "isFinal": False,
        },
    )
    assert APP_STATE.typed_data(state.as_tuple(), app_domain) == document
    assert typed_data.digest(document) == digest


def test_registration_hash__matches_contract(app_hashing):
    registration = Registration(b"\x07" * 32, 12, 2**64 - 1, 11)
    assert app_hashing.registration_hash(registration.as_tuple()) == registration.stored()


def test_app_state__too_much_data__refused_off_chain():
    from perun_vyper import InvalidState

    with pytest.raises(InvalidState, match="at most 512"):
        AppState(b"\x42" * 32, 0, 1, 1, 1, 1, bytes(513))
