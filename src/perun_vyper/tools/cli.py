"""What every ``ape run`` command of this project shares: one line per failure, the node it runs on, the
accounts it signs with and the adjudicators it attaches to (README, "Operating the tools").

An operator runs these commands unattended. Whatever goes wrong (a node that does not answer, a network
choice that would sign for another chain, an address without the expected contract, a locked account)
ends in one ``Error:`` line naming the cause and the fix, with exit status 1 and nothing sent or written,
never in a traceback.
"""

from __future__ import annotations

import fcntl
import sqlite3
from pathlib import Path
from typing import IO, Any

import click
from ape.cli import ConnectedProviderCommand
from ape.exceptions import ApeException
from eth_utils import is_address, to_checksum_address

from .. import store as stores
from ..chain import read_domain, signer_of
from ..contracts import recorded_apps
from ..core.codec import Domain
from ..core.keys import Signer
from ..errors import PerunError
from ..store import ChannelStore
from .deployment import adjudicator_pair

NODE_HOWTO = (
    "for an Anvil you started, run with APE_FOUNDRY_HOST=<its url> and --network ethereum:local:foundry; "
    "for another node pass --network <its url> (README, 'A node you started')"
)


class OperatorCommand(ConnectedProviderCommand):
    """Ape's connected command, with every error as one ``Error:`` line and the node's chain id checked
    before the command's body runs."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except PerunError as exc:
            raise click.ClickException(str(exc)) from None
        except ApeException as exc:
            raise click.ClickException(_ape_error(exc)) from None
        except OSError as exc:
            raise click.ClickException(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None

    def _invoke(self, ctx: click.Context, provider: Any = None) -> Any:
        if provider is not None:
            check_chain_id(provider)
        return super()._invoke(ctx, provider=provider)


def _ape_error(exc: ApeException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if "node found" in text or "connect" in text.lower():
        return f"{text}; start the node first, or check the url. {NODE_HOWTO}"
    return f"{type(exc).__name__}: {text}"


def check_chain_id(provider: Any) -> None:
    """Refuse a network choice whose configured chain id differs from the node's: Ape would sign every
    transaction for the configured one and the node would refuse them (``invalid chain id for signer``)."""
    web3 = getattr(provider, "web3", None)
    if web3 is None:
        return
    actual, assumed = int(web3.eth.chain_id), int(provider.chain_id)
    if actual != assumed:
        raise click.ClickException(
            f"the node at {getattr(provider, 'uri', '?')} has chain id {actual}, but the network "
            f"{provider.network.ecosystem.name}:{provider.network.name} signs for chain id {assumed}; {NODE_HOWTO}"
        )


def unattended_signer(account: Any) -> Signer:
    """The account's key for channel states, its transactions sent without a prompt (chain/accounts.py)."""
    try:
        return signer_of(account)
    except PerunError as exc:
        raise click.ClickException(str(exc)) from None


def open_store(target: str | Path, *, identity: Any = None, create: bool = True) -> ChannelStore:
    """The store at ``target`` (a file path, ``sqlite:///path`` or ``postgresql://...``) for this deployment
    (``identity``); one line naming the cause and the fix if it is not a perun-vyper store, belongs to
    another chain or deployment, or cannot be opened. Refused stores are left as they were."""
    try:
        return stores.open_store(target, identity=identity, create=create)
    except PerunError as exc:  # the store's own refusals name the store, the cause and the fix
        raise click.ClickException(str(exc)) from None
    except (OSError, sqlite3.Error) as exc:
        raise click.ClickException(
            f"cannot open the store {target}: {exc}; pass --store with a writable file path (created if missing)"
            " or a postgresql:// URL"
        ) from None


def serve_alone(store: ChannelStore) -> IO[bytes] | None:
    """A SQLite store is one process's: hold an exclusive lock on its file for as long as the returned file
    stays open (the process's life), or refuse in one line if another hub holds it. A shared store
    (PostgreSQL) needs none: its workers coordinate in the database."""
    path = getattr(store, "path", None)
    if store.shared or path is None:
        return None
    handle = open(path, "rb")  # noqa: SIM115 - held open on purpose: the lock lives as long as the file
    try:
        # flock, not fcntl: SQLite's own locks are fcntl byte ranges, which flock does not touch (Linux, BSD).
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise click.ClickException(
            f"{path} is served by another `ape run hub` process; a SQLite store belongs to one process: stop the"
            " other one, or run several workers on a shared PostgreSQL store (--store postgresql://...)"
        ) from None
    return handle


def contract_at(kind: str, address: str, contract_type: Any, chain: Any) -> tuple[Any, Domain]:
    """The adjudicator of ``kind`` ('ledger' or 'virtual') at ``address`` and the domain it answers; one
    line naming the cause and the fix if the address is malformed, holds no code, or holds another
    contract."""
    if not is_address(address):
        raise click.ClickException(f"--{kind} {address} is not an address; pass the 0x address ape run deploy printed")
    address = to_checksum_address(address)
    if not chain.provider.get_code(address):
        raise click.ClickException(
            f"no contract at --{kind} {address} on chain {chain.chain_id}; pass the address `ape run deploy` printed "
            "for this chain"
        )
    contract = contract_type.at(address)
    try:
        domain = read_domain(contract, kind)
    except PerunError as exc:
        raise click.ClickException(f"--{kind} {exc}") from None
    return contract, domain


def attach_adjudicators(
    ledger_address: str | None, virtual_address: str | None, record: Path, project: Any, chain: Any
) -> tuple[Any, Any]:
    """The deployed pair a command works with: the addresses given, else the newest ``record`` holds for
    this chain; each checked (``contract_at``) and the ledger checked to read this virtual adjudicator."""
    try:
        ledger_address, virtual_address = adjudicator_pair(ledger_address, virtual_address, record, chain.chain_id)
    except PerunError as exc:
        raise click.UsageError(str(exc)) from None
    virtual, _ = contract_at("virtual", virtual_address, project.VirtualAdjudicator, chain)
    ledger, _ = contract_at("ledger", ledger_address, project.LedgerAdjudicator, chain)
    if ledger.VIRTUAL_ADJUDICATOR() != virtual.address:
        raise click.ClickException(
            f"LedgerAdjudicator {ledger.address} reads VirtualAdjudicator {ledger.VIRTUAL_ADJUDICATOR()}, not "
            f"--virtual {virtual.address}; pass the pair `ape run deploy` printed"
        )
    return ledger, virtual


def attach_apps(
    app_address: str | None, sla_address: str | None, record: Path | None, project: Any, chain: Any
) -> tuple[Any, str] | None:
    """The AppAdjudicator and the SLA app a hub serves: the addresses given, else those ``record`` holds
    for this chain (``record`` None: the pair was given by hand, so no record is guessed at); None when
    there are none (the hub serves no app channels). Each checked: the adjudicator's domain, the app's code."""
    if app_address is None and sla_address is None:
        recorded = recorded_apps(record, chain.chain_id) if record is not None else None
        if recorded is None:
            return None
        app_address, sla_address = recorded["app"], recorded["sla"]
    if app_address is None or sla_address is None:
        raise click.ClickException(
            "--app and --sla go together: pass the AppAdjudicator and the SlaApp `ape run deploy` printed"
        )
    adjudicator, _ = contract_at("app", app_address, project.AppAdjudicator, chain)
    if not is_address(sla_address):
        raise click.ClickException(f"--sla {sla_address} is not an address; pass the 0x address ape run deploy printed")
    sla_address = to_checksum_address(sla_address)
    expected = project.SlaApp.contract_type.runtime_bytecode.bytecode
    if bytes(chain.provider.get_code(sla_address)).hex() != expected.removeprefix("0x"):
        raise click.ClickException(
            f"--sla {sla_address} on chain {chain.chain_id} does not hold this release's SlaApp; pass the address "
            "`ape run deploy` printed for this chain"
        )
    return adjudicator, sla_address
