"""The hub's on-chain duties towards a wallet's channel, the same for ledger and app channels: deposit its
side once the wallet's is on-chain (``ledger.funded``, ``app.funded``), and close with the final state
both signed (``ledger.close``, ``app.close``). The caller holds the channel's lock (``acting``)."""

from __future__ import annotations

from typing import Any

from ..core.codec import hexstr
from ..core.display import hex_of
from ..errors import ChainUnavailable, RefusedUpdate
from . import schema
from .session import Host


def require_chain(server: Host, adjudicator: Any, what: str) -> None:
    """Refuse (``ChainUnavailable``) on a hub without a chain connection or an account."""
    if adjudicator is None or server.account is None:
        raise ChainUnavailable(
            f"this hub runs without a chain connection or an account, so it cannot {what}; ask its operator "
            "to start it with an adjudicator and an account (ape run hub)"
        )


def fund_hub_side(server: Host, channel: Any, prefix: str) -> schema.FundedResult:
    """Deposit the hub's side of ``channel`` (a ``LedgerChannel`` or ``AppChannel`` of the hub) once the
    wallet's side holds what version 0 agreed; ``prefix`` names the methods (``ledger`` or ``app``)."""
    require_chain(server, channel.adjudicator, "deposit its side")
    channel_id = channel.channel_id
    kind = "channel" if prefix == "ledger" else f"{prefix} channel"
    initial = channel.store.state(channel_id, 0)
    if initial is None or not initial.fully_signed:
        raise RefusedUpdate(f"version 0 of the {kind} is not signed by both yet; send {prefix}.propose_open first")
    agreed = (initial.state.funding_a, initial.state.funding_b)
    hub_side, user_side = channel.side, 1 - channel.side
    # The user's deposit counts once it is `confirmations` blocks deep (a reorg cannot drop it), and only
    # in a channel nobody registered or concluded: the hub never funds a channel being closed.
    status = channel._status()
    status.require_open()
    have = status.deposits[user_side]
    if have < agreed[user_side]:
        short = agreed[user_side] - have
        raise RefusedUpdate(
            f"your side of {kind} {hexstr(channel_id)} holds {have} on-chain, {short} short of the "
            f"{agreed[user_side]} agreed at version 0; deposit {short} more (and wait for "
            f"{channel.chain.confirmations} confirmations), then call {prefix}.funded again"
        )
    if agreed[hub_side] > server.policy.collateral:
        raise RefusedUpdate(
            f"the hub's side was agreed at {agreed[hub_side]}, above this hub's collateral of "
            f"{server.policy.collateral} per channel now; unwind the channel on-chain with version 0"
        )
    # Read at the head, unconfirmed deposits included: a repeat (or a deposit still being confirmed) must
    # never make the hub deposit twice.
    missing = agreed[hub_side] - channel.holdings()[hub_side]
    tx = None
    if missing > 0:
        with server.hub.sending():
            tx = hex_of(channel.deposit(missing, server.account).txn_hash)
    deposit_a, deposit_b, _ = channel.holdings()
    return schema.FundedResult(tx, schema.HoldingsMsg(str(deposit_a), str(deposit_b)))


def close_final(server: Host, channel: Any, prefix: str) -> schema.CloseResult:
    """Submit ``close`` with the final state both signed (None when the channel is closed already)."""
    latest = channel.latest
    if latest is None or not latest.state.is_final:
        version = "none" if latest is None else latest.state.version
        raise RefusedUpdate(
            f"the latest state both signed (version {version}) is not final; propose the final state "
            f"through {prefix}.update (the hub countersigns it), then call {prefix}.close"
        )
    require_chain(server, channel.adjudicator, "close the channel")
    if channel.holdings()[2]:
        return schema.CloseResult(None)  # closed already (a repeat, or the wallet closed it itself)
    with server.hub.sending():
        return schema.CloseResult(hex_of(channel.close(server.account).txn_hash))
