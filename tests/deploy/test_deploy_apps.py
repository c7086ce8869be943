"""`ape run deploy` and the app channels' contracts (SPEC 12): AppAdjudicator and SlaApp deployed, checked and
recorded beside the payment adjudicators, and a record written before them (the pair only) upgraded in place.

Each test runs the script as a subprocess against an Anvil it started (tests/deploy/conftest.py); the expected
code, domain and addresses are computed here from the compiled contracts and EIP-712/EIP-1014, independently
of the script.
"""

from __future__ import annotations

import json

from eth_abi import decode
from eth_utils import keccak

from perun_vyper.contracts import recorded_apps, recorded_pair

from .conftest import Anvil, ApeHome, Compiled

DEFAULT_SALT = keccak(text="perun-vyper")
CHAIN_ID = 31337
NETWORK = ("--network", "ethereum:local:node")
DEPLOY = (*NETWORK, "--account", "TEST::0")
DOMAIN_TYPE = b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"


def _local_node(start_anvil, ape_home: ApeHome) -> Anvil:
    anvil = start_anvil()
    ape_home.point("local", anvil, chain_id=CHAIN_ID)
    return anvil


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _separator(name: str, address: str) -> bytes:
    return keccak(
        keccak(DOMAIN_TYPE)
        + keccak(text=name)
        + keccak(text="1")
        + _word(CHAIN_ID)
        + bytes(12)
        + bytes.fromhex(address[2:])
    )


def _app_immutables(address: str) -> bytes:
    """typed_signatures' immutables as Vyper appends them to AppAdjudicator's runtime code (`vyper -f layout`):
    chain id, separator, hashed name and version, then name (String[32]) and version (String[20]), each a length
    word and the padded text."""
    return (
        _word(CHAIN_ID)
        + _separator("PerunApp", address)
        + keccak(text="PerunApp")
        + keccak(text="1")
        + _word(8)
        + b"PerunApp".ljust(32, b"\x00")
        + _word(1)
        + b"1".ljust(32, b"\x00")
    )


def _call(anvil: Anvil, address: str, signature: str) -> bytes:
    data = "0x" + keccak(text=signature)[:4].hex()
    return bytes.fromhex(str(anvil.rpc("eth_call", {"to": address, "data": data}, "latest"))[2:])


def _make_old(ape_home: ApeHome, anvil: Anvil, app: str, sla: str) -> None:
    """What a chain and record look like when they were deployed before this script deployed the apps."""
    path = ape_home.deployments / "ethereum-local.json"
    records = json.loads(path.read_text())
    [entry] = records[str(CHAIN_ID)]["0x" + DEFAULT_SALT.hex()]
    del entry["contracts"]["AppAdjudicator"], entry["contracts"]["SlaApp"]
    path.write_text(json.dumps(records, indent=2, sort_keys=True) + "\n")
    for address in (app, sla):  # no code and nonce 0 (CREATE2 refuses an address with a nonce)
        anvil.rpc("anvil_setCode", address, "0x")
        anvil.rpc("anvil_setNonce", address, "0x0")


def test_deploy_apps__fresh_chain__compiled_code_perun_app_domain_recorded(start_anvil, ape_home, compiled: Compiled):
    anvil = _local_node(start_anvil, ape_home)
    app, sla = compiled.app_addresses(DEFAULT_SALT)
    record = ape_home.deployments / "ethereum-local.json"

    result = ape_home.run(*DEPLOY)

    assert result.returncode == 0, result.stderr
    assert anvil.code(sla) == compiled.sla_runtime
    assert anvil.code(app) == compiled.app_runtime + _app_immutables(app)
    domain = decode(
        ["bytes1", "string", "string", "uint256", "address", "bytes32", "uint256[]"],
        _call(anvil, app, "eip712Domain()"),
    )
    assert domain == (b"\x0f", "PerunApp", "1", CHAIN_ID, app.lower(), bytes(32), ())
    assert _call(anvil, app, "DOMAIN_SEPARATOR()") == _separator("PerunApp", app)
    assert result.line("checks") == (
        "checks              ok: code (runtime + immutables), EIP-712 domain, LedgerAdjudicator.VIRTUAL_ADJUDICATOR"
    )
    assert recorded_apps(record, CHAIN_ID) == {"app": app, "sla": sla}
    assert recorded_apps(record, CHAIN_ID, DEFAULT_SALT) == {"app": app, "sla": sla}
    assert recorded_apps(record, CHAIN_ID, "0x" + "11" * 32) is None
    assert recorded_apps(record, 1) is None


def test_deploy_apps__tampered_sla_app__check_fails_and_redeploy_refuses(start_anvil, ape_home, compiled: Compiled):
    anvil = _local_node(start_anvil, ape_home)
    sla = compiled.app_addresses(DEFAULT_SALT)[1]
    assert ape_home.run(*DEPLOY).returncode == 0
    block = anvil.block_number()
    anvil.rpc("anvil_setCode", sla, "0x" + (compiled.sla_runtime + b"\x00").hex())

    check = ape_home.run(*NETWORK, "--check")
    redeploy = ape_home.run(*DEPLOY)

    assert check.returncode == 1
    assert check.line("result") == f"result              FAILED: SlaApp at {sla}: code hash differs from the record"
    assert "Error: 1 of 1 recorded deployment(s) failed the check" in check.stderr
    assert redeploy.returncode == 1
    assert (
        f"Error: SlaApp: the code at {sla} is not the compiled SlaApp: immutables section is 1 bytes, expected 0. "
        "Nothing was deployed."
    ) in redeploy.stderr
    assert anvil.block_number() == block


def test_deploy_apps__record_before_the_apps__check_names_the_fix_deploy_adds_them(
    start_anvil, ape_home: ApeHome, compiled: Compiled
):
    anvil = _local_node(start_anvil, ape_home)
    virtual, ledger = compiled.addresses(DEFAULT_SALT)
    app, sla = compiled.app_addresses(DEFAULT_SALT)
    record = ape_home.deployments / "ethereum-local.json"
    assert ape_home.run(*DEPLOY).returncode == 0
    _make_old(ape_home, anvil, app, sla)
    [old] = ape_home.records("ethereum-local.json")[str(CHAIN_ID)]["0x" + DEFAULT_SALT.hex()]
    assert recorded_pair(record, CHAIN_ID) == {"ledger": ledger, "virtual": virtual}
    assert recorded_apps(record, CHAIN_ID) is None

    check = ape_home.run(*NETWORK, "--check")

    assert check.returncode == 1
    assert check.lines[-4:] == [
        f"VirtualAdjudicator  {virtual}",
        f"LedgerAdjudicator   {ledger}",
        "this checkout       compiles the recorded code",
        "result              FAILED: AppAdjudicator, SlaApp not recorded (the record predates them): run "
        "`ape run deploy --network ethereum:local:node --account <alias>` again to deploy and record them",
    ]
    assert check.stderr.strip().splitlines()[-1] == "Error: 1 of 1 recorded deployment(s) failed the check"
    assert "Traceback" not in check.stdout + check.stderr

    block = anvil.block_number()
    upgrade = ape_home.run(*DEPLOY)

    assert upgrade.returncode == 0, upgrade.stderr
    assert [line for line in upgrade.lines if line.startswith("plan")] == [
        f"plan                VirtualAdjudicator at {virtual}: already deployed, matches the compiled code",
        f"plan                LedgerAdjudicator at {ledger}: already deployed, matches the compiled code",
        f"plan                AppAdjudicator at {app}: deploy",
        f"plan                SlaApp at {sla}: deploy",
    ]
    assert anvil.block_number() == block + 2
    assert upgrade.line("record").startswith(f"record              {record} (updated;")
    [entry] = ape_home.records("ethereum-local.json")[str(CHAIN_ID)]["0x" + DEFAULT_SALT.hex()]
    # The pair keeps what the first run recorded (its transactions); the apps are this run's.
    for name in ("VirtualAdjudicator", "LedgerAdjudicator"):
        assert entry["contracts"][name] == old["contracts"][name]
    assert [entry["contracts"][name]["block"] for name in ("AppAdjudicator", "SlaApp")] == [block + 1, block + 2]
    assert recorded_apps(record, CHAIN_ID) == {"app": app, "sla": sla}

    again = ape_home.run(*NETWORK, "--check")

    assert again.returncode == 0, again.stderr
    assert again.line("result") == "result              ok"
