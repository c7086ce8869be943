"""The typed messages of the hub's app-channel methods (docs/API.md 11), in the encoding of ``schema``:
bytes as ``0x`` hex, uint256 values as decimal strings, EIP-712 member names (``appData``, ``isFinal``)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from ..core.app import AppParams, AppState
from ..core.codec import hexstr, unhex
from ..core.constants import MAX_APP_DATA
from ..core.protocol import SignedState, Update
from .schema import Address, Bytes32, Message, SafeInt, Signature, Uint

AppData = Annotated[
    str,
    Meta(pattern=f"^0x([0-9a-fA-F]{{2}}){{0,{MAX_APP_DATA}}}$", description=f"at most {MAX_APP_DATA} bytes as 0x hex"),
]


class AppParamsMsg(Message):
    participant_a: Address
    participant_b: Address
    asset: Address
    challenge_duration: SafeInt
    nonce: Uint
    app: Address


class AppStateMsg(Message):
    channel: Bytes32
    version: SafeInt
    balance_a: Uint
    balance_b: Uint
    funding_a: Uint
    funding_b: Uint
    app_data: AppData = "0x"
    is_final: bool = False


class AppUpdateMsg(Message):
    state: AppStateMsg
    signature: Signature


class AppSignedStateMsg(Message):
    state: AppStateMsg
    sig_a: Signature | None
    sig_b: Signature | None


class AppOpenParams(Message):
    """``app.propose_open``: the wallet's signature of version 0 with the app's initial data."""

    params: AppParamsMsg
    deposit_a: Uint
    deposit_b: Uint
    app_data: AppData
    signature: Signature


class AppUpdateParams(Message):
    update: AppUpdateMsg


class AppUpdateResult(Message):
    """The hub's countersignature and, when its service moves next, its own move (signed, stored, in
    flight until ``app.countersign``)."""

    signature: Signature
    reply: AppUpdateMsg | None = None


class AppChannelEntry(Message):
    channel: Bytes32
    params: AppParamsMsg
    latest: AppSignedStateMsg | None


class AppListResult(Message):
    channels: list[AppChannelEntry]


class AppProposalsResult(Message):
    updates: list[AppUpdateMsg]


class AppCountersignResult(Message):
    latest: AppSignedStateMsg


# --- conversions ---------------------------------------------------------------------------------------


def params_from_msg(msg: AppParamsMsg) -> AppParams:
    """The AppParams a message describes; ``InvalidParams`` when the adjudicator would refuse them."""
    return AppParams(msg.participant_a, msg.participant_b, msg.app, msg.asset, msg.challenge_duration, int(msg.nonce))


def params_to_msg(params: AppParams) -> AppParamsMsg:
    return AppParamsMsg(
        params.participant_a,
        params.participant_b,
        params.asset,
        params.challenge_duration,
        str(params.nonce),
        params.app,
    )


def state_from_msg(msg: AppStateMsg) -> AppState:
    """The AppState a message describes; ``InvalidState`` when it breaks the state's rules."""
    return AppState(
        unhex(msg.channel),
        msg.version,
        int(msg.balance_a),
        int(msg.balance_b),
        int(msg.funding_a),
        int(msg.funding_b),
        unhex(msg.app_data),
        msg.is_final,
    )


def state_to_msg(state: AppState) -> AppStateMsg:
    return AppStateMsg(
        hexstr(state.channel),
        state.version,
        str(state.balance_a),
        str(state.balance_b),
        str(state.funding_a),
        str(state.funding_b),
        hexstr(state.app_data),
        state.is_final,
    )


def update_from_msg(msg: AppUpdateMsg) -> Update:
    return Update(state_from_msg(msg.state), unhex(msg.signature))


def update_to_msg(update: Update) -> AppUpdateMsg:
    assert isinstance(update.state, AppState)
    return AppUpdateMsg(state_to_msg(update.state), hexstr(update.signature))


def signed_to_msg(signed: SignedState) -> AppSignedStateMsg:
    assert isinstance(signed.state, AppState)
    return AppSignedStateMsg(
        state_to_msg(signed.state),
        None if signed.sig_a is None else hexstr(signed.sig_a),
        None if signed.sig_b is None else hexstr(signed.sig_b),
    )
