"""End to end: `ape run watch` as a subprocess on the test's own Anvil, while the test registers a stale state.

The subprocess reaches the node by URL (``--network <uri>``: Ape's node provider on an ad-hoc
``ethereum:custom`` network, chain id read from the node) and sends from ``TEST::4``, the ``watcher``
fixture's account. It exits by itself after three actions (or two minutes at most); the test reads its
lines as they come. (``ethereum:local:<uri>`` would sign with the local network's chain id, which the
test Anvil refuses: "invalid chain id for signer".)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from perun_vyper.contracts import recorded_pair, recorded_pairs
from perun_vyper.core.display import utc
from tests.support.checks import assert_settled
from tests.support.constants import HOUR, E, M
from tests.support.process import Output

ROOT = Path(__file__).resolve().parents[2]


def test_watch_cli__stale_registration_while_running__refuted_and_concluded(
    ledger, virtual, chain, open_channel, signed, remember_ledger, store, alice, bob, watcher, tmp_path
):
    params, initial = open_channel(E, E)
    states = [initial]
    for amount, side in ((200 * M, 0), (600 * M, 1)):  # Alice: 0.8, then 1.4
        states.append(states[-1].pay(amount, side))
    s0, s1, s2 = states
    remember_ledger(params, alice, [s0, s1, s2])
    alice_balance, alice_nonce = alice.balance, alice.nonce
    watcher_balance, watcher_nonce = watcher.balance, watcher.nonce
    uri = chain.provider.uri
    assert uri.startswith("http://")

    command = [
        str(Path(sys.executable).with_name("ape")), "run", "watch",
        "--network", uri, "--account", "TEST::4", "--store", store.target,
        "--ledger", str(ledger.address), "--virtual", str(virtual.address),
        "--interval", "0.5", "--max-actions", "3", "--max-seconds", "120",
    ]  # fmt: skip
    # A data folder of its own: Ape caches contract types per address of the ad-hoc network on disk and
    # merges a cached ABI with the project's, so a run against an older build at the same (deterministic)
    # address would call the old functions.
    env = {**os.environ, "APE_DATA_FOLDER": str(tmp_path / "ape-data")}
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = Output(proc)
    try:
        started = output.until("watching")
        assert f"1 ledger channel and 0 virtual channels of {store.location} on " in started
        assert f"as {watcher.address}" in started

        stale = ledger.register(params.as_tuple(), *signed(s1), sender=bob)
        deadline = stale.timestamp + HOUR
        channel = "0x" + params.channel_id.hex()
        # Both lines, in either order: the refutation reads the dispute at the round's head block, and a
        # node under load may serve the Registered log one round later than the block holding it.
        first = output.until(("observed", "refuted"))
        second = output.until("refuted" if first.startswith("observed") else "observed")
        observed, refuted = (first, second) if first.startswith("observed") else (second, first)
        # The deadline relative to the block time of the round that saw it (the registering block or later).
        assert re.fullmatch(
            rf"observed   ledger {channel} registered v1 deadline={re.escape(utc(deadline))} "
            rf"\((in 1 h|in 59 min( [0-9]+ s)?)\) block={stale.block_number} tx={str(stale.txn_hash).lower()}",
            observed,
        ), observed
        assert refuted.startswith(f"refuted    ledger {channel} v1 -> v2 tx=0x")
        assert tuple(ledger.dispute(params.channel_id)) == (2, deadline, bytes(32))  # no locks: no locks hash

        chain.mine(timestamp=deadline)
        concluded = output.until("concluded")
        assert concluded.startswith(
            f"concluded  ledger {channel} v2 payout_a=1.4 ETH (1400000000000000000 wei) "
            "payout_b=0.6 ETH (600000000000000000 wei) tx=0x"
        )
        summary = output.until("summary")
        assert summary == "summary    3 actions: 1 Observed, 1 Refuted, 1 Concluded"
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert_settled(ledger, params)
    assert (alice.balance - alice_balance, alice.nonce - alice_nonce) == (1400 * M, 0)
    tx = refuted.split("tx=")[1]
    receipt = chain.get_receipt(tx)
    assert receipt.sender == watcher.address
    assert [(bytes(e.channel), e.version, e.deadline) for e in receipt.decode_logs(ledger.Registered)] == [
        (params.channel_id, 2, deadline)
    ]
    fees = receipt.total_fees_paid + chain.get_receipt(concluded.split("tx=")[1]).total_fees_paid
    assert watcher.balance == watcher_balance - fees and watcher.nonce == watcher_nonce + 2


def _entry(ledger: str, virtual: str) -> dict:
    return {"contracts": {"LedgerAdjudicator": {"address": ledger}, "VirtualAdjudicator": {"address": virtual}}}


def test_watch_cli__deployments_record__newest_pair_of_this_chain(tmp_path):
    # The layout scripts/deploy.py writes: chain id -> salt -> deployments, oldest first.
    path = tmp_path / "ethereum-local.json"
    path.write_text(
        json.dumps(
            {
                "31337": {"0xaa": [_entry("0x01", "0x02"), _entry("0x03", "0x04")]},
                "1": {"0xaa": [_entry("0x05", "0x06")]},
            }
        )
    )
    assert recorded_pair(path, 31337) == {"ledger": "0x03", "virtual": "0x04"}
    assert recorded_pair(path, 1) == {"ledger": "0x05", "virtual": "0x06"}
    assert recorded_pair(tmp_path / "missing.json", 1) == {}
    path.write_text("{not json")
    assert recorded_pair(path, 1) == {}
    # Flat layouts and lists of entries are read too; naming one contract only is not a pair.
    assert recorded_pairs({"ledger": "0x07", "virtual": "0x08"}) == [{"ledger": "0x07", "virtual": "0x08"}]
    assert recorded_pairs([{"LedgerAdjudicator": "0x09", "VirtualAdjudicator": {"address": "0x0a"}}]) == [
        {"ledger": "0x09", "virtual": "0x0a"}
    ]
    assert recorded_pairs({"LedgerAdjudicator": "0x09", "other": 3}) == []
