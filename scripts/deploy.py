"""`ape run deploy`: deploy the Perun contracts at deterministic addresses, check them and record them.

    ape run deploy --network <ecosystem>:<network>:<provider> --account <alias> [--salt S] [--yes]
    ape run deploy --network <...> --check [--salt S]

Every contract of the set (VirtualAdjudicator, LedgerAdjudicator, AppAdjudicator, SlaApp: ``DEPLOYED``)
goes through the deterministic-deployment proxy (CREATE2), so the addresses depend only on the salt and the
compiled code: a second run finds them in place and sends nothing. A local chain (Ape's network ``local``
or a ``*-fork``) deploys unattended and gets the proxy installed when it lacks it; any other network is
live: the script shows the plan and its estimated cost and asks first (``--yes`` skips the question), and
stops if the proxy is missing. Every deployment lands in ``deployments/<ecosystem>-<network>.json``
(chain id -> salt -> deployments); ``--check`` re-checks the recorded deployments of the connected chain
without sending anything.
"""

from __future__ import annotations

import datetime
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from ape import project
from ape.cli import account_option
from eth_utils import keccak, to_checksum_address

from perun_vyper.contracts import record_path
from perun_vyper.core.codec import Domain
from perun_vyper.core.constants import DOMAIN_VERSION
from perun_vyper.tools.cli import OperatorCommand, unattended_signer
from perun_vyper.tools.deployment import (
    CONSTRUCTOR_LINKS,
    DEFAULT_SALT_TEXT,
    DEPLOYED,
    DOMAIN_NAMES,
    LEDGER,
    PROXY_ADDRESS,
    PROXY_HOWTO,
    PROXY_RUNTIME_CODE,
    VIRTUAL,
    DeploymentError,
    Immutable,
    Target,
    compare_code,
    create2_address,
    encode_immutables,
    expected_immutable_values,
    find_entry,
    is_local_network,
    load_records,
    missing_note,
    parse_salt,
    proxy_calldata,
    read_immutables_layout,
    record_contracts,
    save_records,
    source_revision,
    up_to_date,
    upsert_entry,
)

if TYPE_CHECKING:
    from ape.api import AccountAPI, ProviderAPI, TransactionAPI

LABEL = 20  # width of the first column of every output line


def echo(label: str, text: str) -> None:
    click.echo(f"{label:<{LABEL}}{text}")


def hex0x(data: bytes) -> str:
    return "0x" + data.hex()


def eth(wei: int) -> str:
    return f"{(Decimal(wei) / Decimal(10**18)).normalize():f} ETH"


def compiled(name: str) -> tuple[Any, bytes, bytes]:
    """The contract container, its init code (without arguments) and its runtime code."""
    container = project.get_contract(name)
    contract_type = container.contract_type
    return (
        container,
        bytes.fromhex(contract_type.deployment_bytecode.bytecode.removeprefix("0x")),
        bytes.fromhex(contract_type.runtime_bytecode.bytecode.removeprefix("0x")),
    )


def vyper_executable() -> str:
    return shutil.which("vyper") or str(Path(sys.executable).with_name("vyper"))


def init_code(provider: ProviderAPI, name: str, args: dict[str, str]) -> bytes:
    """Compiled init code followed by the ABI-encoded constructor arguments."""
    container, code, _ = compiled(name)
    if not args:
        return code
    return code + bytes(provider.network.ecosystem.encode_calldata(container.contract_type.constructor, *args.values()))


_LAYOUTS: dict[str, list[Immutable]] = {}


def immutables_layout(name: str) -> list[Immutable]:
    source_id = project.get_contract(name).contract_type.source_id
    if source_id not in _LAYOUTS:
        _LAYOUTS[source_id] = read_immutables_layout(vyper_executable(), project.path, source_id)
    return _LAYOUTS[source_id]


def build_target(provider: ProviderAPI, name: str, salt: bytes, args: dict[str, str]) -> Target:
    code = init_code(provider, name, args)
    address = create2_address(salt, code)
    runtime = compiled(name)[2]
    layout = immutables_layout(name)
    values = expected_immutable_values(name, address, provider.chain_id, args.get("virtual_adjudicator"))
    return Target(name, salt, args, code, address, runtime, layout, runtime + encode_immutables(layout, values))


def build_targets(provider: ProviderAPI, salt: bytes) -> list[Target]:
    """The set in ``DEPLOYED`` order: the ledger's init code holds the virtual adjudicator's address."""
    built: dict[str, Target] = {}
    for name in DEPLOYED:
        args = {arg: built[other].address for arg, other in CONSTRUCTOR_LINKS.get(name, {}).items()}
        built[name] = build_target(provider, name, salt, args)
    return list(built.values())


def ensure_proxy(provider: ProviderAPI, local: bool) -> str:
    """The proxy's state for the plan line; installs it on a local chain, stops on a live one."""
    code = bytes(provider.get_code(PROXY_ADDRESS))
    if code == PROXY_RUNTIME_CODE:
        return "present"
    if code:
        raise DeploymentError(
            f"{PROXY_ADDRESS} holds {len(code)} bytes of code that are not the deterministic-deployment proxy; "
            "refusing to deploy through it. Nothing was deployed."
        )
    if not local:
        echo("proxy", f"{PROXY_ADDRESS} missing")
        raise DeploymentError(
            f"the deterministic-deployment proxy {PROXY_ADDRESS} is missing on chain {provider.chain_id}, a live "
            f"network (only local chains get it installed by this script). {PROXY_HOWTO} Then run this again. "
            "Nothing was deployed."
        )
    echo("proxy", f"{PROXY_ADDRESS} missing on this local chain: installing its runtime code")
    for method in ("anvil_setCode", "hardhat_setCode"):
        try:
            provider.make_request(method, [PROXY_ADDRESS, hex0x(PROXY_RUNTIME_CODE)])
        except Exception:
            continue
        if bytes(provider.get_code(PROXY_ADDRESS)) == PROXY_RUNTIME_CODE:
            return f"installed ({method})"
    raise DeploymentError(
        "could not install the proxy (the node supports neither anvil_setCode nor hardhat_setCode). " + PROXY_HOWTO
    )


def plan(provider: ProviderAPI, targets: list[Target]) -> None:
    """Marks each target present or to deploy; fails on any foreign code at a computed address."""
    for target in targets:
        code = bytes(provider.get_code(target.address))
        if not code:
            continue
        reason = compare_code(code, target.runtime, target.expected_code[len(target.runtime) :], target.layout)
        if reason is not None:
            raise DeploymentError(
                f"{target.name}: the code at {target.address} is not the compiled {target.name}: {reason}. "
                "Nothing was deployed."
            )
        target.status = "present"


def proxy_transaction(provider: ProviderAPI, account: AccountAPI, salt: bytes, code: bytes) -> TransactionAPI:
    data = proxy_calldata(salt, code)
    return provider.network.ecosystem.create_transaction(receiver=PROXY_ADDRESS, data=data, sender=account.address)


def estimate(provider: ProviderAPI, account: AccountAPI, pending: list[Target]) -> int:
    """Total gas of the pending deployments. A constructor argument naming a contract not deployed yet (the
    ledger's virtual adjudicator) is estimated with the proxy's address standing in (the constructor only
    checks that the address holds code); the call data then differs in one address, a few hundred gas at most."""
    waiting = {t.name for t in pending}
    total = 0
    gas_by_name = []
    for target in pending:
        links = CONSTRUCTOR_LINKS.get(target.name, {})
        args = {arg: PROXY_ADDRESS if links.get(arg) in waiting else v for arg, v in target.constructor_args.items()}
        code = init_code(provider, target.name, args)
        gas = provider.estimate_gas_cost(proxy_transaction(provider, account, target.salt, code))
        gas_by_name.append(f"{target.name} {gas:,}")
        total += gas
    echo("gas estimate", f"{'; '.join(gas_by_name)} (total {total:,})")
    return total


def deploy(provider: ProviderAPI, account: AccountAPI, target: Target) -> None:
    """One transaction to the proxy, after an eth_call showing it creates the expected address."""
    txn = proxy_transaction(provider, account, target.salt, target.init_code)
    returned = bytes(provider.send_call(txn))
    if len(returned) != 20 or to_checksum_address(returned) != target.address:
        raise DeploymentError(
            f"{target.name}: the proxy would create 0x{returned.hex()}, expected {target.address}; nothing sent"
        )
    receipt = account.call(txn)
    if receipt.failed:
        raise DeploymentError(f"{target.name}: transaction {receipt.txn_hash} failed")
    target.status, target.transaction, target.block = "deployed", str(receipt.txn_hash), receipt.block_number


def view_problems(chain_id: int, addresses: dict[str, str]) -> list[str]:
    """The EIP-712 domain of each contract that has one and the ledger's pointer to the virtual adjudicator."""
    problems = []
    for name, address in addresses.items():
        if name not in DOMAIN_NAMES:
            continue
        instance = project.get_contract(name).at(address)
        fields, dname, version, cid, verifying, dsalt, extensions = instance.eip712Domain()
        expected = (b"\x0f", DOMAIN_NAMES[name], DOMAIN_VERSION, chain_id, address, bytes(32), [])
        got = (bytes(fields), dname, version, cid, verifying, bytes(dsalt), list(extensions))
        if got != expected:
            problems.append(f"{name}.eip712Domain() answers {got}, expected {expected}")
        separator = Domain(DOMAIN_NAMES[name], DOMAIN_VERSION, chain_id, address).separator
        if bytes(instance.DOMAIN_SEPARATOR()) != separator:
            problems.append(f"{name}.DOMAIN_SEPARATOR() is not the separator of its domain")
    pointer = project.get_contract(LEDGER).at(addresses[LEDGER]).VIRTUAL_ADJUDICATOR()
    if pointer != addresses[VIRTUAL]:
        problems.append(f"{LEDGER}.VIRTUAL_ADJUDICATOR() is {pointer}, expected {addresses[VIRTUAL]}")
    return problems


def verify(provider: ProviderAPI, targets: list[Target]) -> None:
    """The code at each address (see ``compare_code``), the EIP-712 domains and the ledger's pointer."""
    problems = []
    for target in targets:
        code = bytes(provider.get_code(target.address))
        immutables = target.expected_code[len(target.runtime) :]
        if (reason := compare_code(code, target.runtime, immutables, target.layout)) is not None:
            problems.append(f"{target.name} at {target.address}: {reason}")
    if not problems:
        problems = view_problems(provider.chain_id, {t.name: t.address for t in targets})
    if problems:
        raise DeploymentError("deployment check failed:\n  " + "\n  ".join(problems))
    echo("checks", "ok: code (runtime + immutables), EIP-712 domain, LedgerAdjudicator.VIRTUAL_ADJUDICATOR")


def compiler_info(name: str) -> dict[str, Any]:
    for compiler in project.manifest.compilers or []:
        if name in (compiler.contractTypes or []):
            settings = compiler.settings or {}
            return {
                "name": compiler.name,
                "version": compiler.version,
                "evm_version": settings.get("evmVersion"),
                "optimize": settings.get("optimize"),
            }
    return {"name": "vyper", "version": None}


def make_entry(
    provider: ProviderAPI, account: AccountAPI, salt: bytes, targets: list[Target], old: dict | None
) -> dict[str, Any]:
    return {
        "chain_id": provider.chain_id,
        "salt": hex0x(salt),
        "network": network_label(provider),
        "proxy": PROXY_ADDRESS,
        "recorded_at": datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat(),
        "compiler": compiler_info(LEDGER),
        "source": source_revision(project.path),
        "contracts": record_contracts(targets, account.address, old),
    }


def record(path: Path, provider: ProviderAPI, account: AccountAPI, salt: bytes, targets: list[Target]) -> bool:
    """Writes the deployment into the record file unless it is recorded already; True if it wrote."""
    records = load_records(path)
    addresses = {t.name: t.address for t in targets}
    old = find_entry(records, provider.chain_id, salt, addresses)
    if up_to_date(old, addresses) and not any(t.status == "deployed" for t in targets):
        return False
    upsert_entry(records, make_entry(provider, account, salt, targets, old))
    save_records(path, records)
    return True


def summary(targets: list[Target], recorded: dict | None) -> None:
    click.echo(f"{'contract':<{LABEL}}{'address':<44}{'status':<10}{'block':<8}transaction")
    for target in targets:
        txn, block = target.transaction, target.block
        if txn is None and recorded:
            previous = recorded["contracts"].get(target.name, {})
            txn, block = previous.get("transaction"), previous.get("block")
        block_text = "-" if block is None else str(block)
        click.echo(f"{target.name:<{LABEL}}{target.address:<44}{target.status:<10}{block_text:<8}{txn or '-'}")


@contextmanager
def signing_session(account: AccountAPI, enabled: bool) -> Iterator[None]:
    """A keyfile account is unlocked once (passphrase from APE_ACCOUNTS_<alias>_PASSPHRASE, or one prompt on a
    terminal) and signs the planned transactions without asking again: the plan was confirmed (or --yes)
    already."""
    autosign = getattr(account, "set_autosign", None)
    if not enabled or autosign is None:
        yield
        return
    unattended_signer(account)  # unlocked once, refused in one line if it cannot be (tools/cli.py)
    try:
        yield
    finally:
        autosign(False)


def shown(path: Path) -> str:
    """``path`` relative to the project when it lies inside it."""
    try:
        return str(path.resolve().relative_to(project.path.resolve()))
    except ValueError:
        return str(path)


def network_label(provider: ProviderAPI) -> str:
    """``ecosystem:network:provider`` without the node's URI (which can hold an API key)."""
    return f"{provider.network.ecosystem.name}:{provider.network.name}:{provider.name}"


def run_deploy(
    provider: ProviderAPI, account: AccountAPI, salt: bytes, salt_given: bool, yes: bool, records_dir: Path
) -> None:
    network = provider.network
    local = is_local_network(network.name)
    chain_id = provider.chain_id
    kind = "local chain" if local else "live network"
    echo("network", f"{network_label(provider)} (chain id {chain_id}; {kind})")
    echo("deployer", account.address)
    default_note = "" if salt_given else f' (default: keccak256("{DEFAULT_SALT_TEXT}"))'
    echo("salt", hex0x(salt) + default_note)
    echo("proxy", f"{PROXY_ADDRESS} {ensure_proxy(provider, local)}")

    targets = build_targets(provider, salt)
    plan(provider, targets)
    for target in targets:
        status = "already deployed, matches the compiled code" if target.status == "present" else "deploy"
        echo("plan", f"{target.name} at {target.address}: {status}")
    pending = [t for t in targets if t.status == "deploy"]
    path = record_path(records_dir, network.ecosystem.name, network.name)
    addresses = {t.name: t.address for t in targets}
    recorded_before = find_entry(load_records(path), chain_id, salt, addresses) is not None

    if pending and not local:
        revision = source_revision(project.path)
        dirty = " + UNCOMMITTED changes in contracts/ or ape-config.yaml" if revision["dirty"] else ""
        echo("source", f"commit {revision['commit']}{dirty}")
        gas = estimate(provider, account, pending)
        price = provider.gas_price
        cost = gas * price
        balance = provider.get_balance(account.address)
        echo("gas price", f"{Decimal(price) / Decimal(10**9):f} gwei")
        echo("estimated cost", eth(cost))
        echo("balance", eth(balance))
        if balance < cost:
            raise DeploymentError("the deployer's balance is below the estimated cost. Nothing was deployed.")
        if not yes:
            question = f"Deploy {len(pending)} contract(s) to {network_label(provider)} (chain id {chain_id})?"
            try:
                confirmed = click.confirm(question, default=False)
            except click.Abort:
                confirmed = False
                click.echo()
            if not confirmed:
                raise DeploymentError("not confirmed (pass --yes to deploy unattended). Nothing was deployed.")

    if not pending:
        echo("nothing to deploy", f"all {len(targets)} contracts are already at their addresses; no transaction sent")
    with signing_session(account, enabled=bool(pending) and not local):
        for target in pending:
            deploy(provider, account, target)
            # Recorded after each transaction, so an interrupted run still leaves its hashes behind.
            record(path, provider, account, salt, targets)

    verify(provider, targets)
    changed = record(path, provider, account, salt, targets) or bool(pending)
    outcome = ("updated" if recorded_before else "added") if changed else "unchanged"
    summary(targets, find_entry(load_records(path), chain_id, salt, addresses))
    echo("record", f"{shown(path)} ({outcome}; chain id {chain_id}, salt {hex0x(salt)})")


def run_check(provider: ProviderAPI, salt: bytes | None, records_dir: Path) -> None:
    """Re-checks every recorded deployment of the connected chain (or of one salt); sends nothing."""
    network = provider.network
    chain_id = provider.chain_id
    path = record_path(records_dir, network.ecosystem.name, network.name)
    by_salt = load_records(path).get(str(chain_id), {})
    if salt is not None:
        by_salt = {key: value for key, value in by_salt.items() if key == hex0x(salt)}
    entries = [entry for group in by_salt.values() for entry in group]
    if not entries:
        raise DeploymentError(f"no deployment of chain id {chain_id} recorded in {shown(path)}")
    echo("network", f"{network_label(provider)} (chain id {chain_id})")
    failed = 0
    for entry in entries:
        addresses = {name: item["address"] for name, item in entry["contracts"].items()}
        problems = []
        for name, item in entry["contracts"].items():
            code = bytes(provider.get_code(item["address"]))
            if hex0x(keccak(code)) != item["code_hash"]:
                problems.append(f"{name} at {item['address']}: code hash differs from the record")
        if not problems:
            problems = view_problems(chain_id, addresses)
        if (note := missing_note(entry, network_label(provider))) is not None:
            problems.append(note)
        same = all(
            hex0x(keccak(init_code(provider, name, item["constructor_args"]))) == item["init_code_hash"]
            for name, item in entry["contracts"].items()
        )
        source = entry.get("source", {}).get("commit") or "unknown"
        checkout = "compiles the recorded code" if same else f"compiles other code (recorded: commit {source})"
        echo("salt", entry["salt"])
        for name in [known for known in DEPLOYED if known in addresses]:
            echo(name, addresses[name])
        echo("this checkout", checkout)
        echo("result", "ok" if not problems else "FAILED: " + "; ".join(problems))
        failed += bool(problems)
    if failed:
        raise DeploymentError(f"{failed} of {len(entries)} recorded deployment(s) failed the check")
    echo("checked", f"{len(entries)} recorded deployment(s) in {shown(path)}: ok")


@click.command(cls=OperatorCommand)
@account_option(prompt=False)
@click.option(
    "--salt",
    default=None,
    help=(
        "CREATE2 salt: 0x + 64 hex digits, or text without 0x (hashed with keccak256). "
        'Default: keccak256("perun-vyper").'
    ),
)
@click.option("--yes", "-y", is_flag=True, help="Deploy to a live network without asking.")
@click.option("--check", is_flag=True, help="Re-check the recorded deployments of this chain; send nothing.")
@click.option(
    "--deployments-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="PERUN_DEPLOYMENTS_DIR",
    default=None,
    help="Where the records go. Default: deployments/ in the project.",
)
def cli(provider, account, salt, yes, check, deployments_dir):
    """Deploy the adjudicators and the SLA app through the CREATE2 proxy, check and record them.

    Local chains (network `local`, forks `*-fork`) deploy unattended; on any other network the plan and its
    estimated cost are shown and confirmed first (--yes skips the question). Records land in
    deployments/<ecosystem>-<network>.json.
    """
    records_dir = deployments_dir or project.path / "deployments"
    try:
        if check:
            run_check(provider, parse_salt(salt) if salt is not None else None, records_dir)
            return
        if account is None:
            raise DeploymentError(
                "missing --account: give an alias from `ape accounts list` (TEST::0 on a local chain). "
                "Nothing was deployed."
            )
        run_deploy(provider, account, parse_salt(salt), salt is not None, yes, records_dir)
    except DeploymentError as err:
        raise click.ClickException(str(err)) from err
