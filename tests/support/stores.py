"""Records and states the store tests of both backends share: a ledger channel Alice - Bob, its version 0
signed by both, the deployment identity of the fake domains, and an app channel Alice - Bob in the fake
app domain with its states (app data, both signatures)."""

from dataclasses import replace

from perun_vyper import ChannelParams, ChannelRecord, Domain, LedgerState, SignedState, Signer, StoreIdentity
from perun_vyper.core.app import AppParams, AppState
from tests.support.parties import ALICE, ALICE_KEY, BOB, BOB_KEY, LEDGER_DOMAIN, VIRTUAL_DOMAIN

LEDGER, VIRTUAL = LEDGER_DOMAIN.verifying_contract, VIRTUAL_DOMAIN.verifying_contract
IDENTITY = StoreIdentity(31337, LEDGER, VIRTUAL)
PARAMS = ChannelParams(ALICE, BOB, nonce=7)
STATE = SignedState(LedgerState.initial(PARAMS.channel_id, 5, 5), b"a" * 65, b"b" * 65)
LEDGER_RECORD = ChannelRecord(PARAMS.channel_id, "ledger", PARAMS, LEDGER_DOMAIN, ALICE)

APP_DOMAIN = Domain.app(31337, "0x" + "a9" * 20)  # the AppAdjudicator
APP = APP_DOMAIN.verifying_contract
APP_IDENTITY = StoreIdentity(31337, LEDGER, VIRTUAL, APP)
APP_PARAMS = AppParams(ALICE, BOB, "0x" + "5a" * 20, nonce=3)  # the app contract: 0x5a...
APP_RECORD = ChannelRecord(APP_PARAMS.channel_id, "app", APP_PARAMS, APP_DOMAIN, BOB)
APP_DATA = bytes(range(1, 40)) + b"\x00" * 25  # app data ending in zero bytes: kept to the last byte
APP_S0 = AppState.initial(APP_PARAMS.channel_id, 3 * 10**18, 2 * 10**18, b"")
APP_S1 = replace(APP_S0, version=1, balance_a=2 * 10**18, balance_b=3 * 10**18, app_data=APP_DATA)
APP_S2 = replace(APP_S1, version=2, balance_a=10**18, balance_b=4 * 10**18, app_data=APP_DATA[::-1])


def app_signed(state: AppState, a: bool = True, b: bool = True) -> SignedState:
    """``state`` with Alice's and Bob's signatures in the app domain (``a``/``b`` False leaves one out)."""
    return SignedState(
        state,
        Signer(ALICE_KEY).sign_state(state, APP_DOMAIN) if a else None,
        Signer(BOB_KEY).sign_state(state, APP_DOMAIN) if b else None,
    )
