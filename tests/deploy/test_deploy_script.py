"""`ape run deploy` end to end, as a subprocess: local default, a separate node (live rule), a fork, salts,
a chain without the CREATE2 proxy, bad accounts, and `--check`.

The "live" node is an Anvil started with Sepolia's chain id and configured as Ape's `ethereum:sepolia:node`
in the test's own Ape data folder: Ape's network name is what makes it live, and it lets ape-foundry fork
it as `ethereum:sepolia-fork:foundry`.
"""

from __future__ import annotations

import re
import subprocess
from decimal import Decimal

from eth_utils import keccak

from perun_vyper import deployed_addresses
from perun_vyper.tools.deployment import PROXY_DEPLOYER, PROXY_DEPLOYMENT_TX, PROXY_HOWTO, PROXY_RUNTIME_CODE

from .conftest import KEYFILE_ALIAS, KEYFILE_PASSPHRASE, PROXY, ROOT, SEPOLIA_CHAIN_ID, Anvil, ApeHome, Compiled

TEST0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
DEFAULT_SALT = keccak(text="perun-vyper")
PROXY_CODE = bytes.fromhex(
    "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffe0"
    "3601600081602082378035828234f58015156039578182fd5b8082525050506014600cf3"
)
TX_HASH = re.compile(r"0x[0-9a-f]{64}")


def _head_commit() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def _plan_line(name: str, address: str, present: bool) -> str:
    status = "already deployed, matches the compiled code" if present else "deploy"
    return f"plan                {name} at {address}: {status}"


def _summary_row(name: str, address: str, status: str) -> re.Pattern[str]:
    return re.compile(rf"{name:<20}{address}  {status:<10}(\d+|-)\s+(0x[0-9a-f]{{64}}|-)$")


def _sepolia(start_anvil, ape_home: ApeHome, *args: str) -> Anvil:
    anvil = start_anvil("--chain-id", str(SEPOLIA_CHAIN_ID), *args)
    ape_home.point("sepolia", anvil)
    return anvil


def _local_node(start_anvil, ape_home: ApeHome, *args: str) -> Anvil:
    anvil = start_anvil(*args)
    ape_home.point("local", anvil, chain_id=31337)
    return anvil


def _assert_deployed_code(anvil: Anvil, compiled: Compiled, virtual: str, ledger: str) -> None:
    virtual_code, ledger_code = anvil.code(virtual), anvil.code(ledger)
    assert virtual_code.startswith(compiled.virtual_runtime)
    assert ledger_code.startswith(compiled.ledger_runtime)
    # The ledger's last immutable is VIRTUAL_ADJUDICATOR.
    assert ledger_code[-32:] == bytes(12) + bytes.fromhex(virtual[2:])


def test_deploy__fresh_anvil__holds_the_proxy_unless_disabled(start_anvil):
    assert start_anvil().code(PROXY) == PROXY_CODE
    assert start_anvil("--disable-default-create2-deployer").code(PROXY) == b""


def test_deploy__local_default_twice__same_addresses_one_record(ape_home: ApeHome, compiled: Compiled):
    virtual, ledger = compiled.addresses(DEFAULT_SALT)
    app, sla = compiled.app_addresses(DEFAULT_SALT)

    first = ape_home.run("--network", "ethereum:local:foundry", "--account", "TEST::0")

    assert first.returncode == 0, first.stderr
    assert first.line("network") == "network             ethereum:local:foundry (chain id 31337; local chain)"
    assert first.line("deployer") == f"deployer            {TEST0}"
    salt_line = f'salt                0x{DEFAULT_SALT.hex()} (default: keccak256("perun-vyper"))'
    assert first.line("salt") == salt_line
    assert first.line("proxy") == f"proxy               {PROXY} present"
    assert _plan_line("VirtualAdjudicator", virtual, present=False) in first.lines
    assert _plan_line("LedgerAdjudicator", ledger, present=False) in first.lines
    assert _plan_line("AppAdjudicator", app, present=False) in first.lines
    assert _plan_line("SlaApp", sla, present=False) in first.lines
    assert [line.split(" at ")[0] for line in first.lines if line.startswith("plan")] == [
        f"plan                {name}"
        for name in ("VirtualAdjudicator", "LedgerAdjudicator", "AppAdjudicator", "SlaApp")
    ]
    assert "gas estimate" not in first.stdout  # no cost and no question on a local chain
    assert first.line("checks").startswith("checks              ok:")
    assert _summary_row("VirtualAdjudicator", virtual, "deployed").match(first.line("VirtualAdjudicator  0x"))
    assert _summary_row("LedgerAdjudicator", ledger, "deployed").match(first.line("LedgerAdjudicator   0x"))
    assert _summary_row("AppAdjudicator", app, "deployed").match(first.line("AppAdjudicator      0x"))
    assert _summary_row("SlaApp", sla, "deployed").match(first.line("SlaApp              0x"))
    record_file = ape_home.deployments / "ethereum-local.json"
    assert first.line("record") == (
        f"record              {record_file} (added; chain id 31337, salt 0x{DEFAULT_SALT.hex()})"
    )

    records = ape_home.records("ethereum-local.json")
    assert list(records) == ["31337"]
    assert list(records["31337"]) == ["0x" + DEFAULT_SALT.hex()]
    [entry] = records["31337"]["0x" + DEFAULT_SALT.hex()]
    assert entry["chain_id"] == 31337
    assert entry["salt"] == "0x" + DEFAULT_SALT.hex()
    assert entry["network"] == "ethereum:local:foundry"
    assert entry["proxy"] == PROXY
    assert entry["compiler"] == {"name": "vyper", "version": "0.4.3", "evm_version": "prague", "optimize": "gas"}
    assert entry["source"]["commit"] == _head_commit()
    assert isinstance(entry["source"]["dirty"], bool)
    assert list(entry["contracts"]) == ["AppAdjudicator", "LedgerAdjudicator", "SlaApp", "VirtualAdjudicator"]
    virtual_item, ledger_item = entry["contracts"]["VirtualAdjudicator"], entry["contracts"]["LedgerAdjudicator"]
    app_item, sla_item = entry["contracts"]["AppAdjudicator"], entry["contracts"]["SlaApp"]
    assert (virtual_item["address"], ledger_item["address"]) == (virtual, ledger)
    assert (app_item["address"], sla_item["address"]) == (app, sla)
    assert virtual_item["constructor_args"] == app_item["constructor_args"] == sla_item["constructor_args"] == {}
    assert ledger_item["constructor_args"] == {"virtual_adjudicator": virtual}
    assert [item["block"] for item in (virtual_item, ledger_item, app_item, sla_item)] == [1, 2, 3, 4]
    for item in (virtual_item, ledger_item, app_item, sla_item):
        assert item["status"] == "deployed"
        assert item["deployer"] == TEST0
        assert TX_HASH.fullmatch(item["transaction"])
    assert virtual_item["init_code_hash"] == "0x" + keccak(compiled.virtual_init).hex()
    assert app_item["init_code_hash"] == "0x" + keccak(compiled.app_init).hex()
    assert sla_item["code_hash"] == "0x" + keccak(compiled.sla_runtime).hex()  # no immutables

    # Every run starts a fresh Anvil: the same addresses again, and the record replaced, not duplicated.
    second = ape_home.run("--network", "ethereum:local:foundry", "--account", "TEST::0")

    assert second.returncode == 0, second.stderr
    assert _plan_line("VirtualAdjudicator", virtual, present=False) in second.lines
    assert second.line("record").startswith(f"record              {record_file} (updated;")
    [again] = ape_home.records("ethereum-local.json")["31337"]["0x" + DEFAULT_SALT.hex()]
    assert again["contracts"]["LedgerAdjudicator"]["address"] == ledger
    assert again["recorded_at"] >= entry["recorded_at"]
    assert deployed_addresses(31337, ape_home.deployments) == {
        "LedgerAdjudicator": ledger,
        "VirtualAdjudicator": virtual,
    }


def test_deploy__live_network_declined__prints_cost_and_sends_nothing(start_anvil, ape_home, compiled):
    anvil = start_anvil()  # an ad-hoc URL network: Ape calls it `custom`, which is live
    virtual, ledger = compiled.addresses(DEFAULT_SALT)

    result = ape_home.run("--network", anvil.url, "--account", "TEST::0", input="n\n")

    assert result.returncode == 1
    assert result.line("network") == "network             ethereum:custom:node (chain id 31337; live network)"
    assert _plan_line("VirtualAdjudicator", virtual, present=False) in result.lines
    assert re.fullmatch(
        r"gas estimate        VirtualAdjudicator [\d,]+; LedgerAdjudicator [\d,]+; AppAdjudicator [\d,]+; "
        r"SlaApp [\d,]+ \(total [\d,]+\)",
        result.line("gas estimate"),
    )
    total_gas = int(re.search(r"\(total ([\d,]+)\)", result.line("gas estimate"))[1].replace(",", ""))
    gwei = Decimal(result.line("gas price").split()[2])
    cost = re.fullmatch(r"estimated cost      (0\.\d+) ETH", result.line("estimated cost"))
    assert cost and Decimal(cost[1]) == total_gas * gwei / 10**9
    assert 6_000_000 < total_gas < 10_000_000  # docs/gas.json: 3,433,415 the pair, 2,506,208 + 648,388 the apps
    assert "Deploy 4 contract(s) to ethereum:custom:node (chain id 31337)? [y/N]: " in result.stdout
    assert "Error: not confirmed (pass --yes to deploy unattended). Nothing was deployed." in result.stderr
    assert (anvil.block_number(), anvil.nonce(TEST0)) == (0, 0)
    assert anvil.code(virtual) == anvil.code(ledger) == anvil.code(compiled.app_addresses(DEFAULT_SALT)[0]) == b""
    assert not ape_home.deployments.exists()


def test_deploy__live_network_second_run__changes_nothing(start_anvil, ape_home: ApeHome, compiled: Compiled):
    anvil = _sepolia(start_anvil, ape_home)
    deployer = ape_home.import_keyfile()
    passphrase = {f"APE_ACCOUNTS_{KEYFILE_ALIAS}_PASSPHRASE": KEYFILE_PASSPHRASE}
    args = ("--network", "ethereum:sepolia:node", "--account", KEYFILE_ALIAS, "--yes")
    virtual, ledger = compiled.addresses(DEFAULT_SALT)
    app, sla = compiled.app_addresses(DEFAULT_SALT)

    first = ape_home.run(*args, extra_env=passphrase)

    assert first.returncode == 0, first.stderr
    assert first.line("network") == (
        f"network             ethereum:sepolia:node (chain id {SEPOLIA_CHAIN_ID}; live network)"
    )
    assert first.line("deployer") == f"deployer            {deployer}"
    assert first.line("estimated cost")
    assert "[y/N]" not in first.stdout
    _assert_deployed_code(anvil, compiled, virtual, ledger)
    assert anvil.code(sla) == compiled.sla_runtime
    block, nonce = anvil.block_number(), anvil.nonce(deployer)
    assert (block, nonce) == (4, 4)
    record_file = ape_home.deployments / "ethereum-sepolia.json"
    recorded = record_file.read_bytes()
    [entry] = ape_home.records("ethereum-sepolia.json")[str(SEPOLIA_CHAIN_ID)]["0x" + DEFAULT_SALT.hex()]
    assert entry["contracts"]["LedgerAdjudicator"]["deployer"] == deployer
    assert entry["network"] == "ethereum:sepolia:node"  # the node's URI (it may hold an API key) stays out

    second = ape_home.run(*args, extra_env=passphrase)

    assert second.returncode == 0, second.stderr
    assert _plan_line("VirtualAdjudicator", virtual, present=True) in second.lines
    assert _plan_line("LedgerAdjudicator", ledger, present=True) in second.lines
    assert _plan_line("AppAdjudicator", app, present=True) in second.lines
    assert _plan_line("SlaApp", sla, present=True) in second.lines
    assert second.line("nothing to deploy") == (
        "nothing to deploy   all 4 contracts are already at their addresses; no transaction sent"
    )
    assert "estimated cost" not in second.stdout
    row = _summary_row("LedgerAdjudicator", ledger, "present").match(second.line("LedgerAdjudicator   0x"))
    assert row and row.groups() == ("2", entry["contracts"]["LedgerAdjudicator"]["transaction"])
    app_row = _summary_row("AppAdjudicator", app, "present").match(second.line("AppAdjudicator      0x"))
    assert app_row and app_row.groups() == ("3", entry["contracts"]["AppAdjudicator"]["transaction"])
    assert second.line("record").startswith(f"record              {record_file} (unchanged;")
    assert (anvil.block_number(), anvil.nonce(deployer)) == (block, nonce)
    assert record_file.read_bytes() == recorded


def test_deploy__check__rechecks_records_and_flags_tampered_code(start_anvil, ape_home: ApeHome, compiled: Compiled):
    anvil = _local_node(start_anvil, ape_home)
    virtual, ledger = compiled.addresses(DEFAULT_SALT)
    app, sla = compiled.app_addresses(DEFAULT_SALT)
    assert ape_home.run("--network", "ethereum:local:node", "--account", "TEST::0").returncode == 0
    block = anvil.block_number()

    check = ape_home.run("--network", "ethereum:local:node", "--check")

    assert check.returncode == 0, check.stderr
    assert check.lines[-7:] == [
        f"VirtualAdjudicator  {virtual}",
        f"LedgerAdjudicator   {ledger}",
        f"AppAdjudicator      {app}",
        f"SlaApp              {sla}",
        "this checkout       compiles the recorded code",
        "result              ok",
        f"checked             1 recorded deployment(s) in {ape_home.deployments / 'ethereum-local.json'}: ok",
    ]

    # Point the ledger's VIRTUAL_ADJUDICATOR immutable elsewhere: the runtime part still matches.
    code = anvil.code(ledger)
    anvil.rpc("anvil_setCode", ledger, "0x" + (code[:-20] + bytes.fromhex(PROXY[2:])).hex())

    tampered = ape_home.run("--network", "ethereum:local:node", "--check")
    redeploy = ape_home.run("--network", "ethereum:local:node", "--account", "TEST::0")

    assert tampered.returncode == 1
    assert tampered.line("result") == (
        f"result              FAILED: LedgerAdjudicator at {ledger}: code hash differs from the record"
    )
    assert redeploy.returncode == 1
    assert (
        f"Error: LedgerAdjudicator: the code at {ledger} is not the compiled LedgerAdjudicator: immutable "
        f"VIRTUAL_ADJUDICATOR holds 0x{bytes(12).hex()}{PROXY[2:].lower()}, expected 0x{bytes(12).hex()}"
        f"{virtual[2:].lower()}. Nothing was deployed."
    ) in redeploy.stderr
    assert anvil.block_number() == block


def test_deploy__fork_of_deployed_node__finds_the_set_and_deploys_new_salts_on_the_fork_only(
    start_anvil, ape_home: ApeHome, compiled: Compiled
):
    upstream = _sepolia(start_anvil, ape_home)
    virtual, ledger = compiled.addresses(DEFAULT_SALT)
    assert ape_home.run("--network", "ethereum:sepolia:node", "--account", "TEST::0", "--yes").returncode == 0
    assert upstream.block_number() == 4

    found = ape_home.run("--network", "ethereum:sepolia-fork:foundry", "--account", "TEST::0")

    assert found.returncode == 0, found.stderr
    assert found.line("network") == (
        f"network             ethereum:sepolia-fork:foundry (chain id {SEPOLIA_CHAIN_ID}; local chain)"
    )
    assert _plan_line("LedgerAdjudicator", ledger, present=True) in found.lines
    assert found.line("nothing to deploy")
    assert _summary_row("VirtualAdjudicator", virtual, "present").match(found.line("VirtualAdjudicator  0x"))
    [entry] = ape_home.records("ethereum-sepolia-fork.json")[str(SEPOLIA_CHAIN_ID)]["0x" + DEFAULT_SALT.hex()]
    assert {name: (item["status"], item["transaction"]) for name, item in entry["contracts"].items()} == {
        "VirtualAdjudicator": ("found", None),
        "LedgerAdjudicator": ("found", None),
        "AppAdjudicator": ("found", None),
        "SlaApp": ("found", None),
    }

    salt = "0x" + "11" * 32
    fork_virtual, fork_ledger = compiled.addresses(bytes.fromhex(salt[2:]))
    fresh = ape_home.run("--network", "ethereum:sepolia-fork:foundry", "--account", "TEST::0", "--salt", salt)

    assert fresh.returncode == 0, fresh.stderr
    assert _plan_line("VirtualAdjudicator", fork_virtual, present=False) in fresh.lines
    assert _summary_row("LedgerAdjudicator", fork_ledger, "deployed").match(fresh.line("LedgerAdjudicator   0x"))
    assert upstream.block_number() == 4
    assert upstream.code(fork_virtual) == b""
    fork_records = ape_home.records("ethereum-sepolia-fork.json")[str(SEPOLIA_CHAIN_ID)]
    assert sorted(fork_records) == sorted(["0x" + DEFAULT_SALT.hex(), salt])


def test_deploy__salt__gives_a_new_set_of_addresses(start_anvil, ape_home: ApeHome, compiled: Compiled):
    anvil = _local_node(start_anvil, ape_home)
    default_set = compiled.addresses(DEFAULT_SALT)
    text_set = compiled.addresses(keccak(text="second set"))
    assert ape_home.run("--network", "ethereum:local:node", "--account", "TEST::0").returncode == 0

    result = ape_home.run("--network", "ethereum:local:node", "--account", "TEST::0", "--salt", "second set")

    assert result.returncode == 0, result.stderr
    assert result.line("salt") == f"salt                0x{keccak(text='second set').hex()}"
    assert _plan_line("VirtualAdjudicator", text_set[0], present=False) in result.lines
    assert _plan_line("LedgerAdjudicator", text_set[1], present=False) in result.lines
    assert set(text_set).isdisjoint(default_set)
    _assert_deployed_code(anvil, compiled, *default_set)
    _assert_deployed_code(anvil, compiled, *text_set)
    records = ape_home.records("ethereum-local.json")["31337"]
    assert sorted(records) == sorted(["0x" + DEFAULT_SALT.hex(), "0x" + keccak(text="second set").hex()])
    # The newest set is the one recorded last, although the file lists its salt (0x6e7f..) first.
    assert list(records) == ["0x" + keccak(text="second set").hex(), "0x" + DEFAULT_SALT.hex()]
    newest = {"LedgerAdjudicator": text_set[1], "VirtualAdjudicator": text_set[0]}
    assert deployed_addresses(31337, ape_home.deployments) == newest


def test_deploy__malformed_hex_salt__one_error_line_nothing_sent_or_written(start_anvil, ape_home: ApeHome):
    anvil = _local_node(start_anvil, ape_home)

    result = ape_home.run("--network", "ethereum:local:node", "--account", "TEST::0", "--salt", "0x1234")

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: --salt 0x1234 has 4 hex digits; a hex salt is 0x and 64 hex digits (32 bytes), and text without "
        "0x is hashed into one. Nothing was deployed."
    ]
    assert "Traceback" not in result.stdout + result.stderr
    assert (anvil.block_number(), anvil.nonce(TEST0)) == (0, 0)
    assert not (ape_home.deployments / "ethereum-local.json").exists()


def test_deploy__local_chain_without_proxy__reports_and_installs_it(start_anvil, ape_home: ApeHome, compiled):
    anvil = _local_node(start_anvil, ape_home, "--disable-default-create2-deployer")
    virtual, ledger = compiled.addresses(DEFAULT_SALT)

    result = ape_home.run("--network", "ethereum:local:node", "--account", "TEST::0")

    assert result.returncode == 0, result.stderr
    assert [line for line in result.lines if line.startswith("proxy")] == [
        f"proxy               {PROXY} missing on this local chain: installing its runtime code",
        f"proxy               {PROXY} installed (anvil_setCode)",
    ]
    assert anvil.code(PROXY) == PROXY_CODE
    _assert_deployed_code(anvil, compiled, virtual, ledger)  # the same addresses as on any other chain


def test_deploy__live_network_without_proxy__stops_and_explains(start_anvil, ape_home: ApeHome):
    anvil = _sepolia(start_anvil, ape_home, "--disable-default-create2-deployer")

    result = ape_home.run("--network", "ethereum:sepolia:node", "--account", "TEST::0", "--yes")

    assert result.returncode == 1
    assert result.line("proxy") == f"proxy               {PROXY} missing"
    assert f"Error: the deterministic-deployment proxy {PROXY} is missing on chain {SEPOLIA_CHAIN_ID}" in result.stderr
    assert "https://github.com/Arachnid/deterministic-deployment-proxy" in result.stderr
    assert result.stderr.rstrip().endswith("Nothing was deployed.")
    assert "plan" not in result.stdout
    assert (anvil.block_number(), anvil.nonce(TEST0), anvil.code(PROXY)) == (0, 0, b"")


def test_deploy__unknown_account_alias__clear_error_and_nothing_deployed(start_anvil, ape_home: ApeHome):
    anvil = _local_node(start_anvil, ape_home)

    result = ape_home.run("--network", "ethereum:local:node", "--account", "no-such-alias")

    assert result.returncode == 2
    assert "Invalid value for '--account': Account with alias 'no-such-alias' not found." in result.stderr
    assert result.stdout == ""
    assert (anvil.block_number(), anvil.nonce(TEST0)) == (0, 0)
    assert not ape_home.deployments.exists()


def test_deploy__missing_account__clear_error_and_nothing_deployed(start_anvil, ape_home: ApeHome):
    anvil = _local_node(start_anvil, ape_home)

    result = ape_home.run("--network", "ethereum:local:node")

    assert result.returncode == 1
    assert "Error: missing --account: give an alias from `ape accounts list` (TEST::0 on a local chain)." in (
        result.stderr
    )
    assert "network" not in result.stdout
    assert (anvil.block_number(), anvil.nonce(TEST0)) == (0, 0)
    assert not ape_home.deployments.exists()


def test_deploy__proxy_howto__presigned_transaction_installs_the_same_proxy(start_anvil):
    anvil = start_anvil("--disable-default-create2-deployer")
    anvil.rpc("anvil_setBalance", PROXY_DEPLOYER, hex(10**16))  # the 0.01 ETH the message asks for

    txn = anvil.rpc("eth_sendRawTransaction", PROXY_DEPLOYMENT_TX)

    receipt = anvil.receipt(str(txn))
    assert receipt["status"] == "0x1"
    assert receipt["contractAddress"].lower() == PROXY.lower()
    assert anvil.code(PROXY) == PROXY_CODE == PROXY_RUNTIME_CODE
    assert anvil.nonce(PROXY_DEPLOYER) == 1
    assert PROXY_DEPLOYMENT_TX in PROXY_HOWTO
