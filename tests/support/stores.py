"""Records and states the store tests of both backends share: a ledger channel Alice - Bob, its version 0
signed by both, and the deployment identity of the fake domains."""

from perun_vyper import ChannelParams, ChannelRecord, LedgerState, SignedState, StoreIdentity
from tests.support.parties import ALICE, BOB, LEDGER_DOMAIN, VIRTUAL_DOMAIN

LEDGER, VIRTUAL = LEDGER_DOMAIN.verifying_contract, VIRTUAL_DOMAIN.verifying_contract
IDENTITY = StoreIdentity(31337, LEDGER, VIRTUAL)
PARAMS = ChannelParams(ALICE, BOB, nonce=7)
STATE = SignedState(LedgerState.initial(PARAMS.channel_id, 5, 5), b"a" * 65, b"b" * 65)
LEDGER_RECORD = ChannelRecord(PARAMS.channel_id, "ledger", PARAMS, LEDGER_DOMAIN, ALICE)
