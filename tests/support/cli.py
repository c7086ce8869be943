"""Running the project's ``ape run`` commands as an operator would: as subprocesses, with their own Ape data
folder, and keyfile accounts made the way ``ape accounts import`` makes them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from eth_account import Account

from tests.support.process import Output

ROOT = Path(__file__).resolve().parents[2]
APE = str(Path(sys.executable).with_name("ape"))
PASSPHRASE = "correct horse battery staple"


def ape_run(script: str, *args: str) -> list[str]:
    return [APE, "run", script, *args]


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a command under test: a data folder of its own (Ape caches contract types per
    address of an ad-hoc network on disk; keyfile accounts live there too) and no Python warnings of
    Ape's dependencies on stderr."""
    env = {**os.environ, "APE_DATA_FOLDER": str(tmp_path / "ape-data"), "PYTHONWARNINGS": "ignore"}
    for name in [name for name in env if name.startswith("APE_ACCOUNTS_") or name == "APE_FOUNDRY_HOST"]:
        del env[name]
    return {**env, **extra}


def write_keyfile(tmp_path: Path, alias: str, private_key: bytes, passphrase: str = PASSPHRASE) -> str:
    """A keyfile account ``alias`` in the data folder of ``cli_env(tmp_path)``, as ``ape accounts import``
    writes it (an eth-account keystore, here with a cheap KDF to keep the tests fast); its address."""
    folder = tmp_path / "ape-data" / "accounts"
    folder.mkdir(parents=True, exist_ok=True)
    keystore = Account.encrypt(private_key, passphrase, kdf="pbkdf2", iterations=2048)
    (folder / f"{alias}.json").write_text(json.dumps(keystore))
    return Account.from_key(private_key).address


# ape-foundry's `host: auto` starts Anvil on a random port it does not check is free and gives up after
# 20 s without a second attempt (ape_foundry/provider.py, `connect`). Seen three times in full runs of the
# suite on this machine (Anvil itself starts in ~0.1 s), never in a rerun. A command that starts its own
# Anvil is run once more on exactly this error; any other outcome stands.
ANVIL_START_TIMEOUT = "Timed out waiting for successful RPC connection to the 'anvil' process"
T = TypeVar("T")


def retry_anvil_start(run: Callable[[], T], text: Callable[[T], str]) -> T:
    """``run()``, once more if ``text`` of its outcome shows ape-foundry's Anvil start-up timeout."""
    outcome = run()
    return run() if ANVIL_START_TIMEOUT in text(outcome) else outcome


def run_cli(command: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    """The finished command, stdin closed: a prompt would fail instead of waiting."""
    return retry_anvil_start(
        lambda: subprocess.run(
            command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
        ),
        lambda done: done.stdout + done.stderr,
    )


@contextmanager
def running(command: list[str], env: dict[str, str]) -> Iterator[tuple[subprocess.Popen, Output]]:
    """The command running unattended (stdin closed, stdout and stderr merged, read as ``Output``); killed
    if still running when the block ends. Afterwards its output holds no traceback and no Ape prompt."""
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    output = Output(proc)
    try:
        yield proc, output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not any("Traceback" in line or "Sign:" in line for line in output.lines), "\n".join(output.lines)


def error_line(done: subprocess.CompletedProcess) -> str:
    """The one ``Error:`` line a refused command prints: exit status 1, no traceback, nothing else on
    stderr, and nothing on stdout besides Ape's own ``INFO:`` connection lines."""
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert done.returncode == 1, output
    assert [line for line in done.stdout.splitlines() if not line.startswith(("INFO:", "WARNING:"))] == [], output
    errors = [line for line in done.stderr.splitlines() if not line.startswith(("INFO:", "WARNING:"))]
    assert len(errors) == 1 and errors[0].startswith("Error: "), output
    return errors[0]


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` (but the Ape data folder) with its bytes: "nothing was written"."""
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and "ape-data" not in path.parts
    }
