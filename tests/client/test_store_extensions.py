"""The Store methods the client adds (insert_state, add_signature, state): one statement per write, and
never a silent overwrite."""

import pytest

from perun_vyper import ChannelParams, ChannelRecord, LedgerState, SignedState, StoreError, open_store
from tests.support.parties import ALICE, BOB, LEDGER_DOMAIN

PARAMS = ChannelParams(ALICE, BOB, nonce=7)
STATE = LedgerState.initial(PARAMS.channel_id, 5, 5)


@pytest.fixture
def store(store_at):
    store = store_at("alice")
    store.add_channel(ChannelRecord(PARAMS.channel_id, "ledger", PARAMS, LEDGER_DOMAIN, ALICE))
    return store


def test_insert_state__new_version__stored_and_committed(store):
    assert store.insert_state(PARAMS.channel_id, SignedState(STATE, b"a" * 65, None))
    with open_store(store.target) as other:  # another connection sees it: committed
        assert other.newest(PARAMS.channel_id) == SignedState(STATE, b"a" * 65, None)


def test_insert_state__existing_version__false_and_unchanged(store):
    store.insert_state(PARAMS.channel_id, SignedState(STATE, b"a" * 65, None))
    assert not store.insert_state(PARAMS.channel_id, SignedState(STATE, b"x" * 65, b"y" * 65))
    assert store.state(PARAMS.channel_id, 0) == SignedState(STATE, b"a" * 65, None)


def test_insert_state__unknown_channel__refused(store):
    other = LedgerState.initial(b"\x01" * 32, 1, 1)
    with pytest.raises(StoreError, match="add it with add_channel first"):
        store.insert_state(other.channel, SignedState(other, None, None))


def test_add_signature__missing_side__filled_once(store):
    store.insert_state(PARAMS.channel_id, SignedState(STATE, b"a" * 65, None))
    assert store.add_signature(PARAMS.channel_id, 0, 1, b"b" * 65)
    assert store.latest(PARAMS.channel_id) == SignedState(STATE, b"a" * 65, b"b" * 65)
    assert not store.add_signature(PARAMS.channel_id, 0, 1, b"c" * 65)
    assert not store.add_signature(PARAMS.channel_id, 0, 0, b"c" * 65)
    assert not store.add_signature(PARAMS.channel_id, 1, 1, b"c" * 65)  # no such version
    assert store.state(PARAMS.channel_id, 0) == SignedState(STATE, b"a" * 65, b"b" * 65)


def test_state__missing_version__none(store):
    assert store.state(PARAMS.channel_id, 3) is None
