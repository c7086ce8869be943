"""A PostgreSQL store outlives its connection: when the server ends it (a restart, a failover, an
administrator's pg_terminate_backend), the statement or transaction that finds out fails and writes
nothing (the hub answers that request with INTERNAL_ERROR, "retry"), and the next use opens a new
connection. Nothing is retried behind the caller's back."""

import psycopg
import pytest

from perun_vyper import ChannelParams, ChannelRecord, LedgerState, SignedState, open_store
from tests.conftest import postgres_schema
from tests.support.parties import ALICE, BOB, LEDGER_DOMAIN

PARAMS = ChannelParams(ALICE, BOB, nonce=9)
RECORD = ChannelRecord(PARAMS.channel_id, "ledger", PARAMS, LEDGER_DOMAIN, ALICE)
ZERO = SignedState(LedgerState.initial(PARAMS.channel_id, 5, 5), b"a" * 65, b"b" * 65)


def _terminate(url: str, store) -> None:
    pid = store._db.info.backend_pid
    with psycopg.connect(url, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0] is True


def test_connection_ended_by_server__that_use_fails__next_use_reconnects(postgres):
    target = postgres_schema(postgres, "alice")
    with open_store(target) as store:
        store.add_channel(RECORD)
        _terminate(postgres, store)
        with pytest.raises(psycopg.OperationalError, match="terminating connection due to administrator command"):
            store.insert_state(PARAMS.channel_id, ZERO)
        assert store.newest(PARAMS.channel_id) is None  # a new connection; the failed write is not there
        assert store.insert_state(PARAMS.channel_id, ZERO)
        assert store.latest(PARAMS.channel_id) == ZERO


def test_connection_ended_mid_transaction__fails_writes_nothing__then_reconnects(postgres):
    target = postgres_schema(postgres, "alice")
    with open_store(target) as store:
        store.add_channel(RECORD)
        with pytest.raises(psycopg.OperationalError), store.transaction():
            store.lock_channel(PARAMS.channel_id)
            store.insert_state(PARAMS.channel_id, ZERO)
            _terminate(postgres, store)
            store.latest(PARAMS.channel_id)  # the connection is gone: the transaction cannot go on
        assert not store.in_transaction
        assert store.newest(PARAMS.channel_id) is None  # rolled back with the connection
        assert store.insert_state(PARAMS.channel_id, ZERO)
        assert store.latest(PARAMS.channel_id) == ZERO
