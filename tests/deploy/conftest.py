"""Fixtures for `ape run deploy` tests: Anvils we start ourselves, an isolated Ape data folder, the runner.

Each test gets its own Ape data folder (APE_DATA_FOLDER): its ape-config.yaml points Ape's networks at the
test's Anvils, and its accounts folder holds only what the test imports. Records go to a temporary
deployments folder (PERUN_DEPLOYMENTS_DIR), never to the project's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from eth_abi import encode
from eth_account import Account
from eth_utils import keccak, to_checksum_address

from tests.support.cli import retry_anvil_start
from tests.support.constants import MNEMONIC

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
NODE_BIN = ROOT / "node_modules" / ".bin"
PROXY = "0x4e59b44847b379578588920cA78FbF26c0B4956C"
SEPOLIA_CHAIN_ID = 11155111
KEYFILE_ALIAS = "perun-deployer"
KEYFILE_PASSPHRASE = "correct horse battery staple"
RUN_TIMEOUT = 180


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Anvil:
    """An Anvil process this test started, reached over JSON-RPC."""

    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rpc(self, method: str, *params: object) -> object:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer["result"]

    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def nonce(self, address: str) -> int:
        return int(self.rpc("eth_getTransactionCount", address, "latest"), 16)

    def code(self, address: str) -> bytes:
        return bytes.fromhex(str(self.rpc("eth_getCode", address, "latest"))[2:])

    def receipt(self, txn: str, timeout: float = 10) -> dict:
        """The transaction's receipt, once mined (Anvil mines right after answering, not before)."""
        deadline = time.monotonic() + timeout
        while (found := self.rpc("eth_getTransactionReceipt", txn)) is None:
            assert time.monotonic() < deadline, f"{txn} not mined"
            time.sleep(0.05)
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture
def start_anvil() -> Iterator[Callable[..., Anvil]]:
    """Starts `anvil --port <free port> <args>` and waits until it answers; every one is stopped after the test."""
    started: list[Anvil] = []
    executable = shutil.which("anvil") or str(NODE_BIN / "anvil")

    def start(*args: str) -> Anvil:
        port = _free_port()
        process = subprocess.Popen(
            [executable, "--port", str(port), "--silent", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        anvil = Anvil(port, process)
        started.append(anvil)
        deadline = time.monotonic() + 20
        while True:
            try:
                anvil.block_number()
                return anvil
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"anvil {args} did not start") from None
                time.sleep(0.1)

    yield start
    for anvil in started:
        anvil.stop()


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    def line(self, prefix: str) -> str:
        """The one stdout line starting with ``prefix``."""
        found = [line for line in self.lines if line.startswith(prefix)]
        assert len(found) == 1, f"{len(found)} lines start with {prefix!r}:\n{self.stdout}\n{self.stderr}"
        return found[0]


@dataclass
class ApeHome:
    """An isolated Ape data folder plus the records folder; ``run`` is `ape run deploy` inside it."""

    path: Path
    deployments: Path
    config: dict = field(default_factory=dict)

    def point(self, network: str, anvil: Anvil, chain_id: int | None = None) -> None:
        """Ape's ``ethereum:<network>:node`` reaches ``anvil`` (sepolia here is an Anvil standing in for it)."""
        settings: dict[str, object] = {"uri": anvil.url}
        if chain_id is not None:
            settings["chain_id"] = chain_id
        self.config.setdefault("node", {}).setdefault("ethereum", {})[network] = settings
        if network != "local":
            # Anvil mines only on transactions: Ape must not wait for further blocks.
            self.config.setdefault("ethereum", {})[network] = {"required_confirmations": 0}
        (self.path / "ape-config.yaml").write_text(json.dumps(self.config, indent=2))

    def import_keyfile(self, index: int = 1) -> str:
        """Stores test account ``index`` as a passphrase-protected keyfile account; returns its address."""
        Account.enable_unaudited_hdwallet_features()
        account = Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
        folder = self.path / "accounts"
        folder.mkdir(parents=True, exist_ok=True)
        keyfile = Account.encrypt(account.key, KEYFILE_PASSPHRASE, kdf="pbkdf2", iterations=1000)
        (folder / f"{KEYFILE_ALIAS}.json").write_text(json.dumps(keyfile))
        return account.address

    def records(self, name: str) -> dict:
        return json.loads((self.deployments / name).read_text())

    def run(self, *args: str, input: str = "", extra_env: dict[str, str] | None = None) -> Result:
        return retry_anvil_start(lambda: self._run(args, input, extra_env), lambda result: result.stderr)

    def _run(self, args: tuple[str, ...], input: str, extra_env: dict[str, str] | None) -> Result:
        env = {
            **os.environ,
            "APE_DATA_FOLDER": str(self.path),
            "PERUN_DEPLOYMENTS_DIR": str(self.deployments),
            "PATH": os.pathsep.join([str(BIN), str(NODE_BIN), os.environ.get("PATH", "")]),
            **(extra_env or {}),
        }
        process = subprocess.Popen(
            [str(BIN / "ape"), "run", "deploy", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(input, timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # with any Anvil Ape started for it
            process.communicate()
            raise
        return Result(process.returncode, stdout, stderr)


@pytest.fixture
def ape_home(tmp_path: Path) -> ApeHome:
    home = ApeHome(tmp_path / "ape", tmp_path / "deployments")
    home.path.mkdir()
    return home


def create2(salt: bytes, init_code: bytes) -> str:
    return to_checksum_address(keccak(b"\xff" + bytes.fromhex(PROXY[2:]) + salt + keccak(init_code))[12:])


@dataclass(frozen=True)
class Compiled:
    """The compiled contracts of the set, from Ape's build (the code the script deploys)."""

    virtual_init: bytes
    ledger_init: bytes
    virtual_runtime: bytes
    ledger_runtime: bytes
    app_init: bytes
    app_runtime: bytes
    sla_init: bytes
    sla_runtime: bytes

    def addresses(self, salt: bytes) -> tuple[str, str]:
        """Where the proxy puts the pair for ``salt``: computed here from EIP-1014, independently of the script."""
        virtual = create2(salt, self.virtual_init)
        return virtual, create2(salt, self.ledger_init + encode(["address"], [virtual]))

    def app_addresses(self, salt: bytes) -> tuple[str, str]:
        """Where the proxy puts AppAdjudicator and SlaApp for ``salt`` (no constructor arguments)."""
        return create2(salt, self.app_init), create2(salt, self.sla_init)


@pytest.fixture(scope="session")
def compiled(project) -> Compiled:
    def code(name: str, part: str) -> bytes:
        return bytes.fromhex(getattr(project.get_contract(name).contract_type, part).bytecode[2:])

    return Compiled(
        code("VirtualAdjudicator", "deployment_bytecode"),
        code("LedgerAdjudicator", "deployment_bytecode"),
        code("VirtualAdjudicator", "runtime_bytecode"),
        code("LedgerAdjudicator", "runtime_bytecode"),
        code("AppAdjudicator", "deployment_bytecode"),
        code("AppAdjudicator", "runtime_bytecode"),
        code("SlaApp", "deployment_bytecode"),
        code("SlaApp", "runtime_bytecode"),
    )
