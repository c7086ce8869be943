"""Deterministic deployments of the contract set: CREATE2 addresses, code comparison, deployment records.

Pure helpers (no Ape imports) used by ``scripts/deploy.py`` and its tests. Reading a record back (the record
file's name, the newest pair of a chain) is ``perun_vyper.contracts``'s, which the package exports.

Addresses come from the deterministic-deployment proxy at :data:`PROXY_ADDRESS`: a transaction to it whose
data is a 32-byte salt followed by init code runs ``CREATE2(salt, init code)`` and returns the new 20-byte
address, so the address depends only on the proxy, the salt and the init code (compiled code plus
constructor arguments), never on the sender or its nonce.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import keccak, to_checksum_address

from ..contracts import APP, LEDGER, SLA, VIRTUAL, recorded_pair
from ..core.codec import Domain
from ..core.constants import APP_DOMAIN_NAME, DOMAIN_VERSION, LEDGER_DOMAIN_NAME, VIRTUAL_DOMAIN_NAME
from ..errors import DeploymentError, InvalidParams

PROXY_ADDRESS = to_checksum_address("0x4e59b44847b379578588920ca78fbf26c0b4956c")
# The proxy's runtime code (https://github.com/Arachnid/deterministic-deployment-proxy); a default Anvil
# 1.7.1 holds exactly these 69 bytes at PROXY_ADDRESS (tests/deploy checks it).
PROXY_RUNTIME_CODE = bytes.fromhex(
    "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffe0"
    "3601600081602082378035828234f58015156039578182fd5b8082525050506014600cf3"
)
# The proxy's own deployment: a pre-EIP-155 transaction (nonce 0, 100 gwei, 100000 gas, no chain id) with a
# made-up signature (r = s = 0x22...22), so it is valid on every chain and its signer, whose key nobody
# knows, exists only to send it. Its data returns PROXY_RUNTIME_CODE; tests/deploy checks all of this.
PROXY_DEPLOYER = to_checksum_address("0x3fab184622dc19b6109349b94811493bf2a45362")
_SIGNATURE_PART = "22" * 32  # r and s
PROXY_DEPLOYMENT_TX = (
    "0xf8a58085174876e800830186a08080b853604580600e600039806000f350fe"
    + PROXY_RUNTIME_CODE.hex()
    + f"1ba0{_SIGNATURE_PART}a0{_SIGNATURE_PART}"
)
PROXY_HOWTO = (
    f"To deploy it, send 0.01 ETH (100000 gas at 100 gwei) to its one-time signer {PROXY_DEPLOYER}, then "
    f"broadcast this raw transaction (e.g. `cast publish --rpc-url <url> <tx>`): {PROXY_DEPLOYMENT_TX} "
    "(see https://github.com/Arachnid/deterministic-deployment-proxy). The node must accept transactions "
    "without EIP-155 replay protection (geth: --rpc.allow-unprotected-txs); chains that refuse them often "
    "pre-install the proxy (OP Stack chains do), otherwise ask the chain's operators to add it."
)

# The project salt: keccak256("perun-vyper"). Everyone deploying the same code with it gets the same
# addresses; `--salt` picks another set on purpose.
DEFAULT_SALT_TEXT = "perun-vyper"
DEFAULT_SALT = keccak(text=DEFAULT_SALT_TEXT)

# What `ape run deploy` deploys, in this order: a contract comes after those whose addresses its constructor
# takes (CONSTRUCTOR_LINKS). The app channels' contracts (SPEC 12) are independent of the payment ones.
DEPLOYED: tuple[str, ...] = (VIRTUAL, LEDGER, APP, SLA)
# Constructor argument -> the contract of the set whose address it is.
CONSTRUCTOR_LINKS: Mapping[str, Mapping[str, str]] = {LEDGER: {"virtual_adjudicator": VIRTUAL}}
# The EIP-712 domain of each contract that has one (the SLA app is stateless: no domain, no immutables).
DOMAIN_NAMES: Mapping[str, str] = {VIRTUAL: VIRTUAL_DOMAIN_NAME, LEDGER: LEDGER_DOMAIN_NAME, APP: APP_DOMAIN_NAME}

LOCAL_NETWORK = "local"
FORK_SUFFIX = "-fork"


def is_local_network(network_name: str) -> bool:
    """A development chain: Ape's ``local`` network (any provider) or a fork (``<network>-fork``).

    Everything else (public networks, networks from config, an ad-hoc ``--network https://...``, which Ape
    calls ``custom``) counts as live: the script prints the cost and asks before sending.
    """
    return network_name == LOCAL_NETWORK or network_name.endswith(FORK_SUFFIX)


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def parse_salt(value: str | None) -> bytes:
    """``0x`` + 64 hex digits is taken as it is; text without ``0x`` is hashed with keccak256; None: the
    default. Anything else starting with ``0x`` is refused (``DeploymentError``): a mistyped hex salt
    silently hashed as text would deploy at other addresses."""
    if value is None:
        return DEFAULT_SALT
    if not value.startswith(("0x", "0X")):
        return keccak(text=value)
    digits = value[2:]
    if len(digits) == 64 and set(digits) <= _HEX_DIGITS:
        return bytes.fromhex(digits)
    what = "has non-hex characters" if not set(digits) <= _HEX_DIGITS else f"has {len(digits)} hex digits"
    raise DeploymentError(
        f"--salt {value[:80]} {what}; a hex salt is 0x and 64 hex digits (32 bytes), and text without 0x is "
        "hashed into one. Nothing was deployed."
    )


def create2_address(salt: bytes, init_code: bytes, deployer: str = PROXY_ADDRESS) -> str:
    """The address ``CREATE2`` gives ``init_code`` with ``salt`` when run by ``deployer`` (the proxy)."""
    if len(salt) != 32:
        raise InvalidParams("salt must be 32 bytes")
    digest = keccak(b"\xff" + bytes.fromhex(deployer[2:]) + salt + keccak(init_code))
    return to_checksum_address(digest[12:])


def proxy_calldata(salt: bytes, init_code: bytes) -> bytes:
    """The proxy's call data: the salt, then the init code."""
    return salt + init_code


# --- Vyper immutables ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Immutable:
    """One immutable in the data section Vyper appends to the runtime code."""

    name: str
    type: str
    offset: int
    length: int


def read_immutables_layout(vyper: str, project_root: Path, source_id: str) -> list[Immutable]:
    """The immutables section of ``source_id`` as the compiler lays it out (``vyper -f layout``)."""
    result = subprocess.run(
        [vyper, "-f", "layout", source_id], cwd=project_root, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise DeploymentError(f"`{vyper} -f layout {source_id}` failed: {result.stderr.strip()}")
    return flatten_code_layout(json.loads(result.stdout).get("code_layout", {}))


def flatten_code_layout(code_layout: Mapping[str, Any], prefix: str = "") -> list[Immutable]:
    """Vyper's nested ``code_layout`` (modules as sub-mappings) as a flat list sorted by offset."""
    found: list[Immutable] = []
    for name, item in code_layout.items():
        if {"offset", "length", "type"} <= item.keys() and not isinstance(item["offset"], Mapping):
            found.append(Immutable(prefix + name, str(item["type"]), int(item["offset"]), int(item["length"])))
        else:
            found.extend(flatten_code_layout(item, f"{prefix}{name}."))
    return sorted(found, key=lambda imm: imm.offset)


def expected_immutable_values(contract: str, address: str, chain_id: int, virtual: str | None) -> dict[str, object]:
    """What each immutable of ``contract`` holds when deployed at ``address`` on ``chain_id``.

    The EIP-712 module caches the domain (chain id, separator, hashed and plain name and version); the
    ledger also keeps the virtual adjudicator's address. A contract without a domain (the SLA app) has none.
    """
    if contract not in DOMAIN_NAMES:
        return {}
    name = DOMAIN_NAMES[contract]
    domain = Domain(name, DOMAIN_VERSION, chain_id, address)
    values: dict[str, object] = {
        "typed_signatures._CACHED_CHAIN_ID": chain_id,
        "typed_signatures._CACHED_DOMAIN_SEPARATOR": domain.separator,
        "typed_signatures._HASHED_NAME": keccak(text=name),
        "typed_signatures._HASHED_VERSION": keccak(text=DOMAIN_VERSION),
        "typed_signatures._NAME": name,
        "typed_signatures._VERSION": DOMAIN_VERSION,
    }
    if contract == LEDGER:
        if virtual is None:
            raise InvalidParams("the ledger's immutables need the virtual adjudicator's address")
        values["VIRTUAL_ADJUDICATOR"] = to_checksum_address(virtual)
    return values


def _encode_immutable(immutable: Immutable, value: object) -> bytes:
    """Vyper's in-code encoding: one 32-byte word per value type; String/Bytes as a length word, then
    the data, zero-padded to the declared maximum."""
    if isinstance(value, bool) or not isinstance(value, int | bytes | str):
        raise DeploymentError(f"no encoding for immutable {immutable.name} = {value!r}")
    if isinstance(value, int):
        encoded = value.to_bytes(32, "big")
    elif isinstance(value, bytes) and len(value) == 32:
        encoded = value
    elif isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        encoded = bytes(12) + bytes.fromhex(value[2:])
    else:
        data = value.encode() if isinstance(value, str) else value
        encoded = len(data).to_bytes(32, "big") + data
    if len(encoded) > immutable.length:
        raise DeploymentError(f"immutable {immutable.name} ({immutable.type}) cannot hold {value!r}")
    return encoded.ljust(immutable.length, b"\x00")


def encode_immutables(layout: list[Immutable], values: Mapping[str, object]) -> bytes:
    """The immutables section for ``values``; fails when the contract has immutables we cannot predict."""
    unknown = sorted({imm.name for imm in layout} - values.keys())
    missing = sorted(values.keys() - {imm.name for imm in layout})
    if unknown or missing:
        raise DeploymentError(
            f"immutables layout changed: unknown {unknown}, gone {missing}; "
            "update expected_immutable_values in src/perun_vyper/tools/deployment.py"
        )
    section = bytearray(max((imm.offset + imm.length for imm in layout), default=0))
    for imm in layout:
        section[imm.offset : imm.offset + imm.length] = _encode_immutable(imm, values[imm.name])
    return bytes(section)


def compare_code(actual: bytes, runtime: bytes, immutables: bytes, layout: list[Immutable]) -> str | None:
    """Why the code at an address is not the compiled contract, or None when it is.

    Vyper deploys the compiled runtime code (``bytecode_runtime``, data sections included) followed by the
    immutables section the constructor filled in; that section is not part of the compiler output. So
    the code must (1) start with the compiled runtime code byte for byte, (2) be exactly as much longer
    as the compiler's layout of the immutables says (``vyper -f layout``), and (3) hold in that section
    exactly the values this deployment implies (:func:`expected_immutable_values`: chain id, domain
    separator, name and version and their hashes, the ledger's virtual adjudicator), encoded as Vyper
    encodes them. Nothing is masked: any difference is reported with the part or immutable it falls in.
    """
    if not actual:
        return "no code"
    if actual[: len(runtime)] != runtime:
        at = next((i for i, (a, b) in enumerate(zip(actual, runtime, strict=False)) if a != b), None)
        where = f"at byte {at}" if at is not None else f"({len(actual)} bytes, compiled runtime {len(runtime)})"
        return f"runtime code differs from the compiled code {where}"
    section = actual[len(runtime) :]
    if len(section) != len(immutables):
        return f"immutables section is {len(section)} bytes, expected {len(immutables)}"
    for imm in layout:
        got, want = (s[imm.offset : imm.offset + imm.length] for s in (section, immutables))
        if got != want:
            return f"immutable {imm.name} holds 0x{got.hex()}, expected 0x{want.hex()}"
    if section != immutables:
        return "immutables section differs outside the declared immutables"
    return None


@dataclass
class Target:
    """One contract of a deployment: what it is built from, where CREATE2 puts it, what happened to it."""

    name: str
    salt: bytes
    constructor_args: dict[str, str]
    init_code: bytes
    address: str
    runtime: bytes
    layout: list[Immutable]
    expected_code: bytes
    status: str = "deploy"  # "deploy", "present" (found in place) or "deployed" (by this run)
    transaction: str | None = None
    block: int | None = None


# --- Records ---------------------------------------------------------------------------------------


def record_item(target: Target, deployer: str) -> dict[str, Any]:
    """One contract as a deployment record holds it; its status is "pending", "found" or "deployed"."""
    return {
        "address": target.address,
        "status": {"deploy": "pending", "present": "found"}.get(target.status, target.status),
        "transaction": target.transaction,
        "block": target.block,
        "deployer": deployer if target.status == "deployed" else None,
        "constructor_args": target.constructor_args,
        "init_code_hash": "0x" + keccak(target.init_code).hex(),
        "code_hash": "0x" + keccak(target.expected_code).hex(),
    }


def record_contracts(targets: list[Target], deployer: str, old: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``contracts`` of a record; a contract found again that an earlier run deployed keeps that run's
    item (and its transaction)."""
    previous = (old or {}).get("contracts", {})
    contracts = {}
    for target in targets:
        item = previous.get(target.name)
        found_again = target.status == "present" and item and item.get("status") == "deployed"
        contracts[target.name] = item if found_again else record_item(target, deployer)
    return contracts


def load_records(path: Path) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The record file: chain id -> salt -> deployments, oldest first (empty when there is no file)."""
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def save_records(path: Path, records: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(records, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def entry_addresses(entry: Mapping[str, Any]) -> dict[str, str]:
    return {name: item["address"] for name, item in entry["contracts"].items()}


def same_deployment(old: Mapping[str, Any], addresses: Mapping[str, str]) -> bool:
    """``old`` records these addresses: all of them, or (written before the set grew by the app contracts)
    some of them and no other contract."""
    recorded = entry_addresses(old)
    return bool(recorded) and all(addresses.get(name) == address for name, address in recorded.items())


def find_entry(records: Mapping[str, Any], chain_id: int, salt: bytes, addresses: Mapping[str, str]):
    """The recorded deployment of this chain and salt at these addresses (``same_deployment``), if any."""
    for entry in records.get(str(chain_id), {}).get("0x" + salt.hex(), []):
        if same_deployment(entry, addresses):
            return entry
    return None


def up_to_date(old: Mapping[str, Any] | None, addresses: Mapping[str, str]) -> bool:
    """``old`` records exactly these contracts at these addresses, none of them pending."""
    if old is None or entry_addresses(old) != dict(addresses):
        return False
    return all(item.get("status") != "pending" for item in old["contracts"].values())


def missing_note(entry: Mapping[str, Any], network: str) -> str | None:
    """What of the set a recorded deployment lacks (written before the app contracts were deployed) and how to
    add it, in one line; None when it records the whole set."""
    missing = [name for name in DEPLOYED if name not in entry["contracts"]]
    if not missing:
        return None
    salt = "" if entry["salt"] == "0x" + DEFAULT_SALT.hex() else f" --salt {entry['salt']}"
    return (
        f"{', '.join(missing)} not recorded (the record predates them): run `ape run deploy --network {network} "
        f"--account <alias>{salt}` again to deploy and record them"
    )


def upsert_entry(records: dict[str, Any], entry: dict[str, Any]) -> None:
    """Add ``entry`` under its chain id and salt, replacing a record of the same addresses.

    The same addresses again on one chain id only happen on a local chain that was reset (a fresh Anvil),
    or when a deployment recorded before the app contracts gets them: the newer record replaces the old
    one. New code under the same salt gives new addresses and a new entry; the old one stays.
    """
    by_salt = records.setdefault(str(entry["chain_id"]), {}).setdefault(entry["salt"], [])
    for index, old in enumerate(by_salt):
        if same_deployment(old, entry_addresses(entry)):
            by_salt[index] = entry
            return
    by_salt.append(entry)


def source_revision(project_root: Path, paths: tuple[str, ...] = ("contracts", "ape-config.yaml")) -> dict:
    """``git rev-parse HEAD`` and whether ``paths`` (what the code is compiled from) have uncommitted changes."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(project_root), *args], capture_output=True, text=True)
        except OSError:
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--", *paths) if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


# --- Attaching to a deployment (the rules of reading a record: perun_vyper.contracts) ----------------


def adjudicator_pair(ledger: str | None, virtual: str | None, record: Path, chain_id: int) -> tuple[str, str]:
    """The adjudicator addresses a command attaches to: those given, else the newest pair ``record`` holds
    for this chain; ``DeploymentError`` saying what to pass when neither names both."""
    if not (ledger and virtual):
        recorded = recorded_pair(record, chain_id)
        ledger = ledger or recorded.get("ledger")
        virtual = virtual or recorded.get("virtual")
    if not (ledger and virtual):
        raise DeploymentError(f"pass --ledger and --virtual ({record} records no deployment of this chain)")
    return ledger, virtual
