# pragma version ~=0.4.3
"""
@title Ledger channel types: hashing and stateless checks
@custom:contract-name ledger_types
@license Apache-2.0
@notice The `Channel.sol` role for ledger channels: the parameter, lock and
        state types, their EIP-712 struct hashes, the channel id, and every
        check of a state that needs no storage (bounds, conservation of
        funds, duplicate locks). Stateless: the adjudicator and the test
        harness compile the same code.
@custom:security Every amount is bounded by `channel_bounds.MAX_AMOUNT`
                 before it is summed, so no sum here can overflow. The
                 channel id keeps 255 bits of the parameter hash and uses
                 bit 255 for the asset kind, so an ETH deposit can never
                 land in a token channel.
"""


# @dev Stateless: `channel_bounds` holds only constants.
from . import channel_bounds
# @dev Stateless: `revert_reason` holds only the one raising function.
from . import revert_reason


# @dev The most virtual-channel locks a ledger state may carry: bounds the
# duplicate check and the split loop.
MAX_LOCKS: constant(uint256) = 16


# @dev Bit 255 of a channel id says which kind of asset it holds: 0 for ETH,
# 1 for an ERC20 token. The other 255 bits come from the parameter hash.
TOKEN_CHANNEL_BIT: constant(uint256) = 2**255


# @dev EIP-712 type hash of `ChannelParams`; the channel id is derived from
# the struct hash of the parameters.
_PARAMS_TYPE_HASH: constant(bytes32) = keccak256(
    "ChannelParams(address participantA,address participantB,address asset,uint64 challengeDuration,uint256 nonce)"
)


# @dev EIP-712 type hash of `Lock`.
_LOCK_TYPE_HASH: constant(bytes32) = keccak256(
    "Lock(bytes32 channel,uint256 amountA,uint256 amountB)"
)


# @dev EIP-712 type hash of `LedgerState` (referenced types appended, as the
# standard requires).
_STATE_TYPE_HASH: constant(bytes32) = keccak256(
    "LedgerState(bytes32 channel,uint64 version,uint256 balanceA,uint256 balanceB,uint256 fundingA,uint256 fundingB,Lock[] locks,bool isFinal)Lock(bytes32 channel,uint256 amountA,uint256 amountB)"
)


# @dev keccak256 of zero bytes: the EIP-712 hash of an empty `Lock[]`.
EMPTY_ARRAY_HASH: constant(bytes32) = keccak256(b"")


struct ChannelParams:
    # @dev The first participant (side 0).
    participant_a: address
    # @dev The second participant (side 1).
    participant_b: address
    # @dev The asset: the zero address for ETH, otherwise an ERC20 token.
    asset: address
    # @dev Seconds between the first registration and the end of a dispute.
    challenge_duration: uint64
    # @dev Chosen by the participants so that the same pair can open many channels.
    nonce: uint256


struct Lock:
    # @dev The virtual channel this lock funds.
    channel: bytes32
    # @dev What side A of the ledger channel locks for the virtual channel.
    amount_a: uint256
    # @dev What side B of the ledger channel locks for the virtual channel.
    amount_b: uint256


struct LedgerState:
    # @dev The channel id (see `_channel_id`).
    channel: bytes32
    # @dev Strictly increasing with every update both sign.
    version: uint64
    # @dev What side A is owed by this state.
    balance_a: uint256
    # @dev What side B is owed by this state.
    balance_b: uint256
    # @dev Side A's total deposits this state accounts for.
    funding_a: uint256
    # @dev Side B's total deposits this state accounts for.
    funding_b: uint256
    # @dev Funds set aside for virtual channels, split by their outcome.
    locks: DynArray[Lock, MAX_LOCKS]
    # @dev A final state ends the channel at once.
    is_final: bool


struct FinalState:
    # @dev The version of the final state.
    version: uint64
    # @dev What side A is owed.
    balance_a: uint256
    # @dev What side B is owed.
    balance_b: uint256
    # @dev Side A's total deposits the state accounts for.
    funding_a: uint256
    # @dev Side B's total deposits the state accounts for.
    funding_b: uint256


@internal
@pure
def _channel_id(params: ChannelParams) -> bytes32:
    """
    @dev Checks the parameters and derives the channel id.
    @param params The channel's parameters.
    @return The channel id.
    """
    if params.participant_a == empty(address) or params.participant_b == empty(address):
        revert_reason._raise("ledger: zero participant")
    if params.participant_a == params.participant_b:
        revert_reason._raise("ledger: same participant")
    # One comparison for both bounds: below the minimum, the difference
    # wraps around to more than the span.
    if unsafe_sub(params.challenge_duration, channel_bounds.MIN_CHALLENGE_DURATION) > channel_bounds.CHALLENGE_DURATION_SPAN:
        revert_reason._raise("ledger: challenge duration out of range")
    digest: uint256 = convert(
        keccak256(
            abi_encode(
                _PARAMS_TYPE_HASH,
                params.participant_a,
                params.participant_b,
                params.asset,
                params.challenge_duration,
                params.nonce,
            )
        ),
        uint256,
    )
    # Keep 255 bits of the hash (collisions still cost ~2**127 work) and use
    # bit 255 for the asset kind, so an ETH deposit cannot land in a token
    # channel.
    digest &= ~TOKEN_CHANNEL_BIT
    if params.asset != empty(address):
        digest |= TOKEN_CHANNEL_BIT
    return convert(digest, bytes32)


@internal
@pure
def _check_state(channel: bytes32, state: LedgerState):
    """
    @dev Asserts what can be checked of a state without storage: it belongs
         to this channel, every amount is at most `MAX_AMOUNT`, no virtual
         channel is locked twice, and it conserves funds (balances plus
         locked amounts sum to the funding).
    @param channel The channel id.
    @param state The state.
    """
    if state.channel != channel:
        revert_reason._raise("ledger: state for another channel")
    locked: uint256 = 0
    for i: uint256 in range(len(state.locks), bound=MAX_LOCKS):
        lock: Lock = state.locks[i]
        if lock.amount_a | lock.amount_b > channel_bounds.MAX_AMOUNT:
            self._refuse_amount_too_large()
        # At most MAX_LOCKS pairs of amounts below 2**120: no overflow.
        locked = unsafe_add(locked, unsafe_add(lock.amount_a, lock.amount_b))
        for j: uint256 in range(i, bound=MAX_LOCKS):
            if state.locks[j].channel == lock.channel:
                revert_reason._raise("ledger: duplicate lock")
    self._check_amounts(state.balance_a, state.balance_b, state.funding_a, state.funding_b, locked)


@internal
@pure
def _check_amounts(balance_a: uint256, balance_b: uint256, funding_a: uint256, funding_b: uint256, locked: uint256):
    """
    @dev Asserts that every amount of a state is at most `MAX_AMOUNT` and
         that it conserves funds: balances plus locked amounts sum to the
         funding.
    @param balance_a Side A's balance.
    @param balance_b Side B's balance.
    @param funding_a Side A's funding.
    @param funding_b Side B's funding.
    @param locked The sum of the state's lock amounts (each checked).
    """
    # MAX_AMOUNT is 2**120 - 1: a value exceeds it exactly when it has a bit
    # above bit 119, so one comparison of the OR checks all four.
    if balance_a | balance_b | funding_a | funding_b > channel_bounds.MAX_AMOUNT:
        self._refuse_amount_too_large()
    # Amounts below 2**120 and `locked` below 2**125: no sum overflows.
    if unsafe_add(unsafe_add(balance_a, balance_b), locked) != unsafe_add(funding_a, funding_b):
        revert_reason._raise("ledger: balances do not match funding")


@internal
@pure
def _state_hash(state: LedgerState) -> bytes32:
    """
    @dev The EIP-712 struct hash of a ledger state.
    @param state The state.
    @return `hashStruct(state)`.
    """
    return self._hash_state_fields(
        state.channel,
        state.version,
        state.balance_a,
        state.balance_b,
        state.funding_a,
        state.funding_b,
        self._locks_hash(state.locks),
        state.is_final,
    )


@internal
@pure
def _hash_state_fields(
    channel: bytes32,
    version: uint64,
    balance_a: uint256,
    balance_b: uint256,
    funding_a: uint256,
    funding_b: uint256,
    locks_hash: bytes32,
    is_final: bool,
) -> bytes32:
    """
    @dev The EIP-712 struct hash of a ledger state given field by field,
         its locks already hashed (`close` rebuilds a final state this way).
    @param channel The channel id.
    @param version The version.
    @param balance_a Side A's balance.
    @param balance_b Side B's balance.
    @param funding_a Side A's funding.
    @param funding_b Side B's funding.
    @param locks_hash The EIP-712 hash of the state's `Lock[]`.
    @param is_final Whether the state is final.
    @return `hashStruct(state)`.
    """
    return keccak256(
        abi_encode(
            _STATE_TYPE_HASH, channel, version, balance_a, balance_b, funding_a, funding_b, locks_hash, is_final
        )
    )


@internal
@pure
def _locks_hash(locks: DynArray[Lock, MAX_LOCKS]) -> bytes32:
    """
    @dev The EIP-712 hash of a `Lock[]`: keccak256 of the concatenated
         struct hashes.
    @param locks The locks.
    @return The array hash.
    """
    if len(locks) == 0:
        return EMPTY_ARRAY_HASH
    hashes: DynArray[bytes32, MAX_LOCKS] = []
    for lock: Lock in locks:
        hashes.append(keccak256(abi_encode(_LOCK_TYPE_HASH, lock.channel, lock.amount_a, lock.amount_b)))
    # abi_encode of a bare dynamic array is `length || items`; skip the length word.
    packed: Bytes[32 + 32 * MAX_LOCKS] = abi_encode(hashes, ensure_tuple=False)
    return keccak256(slice(packed, 32, 32 * len(hashes)))


@internal
@pure
def _refuse_amount_too_large():
    """
    @dev Reverts with "ledger: amount too large": one raising site for the
         several checks that refuse with this reason.
    """
    revert_reason._raise("ledger: amount too large")
