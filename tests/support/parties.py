"""The off-chain tests' parties and domains: fixed keys, fake adjudicator addresses, a fixed clock."""

from __future__ import annotations

from perun_vyper import ChannelStore, Domain, Signer, Update

ALICE_KEY = bytes.fromhex("a1" * 32)
BOB_KEY = bytes.fromhex("b0" * 32)
INGRID_KEY = bytes.fromhex("1d" * 32)
STRANGER_KEY = bytes.fromhex("42" * 32)
ALICE, BOB, INGRID = (Signer(key).address for key in (ALICE_KEY, BOB_KEY, INGRID_KEY))
KEYS = {ALICE: ALICE_KEY, BOB: BOB_KEY, INGRID: INGRID_KEY}
LEDGER_DOMAIN = Domain.ledger(31337, "0x" + "5e" * 20)
VIRTUAL_DOMAIN = Domain.virtual(31337, "0x" + "7f" * 20)
NOW = 1_700_000_000
MAX_VALIDITY = 7 * 86400


def forge(state, key: bytes, domain: Domain = LEDGER_DOMAIN, release=None) -> Update:
    """An update signed with ``key`` whatever its content: what a dishonest proposer can send."""
    return Update(state, Signer(key).sign_state(state, domain), release)


def snapshot(store: ChannelStore) -> list:
    """Everything a store holds, to show that a refusal wrote nothing."""
    return [(record, store.history(record.channel_id)) for record in store.channels()]
