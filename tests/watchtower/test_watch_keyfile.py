"""`ape run watch` unattended with a keyfile account (``ape accounts import``), on a node it did not start.

The watchtower runs as an operator runs it: no terminal (stdin closed), the passphrase in Ape's
``APE_ACCOUNTS_<alias>_PASSPHRASE``, attached to a running Anvil with ``APE_FOUNDRY_HOST`` and
``--network ethereum:local:foundry`` (README, "A node you started"). Without the passphrase, or with a
wrong one, it ends in one line before anything is sent.
"""

from __future__ import annotations

import secrets

import pytest

from tests.support.cli import PASSPHRASE, ape_run, cli_env, error_line, run_cli, running, write_keyfile
from tests.support.constants import HOUR, E, M


@pytest.fixture
def keyfile_watcher(tmp_path, stranger):
    """A keyfile account ``watcher`` holding 1 ETH (sent by ``stranger``): its alias and address."""
    address = write_keyfile(tmp_path, "watcher", secrets.token_bytes(32))
    stranger.transfer(address, E)
    return address


def _watch(store, ledger, virtual, *extra: str) -> list[str]:
    return ape_run(
        "watch", "--network", "ethereum:local:foundry", "--account", "watcher", "--store", store.target,
        "--ledger", str(ledger.address), "--virtual", str(virtual.address), *extra,
    )  # fmt: skip


def test_watch__keyfile_account_no_terminal__refutes_stale_registration(
    ledger, virtual, chain, open_channel, signed, remember_ledger, store, alice, bob, keyfile_watcher, tmp_path
):
    params, initial = open_channel(E, E)
    s1 = initial.pay(200 * M, 0)
    s2 = s1.pay(600 * M, 1)
    remember_ledger(params, alice, [initial, s1, s2])
    env = cli_env(
        tmp_path, APE_FOUNDRY_HOST=chain.provider.uri, APE_ACCOUNTS_watcher_PASSPHRASE=PASSPHRASE
    )  # fmt: skip
    command = _watch(store, ledger, virtual, "--interval", "0.5", "--max-actions", "2", "--max-seconds", "120")
    with running(command, env) as (proc, output):
        started = output.until("watching", timeout=120)
        assert f"as {keyfile_watcher}" in started
        stale = ledger.register(params.as_tuple(), *signed(s1), sender=bob)
        refuted = output.until("refuted")
        assert refuted.startswith(f"refuted    ledger 0x{params.channel_id.hex()} v1 -> v2 tx=0x")
        assert proc.wait(timeout=60) == 0
    receipt = chain.get_receipt(refuted.split("tx=")[1])
    assert receipt.sender == keyfile_watcher
    assert tuple(ledger.dispute(params.channel_id)) == (2, stale.timestamp + HOUR, bytes(32))


@pytest.mark.parametrize("passphrase", [None, "wrong"])
def test_watch__keyfile_account_locked__one_line_nothing_sent(
    passphrase, ledger, virtual, chain, store, keyfile_watcher, tmp_path
):
    env = cli_env(tmp_path, APE_FOUNDRY_HOST=chain.provider.uri)
    if passphrase is not None:
        env["APE_ACCOUNTS_watcher_PASSPHRASE"] = passphrase
    nonce = chain.provider.get_nonce(keyfile_watcher)
    line = error_line(run_cli(_watch(store, ledger, virtual, "--once"), env))
    if passphrase is None:
        assert line == (
            "Error: keyfile account 'watcher' is locked and no terminal is attached to ask for its passphrase; "
            "set APE_ACCOUNTS_watcher_PASSPHRASE in the environment of this process"
        )
    else:
        assert line == (
            "Error: wrong passphrase for keyfile account 'watcher'; set APE_ACCOUNTS_watcher_PASSPHRASE to the "
            "passphrase it was imported with"
        )
    assert chain.provider.get_nonce(keyfile_watcher) == nonce
