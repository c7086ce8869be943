"""A store knows what it is (the perun_meta table) and refuses what is not it: another application's
file, a newer schema, a missing store where one is expected, another deployment's store or channel.
A refusal leaves the file byte for byte as it was, with no -wal/-shm/-journal beside it."""

import sqlite3
from pathlib import Path

import pytest
from eth_utils import to_checksum_address

from perun_vyper import (
    ChannelRecord,
    Domain,
    InvalidParams,
    Store,
    StoreError,
    StoreIdentity,
    VirtualParams,
)
from perun_vyper.store import SCHEMA_VERSION
from perun_vyper.store.records import encode_domain, encode_params, encode_state
from tests.support.parties import ALICE, BOB, INGRID, LEDGER_DOMAIN, NOW, VIRTUAL_DOMAIN, snapshot
from tests.support.stores import IDENTITY, LEDGER, LEDGER_RECORD, PARAMS, STATE, VIRTUAL

VPARAMS = VirtualParams(
    ALICE,
    BOB,
    INGRID,
    b"\x01" * 32,
    b"\x02" * 32,
    100,
    0,
    NOW + 3600,
    3600,
    1,
    ledger_adjudicator=LEDGER,
    chain_id=31337,
)
VIRTUAL_RECORD = ChannelRecord(VPARAMS.channel_id, "virtual", VPARAMS, VIRTUAL_DOMAIN, ALICE)

# The schema perun-vyper wrote before perun_meta existed (schema version 0), as it was.
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS channels (
    id BLOB PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('ledger', 'virtual')),
    params TEXT NOT NULL,
    domain TEXT NOT NULL,
    owner TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS states (
    channel BLOB NOT NULL REFERENCES channels (id),
    version INTEGER NOT NULL,
    state TEXT NOT NULL,
    sig_a BLOB,
    sig_b BLOB,
    PRIMARY KEY (channel, version)
);
"""


def files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def meta(path: Path) -> dict[str, str]:
    db = sqlite3.connect(path)
    try:
        return dict(db.execute("SELECT key, value FROM perun_meta"))
    finally:
        db.close()


def sql(path: Path, *statements: str) -> None:
    db = sqlite3.connect(path)
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


def written(path: Path, *records: ChannelRecord, identity: StoreIdentity | None = None) -> bytes:
    """A closed store at ``path`` holding ``records`` (and a state of the ledger channel); its bytes."""
    with Store(path, identity=identity) as store:
        for record in records:
            store.add_channel(record)
        if LEDGER_RECORD in records:
            store.save_state(PARAMS.channel_id, STATE)
    return path.read_bytes()


def test_open__text_file__refused_unchanged(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("channel ids, one a line\n")
    with pytest.raises(StoreError) as refused:
        Store(path)
    assert str(refused.value) == (
        f"{path} is not a SQLite database (its first bytes are not the SQLite header);"
        " pass the store file perun-vyper wrote, or a new path"
    )
    assert path.read_text() == "channel ids, one a line\n"
    assert files(tmp_path) == ["notes.txt"]


@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
def test_open__another_apps_sqlite__refused_unchanged(tmp_path, journal_mode):
    path = tmp_path / "app.db"
    sql(path, f"PRAGMA journal_mode={journal_mode}", "CREATE TABLE notes (text TEXT)", "CREATE TABLE tags (name TEXT)")
    before = path.read_bytes()
    with pytest.raises(StoreError) as refused:
        Store(path)
    assert str(refused.value) == (
        f"{path} holds another application's tables (notes, tags), not a perun-vyper store; nothing was changed."
        " Pass the store perun-vyper wrote, or a new one"
    )
    assert path.read_bytes() == before
    assert files(tmp_path) == ["app.db"]  # no -wal, -shm or -journal
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == journal_mode
    db.close()


def test_open__tables_named_like_ours_with_other_columns__refused(tmp_path):
    path = tmp_path / "app.db"
    sql(path, "CREATE TABLE channels (name TEXT)", "CREATE TABLE states (code TEXT)")
    with pytest.raises(StoreError, match=r"holds another application's tables \(channels, states\)"):
        Store(path)


def test_open__empty_file_without_create__refused_still_empty(tmp_path):
    path = tmp_path / "wallet.db"
    path.touch()
    with pytest.raises(StoreError) as refused:
        Store(path, create=False)
    assert str(refused.value) == (
        f"{path} holds no perun-vyper store (the file is empty); pass the store your wallet or hub wrote"
    )
    assert path.stat().st_size == 0
    assert files(tmp_path) == ["wallet.db"]


def test_open__missing_file_without_create__refused_not_created(tmp_path):
    path = tmp_path / "wallet.db"
    with pytest.raises(StoreError) as refused:
        Store(path, create=False)
    assert str(refused.value) == (
        f"{path} holds no perun-vyper store (the file does not exist); pass the store your wallet or hub wrote"
    )
    assert files(tmp_path) == []


def test_open__database_without_tables_without_create__refused_unchanged(tmp_path):
    path = tmp_path / "wallet.db"
    sql(path, "CREATE TABLE t (x)", "DROP TABLE t")  # a valid SQLite file holding nothing
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"holds no perun-vyper store \(a database without tables\); pass"):
        Store(path, create=False)
    assert path.read_bytes() == before


def test_open__existing_store_without_create__opens(tmp_path):
    path = tmp_path / "wallet.db"
    written(path, LEDGER_RECORD)
    with Store(path, create=False) as store:
        assert store.channels() == [LEDGER_RECORD]


def test_open__new_store__records_format_and_version_only(tmp_path):
    with Store(tmp_path / "alice.db") as store:  # SQLite only: test_store_postgres.py has the PostgreSQL one
        assert store.identity is None
    assert meta(tmp_path / "alice.db") == {"format": "perun-vyper store", "schema_version": str(SCHEMA_VERSION)}
    assert SCHEMA_VERSION == 2


def _legacy(path: Path) -> None:
    """A store as perun-vyper wrote it before perun_meta: the old two tables, one channel, one state."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(OLD_SCHEMA)
    db.execute(
        "INSERT INTO channels VALUES (?, 'ledger', ?, ?, ?)",
        (PARAMS.channel_id, encode_params(PARAMS), encode_domain(LEDGER_DOMAIN), ALICE),
    )
    db.execute(
        "INSERT INTO states VALUES (?, 0, ?, ?, ?)",
        (PARAMS.channel_id, encode_state(STATE.state), b"a" * 65, b"b" * 65),
    )
    db.commit()
    db.close()


@pytest.mark.parametrize("identity", [None, IDENTITY])
def test_open__legacy_store__adopted_with_channels_intact(tmp_path, identity):
    path = tmp_path / "wallet.db"
    _legacy(path)
    with Store(path, identity=identity, create=False) as store:
        assert store.identity == identity
        assert snapshot(store) == [(LEDGER_RECORD, [STATE])]
    recorded = {"format": "perun-vyper store", "schema_version": "2"}  # migrated (test_store_migration.py)
    if identity:
        recorded |= {"chain_id": "31337", "ledger": IDENTITY.ledger, "virtual": IDENTITY.virtual}
    assert meta(path) == recorded


def test_open__legacy_store_of_another_deployment__refused_unchanged(tmp_path):
    path = tmp_path / "wallet.db"
    _legacy(path)
    before = path.read_bytes()
    with pytest.raises(StoreError, match=f"holds channel 0x{PARAMS.channel_id.hex()} of chain 31337, ledger "):
        Store(path, identity=StoreIdentity(1, LEDGER, VIRTUAL))
    assert path.read_bytes() == before
    assert files(tmp_path) == ["wallet.db"]


def test_open__newer_schema_version__refused_unchanged(tmp_path):
    path = tmp_path / "wallet.db"
    written(path, LEDGER_RECORD)
    sql(path, "UPDATE perun_meta SET value = '3' WHERE key = 'schema_version'")
    before = path.read_bytes()
    with pytest.raises(StoreError) as refused:
        Store(path)
    assert str(refused.value) == (
        f"{path} is a perun-vyper store of schema version 3, newer than version 2 that this perun-vyper reads;"
        " upgrade perun-vyper to open it"
    )
    assert path.read_bytes() == before
    assert files(tmp_path) == ["wallet.db"]


def test_open__identity__recorded_then_another_refused_unchanged(tmp_path):
    path = tmp_path / "hub.db"
    before = written(path, LEDGER_RECORD, identity=IDENTITY)
    assert meta(path)["chain_id"] == "31337" and meta(path)["ledger"] == IDENTITY.ledger
    other = StoreIdentity(1, "0x" + "11" * 20, VIRTUAL)
    with pytest.raises(StoreError) as refused:
        Store(path, identity=other)
    assert str(refused.value) == (
        f"{path} is the store of chain 31337, ledger {IDENTITY.ledger}, virtual {IDENTITY.virtual};"
        f" this run is on chain 1, ledger {other.ledger}, virtual {IDENTITY.virtual};"
        " pass the store of this deployment (or the --ledger/--virtual it was written for)"
    )
    assert path.read_bytes() == before
    assert files(tmp_path) == ["hub.db"]  # a WAL-mode file: not even a read-only -shm was left


def test_open__same_identity__reopens_with_channels_intact(tmp_path):
    path = tmp_path / "hub.db"
    written(path, LEDGER_RECORD, VIRTUAL_RECORD, identity=IDENTITY)
    with Store(path, identity=StoreIdentity(31337, LEDGER.upper().replace("0X", "0x"), VIRTUAL)) as store:
        assert store.identity == IDENTITY
        assert snapshot(store) == [(LEDGER_RECORD, [STATE]), (VIRTUAL_RECORD, [])]  # in the order added
    with Store(path) as store:  # no identity named: the recorded one still shows
        assert store.identity == IDENTITY


@pytest.mark.parametrize(
    ("identity", "named"),
    [
        (StoreIdentity(1, LEDGER, VIRTUAL), LEDGER_RECORD),
        (StoreIdentity(31337, "0x" + "11" * 20, VIRTUAL), LEDGER_RECORD),
        (StoreIdentity(31337, LEDGER, "0x" + "22" * 20), VIRTUAL_RECORD),
    ],
    ids=["chain", "ledger", "virtual"],
)
def test_open__identity_for_channels_of_another_deployment__refused_unchanged(tmp_path, identity, named):
    path = tmp_path / "hub.db"
    before = written(path, LEDGER_RECORD, VIRTUAL_RECORD)
    with pytest.raises(StoreError) as refused:
        Store(path, identity=identity)
    domain = f"chain 31337, {named.kind} {IDENTITY.address(named.kind)}"
    assert str(refused.value) == (
        f"{path} holds channel 0x{named.channel_id.hex()} of {domain}; this run is on {identity.describe()};"
        " pass the store of this deployment (or the --ledger/--virtual it was written for)"
    )
    assert path.read_bytes() == before
    with Store(path) as store:
        assert store.identity is None


@pytest.mark.parametrize(
    ("record", "domain"),
    [
        (LEDGER_RECORD, Domain(LEDGER_DOMAIN.name, LEDGER_DOMAIN.version, 1, LEDGER)),
        (LEDGER_RECORD, VIRTUAL_DOMAIN),  # a ledger channel signed for the virtual adjudicator
        (VIRTUAL_RECORD, LEDGER_DOMAIN),
    ],
    ids=["chain", "ledger-contract", "virtual-contract"],
)
def test_add_channel__domain_of_another_deployment__refused_nothing_written(tmp_path, record, domain):
    path = tmp_path / "hub.db"
    with Store(path, identity=IDENTITY) as store:
        stranger = ChannelRecord(record.channel_id, record.kind, record.params, domain, record.owner)
        with pytest.raises(StoreError) as refused:
            store.add_channel(stranger)
        assert str(refused.value) == (
            f"channel 0x{record.channel_id.hex()} is of chain {domain.chain_id}, {record.kind}"
            f" {to_checksum_address(domain.verifying_contract)}, but {path} is the store of"
            f" {IDENTITY.describe()}; add it to the store of its deployment"
        )
        assert snapshot(store) == []
        store.add_channel(record)
        assert store.channels() == [record]


def test_identity__checksummed_and_described():
    identity = StoreIdentity(31337, "0x" + "5e" * 20, "0x" + "7f" * 20)
    assert identity == IDENTITY
    assert identity.describe() == (
        "chain 31337, ledger 0x5e5E5e5e5E5e5E5E5e5E5E5e5e5E5E5E5e5E5E5e,"
        " virtual 0x7f7F7F7f7F7f7f7f7F7f7f7F7f7F7f7f7f7f7F7F"
    )
    with pytest.raises(InvalidParams, match="ledger must be an adjudicator address"):
        StoreIdentity(31337, "0x1234", VIRTUAL)
    with pytest.raises(InvalidParams, match="chain_id must be a positive integer"):
        StoreIdentity(0, LEDGER, VIRTUAL)
