"""The typed messages of the hub protocol v1 for virtual channels (docs/API.md, "Virtual channels"), and
their conversion to and from perun_vyper's types. Same encoding as ``schema``: bytes as ``0x`` hex, uint256
amounts as decimal strings, EIP-712 member names in camelCase, unknown fields refused.

Ingrid never signs a virtual state: what the hub relays between Alice and Bob is signed end to end and
checked by the receiving wallet, not by the hub.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from ..core.codec import hexstr, unhex
from ..core.protocol import Update, VirtualFinal
from ..core.virtual import VirtualParams, VirtualState
from .schema import Address, Bytes32, Message, SafeInt, Signature, Uint, UpdateMsg, update_from_msg, update_to_msg

Leg = Annotated[str, Meta(pattern="^(alice|bob)$", description="which ledger channel of a virtual channel")]


class VirtualParamsMsg(Message):
    alice: Address
    bob: Address
    ingrid: Address
    asset: Address
    ledger_adjudicator: Address
    chain_id: SafeInt
    ledger_alice: Bytes32
    ledger_bob: Bytes32
    funding_alice: Uint
    funding_bob: Uint
    validity: SafeInt
    challenge_duration: SafeInt
    nonce: Uint


class VirtualStateMsg(Message):
    channel: Bytes32
    version: SafeInt
    balance_alice: Uint
    balance_bob: Uint
    is_final: bool = False


class VirtualUpdateMsg(Message):
    state: VirtualStateMsg
    signature: Signature


class CountersignatureMsg(Message):
    version: SafeInt
    signature: Signature


class VirtualFinalMsg(Message):
    state: VirtualStateMsg
    sig_alice: Signature
    sig_bob: Signature


class ReleaseMsg(Message):
    """A release update in the sender's ledger channel with the hub and the final virtual state it pays."""

    update: UpdateMsg
    final: VirtualFinalMsg


# --- method params and results --------------------------------------------------------------------------


class VirtualEntry(Message):
    channel: Bytes32
    params: VirtualParamsMsg


class VirtualListResult(Message):
    channels: list[VirtualEntry]


class RouteParams(Message):
    peer: Address
    asset: Address


class RouteResult(Message):
    channels: list[Bytes32]


class ProposeVirtualParams(Message):
    params: VirtualParamsMsg
    signature: Signature


class ChannelResult(Message):
    channel: Bytes32


class AcceptVirtualParams(Message):
    channel: Bytes32
    signature: Signature


Refusal = Annotated[str, Meta(max_length=512, description="why the receiver refused an update")]


class SendParams(Message):
    """Exactly one of ``update`` (a proposal), ``countersignature`` (the answer to one) and ``refusal``
    (the reason an update was not signed)."""

    channel: Bytes32
    update: VirtualUpdateMsg | None = None
    countersignature: CountersignatureMsg | None = None
    refusal: Refusal | None = None


class CloseVirtualParams(Message):
    release: ReleaseMsg


class CloseVirtualResult(Message):
    """The hub's countersignature of the release, or null while it waits for the other endpoint's."""

    signature: Signature | None


class Empty(Message):
    pass


# --- notifications --------------------------------------------------------------------------------------


class VirtualProposed(Message):
    params: VirtualParamsMsg
    signature: Signature


class VirtualAccepted(Message):
    channel: Bytes32
    signature: Signature


class VirtualLocked(Message):
    channel: Bytes32
    leg: Leg


class VirtualMessage(Message):
    channel: Bytes32
    sender: Address
    update: VirtualUpdateMsg | None = None
    countersignature: CountersignatureMsg | None = None
    refusal: Refusal | None = None


class LedgerCountersigned(Message):
    channel: Bytes32
    version: SafeInt
    signature: Signature


# --- conversions ----------------------------------------------------------------------------------------


def vparams_from_msg(msg: VirtualParamsMsg) -> VirtualParams:
    """The VirtualParams a message describes; ``InvalidParams`` when they break the parameters' rules."""
    return VirtualParams(
        msg.alice,
        msg.bob,
        msg.ingrid,
        unhex(msg.ledger_alice),
        unhex(msg.ledger_bob),
        int(msg.funding_alice),
        int(msg.funding_bob),
        msg.validity,
        msg.challenge_duration,
        int(msg.nonce),
        ledger_adjudicator=msg.ledger_adjudicator,
        chain_id=msg.chain_id,
        asset=msg.asset,
    )


def vparams_to_msg(params: VirtualParams) -> VirtualParamsMsg:
    return VirtualParamsMsg(
        params.alice,
        params.bob,
        params.ingrid,
        params.asset,
        params.ledger_adjudicator,
        params.chain_id,
        hexstr(params.ledger_alice),
        hexstr(params.ledger_bob),
        str(params.funding_alice),
        str(params.funding_bob),
        params.validity,
        params.challenge_duration,
        str(params.nonce),
    )


def vstate_from_msg(msg: VirtualStateMsg) -> VirtualState:
    return VirtualState(unhex(msg.channel), msg.version, int(msg.balance_alice), int(msg.balance_bob), msg.is_final)


def vstate_to_msg(state: VirtualState) -> VirtualStateMsg:
    return VirtualStateMsg(
        hexstr(state.channel), state.version, str(state.balance_alice), str(state.balance_bob), state.is_final
    )


def vupdate_from_msg(msg: VirtualUpdateMsg) -> Update:
    return Update(vstate_from_msg(msg.state), unhex(msg.signature))


def vupdate_to_msg(update: Update) -> VirtualUpdateMsg:
    assert isinstance(update.state, VirtualState)
    return VirtualUpdateMsg(vstate_to_msg(update.state), hexstr(update.signature))


def release_from_msg(msg: ReleaseMsg) -> Update:
    """The release update with its evidence attached (``Update.release``)."""
    final = VirtualFinal(vstate_from_msg(msg.final.state), unhex(msg.final.sig_alice), unhex(msg.final.sig_bob))
    plain = update_from_msg(msg.update)
    return Update(plain.state, plain.signature, final)


def release_to_msg(update: Update) -> ReleaseMsg:
    assert update.release is not None
    final = update.release
    return ReleaseMsg(
        update_to_msg(update),
        VirtualFinalMsg(vstate_to_msg(final.state), hexstr(final.sig_alice), hexstr(final.sig_bob)),
    )
