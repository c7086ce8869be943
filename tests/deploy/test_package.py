"""The package as another project uses it: the shipped ABIs, the recorded addresses, and the wheel itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from perun_vyper import DeploymentError, InvalidParams, abi, deployed_addresses
from perun_vyper.contracts import CONTRACT_NAMES, record_path, recorded_apps, recorded_pair
from perun_vyper.tools.deployment import PROXY_ADDRESS, save_records, upsert_entry

from .conftest import ROOT

ABI_DIR = ROOT / "src" / "perun_vyper" / "abi"
EXPORT = "`make abis` (python tools/export_abis.py)"
SALT_A = "0x" + "aa" * 32
SALT_B = "0x" + "bb" * 32


def test_package__contract_names__every_contract_deploy_deploys():
    assert CONTRACT_NAMES == ("LedgerAdjudicator", "VirtualAdjudicator", "AppAdjudicator", "SlaApp")
    assert sorted(path.name for path in ABI_DIR.glob("*.json")) == sorted(f"{name}.json" for name in CONTRACT_NAMES)


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_package__abi_files__equal_the_compiled_abis(project, name: str):
    compiled = [
        item.model_dump(mode="json", by_alias=True, exclude_none=True)
        for item in project.get_contract(name).contract_type.abi
    ]
    path = ABI_DIR / f"{name}.json"
    assert path.is_file(), f"{path} is missing: run {EXPORT}"
    text = path.read_text()
    assert json.loads(text) == compiled, f"{path} differs from the compiled {name}: run {EXPORT} and commit it"
    assert text == json.dumps(compiled, indent=2, sort_keys=True) + "\n", (
        f"{path} is not formatted as {EXPORT} writes it"
    )
    assert abi(name) == compiled


def test_package__abi__fresh_copy_each_call():
    first = abi("LedgerAdjudicator")
    first.clear()
    assert abi("LedgerAdjudicator") != []


def test_package__abi__unknown_name_refused():
    with pytest.raises(InvalidParams) as refused:
        abi("Nope")
    assert str(refused.value) == (
        "no ABI for 'Nope'; the known contracts are LedgerAdjudicator, VirtualAdjudicator, AppAdjudicator, SlaApp"
    )


def _entry(
    chain_id: int,
    salt: str,
    ledger: str,
    virtual: str,
    recorded_at: str,
    pending: bool = False,
    apps: tuple[str, str] | None = None,
    apps_pending: bool = False,
) -> dict:
    """A deployment as scripts/deploy.py's make_entry records it; without ``apps`` as it did before it deployed
    the app contracts."""

    def item(address: str, args: dict[str, str], status: str) -> dict:
        return {
            "address": address,
            "status": status,
            "transaction": None if status == "pending" else "0x" + "12" * 32,
            "block": None if status == "pending" else 1,
            "deployer": None if status == "pending" else "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
            "constructor_args": args,
            "init_code_hash": "0x" + "34" * 32,
            "code_hash": "0x" + "56" * 32,
        }

    contracts = {
        "VirtualAdjudicator": item(virtual, {}, "deployed"),
        "LedgerAdjudicator": item(ledger, {"virtual_adjudicator": virtual}, "pending" if pending else "deployed"),
    }
    if apps is not None:
        contracts["AppAdjudicator"] = item(apps[0], {}, "deployed")
        contracts["SlaApp"] = item(apps[1], {}, "pending" if apps_pending else "deployed")
    return {
        "chain_id": chain_id,
        "salt": salt,
        "network": "ethereum:local:foundry",
        "proxy": PROXY_ADDRESS,
        "recorded_at": recorded_at,
        "compiler": {"name": "vyper", "version": "0.4.3", "evm_version": "prague", "optimize": "gas"},
        "source": {"commit": "0" * 40, "dirty": False},
        "contracts": contracts,
    }


def _write(directory: Path, *entries: dict) -> Path:
    """The record file the deploy script keeps, built by its own helpers."""
    path = record_path(directory, "ethereum", "local")
    records: dict = {}
    for entry in entries:
        upsert_entry(records, entry)
    save_records(path, records)
    return path


def test_package__deployed_addresses__newest_deployment_of_the_chain(tmp_path: Path):
    _write(
        tmp_path,
        _entry(31337, SALT_B, "0x" + "01" * 20, "0x" + "02" * 20, "2026-12-01T10:00:00+00:00"),
        _entry(31337, SALT_B, "0x" + "03" * 20, "0x" + "04" * 20, "2026-12-02T10:00:00+00:00"),  # new code, same salt
        # Another salt, recorded last: the newest, although the file lists its salt first.
        _entry(31337, SALT_A, "0x" + "05" * 20, "0x" + "06" * 20, "2026-12-03T10:00:00+00:00"),
        _entry(1, SALT_A, "0x" + "07" * 20, "0x" + "08" * 20, "2026-12-04T10:00:00+00:00"),
    )
    assert list(json.loads((tmp_path / "ethereum-local.json").read_text())["31337"]) == [SALT_A, SALT_B]

    assert deployed_addresses(31337, tmp_path) == {
        "LedgerAdjudicator": "0x" + "05" * 20,
        "VirtualAdjudicator": "0x" + "06" * 20,
    }
    assert deployed_addresses(1, str(tmp_path)) == {
        "LedgerAdjudicator": "0x" + "07" * 20,
        "VirtualAdjudicator": "0x" + "08" * 20,
    }


def test_package__deployed_addresses__interrupted_deployment_skipped(tmp_path: Path):
    _write(
        tmp_path,
        _entry(31337, SALT_A, "0x" + "01" * 20, "0x" + "02" * 20, "2026-12-01T10:00:00+00:00"),
        _entry(31337, SALT_B, "0x" + "03" * 20, "0x" + "04" * 20, "2026-12-02T10:00:00+00:00", pending=True),
    )
    assert deployed_addresses(31337, tmp_path) == {
        "LedgerAdjudicator": "0x" + "01" * 20,
        "VirtualAdjudicator": "0x" + "02" * 20,
    }


def test_package__deployed_addresses__defaults_to_deployments_ethereum_local(tmp_path: Path, monkeypatch):
    _write(
        tmp_path / "deployments", _entry(31337, SALT_A, "0x" + "01" * 20, "0x" + "02" * 20, "2026-12-01T10:00:00+00:00")
    )
    monkeypatch.chdir(tmp_path)
    assert deployed_addresses(31337)["LedgerAdjudicator"] == "0x" + "01" * 20


def test_package__deployed_addresses__nothing_recorded_names_the_file_and_what_to_do(tmp_path: Path):
    path = _write(tmp_path, _entry(31337, SALT_A, "0x" + "01" * 20, "0x" + "02" * 20, "2026-12-01T10:00:00+00:00"))
    advice = (
        "; deploy with `ape run deploy --network ethereum:local:<provider> --account <alias>` in a perun-vyper "
        "checkout, or pass the directory, ecosystem and network of an existing record"
    )

    with pytest.raises(DeploymentError) as other_chain:
        deployed_addresses(5, tmp_path)
    assert str(other_chain.value) == f"{path} records no deployment on chain id 5{advice}"

    with pytest.raises(DeploymentError) as no_file:
        deployed_addresses(31337, tmp_path, network="sepolia")
    sepolia_advice = advice.replace("ethereum:local:", "ethereum:sepolia:")
    assert str(no_file.value) == f"no file {tmp_path / 'ethereum-sepolia.json'}{sepolia_advice}"
    assert "\n" not in str(no_file.value)


def test_package__recorded_apps__of_the_newest_deployment_none_before_the_apps(tmp_path: Path):
    old = _entry(31337, SALT_B, "0x" + "01" * 20, "0x" + "02" * 20, "2026-12-01T10:00:00+00:00")
    path = _write(tmp_path, old)
    # A record written before the app contracts: the pair as before, no apps.
    assert recorded_pair(path, 31337) == {"ledger": "0x" + "01" * 20, "virtual": "0x" + "02" * 20}
    assert recorded_apps(path, 31337) is None
    assert recorded_apps(path, 31337, SALT_B) is None

    apps = ("0x" + "a1" * 20, "0x" + "a2" * 20)
    new = _entry(31337, SALT_A, "0x" + "03" * 20, "0x" + "04" * 20, "2026-12-02T10:00:00+00:00", apps=apps)
    _write(tmp_path, old, new)
    assert recorded_pair(path, 31337) == {"ledger": "0x" + "03" * 20, "virtual": "0x" + "04" * 20}
    assert recorded_apps(path, 31337) == {"app": apps[0], "sla": apps[1]}
    assert recorded_apps(path, 31337, bytes.fromhex(SALT_A[2:])) == {"app": apps[0], "sla": apps[1]}
    assert recorded_apps(path, 31337, SALT_A.upper().replace("0X", "0x")) == {"app": apps[0], "sla": apps[1]}
    assert recorded_apps(path, 31337, SALT_B) is None  # that salt's deployment predates the apps
    assert recorded_apps(path, 31337, "0x" + "cc" * 32) is None
    assert recorded_apps(path, 1) is None
    assert recorded_apps(tmp_path / "missing.json", 31337) is None

    # The newest deployment decides, as for recorded_pair: an older one's apps are not mixed in.
    newest_old = _entry(31337, SALT_B, "0x" + "05" * 20, "0x" + "06" * 20, "2026-12-03T10:00:00+00:00")
    _write(tmp_path, old, new, newest_old)
    assert recorded_pair(path, 31337) == {"ledger": "0x" + "05" * 20, "virtual": "0x" + "06" * 20}
    assert recorded_apps(path, 31337) is None
    assert recorded_apps(path, 31337, SALT_A) == {"app": apps[0], "sla": apps[1]}


def test_package__recorded_apps__interrupted_before_the_sla_app_is_none(tmp_path: Path):
    apps = ("0x" + "a1" * 20, "0x" + "a2" * 20)
    entry = _entry(
        31337, SALT_A, "0x" + "01" * 20, "0x" + "02" * 20, "2026-12-01T10:00:00+00:00", apps=apps, apps_pending=True
    )
    path = _write(tmp_path, entry)
    assert recorded_pair(path, 31337) == {"ledger": "0x" + "01" * 20, "virtual": "0x" + "02" * 20}
    assert recorded_apps(path, 31337) is None


def test_package__recorded_apps__other_layouts_named_by_contract_or_kind(tmp_path: Path):
    path = tmp_path / "hand-written.json"
    path.write_text(
        json.dumps(
            {"LedgerAdjudicator": "0x01", "VirtualAdjudicator": "0x02", "AppAdjudicator": "0x03", "SlaApp": "0x04"}
        )
    )
    assert recorded_apps(path, 5) == {"app": "0x03", "sla": "0x04"}
    assert recorded_apps(path, 5, SALT_A) is None  # no salts in this layout
    path.write_text(json.dumps({"ledger": "0x01", "virtual": "0x02", "app": "0x03", "sla": "0x04"}))
    assert recorded_apps(path, 5) == {"app": "0x03", "sla": "0x04"}
    path.write_text(json.dumps({"ledger": "0x01", "virtual": "0x02", "app": "0x03"}))
    assert recorded_apps(path, 5) is None
    assert recorded_pair(path, 5) == {"ledger": "0x01", "virtual": "0x02"}


READ_ALL = """
import json, sys
import perun_vyper
from perun_vyper import abi
print(json.dumps({
    "file": perun_vyper.__file__,
    "version": perun_vyper.__version__,
    "functions": {name: sorted(item["name"] for item in abi(name) if item["type"] == "function")
                  for name in ("LedgerAdjudicator", "VirtualAdjudicator", "AppAdjudicator", "SlaApp")},
    "path": sys.path,
}))
"""


def test_package__wheel__ships_the_abis_and_reads_them_outside_the_checkout(tmp_path: Path):
    # Built from a copy of what the wheel is made of, so pip's build/ and *.egg-info never land in the checkout.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        (source / name).write_bytes((ROOT / name).read_bytes())
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = tmp_path / "wheels"
    # Build isolation: the venv's setuptools (65) predates the SPDX `license = "Apache-2.0"` pyproject.toml
    # uses (setuptools >= 77), so pip fetches the build backend pyproject.toml asks for.
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-w", str(wheels), "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = wheels.glob("perun_vyper-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert {f"perun_vyper/abi/{name}.json" for name in CONTRACT_NAMES} <= names
        assert "perun_vyper/py.typed" in names
        unpacked = tmp_path / "unpacked"
        archive.extractall(unpacked)

    # -S: no site module, so no .pth file (the venv's editable install of a checkout) puts sources on sys.path;
    # the dependencies come from the venv's site-packages, after the unpacked wheel.
    site_packages = sysconfig.get_paths()["purelib"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join([str(unpacked), site_packages])
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    read = subprocess.run(
        [sys.executable, "-S", "-c", READ_ALL], cwd=outside, env=env, capture_output=True, text=True, timeout=120
    )
    assert read.returncode == 0, read.stderr
    found = json.loads(read.stdout)
    assert Path(found["file"]).is_relative_to(unpacked)
    # The checkout's sources are not on the path (its venv may live inside the checkout, as in CI).
    assert not any(Path(entry).is_relative_to(ROOT / "src") for entry in found["path"] if entry)
    assert found["version"] == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert "deposit" in found["functions"]["LedgerAdjudicator"]
    assert "register" in found["functions"]["VirtualAdjudicator"]
    assert "progress" in found["functions"]["AppAdjudicator"]
    assert "valid_transition" in found["functions"]["SlaApp"]
