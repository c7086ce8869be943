"""The adjudicators as another project sees them: their ABIs (shipped in the package) and the addresses
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
CONTRACT_NAMES = (LEDGER, VIRTUAL)


def abi(name: str) -> list[dict[str, Any]]:
    """The ABI of ``name`` (``"LedgerAdjudicator"`` or ``"VirtualAdjudicator"``) as a JSON list, a fresh copy
    on every call; ``InvalidParams`` for any other name."""
    if name not in CONTRACT_NAMES:
        raise InvalidParams(f"no ABI for {name!r}; the known contracts are {', '.join(CONTRACT_NAMES)}")
    return json.loads(files(__package__).joinpath("abi", f"{name}.json").read_text(encoding="utf-8"))


# --- Deployment records ----------------------------------------------------------------------------


def record_path(directory: Path, ecosystem: str, network: str) -> Path:
    """``<directory>/<ecosystem>-<network>.json``; all local chains share the network name ``local``."""
    return directory / f"{ecosystem}-{network}.json"


_NAMES = {"ledger": ("ledgeradjudicator", "ledger"), "virtual": ("virtualadjudicator", "virtual")}


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


def _stamped_pairs(data: Any, stamp: str) -> list[tuple[str, dict[str, str]]]:
    """Every pair in file order, each with the ``recorded_at`` of the nearest entry around it ("" if none)."""
    if isinstance(data, dict):
        if isinstance(data.get("recorded_at"), str):
            stamp = data["recorded_at"]
        pair = {kind: _named_address(data, kind) for kind in _NAMES}
        if all(pair.values()):
            return [(stamp, pair)]  # type: ignore[list-item]
        children = list(data.values())
    elif isinstance(data, list):
        children = data
    else:
        return []
    return [found for child in children for found in _stamped_pairs(child, stamp)]


def recorded_pairs(data: Any) -> list[dict[str, str]]:
    """Every ``{ledger, virtual}`` address pair in a deployments record, whatever the nesting
    (``{"LedgerAdjudicator": "0x..", ...}`` or ``{"contracts": {"LedgerAdjudicator": {"address": ..}}}``), oldest
    first: by the entries' ``recorded_at`` (UTC ISO 8601, as ``ape run deploy`` writes it), else in file order.
    File order alone is not age: the deploy script writes salts sorted, and a redeployment of the same
    addresses on a reset chain replaces its old entry in place."""
    return [pair for _, pair in sorted(_stamped_pairs(data, ""), key=lambda found: found[0])]


def recorded_pair(path: Path, chain_id: int) -> dict[str, str]:
    """The newest pair recorded in a deployments file for ``chain_id``, or an empty dict without a usable
    record. A file keyed by chain ids (the deploy script's layout) is read under this chain id only; any
    other layout is taken as it is."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if isinstance(data, dict) and data and all(str(key).isdigit() for key in data):
        data = data.get(str(chain_id), {})
    pairs = recorded_pairs(data)
    return pairs[-1] if pairs else {}


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
