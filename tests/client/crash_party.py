"""Three parties paying in a loop, each with its own store: the process ``test_crash.py`` kills.

    python tests/client/crash_party.py ALICE INGRID BOB [--payments N] [--seed S] [--die-at STEP --die-after N]

Alice - Ingrid and Ingrid - Bob ledger channels; ALICE, INGRID and BOB are the parties' stores (what
``open_store`` takes: a file path, sqlite:///path or a postgresql:// URL).
On start every party recovers its channels from its store (opening those it does not hold yet), both
sides of each channel send their proposal in flight again (``resume``), and the loop pays in random
directions. After each payment, once the proposer has committed the countersignature (so both stores
hold the fully signed state), it prints ``ack <left|right> <version>``. With ``--payments`` it stops
after that many payments and exits 0; otherwise it runs until killed. ``--die-at`` kills the process
itself (SIGKILL) right after one protocol step of payment number ``--die-after``: once the proposal is
committed, once the receiver committed and countersigned, or once the proposer committed the
countersignature but before the ``ack`` line. No chain: the deposits (1 ETH
per side) are taken as made (``confirm_funding``).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys

from perun_vyper import ChannelParams, LedgerChannel, Signer, StoreError, open_store, resume
from tests.support.constants import E
from tests.support.parties import ALICE_KEY, BOB_KEY, INGRID_KEY, LEDGER_DOMAIN

KEYS = {"alice": ALICE_KEY, "ingrid": INGRID_KEY, "bob": BOB_KEY}
ADDRESSES = {name: Signer(key).address for name, key in KEYS.items()}
DOMAIN = LEDGER_DOMAIN
DEPOSIT = E
CHANNELS = {
    "left": (ChannelParams(ADDRESSES["alice"], ADDRESSES["ingrid"], nonce=1), ("alice", "ingrid")),
    "right": (ChannelParams(ADDRESSES["ingrid"], ADDRESSES["bob"], nonce=2), ("ingrid", "bob")),
}


def recover(targets: dict[str, str]) -> dict[str, tuple[LedgerChannel, LedgerChannel]]:
    stores = {name: open_store(targets[name]) for name in KEYS}
    channels = {}
    for label, (params, (first, second)) in CHANNELS.items():
        sides = []
        for name in (first, second):
            try:
                channel = LedgerChannel.restore(stores[name], params.channel_id, KEYS[name])
            except StoreError:  # killed before this party opened the channel
                channel = LedgerChannel.open(params, DOMAIN, KEYS[name], stores[name], DEPOSIT, DEPOSIT)
            channel.confirm_funding((DEPOSIT, DEPOSIT))
            sides.append(channel)
        resume(sides[0], sides[1])
        channels[label] = (sides[0], sides[1])
    return channels


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in KEYS:
        parser.add_argument(name, help=f"{name}'s store: a file path, sqlite:///path or postgresql:// URL")
    parser.add_argument("--payments", type=int, default=0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--die-at", choices=("proposed", "accepted", "completed"), default=None)
    parser.add_argument("--die-after", type=int, default=-1, help="payments done before the SIGKILL at --die-at")
    args = parser.parse_args()
    channels = recover({name: getattr(args, name) for name in KEYS})
    print("ready " + " ".join(f"{label}={pair[0].state.version}" for label, pair in channels.items()), flush=True)
    rng = random.Random(args.seed)
    done = 0
    while not args.payments or done < args.payments:
        label = rng.choice(("left", "right"))
        payer, payee = channels[label] if rng.random() < 0.5 else reversed(channels[label])
        balance = (payer.state.balance_a, payer.state.balance_b)[payer.side]
        if balance == 0:
            payer, payee = payee, payer
        update = payer.propose_payment(rng.randint(1, min(10**15, max(balance, 1))))
        die_here = done == args.die_after
        if die_here and args.die_at == "proposed":
            os.kill(os.getpid(), signal.SIGKILL)
        countersig = payee.accept(update)
        if die_here and args.die_at == "accepted":
            os.kill(os.getpid(), signal.SIGKILL)
        signed = payer.complete(update, countersig)
        if die_here and args.die_at == "completed":
            os.kill(os.getpid(), signal.SIGKILL)
        print(f"ack {label} {signed.state.version}", flush=True)
        done += 1
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
