"""The store's queries a hub with many channels relies on, on both backends: a user's channels without
reading every channel (``channels_of``), channels in the order they were added, a channel's latest and
newest states in one read (``tip``)."""

from perun_vyper import ChannelParams, ChannelRecord, LedgerState, SignedState, VirtualParams
from tests.support.parties import ALICE, BOB, INGRID, LEDGER_DOMAIN, NOW, VIRTUAL_DOMAIN

LEFT = ChannelParams(ALICE, INGRID, nonce=1)
RIGHT = ChannelParams(INGRID, BOB, nonce=2)
OTHER = ChannelParams(BOB, ALICE, nonce=3)
VIRTUAL = VirtualParams(
    ALICE, BOB, INGRID, LEFT.channel_id, RIGHT.channel_id, 100, 0, NOW + 3600, 3600, 1,
    ledger_adjudicator=LEDGER_DOMAIN.verifying_contract, chain_id=LEDGER_DOMAIN.chain_id,
)  # fmt: skip


def _record(params, owner=INGRID) -> ChannelRecord:
    if isinstance(params, VirtualParams):
        return ChannelRecord(params.channel_id, "virtual", params, VIRTUAL_DOMAIN, owner)
    return ChannelRecord(params.channel_id, "ledger", params, LEDGER_DOMAIN, owner)


def test_channels_of__participant_of_either_side__in_order_added(store_at):
    store = store_at("ingrid")
    records = [_record(p) for p in (RIGHT, LEFT, VIRTUAL, OTHER)]
    for record in records:
        store.add_channel(record)
    assert store.channels_of(ALICE, "ledger") == [records[1], records[3]]
    assert store.channels_of(BOB, "ledger") == [records[0], records[3]]
    assert store.channels_of(INGRID, "ledger") == [records[0], records[1]]
    assert store.channels_of(ALICE, "virtual") == [records[2]]
    assert store.channels_of(INGRID, "virtual") == []  # Ingrid is neither Alice nor Bob of it
    assert store.channels() == records
    assert store.channels("ledger") == [records[0], records[1], records[3]]


def test_tip_and_mark__none_signed_proposed__latest_newest_and_mark(store_at):
    store = store_at("ingrid")
    store.add_channel(_record(LEFT))
    cid = LEFT.channel_id
    assert store.tip(cid) == (None, None)
    assert store.mark(cid) is None
    zero = SignedState(LedgerState.initial(cid, 5, 5), b"a" * 65, None)
    store.insert_state(cid, zero)
    assert store.tip(cid) == (None, zero)
    assert store.mark(cid) == (0, False)
    store.add_signature(cid, 0, 1, b"b" * 65)
    signed = store.state(cid, 0)
    assert store.tip(cid) == (signed, signed)
    assert store.mark(cid) == (0, True)
    one = SignedState(zero.state.pay(1, 0), b"c" * 65, None)
    store.insert_state(cid, one)
    assert store.tip(cid) == (signed, one)
    assert store.mark(cid) == (1, False)
    assert store.tip(cid) == (store.latest(cid), store.newest(cid))
