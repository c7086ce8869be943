# pragma version ~=0.4.3
"""
@title App channel types: hashing and stateless checks
@custom:contract-name app_types
@license Apache-2.0
@notice The `Channel.sol` role for app channels: the EIP-712 struct hashes
        of an app state and of a registration, the app channel id and the
        checks of a state that need no storage. An app channel is a ledger
        channel whose parameters also name an app: its id is the ledger id
        of its funding parameters, whose nonce commits to the app and the
        app channel's nonce (`_funding_params`), so deposits go through the
        ledger's own `deposit` and `deposit_token`. Stateless: the
        adjudicator and the test harness compile the same code.
@custom:security Every amount is bounded by `channel_bounds.MAX_AMOUNT`
                 before it is summed (`ledger_types._check_amounts`). The
                 app data is hashed, never interpreted: only the app reads it.
"""


# @dev The parameter and state types shared with apps.
from ..interfaces import IApp
# @dev Stateless: the channel id and the amount checks of ledger channels.
from . import ledger_types
# @dev Stateless: `revert_reason` holds only the one raising function.
from . import revert_reason


# @dev The most bytes of app data a state may carry (the `Bytes[512]` of
# `IApp.AppState`): bounds the calldata, memory and hashing of every call.
MAX_APP_DATA: constant(uint256) = 512


# @dev EIP-712 type hash of `AppState`.
_STATE_TYPE_HASH: constant(bytes32) = keccak256(
    "AppState(bytes32 channel,uint64 version,uint256 balanceA,uint256 balanceB,uint256 fundingA,uint256 fundingB,bytes appData,bool isFinal)"
)


# @dev Domain tag of the funding nonce: `keccak256(tag, app, nonce)` cannot
# equal a nonce a ledger channel chose by the same rule for another purpose.
_FUNDING_NONCE_TAG: constant(bytes32) = keccak256("PerunAppChannel")


struct Move:
    # @dev 0 if participant A moves, 1 if participant B does.
    mover: uint256
    # @dev Side A's balance after the move.
    balance_a: uint256
    # @dev Side B's balance after the move.
    balance_b: uint256
    # @dev The app data after the move.
    app_data: Bytes[MAX_APP_DATA]


struct Registration:
    # @dev The EIP-712 struct hash of the registered (or last moved) state.
    state_hash: bytes32
    # @dev Its version.
    version: uint64
    # @dev When its challenge period ends.
    deadline: uint64
    # @dev The version of the last state both signed that was registered (the
    # moves since then build on it); a new registration must exceed it.
    agreed: uint64


@internal
@pure
def _funding_params(params: IApp.AppParams) -> ledger_types.ChannelParams:
    """
    @dev The ledger parameters an app channel is funded under: the same
         participants, asset and challenge duration, and a nonce that
         commits to the app and the app channel's nonce.
    @param params The app channel's parameters.
    @return The funding parameters (`deposit_token` takes these).
    """
    return ledger_types.ChannelParams(
        participant_a=params.participant_a,
        participant_b=params.participant_b,
        asset=params.asset,
        challenge_duration=params.challenge_duration,
        nonce=convert(keccak256(abi_encode(_FUNDING_NONCE_TAG, params.app, params.nonce)), uint256),
    )


@internal
@pure
def _channel_id(params: IApp.AppParams) -> bytes32:
    """
    @dev Checks the parameters and derives the app channel id: the ledger
         id of its funding parameters (`ledger_types._channel_id` checks
         the participants and the challenge duration).
    @param params The app channel's parameters.
    @return The app channel id.
    """
    if params.app == empty(address):
        revert_reason._raise("app: zero app")
    return ledger_types._channel_id(self._funding_params(params))


@internal
@pure
def _check_state(channel: bytes32, state: IApp.AppState):
    """
    @dev Asserts what can be checked of a state without storage: it belongs
         to this channel, every amount is at most `MAX_AMOUNT`, and its
         balances sum to its funding.
    @param channel The app channel id.
    @param state The state.
    """
    if state.channel != channel:
        revert_reason._raise("app: state for another channel")
    ledger_types._check_amounts(state.balance_a, state.balance_b, state.funding_a, state.funding_b, 0)


@internal
@pure
def _next_state(from_state: IApp.AppState, move: Move) -> IApp.AppState:
    """
    @dev The state a move leads to: the move's balances and app data, the
         same channel and funding, the next version, not final. Only these
         fields are in a move, so a move can change nothing else.
    @param from_state The state moved from.
    @param move The move.
    @return The next state.
    """
    if from_state.is_final:
        revert_reason._raise("app: no move after a final state")
    if from_state.version == max_value(uint64):
        revert_reason._raise("app: no version after the last")
    return IApp.AppState(
        channel=from_state.channel,
        # Below max_value(uint64) (checked above): no overflow.
        version=unsafe_add(from_state.version, 1),
        balance_a=move.balance_a,
        balance_b=move.balance_b,
        funding_a=from_state.funding_a,
        funding_b=from_state.funding_b,
        app_data=move.app_data,
        is_final=False,
    )


@internal
@pure
def _state_hash(state: IApp.AppState) -> bytes32:
    """
    @dev The EIP-712 struct hash of an app state (`bytes` fields hash to
         the keccak256 of their content).
    @param state The state.
    @return `hashStruct(state)`.
    """
    return keccak256(
        abi_encode(
            _STATE_TYPE_HASH,
            state.channel,
            state.version,
            state.balance_a,
            state.balance_b,
            state.funding_a,
            state.funding_b,
            keccak256(state.app_data),
            state.is_final,
        )
    )


@internal
@pure
def _registration_hash(state_hash: bytes32, version: uint64, deadline: uint64, agreed: uint64) -> bytes32:
    """
    @dev What the adjudicator stores for an open dispute: one word that
         commits to the registered (or last moved) state, its version, its
         deadline and the version of the last state both signed that was
         registered, which callers then name (`Registration`) instead of
         the contract storing four fields.
    @param state_hash The registered (or last moved) state's struct hash.
    @param version Its version.
    @param deadline The end of its challenge period.
    @param agreed The version of the last registered state both signed.
    @return The registration hash.
    """
    return keccak256(abi_encode(state_hash, version, deadline, agreed))
