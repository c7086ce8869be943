# pragma version ~=0.4.3
"""
@title Virtual channel types: hashing and stateless checks
@custom:contract-name virtual_types
@license Apache-2.0
@notice The `Channel.sol` role for virtual channels: the state type, the
        EIP-712 struct hashes of the parameters (the virtual channel id)
        and of a state, and the checks of the parameters that need no
        storage. Stateless: the adjudicator and the test harness compile
        the same code.
@custom:security Every amount is bounded by `channel_bounds.MAX_AMOUNT`
                 before it is summed; a virtual channel has three distinct
                 non-zero participants and two distinct ledger channels.
"""


# @dev The parameter struct shared with the ledger adjudicator.
from ..interfaces import IVirtualAdjudicator
# @dev Stateless: `channel_bounds` holds only constants.
from . import channel_bounds
# @dev Stateless: `revert_reason` holds only the one raising function.
from . import revert_reason


# @dev EIP-712 type hash of `VirtualParams`; the virtual channel id is the
# struct hash of the parameters.
_PARAMS_TYPE_HASH: constant(bytes32) = keccak256(
    "VirtualParams(address alice,address bob,address ingrid,address asset,address ledgerAdjudicator,uint256 chainId,bytes32 ledgerAlice,bytes32 ledgerBob,uint256 fundingAlice,uint256 fundingBob,uint64 validity,uint64 challengeDuration,uint256 nonce)"
)


# @dev EIP-712 type hash of `VirtualState`.
_STATE_TYPE_HASH: constant(bytes32) = keccak256(
    "VirtualState(bytes32 channel,uint64 version,uint256 balanceAlice,uint256 balanceBob,bool isFinal)"
)


struct VirtualState:
    # @dev The virtual channel id (see `_virtual_id`).
    channel: bytes32
    # @dev Strictly increasing with every payment Alice and Bob sign.
    version: uint64
    # @dev What Alice is owed.
    balance_alice: uint256
    # @dev What Bob is owed.
    balance_bob: uint256
    # @dev A final state settles the outcome at once (fast close).
    is_final: bool


@internal
@pure
def _virtual_id(params: IVirtualAdjudicator.VirtualParams) -> bytes32:
    """
    @dev Checks the parameters and derives the virtual channel id.
    @param params The virtual channel's parameters.
    @return The virtual channel id.
    """
    if params.alice == empty(address) or params.bob == empty(address) or params.ingrid == empty(address):
        revert_reason._raise("virtual: zero participant")
    if params.alice == params.bob or params.alice == params.ingrid or params.bob == params.ingrid:
        revert_reason._raise("virtual: same participant")
    if params.ledger_alice == params.ledger_bob:
        revert_reason._raise("virtual: same ledger channel")
    # One comparison for both bounds: below the minimum, the difference
    # wraps around to more than the span.
    if unsafe_sub(params.challenge_duration, channel_bounds.MIN_CHALLENGE_DURATION) > channel_bounds.CHALLENGE_DURATION_SPAN:
        revert_reason._raise("virtual: challenge duration out of range")
    # One comparison of the OR: MAX_AMOUNT is 2**120 - 1.
    if params.funding_alice | params.funding_bob > channel_bounds.MAX_AMOUNT:
        self._refuse_amount_too_large()
    return keccak256(
        abi_encode(
            _PARAMS_TYPE_HASH,
            params.alice,
            params.bob,
            params.ingrid,
            params.asset,
            params.ledger_adjudicator,
            params.chain_id,
            params.ledger_alice,
            params.ledger_bob,
            params.funding_alice,
            params.funding_bob,
            params.validity,
            params.challenge_duration,
            params.nonce,
        )
    )


@internal
@pure
def _state_hash(state: VirtualState) -> bytes32:
    """
    @dev The EIP-712 struct hash of a virtual state.
    @param state The state.
    @return `hashStruct(state)`.
    """
    return keccak256(
        abi_encode(
            _STATE_TYPE_HASH,
            state.channel,
            state.version,
            state.balance_alice,
            state.balance_bob,
            state.is_final,
        )
    )


@internal
@pure
def _expiry(params: IVirtualAdjudicator.VirtualParams) -> uint256:
    """
    @dev The moment from which an unregistered channel settles on its
         initial split and can no longer be registered.
    @param params The virtual channel's parameters.
    @return `validity + challenge_duration`, computed without overflow.
    """
    # Two uint64 values: their sum cannot overflow a uint256.
    return unsafe_add(convert(params.validity, uint256), convert(params.challenge_duration, uint256))


@internal
@pure
def _refuse_amount_too_large():
    """
    @dev Reverts with "virtual: amount too large": one raising site for the
         several checks that refuse with this reason.
    """
    revert_reason._raise("virtual: amount too large")
