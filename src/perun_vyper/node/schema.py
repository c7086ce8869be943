"""The typed messages of the hub protocol v1 (docs/API.md), validated by msgspec, and their conversion to
and from perun_vyper's own types.

Encoding: bytes as ``0x`` hex; uint256 values (amounts, nonces) as decimal strings, because JavaScript
numbers lose precision above 2^53; bounded integers (version, challenge duration, chain id, times) as
JSON integers. Field names are the EIP-712 member names (``balanceA``, ``isFinal``), so a wallet's
``eth_signTypedData_v4`` document and the wire agree. Unknown fields are refused.

The schema checks the form (hex lengths, digits, bounds that fit the wire); perun_vyper's constructors
check the meaning (conservation, the 2^120 amount cap, participants), as they do for any other caller.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from ..core.channel import ChannelParams
from ..core.codec import hexstr, unhex
from ..core.constants import MAX_LOCKS
from ..core.protocol import SignedState, Update
from ..core.state import LedgerState, Lock

PROTOCOL = 1
MAX_SAFE_INTEGER = 2**53 - 1  # the largest integer a JavaScript number holds exactly

Bytes32 = Annotated[str, Meta(pattern="^0x[0-9a-fA-F]{64}$", description="32 bytes as 0x hex")]
Address = Annotated[str, Meta(pattern="^0x[0-9a-fA-F]{40}$", description="20 bytes as 0x hex")]
Signature = Annotated[str, Meta(pattern="^0x[0-9a-fA-F]{130}$", description="65 bytes r || s || v as 0x hex")]
Uint = Annotated[str, Meta(pattern="^(0|[1-9][0-9]{0,77})$", description="a uint256 as a decimal string")]
SafeInt = Annotated[int, Meta(ge=0, le=MAX_SAFE_INTEGER)]


class Message(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """Base of every message: camelCase on the wire, unknown fields refused."""


# --- channel data --------------------------------------------------------------------------------------


class LockMsg(Message):
    channel: Bytes32
    amount_a: Uint
    amount_b: Uint


class StateMsg(Message):
    channel: Bytes32
    version: SafeInt
    balance_a: Uint
    balance_b: Uint
    funding_a: Uint
    funding_b: Uint
    locks: Annotated[list[LockMsg], Meta(max_length=MAX_LOCKS)] = []
    is_final: bool = False


class ParamsMsg(Message):
    participant_a: Address
    participant_b: Address
    asset: Address
    challenge_duration: SafeInt
    nonce: Uint


class UpdateMsg(Message):
    state: StateMsg
    signature: Signature


class SignedStateMsg(Message):
    state: StateMsg
    sig_a: Signature | None
    sig_b: Signature | None


# --- method params -------------------------------------------------------------------------------------


class NoParams(Message):
    pass


class ChallengeParams(Message):
    address: Address


class LoginParams(Message):
    nonce: Bytes32
    signature: Signature


class ProposeOpenParams(Message):
    params: ParamsMsg
    deposit_a: Uint
    deposit_b: Uint
    signature: Signature


class UpdateParams(Message):
    update: UpdateMsg


# --- results and notifications -------------------------------------------------------------------------


class PolicyMsg(Message):
    collateral: Uint
    assets: list[Address]
    min_challenge_duration: int
    max_challenge_duration: int
    max_channels_per_user: int
    max_validity: int


class LimitsMsg(Message):
    max_request_bytes: int
    max_frame_bytes: int
    max_in_flight: int
    rate_per_second: float
    burst: int
    challenge_seconds: int


class InfoResult(Message):
    protocol: int
    hub: Address
    chain_id: int
    ledger_adjudicator: Address
    virtual_adjudicator: Address
    policy: PolicyMsg
    limits: LimitsMsg
    server: str
    # App channels (docs/API.md 11): the AppAdjudicator and the apps the hub serves; none without them.
    app_adjudicator: Address | None = None
    apps: list[Address] = []


class ChallengeResult(Message):
    nonce: Bytes32
    expires: int
    message: str


class LoginResult(Message):
    address: Address


class OpenResult(Message):
    channel: Bytes32
    signature: Signature


class UpdateResult(Message):
    signature: Signature


class ChannelEntry(Message):
    channel: Bytes32
    params: ParamsMsg
    latest: SignedStateMsg | None


class ListResult(Message):
    channels: list[ChannelEntry]


class ChannelUpdated(Message):
    channel: Bytes32
    latest: SignedStateMsg


# --- chain: funding, closing, the hub's proposals, disputes (docs/API.md 6-7) -----------------------------


TxHash = Annotated[str, Meta(pattern="^0x[0-9a-fA-F]{64}$", description="a transaction hash as 0x hex")]


class ChannelRef(Message):
    """Params of ``ledger.funded`` and ``ledger.close``: one of the wallet's channels."""

    channel: Bytes32


class HoldingsMsg(Message):
    deposit_a: Uint
    deposit_b: Uint


class FundedResult(Message):
    deposit_tx: TxHash | None
    holdings: HoldingsMsg


class CloseResult(Message):
    tx: TxHash | None


class ProposalNotice(Message):
    """``ledger.proposal``: an update the hub proposes (and signed), waiting for the wallet's countersignature."""

    update: UpdateMsg


class ProposalsResult(Message):
    updates: list[UpdateMsg]


class CountersignParams(Message):
    channel: Bytes32
    version: SafeInt
    signature: Signature


class CountersignResult(Message):
    latest: SignedStateMsg


class DisputedNotice(Message):
    """``chain.disputed``: a registration of one of the wallet's channels, seen by the hub's watchtower."""

    channel: Bytes32
    version: SafeInt
    deadline: SafeInt


# --- conversions ---------------------------------------------------------------------------------------


def state_from_msg(msg: StateMsg) -> LedgerState:
    """The LedgerState a message describes; ``InvalidState`` when it breaks the state's rules."""
    locks = tuple(Lock(unhex(lock.channel), int(lock.amount_a), int(lock.amount_b)) for lock in msg.locks)
    return LedgerState(
        unhex(msg.channel),
        msg.version,
        int(msg.balance_a),
        int(msg.balance_b),
        int(msg.funding_a),
        int(msg.funding_b),
        locks,
        msg.is_final,
    )


def state_to_msg(state: LedgerState) -> StateMsg:
    return StateMsg(
        hexstr(state.channel),
        state.version,
        str(state.balance_a),
        str(state.balance_b),
        str(state.funding_a),
        str(state.funding_b),
        [LockMsg(hexstr(lock.channel), str(lock.amount_a), str(lock.amount_b)) for lock in state.locks],
        state.is_final,
    )


def params_from_msg(msg: ParamsMsg) -> ChannelParams:
    """The ChannelParams a message describes; ``InvalidParams`` when the adjudicator would refuse them."""
    return ChannelParams(msg.participant_a, msg.participant_b, msg.asset, msg.challenge_duration, int(msg.nonce))


def params_to_msg(params: ChannelParams) -> ParamsMsg:
    return ParamsMsg(
        params.participant_a, params.participant_b, params.asset, params.challenge_duration, str(params.nonce)
    )


def update_from_msg(msg: UpdateMsg) -> Update:
    return Update(state_from_msg(msg.state), unhex(msg.signature))


def update_to_msg(update: Update) -> UpdateMsg:
    assert isinstance(update.state, LedgerState)
    return UpdateMsg(state_to_msg(update.state), hexstr(update.signature))


def signed_to_msg(signed: SignedState) -> SignedStateMsg:
    assert isinstance(signed.state, LedgerState)
    return SignedStateMsg(
        state_to_msg(signed.state),
        None if signed.sig_a is None else hexstr(signed.sig_a),
        None if signed.sig_b is None else hexstr(signed.sig_b),
    )


def signed_from_msg(msg: SignedStateMsg) -> SignedState:
    return SignedState(
        state_from_msg(msg.state),
        None if msg.sig_a is None else unhex(msg.sig_a),
        None if msg.sig_b is None else unhex(msg.sig_b),
    )
