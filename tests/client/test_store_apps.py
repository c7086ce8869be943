"""App channels in a store: the record and its states (app data, both signatures) round-trip on both
backends, readers of ledger and virtual channels (channels, channels_of, parties, a hub) pass over an
app channel beside them, and the identity's optional app adjudicator (recorded, adopted, kept, refused;
an app channel belongs to a store only if its identity names that adjudicator)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from perun_vyper import (
    ChannelParams,
    ChannelRecord,
    Domain,
    Hub,
    InvalidParams,
    LedgerChannel,
    Store,
    StoreError,
    StoreIdentity,
    exchange,
    open_store,
)
from perun_vyper.core.app import AppParams
from perun_vyper.store.base import parties
from tests.conftest import postgres_schema
from tests.support.constants import E
from tests.support.parties import (
    ALICE,
    ALICE_KEY,
    BOB,
    INGRID,
    INGRID_KEY,
    LEDGER_DOMAIN,
    MAX_VALIDITY,
    NOW,
    VIRTUAL_DOMAIN,
    snapshot,
)
from tests.support.stores import (
    APP,
    APP_DATA,
    APP_DOMAIN,
    APP_IDENTITY,
    APP_PARAMS,
    APP_RECORD,
    APP_S0,
    APP_S1,
    APP_S2,
    IDENTITY,
    LEDGER,
    LEDGER_RECORD,
    PARAMS,
    STATE,
    VIRTUAL,
    app_signed,
)

OTHER_APP = "0x" + "b8" * 20
S0, S1, S2 = APP_S0, APP_S1, APP_S2


def meta(path: Path) -> dict[str, str]:
    db = sqlite3.connect(path)
    try:
        return dict(db.execute("SELECT key, value FROM perun_meta"))
    finally:
        db.close()


def written(path: Path, *records: ChannelRecord, identity: StoreIdentity | None = None) -> bytes:
    with Store(path, identity=identity) as store:
        for record in records:
            store.add_channel(record)
    return path.read_bytes()


# --- records and states (both backends) ---------------------------------------------------------------


def test_app_channel__states_with_app_data__round_trip_and_survive_reopening(store_at):
    store = store_at("provider")
    store.add_channel(APP_RECORD)
    assert store.channel(APP_PARAMS.channel_id) == APP_RECORD
    assert isinstance(store.channel(APP_PARAMS.channel_id).params, AppParams)
    s0, s1, proposal = app_signed(S0), app_signed(S1), app_signed(S2, b=False)
    for signed in (s0, s1, proposal):
        store.save_state(APP_PARAMS.channel_id, signed)
    assert store.tip(APP_PARAMS.channel_id) == (s1, proposal)
    assert store.latest(APP_PARAMS.channel_id) == s1
    assert store.newest(APP_PARAMS.channel_id) == proposal
    assert store.latest(APP_PARAMS.channel_id).state.app_data == APP_DATA
    assert store.mark(APP_PARAMS.channel_id) == (2, False)
    assert store.add_signature(APP_PARAMS.channel_id, 2, 1, app_signed(S2).sig_b)
    assert store.tip(APP_PARAMS.channel_id) == (app_signed(S2), app_signed(S2))
    final = app_signed(S2.finalized())
    store.save_state(APP_PARAMS.channel_id, final)
    with pytest.raises(StoreError, match="already holds a different state at version 1"):
        store.save_state(APP_PARAMS.channel_id, app_signed(replace(S1, app_data=b"\x01")))
    with open_store(store.target) as again:
        assert again.channels() == [APP_RECORD]
        assert again.history(APP_PARAMS.channel_id) == [s0, s1, app_signed(S2), final]
        assert again.latest(APP_PARAMS.channel_id).state.is_final
        assert again.state(APP_PARAMS.channel_id, 1) == s1


def test_app_channel__next_to_ledger_channels__readers_of_each_kind_see_theirs(store_at):
    store = store_at("alice")
    other = ChannelParams(ALICE, INGRID, nonce=8)
    other_record = ChannelRecord(other.channel_id, "ledger", other, LEDGER_DOMAIN, ALICE)
    for record in (LEDGER_RECORD, APP_RECORD, other_record):
        store.add_channel(record)
    store.save_state(PARAMS.channel_id, STATE)
    store.save_state(APP_PARAMS.channel_id, app_signed(S1))
    assert store.channels() == [LEDGER_RECORD, APP_RECORD, other_record]  # in the order added
    assert store.channels("ledger") == [LEDGER_RECORD, other_record]
    assert store.channels("virtual") == []
    assert store.channels("app") == [APP_RECORD]
    assert [parties(record) for record in store.channels()] == [(ALICE, BOB), (ALICE, BOB), (ALICE, INGRID)]
    assert store.channels_of(ALICE, "ledger") == [LEDGER_RECORD, other_record]
    assert store.channels_of(BOB, "ledger") == [LEDGER_RECORD]
    assert store.channels_of(BOB, "app") == store.channels_of(ALICE, "app") == [APP_RECORD]
    assert store.channels_of(INGRID, "app") == []
    assert snapshot(store) == [(LEDGER_RECORD, [STATE]), (APP_RECORD, [app_signed(S1)]), (other_record, [])]


def test_hub__store_holding_an_app_channel__restores_and_lists_its_ledger_channels_only(store_at):
    def hub() -> Hub:
        return Hub(INGRID_KEY, store, virtual_domain=VIRTUAL_DOMAIN, max_validity=MAX_VALIDITY, clock=lambda: NOW)

    store = store_at("ingrid")
    params = ChannelParams(ALICE, INGRID, nonce=1)
    exchange(
        LedgerChannel.open(params, LEDGER_DOMAIN, ALICE_KEY, store_at("alice"), E, E),
        hub().open_channel(params, LEDGER_DOMAIN, E, E),
    )
    app = AppParams(ALICE, INGRID, "0x" + "5a" * 20, nonce=1)
    store.add_channel(ChannelRecord(app.channel_id, "app", app, APP_DOMAIN, INGRID))
    restarted = hub()
    assert [channel.channel_id for channel in restarted.channels_with(ALICE)] == [params.channel_id]
    assert restarted.channel(params.channel_id).latest.state.version == 0
    assert restarted.find(app.channel_id) is None
    assert restarted.virtuals() == []


def test_app_channel__postgres__party_columns_hold_its_participants(postgres):
    target = postgres_schema(postgres, "hub")
    with open_store(target) as store:
        store.add_channel(LEDGER_RECORD)
        store.add_channel(APP_RECORD)
    with psycopg.connect(target) as db:
        rows = db.execute("SELECT kind, party_a, party_b FROM channels ORDER BY added").fetchall()
    assert rows == [("ledger", ALICE, BOB), ("app", ALICE, BOB)]


# --- the identity's app adjudicator -------------------------------------------------------------------


def test_identity__app__optional_checksummed_described_and_addressed():
    assert IDENTITY.app == "" and StoreIdentity(31337, LEDGER, VIRTUAL, "") == IDENTITY
    identity = StoreIdentity(31337, LEDGER, VIRTUAL, APP.lower())
    assert identity == APP_IDENTITY and identity.app == "0xa9A9A9A9A9a9a9a9a9a9a9A9a9A9a9A9A9a9A9A9"
    assert identity.describe() == f"{IDENTITY.describe()}, app {identity.app}"
    assert "app" not in IDENTITY.describe()
    assert identity.address("app") == identity.app and identity.address("ledger") == LEDGER
    with pytest.raises(StoreError) as refused:
        IDENTITY.address("app")
    assert str(refused.value) == (
        f"the deployment {IDENTITY.describe()} names no app adjudicator; name one (StoreIdentity(..., app=address))"
        " to hold app channels"
    )
    with pytest.raises(InvalidParams, match=r"^channels are of kind 'ledger', 'virtual' or 'app', got 'payment'$"):
        APP_IDENTITY.address("payment")  # type: ignore[arg-type]
    with pytest.raises(InvalidParams, match=r"^app must be an adjudicator address \(0x and 40 hex digits\), got"):
        StoreIdentity(31337, LEDGER, VIRTUAL, "0x1234")


def test_identity__admits_app_channel__only_of_its_app_adjudicator():
    assert APP_IDENTITY.admits("app", APP_DOMAIN)
    assert APP_IDENTITY.admits("app", replace(APP_DOMAIN, verifying_contract=APP.lower()))
    assert not IDENTITY.admits("app", APP_DOMAIN)  # no app adjudicator named: no app channel
    assert not APP_IDENTITY.admits("app", Domain.app(1, APP))
    assert not APP_IDENTITY.admits("app", Domain.app(31337, OTHER_APP))
    assert not APP_IDENTITY.admits("app", LEDGER_DOMAIN)
    assert not APP_IDENTITY.admits("ledger", APP_DOMAIN)
    assert APP_IDENTITY.admits("ledger", LEDGER_DOMAIN) and APP_IDENTITY.admits("virtual", VIRTUAL_DOMAIN)


def test_open__new_store_with_app__identity_and_app_recorded(tmp_path):
    path = tmp_path / "hub.db"
    written(path, LEDGER_RECORD, APP_RECORD, identity=APP_IDENTITY)
    assert meta(path) == {
        "format": "perun-vyper store",
        "schema_version": "2",
        "chain_id": "31337",
        "ledger": LEDGER,
        "virtual": VIRTUAL,
        "app": APP,
    }
    with Store(path) as store:
        assert store.identity == APP_IDENTITY
        assert store.channels() == [LEDGER_RECORD, APP_RECORD]


def test_add_channel__app_channel_to_store_without_app__refused_then_adopted_by_run_naming_app(tmp_path):
    path = tmp_path / "hub.db"
    written(path, LEDGER_RECORD, identity=IDENTITY)
    with Store(path, identity=IDENTITY) as store:
        with pytest.raises(StoreError) as refused:
            store.add_channel(APP_RECORD)
        assert str(refused.value) == (
            f"channel 0x{APP_PARAMS.channel_id.hex()} is of chain 31337, app {APP}, but {path} is the store of"
            f" {IDENTITY.describe()}; add it to the store of its deployment"
        )
        assert store.channels() == [LEDGER_RECORD]
    assert "app" not in meta(path)
    with Store(path, identity=APP_IDENTITY) as store:  # recorded without app: this run's app is adopted
        assert store.identity == APP_IDENTITY
        store.add_channel(APP_RECORD)
    assert meta(path)["app"] == APP
    with Store(path) as store:
        assert store.identity == APP_IDENTITY
        assert store.channels() == [LEDGER_RECORD, APP_RECORD]


def test_open__run_without_app_on_store_with_app__recorded_identity_kept(tmp_path):
    path = tmp_path / "hub.db"
    written(path, LEDGER_RECORD, identity=APP_IDENTITY)
    recorded = meta(path)
    with Store(path, identity=IDENTITY) as store:
        assert store.identity == APP_IDENTITY
        store.add_channel(APP_RECORD)
        assert store.channels("app") == [APP_RECORD]
    assert meta(path) == recorded


def test_open__recorded_app_differs_from_runs__refused_unchanged(tmp_path):
    path = tmp_path / "hub.db"
    before = written(path, LEDGER_RECORD, APP_RECORD, identity=APP_IDENTITY)
    other = StoreIdentity(31337, LEDGER, VIRTUAL, OTHER_APP)
    with pytest.raises(StoreError) as refused:
        Store(path, identity=other)
    assert str(refused.value) == (
        f"{path} is the store of chain 31337, ledger {LEDGER}, virtual {VIRTUAL}, app {APP}; this run is on chain"
        f" 31337, ledger {LEDGER}, virtual {VIRTUAL}, app {other.app}; pass the store of this deployment (or the"
        " app adjudicator it was written for)"
    )
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hub.db"]


def test_open__recorded_with_app_run_on_another_ledger__refused_as_another_deployment(tmp_path):
    path = tmp_path / "hub.db"
    before = written(path, LEDGER_RECORD, identity=APP_IDENTITY)
    other = StoreIdentity(31337, "0x" + "11" * 20, VIRTUAL, APP)
    with pytest.raises(StoreError) as refused:
        Store(path, identity=other)
    assert str(refused.value) == (
        f"{path} is the store of {APP_IDENTITY.describe()}; this run is on {other.describe()};"
        " pass the store of this deployment (or the --ledger/--virtual it was written for)"
    )
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("identity", "shown"),
    [(IDENTITY, IDENTITY.describe()), (replace(APP_IDENTITY, app=OTHER_APP), None)],
    ids=["no-app", "another-app"],
)
def test_open__identity_for_store_holding_app_channel__app_channel_checked_like_the_others(tmp_path, identity, shown):
    path = tmp_path / "hub.db"
    before = written(path, LEDGER_RECORD, APP_RECORD)  # no identity: nothing checked yet
    with pytest.raises(StoreError) as refused:
        Store(path, identity=identity)
    assert str(refused.value) == (
        f"{path} holds channel 0x{APP_PARAMS.channel_id.hex()} of chain 31337, app {APP}; this run is on"
        f" {shown or identity.describe()}; pass the store of this deployment (or the --ledger/--virtual it was"
        " written for)"
    )
    assert path.read_bytes() == before
    with Store(path, identity=APP_IDENTITY) as store:  # its own app adjudicator: admitted and recorded
        assert store.identity == APP_IDENTITY
    assert meta(path)["app"] == APP


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ([("app", APP)], "only app recorded"),
        ([("chain_id", "31337"), ("ledger", LEDGER), ("virtual", VIRTUAL), ("app", "")], "an empty app"),
    ],
    ids=["app-alone", "empty-app"],
)
def test_open__malformed_app_in_meta__refused_restore_from_backup(tmp_path, rows, reason):
    path = tmp_path / "hub.db"
    written(path, LEDGER_RECORD)
    db = sqlite3.connect(path)
    db.executemany("INSERT INTO perun_meta VALUES (?, ?)", rows)
    db.commit()
    db.close()
    with pytest.raises(StoreError) as refused:
        Store(path)
    assert str(refused.value) == (
        f"{path} records a malformed identity in perun_meta ({reason}); restore the store from a backup"
    )


def test_open__postgres_app__adopted_then_another_refused(postgres):
    target = postgres_schema(postgres, "hub")
    with open_store(target, identity=IDENTITY) as store:
        store.add_channel(LEDGER_RECORD)
    with open_store(target, identity=APP_IDENTITY) as store:
        assert store.identity == APP_IDENTITY
        store.add_channel(APP_RECORD)
    with psycopg.connect(target) as db:
        recorded = dict(db.execute("SELECT key, value FROM perun_meta").fetchall())
    assert recorded["app"] == APP
    other = StoreIdentity(31337, LEDGER, VIRTUAL, OTHER_APP)
    with pytest.raises(StoreError, match=rf"is the store of .*, app {APP}; this run is on .*, app {other.app}; pass"):
        open_store(target, identity=other)
    with open_store(target, identity=IDENTITY) as store:
        assert store.identity == APP_IDENTITY
        assert store.channels() == [LEDGER_RECORD, APP_RECORD]
