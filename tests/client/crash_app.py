"""The SLA client and its provider in one app channel, each with its own store: the process
``test_app_crash.py`` kills.

    python tests/client/crash_app.py ALICE BOB [--moves N] [--die-at STEP --die-after N]

Alice is the client (side A), Bob the provider (side B); ALICE and BOB are their stores (what
``open_store`` takes: a file path, sqlite:///path or a postgresql:// URL).
On start each party recovers the channel from its store (opening it if it does not hold it yet), both
send their proposal in flight again (``resume``), and it prints ``ready alice=<version> bob=<version>``.
Then the loop moves on from whatever state is latest: with no request pending the client requests
(``request_for`` the new version), with one pending the provider answers it (``answer_to`` the request).
After each move, once the proposer has committed the countersignature (so both stores hold the fully
signed state), it prints ``ack <version>``. With ``--moves`` it stops after that many moves and exits 0;
otherwise it runs until killed. ``--die-at`` kills the process itself (SIGKILL) right after one protocol
step of move number ``--die-after``: once the proposal is committed, once the receiver committed and
countersigned, or once the proposer committed the countersignature but before the ``ack`` line. No
chain: the moves are checked by the SLA rules in Python (``sla.check``) and the deposits (1 ETH per side)
are taken as made (``confirm_funding``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from perun_vyper import AppChannel, AppParams, Domain, Signer, StoreError, open_store, resume
from perun_vyper.core import sla
from perun_vyper.core.codec import keccak256
from perun_vyper.core.sla import SlaData
from tests.support.constants import E
from tests.support.parties import ALICE_KEY, BOB_KEY

KEYS = {"alice": ALICE_KEY, "bob": BOB_KEY}  # the client (side A), the provider (side B)
ADDRESSES = {name: Signer(key).address for name, key in KEYS.items()}
DOMAIN = Domain.app(31337, "0x" + "a9" * 20)
PARAMS = AppParams(ADDRESSES["alice"], ADDRESSES["bob"], "0x" + "51" * 20, nonce=3)
DEPOSIT = E
PRICE, PENALTY = 10**9, 10**12
TERMS = SlaData(PRICE, PENALTY, 10**6).encode()  # requests enough that the loop never runs out


def request_for(version: int) -> bytes:
    """The client's request that makes ``version``: fresh per version, non-zero."""
    return keccak256(b"request" + version.to_bytes(8, "big"))


def answer_to(request: bytes) -> bytes:
    return keccak256(request)


def mover(version: int) -> int | None:
    """Who proposes ``version``: the client the odd ones (requests), the provider the even ones
    (answers), both version 0."""
    return None if version == 0 else (sla.CLIENT if version % 2 else sla.PROVIDER)


def recover(targets: dict[str, str]) -> tuple[AppChannel, AppChannel]:
    sides = []
    for name, key in KEYS.items():
        store = open_store(targets[name])
        try:
            channel = AppChannel.restore(store, PARAMS.channel_id, key, rules=sla.check)
        except StoreError:  # killed before this party opened the channel
            channel = AppChannel.open(PARAMS, DOMAIN, key, store, DEPOSIT, DEPOSIT, TERMS, rules=sla.check)
        channel.confirm_funding((DEPOSIT, DEPOSIT))
        sides.append(channel)
    client, provider = sides
    resume(client, provider)
    return client, provider


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in KEYS:
        parser.add_argument(name, help=f"{name}'s store: a file path, sqlite:///path or postgresql:// URL")
    parser.add_argument("--moves", type=int, default=0)
    parser.add_argument("--die-at", choices=("proposed", "accepted", "completed"), default=None)
    parser.add_argument("--die-after", type=int, default=-1, help="moves done before the SIGKILL at --die-at")
    args = parser.parse_args()
    client, provider = recover({name: getattr(args, name) for name in KEYS})
    print(f"ready alice={client.app_state.version} bob={provider.app_state.version}", flush=True)
    done = 0
    while not args.moves or done < args.moves:
        state = client.app_state
        data = SlaData.decode(state.app_data)
        if data.pending:
            proposer, receiver = provider, client
            update = provider.propose_move(sla.respond(provider.app_state, answer_to(data.request)))
        else:
            proposer, receiver = client, provider
            update = client.propose_move(sla.request(state, request_for(state.version + 1)))
        die_here = done == args.die_after
        if die_here and args.die_at == "proposed":
            os.kill(os.getpid(), signal.SIGKILL)
        countersig = receiver.accept(update)
        if die_here and args.die_at == "accepted":
            os.kill(os.getpid(), signal.SIGKILL)
        signed = proposer.complete(update, countersig)
        if die_here and args.die_at == "completed":
            os.kill(os.getpid(), signal.SIGKILL)
        print(f"ack {signed.state.version}", flush=True)
        done += 1
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
