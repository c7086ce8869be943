"""The contracts as another project sees them: their ABIs (shipped in the package) and the addresses
``ape run deploy`` recorded for a chain.

The ABI files under ``perun_vyper/abi/`` are the compiler's ABIs as Ape reads them, written by
``make abis`` (``tools/export_abis.py``); tests/deploy/test_package.py fails when they drift from the
contracts. The deployment records are ``<directory>/<ecosystem>-<network>.json`` files in the layout
``scripts/deploy.py`` writes (chain id -> salt -> deployments); this module holds the rules for reading them
back, shared by ``ape run hub``, ``ape run watch`` and the load test.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

from .errors import DeploymentError, InvalidParams

LEDGER = "LedgerAdjudicator"
VIRTUAL = "VirtualAdjudicator"
APP = "AppAdjudicator"
SLA = "SlaApp"
# Every contract `ape run deploy` deploys (and whose ABI ships): the payment adjudicators, then the app
# channels' adjudicator and the SLA app (SPEC 12).
CONTRACT_NAMES = (LEDGER, VIRTUAL, APP, SLA)


def abi(name: str) -> list[dict[str, Any]]:
    """The ABI of ``name`` (one of ``CONTRACT_NAMES``: ``"LedgerAdjudicator"``, ``"VirtualAdjudicator"``,
    ``"AppAdjudicator"``, ``"SlaApp"``) as a JSON list, a fresh copy on every call; ``InvalidParams`` for any
    other name."""
    if name not in CONTRACT_NAMES:
        raise InvalidParams(f"no ABI for {name!r}; the known contracts are {', '.join(CONTRACT_NAMES)}")
    return json.loads(files(__package__).joinpath("abi", f"{name}.json").read_text(encoding="utf-8"))


# --- Deployment records ----------------------------------------------------------------------------


def record_path(directory: Path, ecosystem: str, network: str) -> Path:
    """``<directory>/<ecosystem>-<network>.json``; all local chains share the network name ``local``."""
    return directory / f"{ecosystem}-{network}.json"


# The names a record may give each contract (compared lower-case): the deploy script's contract names, or
# the short kinds the readers return.
_NAMES = {
    "ledger": ("ledgeradjudicator", "ledger"),
    "virtual": ("virtualadjudicator", "virtual"),
    "app": ("appadjudicator", "app"),
    "sla": ("slaapp", "sla"),
}
_PAIR = ("ledger", "virtual")
_APPS = ("app", "sla")


def _named_address(mapping: dict, kind: str) -> str | None:
    """``mapping[<name>]`` for one of the kind's names, as ``"0x.."`` or ``{"address": "0x.."}``; an item
    whose ``status`` is ``pending`` (an interrupted ``ape run deploy`` that has not sent it yet) is none."""
    for key, value in mapping.items():
        if str(key).lower() in _NAMES[kind]:
            if isinstance(value, dict):
                value = None if value.get("status") == "pending" else value.get("address")
            if isinstance(value, str) and value.startswith("0x"):
                return value
    return None


def _stamped_sets(data: Any, stamp: str) -> list[tuple[str, dict]]:
    """Every mapping that names a pair, in file order, each with the ``recorded_at`` of the nearest entry
    around it ("" if none)."""
    if isinstance(data, dict):
        if isinstance(data.get("recorded_at"), str):
            stamp = data["recorded_at"]
        if all(_named_address(data, kind) for kind in _PAIR):
            return [(stamp, data)]
        children = list(data.values())
    elif isinstance(data, list):
        children = data
    else:
        return []
    return [found for child in children for found in _stamped_sets(child, stamp)]


def _recorded_sets(data: Any) -> list[dict]:
    """The mappings that name a pair, oldest first (see ``recorded_pairs``)."""
    return [found for _, found in sorted(_stamped_sets(data, ""), key=lambda found: found[0])]


def recorded_pairs(data: Any) -> list[dict[str, str]]:
    """Every ``{ledger, virtual}`` address pair in a deployments record, whatever the nesting
    (``{"LedgerAdjudicator": "0x..", ...}`` or ``{"contracts": {"LedgerAdjudicator": {"address": ..}}}``), oldest
    first: by the entries' ``recorded_at`` (UTC ISO 8601, as ``ape run deploy`` writes it), else in file order.
    File order alone is not age: the deploy script writes salts sorted, and a redeployment of the same
    addresses on a reset chain replaces its old entry in place."""
    return [{kind: _named_address(found, kind) for kind in _PAIR} for found in _recorded_sets(data)]  # type: ignore[misc]


def _load(path: Path) -> Any:
    """The deployments file's JSON, or None when it cannot be read."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _keyed_by_chain(data: Any) -> bool:
    """The deploy script's layout: chain id -> salt -> deployments."""
    return isinstance(data, dict) and bool(data) and all(str(key).isdigit() for key in data)


def _of_chain(data: Any, chain_id: int) -> Any:
    """A file keyed by chain ids under this chain id only; any other layout as it is."""
    return data.get(str(chain_id), {}) if _keyed_by_chain(data) else data


def recorded_pair(path: Path, chain_id: int) -> dict[str, str]:
    """The newest pair recorded in a deployments file for ``chain_id``, or an empty dict without a usable
    record. A file keyed by chain ids (the deploy script's layout) is read under this chain id only; any
    other layout is taken as it is."""
    pairs = recorded_pairs(_of_chain(_load(path), chain_id))
    return pairs[-1] if pairs else {}


def recorded_apps(path: Path, chain_id: int, salt: bytes | str | None = None) -> dict[str, str] | None:
    """``{"app": <AppAdjudicator>, "sla": <SlaApp>}`` of the newest deployment recorded in a deployments file
    for ``chain_id`` (the one whose pair ``recorded_pair`` returns), or with ``salt`` (32 bytes, or ``"0x"``
    and 64 hex digits) the newest under that salt in the deploy script's layout. None when that deployment
    predates the app contracts (recorded before ``ape run deploy`` deployed them: run it again), when either
    is still pending (an interrupted run), or when the file records no deployment of this chain (and salt)."""
    data = _load(path)
    if salt is None:
        data = _of_chain(data, chain_id)
    else:
        key = "0x" + salt.hex() if isinstance(salt, bytes) else salt.lower()
        by_salt = data.get(str(chain_id)) if _keyed_by_chain(data) else None
        data = {str(k).lower(): v for k, v in by_salt.items()}.get(key) if isinstance(by_salt, dict) else None
    found = _recorded_sets(data)
    app, sla = (_named_address(found[-1], kind) for kind in _APPS) if found else (None, None)
    return {"app": app, "sla": sla} if app and sla else None


def deployed_addresses(
    chain_id: int, directory: Path | str = "deployments", ecosystem: str = "ethereum", network: str = "local"
) -> dict[str, str]:
    """``{"LedgerAdjudicator": "0x..", "VirtualAdjudicator": "0x.."}`` of the newest deployment recorded for
    ``chain_id`` in ``<directory>/<ecosystem>-<network>.json`` (``directory`` relative to the working
    directory unless absolute); ``DeploymentError`` when that file records none."""
    path = record_path(Path(directory), ecosystem, network)
    pair = recorded_pair(path, chain_id)
    if not pair:
        found = f"{path} records no deployment on chain id {chain_id}" if path.is_file() else f"no file {path}"
        raise DeploymentError(
            f"{found}; deploy with `ape run deploy --network {ecosystem}:{network}:<provider> --account <alias>` "
            "in a perun-vyper checkout, or pass the directory, ecosystem and network of an existing record"
        )
    return {LEDGER: pair["ledger"], VIRTUAL: pair["virtual"]}
