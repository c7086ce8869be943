"""The hub's PostgreSQL store loses its connection (a database restart, a failover): the request that
finds out is answered with INTERNAL_ERROR "retry later" and leaves nothing written, the hub logs one line
(no traceback), and the wallet's resend is served on a new connection: both stores end equal."""

from __future__ import annotations

import logging

import psycopg
import pytest

from perun_vyper import Hub, open_store
from perun_vyper.errors import HubError
from perun_vyper.node import HubServer
from perun_vyper.node.rpc import INTERNAL_ERROR
from tests.conftest import postgres_schema
from tests.node.conftest import POLICY, Clock, run, wallet
from tests.support.constants import E
from tests.support.parties import ALICE_KEY, INGRID_KEY, LEDGER_DOMAIN, MAX_VALIDITY, NOW, VIRTUAL_DOMAIN


def test_store_connection_lost__request_refused_retry__resend_served(postgres, store_at, caplog):
    hub_store = open_store(postgres_schema(postgres, "ingrid"))
    hub = Hub(INGRID_KEY, hub_store, virtual_domain=VIRTUAL_DOMAIN, max_validity=MAX_VALIDITY, clock=lambda: NOW)

    async def scenario():
        async with (
            HubServer(hub, LEDGER_DOMAIN, POLICY, clock=Clock()) as server,
            wallet(server, ALICE_KEY, store_at("alice")) as alice,
        ):
            channel = await alice.open_channel(E, E)
            channel.confirm_funding((E, E))
            await server.work(hub.channel(channel.channel_id).confirm_funding, (E, E))
            await alice.pay(channel.channel_id, 1)
            pid = hub_store._db.info.backend_pid
            with psycopg.connect(postgres, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            with pytest.raises(HubError) as refused:
                await alice.pay(channel.channel_id, 2)
            in_flight = channel.pending()
            resent = await alice.resume()
            return channel, refused.value, in_flight, resent

    with caplog.at_level(logging.WARNING, logger="perun_vyper.node.server"):
        channel, refused, in_flight, resent = run(scenario())
    assert refused.code == INTERNAL_ERROR
    assert str(refused) == "the hub's database is unavailable; nothing was written: retry later"
    assert in_flight is not None and in_flight.version == 2
    assert [signed.state.version for signed in resent] == [2]
    assert hub_store.latest(channel.channel_id) == store_at("alice").latest(channel.channel_id) == resent[0]
    [record] = [r for r in caplog.records if r.name == "perun_vyper.node.server"]
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert record.getMessage().startswith("ledger.update: the store's database is unavailable (terminating connection")
    hub_store.close()
