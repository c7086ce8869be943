"""The hub service's session rules: what it publishes, login, and every kind of bad input answered with
its documented JSON-RPC error (exact code and message) while the connection and the server keep serving."""

from __future__ import annotations

import json

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from perun_vyper import Signer
from perun_vyper.core.codec import hexstr
from perun_vyper.node import Limits
from perun_vyper.node.auth import login_message, personal_digest
from tests.node.conftest import call, error_of, login, raw, run, worker_blocked
from tests.support.parties import ALICE, ALICE_KEY, BOB_KEY, INGRID, NOW, STRANGER_KEY

STATE = {
    "channel": "0x" + "00" * 32,
    "version": 1,
    "balanceA": "1",
    "balanceB": "1",
    "fundingA": "1",
    "fundingB": "1",
}
METHODS = (
    "app.close, app.countersign, app.funded, app.list, app.proposals, app.propose_open, app.update, "
    "auth.challenge, auth.login, channel.list, hub.info, ledger.close, ledger.countersign, ledger.funded, "
    "ledger.proposals, ledger.propose_open, ledger.update, virtual.accept, virtual.close, virtual.list, "
    "virtual.propose, virtual.route, virtual.send"
)


def test_info__publishes_protocol_hub_chain_adjudicators_policy_and_limits(serving):
    async def scenario():
        async with serving() as server, raw(server) as ws:
            return await call(ws, "hub.info")

    answer = run(scenario())
    assert answer["id"] == 1 and answer["jsonrpc"] == "2.0"
    info = answer["result"]
    assert info["protocol"] == 1
    assert info["hub"] == INGRID
    assert info["chainId"] == 31337
    assert info["ledgerAdjudicator"].lower() == "0x" + "5e" * 20
    assert info["virtualAdjudicator"].lower() == "0x" + "7f" * 20
    assert info["policy"] == {
        "collateral": str(2 * 10**18),
        "assets": ["0x0000000000000000000000000000000000000000"],
        "minChallengeDuration": 3600,
        "maxChallengeDuration": 2592000,
        "maxChannelsPerUser": 8,
        "maxValidity": 7 * 86400,
    }
    assert info["limits"] == {
        "maxRequestBytes": 65536,
        "maxFrameBytes": 1048576,
        "maxInFlight": 16,
        "ratePerSecond": 50.0,
        "burst": 100,
        "challengeSeconds": 300,
    }
    assert info["server"].startswith("perun_vyper/")
    assert (info["appAdjudicator"], info["apps"]) == (None, [])  # a hub without app channels


# --- authentication -----------------------------------------------------------------------------------


def test_login__signed_challenge__connection_acts_for_that_address(serving):
    async def scenario():
        async with serving() as server, raw(server) as ws:
            challenge = (await call(ws, "auth.challenge", {"address": ALICE.lower()}))["result"]
            signature = Signer(ALICE_KEY).sign(personal_digest(challenge["message"]))
            answer = await call(ws, "auth.login", {"nonce": challenge["nonce"], "signature": hexstr(signature)})
            return challenge, answer, await call(ws, "channel.list")

    challenge, answer, listing = run(scenario())
    assert challenge["expires"] == NOW + 300
    assert challenge["message"] == login_message(INGRID, 31337, ALICE, challenge["nonce"], NOW + 300)
    assert len(bytes.fromhex(challenge["nonce"][2:])) == 32
    assert answer["result"] == {"address": ALICE}
    assert listing["result"] == {"channels": []}


def test_login__signature_by_another_key__refused(serving):
    async def scenario():
        async with serving() as server, raw(server) as ws:
            challenge = (await call(ws, "auth.challenge", {"address": ALICE}))["result"]
            signature = Signer(STRANGER_KEY).sign(personal_digest(challenge["message"]))
            answer = await call(ws, "auth.login", {"nonce": challenge["nonce"], "signature": hexstr(signature)})
            return answer, await call(ws, "channel.list")

    answer, listing = run(scenario())
    stranger = Signer(STRANGER_KEY).address
    assert error_of(answer) == (
        1002,
        f"the challenge was signed by {stranger}, not {ALICE}; sign the message with the channel key of the "
        "address you log in as",
    )
    assert error_of(listing) == (1001, "channel.list needs a login; call auth.challenge first")


def test_login__malformed_signature__refused(serving):
    async def scenario():
        async with serving() as server, raw(server) as ws:
            challenge = (await call(ws, "auth.challenge", {"address": ALICE}))["result"]
            return await call(ws, "auth.login", {"nonce": challenge["nonce"], "signature": "0x" + "00" * 65})

    assert error_of(run(scenario())) == (
        1002,
        "the login signature is malformed: r or s is zero; the signature is malformed",
    )


def test_login__expired_challenge__refused(serving, clock):
    async def scenario():
        async with serving() as server, raw(server) as ws:
            challenge = (await call(ws, "auth.challenge", {"address": ALICE}))["result"]
            clock.now += 300
            signature = Signer(ALICE_KEY).sign(personal_digest(challenge["message"]))
            return await call(ws, "auth.login", {"nonce": challenge["nonce"], "signature": hexstr(signature)})

    assert error_of(run(scenario())) == (1002, f"the challenge expired at {NOW + 300}; call auth.challenge again")


def test_login__replayed_on_another_connection_or_twice__refused(serving):
    used = "unknown or used challenge: a challenge is valid once, on the connection that asked for it; call " + (
        "auth.challenge again"
    )

    async def scenario():
        async with serving() as server:
            async with raw(server) as first:
                challenge = (await call(first, "auth.challenge", {"address": ALICE}))["result"]
                login_params = {
                    "nonce": challenge["nonce"],
                    "signature": hexstr(Signer(ALICE_KEY).sign(personal_digest(challenge["message"]))),
                }
                ok = await call(first, "auth.login", login_params)
                again = await call(first, "auth.login", login_params)
            async with raw(server) as second:
                replayed = await call(second, "auth.login", login_params)
                other = await login(second, BOB_KEY)
                return ok, again, replayed, other, await call(second, "auth.challenge", {"address": ALICE})

    ok, again, replayed, other, switch = run(scenario())
    assert ok["result"] == {"address": ALICE}
    assert error_of(again)[0] == 1002 and "is logged in as" in error_of(again)[1]
    assert error_of(replayed) == (1002, used)
    assert other["result"] == {"address": Signer(BOB_KEY).address}
    assert error_of(switch) == (
        1002,
        f"this connection is logged in as {Signer(BOB_KEY).address} and acts for that address only; open another "
        "connection for another address",
    )


def test_unauthenticated__channel_methods__refused(serving):
    async def scenario():
        async with serving() as server, raw(server) as ws:
            return [await call(ws, method, {}) for method in ("channel.list", "ledger.propose_open", "ledger.update")]

    answers = run(scenario())
    assert [error_of(answer)[0] for answer in answers] == [1001, 1001, 1001]
    assert error_of(answers[2]) == (1001, "ledger.update needs a login; call auth.challenge first")


# --- malformed input ----------------------------------------------------------------------------------


def test_bad_frames__each_answered__connection_keeps_serving(serving):
    frames = [
        '{"jsonrpc": "2.0", "id": 1, "method": "hub.info"',  # truncated
        '[{"jsonrpc": "2.0", "id": 2, "method": "hub.info"}]',  # batch
        '{"jsonrpc": "1.0", "id": 3, "method": "hub.info"}',  # wrong version
        '{"jsonrpc": "2.0", "method": "hub.info"}',  # notification
        '{"jsonrpc": "2.0", "id": 5, "method": "hub.nothing"}',  # unknown method
        '{"jsonrpc": "2.0", "id": 6, "method": "hub.info", "extra": 1}',  # unknown member
        '{"jsonrpc": "2.0", "id": 7, "method": "hub.info", "params": [1]}',  # params by position
    ]

    async def scenario():
        async with serving() as server, raw(server) as ws:
            answers = []
            for frame in frames:
                await ws.send(frame)
                answers.append(json.loads(await ws.recv()))
            await ws.send(b"\x00\x01")
            answers.append(json.loads(await ws.recv()))
            answers.append(await call(ws, "hub.info", request_id="after"))
            return answers

    answers = run(scenario())
    parse, batch, version, notice, unknown, extra, positional, binary, after = answers
    assert parse["id"] is None and error_of(parse)[0] == -32700
    assert error_of(parse)[1].startswith("the frame is not valid JSON: ")
    assert batch["id"] is None
    assert error_of(batch) == (-32600, "batch requests are not supported; send one request per frame")
    assert version["id"] == 3
    assert error_of(version) == (-32600, "not a JSON-RPC 2.0 request: Invalid enum value '1.0' - at `$.jsonrpc`")
    assert notice["id"] is None
    assert error_of(notice) == (
        -32600,
        "the request has no id; every hub method answers, so send requests, not notifications",
    )
    assert unknown["id"] == 5
    assert error_of(unknown) == (
        -32601,
        f"unknown method 'hub.nothing'; this hub speaks protocol 1 ({METHODS})",
    )
    assert error_of(extra) == (-32600, "not a JSON-RPC 2.0 request: Object contains unknown field `extra`")
    assert error_of(positional) == (-32602, "invalid params of hub.info: Expected `object`, got `array`")
    assert error_of(binary) == (-32600, "binary frames are not accepted; send JSON text frames")
    assert after["id"] == "after" and after["result"]["protocol"] == 1


def test_wrong_param_types__invalid_params_names_the_field(serving):
    async def scenario():
        async with serving() as server, raw(server, ALICE_KEY) as ws:
            bad_address = await call(ws, "auth.challenge", {"address": 42})
            bad_update = await call(
                ws,
                "ledger.update",
                {"update": {"state": STATE, "signature": 7}},
            )
            bad_amount = await call(
                ws,
                "ledger.propose_open",
                {
                    "params": {
                        "participantA": ALICE,
                        "participantB": INGRID,
                        "asset": "0x" + "00" * 20,
                        "challengeDuration": 3600,
                        "nonce": "1",
                    },
                    "depositA": 10**18,
                    "depositB": "1",
                    "signature": "0x" + "11" * 65,
                },
            )
            return bad_address, bad_update, bad_amount

    bad_address, bad_update, bad_amount = run(scenario())
    assert error_of(bad_address) == (
        -32602,
        "invalid params of auth.challenge: Expected `str`, got `int` - at `$.address`",
    )
    assert error_of(bad_update) == (
        -32602,
        "invalid params of ledger.update: Expected `str`, got `int` - at `$.update.signature`",
    )
    assert error_of(bad_amount) == (
        -32602,
        "invalid params of ledger.propose_open: Expected `str`, got `int` - at `$.depositA`",
    )


def test_oversized_frame__refused_then_served__beyond_the_frame_cap_closed(serving):
    async def scenario():
        async with serving() as server, raw(server) as ws:
            big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "hub.info", "params": {"pad": "x" * 70_000}})
            await ws.send(big)
            refused = json.loads(await ws.recv())
            served = await call(ws, "hub.info", request_id=2)
            await ws.send("x" * (1024 * 1024 + 1))
            try:
                await ws.recv()
            except ConnectionClosed as exc:
                closed = exc.rcvd.code
            return len(big.encode()), refused, served, closed

    size, refused, served, closed = run(scenario())
    assert size > 65536 and refused["id"] is None
    assert error_of(refused) == (1005, f"the request is {size} bytes; this hub takes at most 65536")
    assert served["result"]["protocol"] == 1
    assert closed == 1009  # WebSocket "message too big"


# --- floods -------------------------------------------------------------------------------------------


def test_flood__over_the_rate__refused_while_another_connection_is_served(serving):
    limits = Limits(rate_per_second=1.0, burst=5)

    async def scenario():
        async with serving(limits) as server, raw(server) as flooder, raw(server) as other:
            for n in range(40):
                await flooder.send(json.dumps({"jsonrpc": "2.0", "id": n, "method": "hub.info"}))
            answers = [json.loads(await flooder.recv()) for _ in range(40)]
            return answers, await call(other, "hub.info")

    answers, other = run(scenario())
    refused = [answer for answer in answers if "error" in answer]
    assert 40 - len(refused) <= 6  # the burst, and at most one token regained meanwhile
    assert {error_of(answer) for answer in refused} == {
        (1004, "too many requests: this connection may send 1 per second (bursts of 5); slow down")
    }
    assert sorted(answer["id"] for answer in answers) == list(range(40))
    assert other["result"]["protocol"] == 1


def test_flood__over_the_in_flight_limit__refused(serving):
    limits = Limits(max_in_flight=3)

    async def scenario():
        async with serving(limits) as server, raw(server, ALICE_KEY) as ws:
            async with worker_blocked(server):
                for n in range(5):
                    await ws.send(json.dumps({"jsonrpc": "2.0", "id": n, "method": "channel.list"}))
                refused = [json.loads(await ws.recv()) for _ in range(2)]
            answered = [json.loads(await ws.recv()) for _ in range(3)]
            return refused, answered

    refused, answered = run(scenario())
    assert [answer["id"] for answer in refused] == [3, 4]
    assert {error_of(answer) for answer in refused} == {
        (1004, "3 requests of this connection are not answered yet (at most 3); wait for answers before sending more")
    }
    assert [answer["result"] for answer in answered] == [{"channels": []}] * 3


def test_server__many_connections_come_and_go__still_serving(serving):
    async def scenario():
        async with serving() as server:
            for _ in range(20):
                ws = await connect(server.url)
                await ws.send('{"jsonrpc": "2.0", "id": 1, "method": "hub.info"}')
                await ws.close()  # before reading the answer
            await server.drain()
            async with raw(server) as ws:
                return await call(ws, "hub.info")

    assert run(scenario())["result"]["protocol"] == 1
