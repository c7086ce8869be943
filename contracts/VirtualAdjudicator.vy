# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Perun virtual channel adjudicator
@custom:contract-name VirtualAdjudicator
@license Apache-2.0
@notice Keeps one record per virtual channel between Alice and Bob over the
        hub Ingrid, and answers the two ledger channels that fund it
        (Alice-Ingrid and Ingrid-Bob) with the same outcome, so Ingrid is
        balance-neutral by construction. It holds no funds: the ledger
        adjudicator splits each lock by `settlement`.
@custom:security An outcome, once settled, never changes: a final state
                 settles at once; a registered state settles when its
                 challenge period ends; a channel nobody registered before
                 `validity + challenge_duration` settles on its initial
                 split and can no longer be registered. Both ledger
                 channels therefore read the same numbers whenever they
                 conclude.
"""


# @dev The interface this contract implements (the ledger reads `settlement`).
from .interfaces import IVirtualAdjudicator
# @dev Stateless: the bounds both adjudicators enforce.
from .modules import channel_bounds
# @dev Stateless: the layout of the record.
from .modules import packed_words
# @dev Stateless: the one function that raises a revert reason.
from .modules import revert_reason
# @dev `initializes`: the domain separator is this contract's (its
# immutables are set by our constructor).
from .modules import typed_signatures
# @dev Stateless: the virtual types, their hashing and parameter checks.
from .modules import virtual_types


implements: IVirtualAdjudicator


initializes: typed_signatures


exports: (typed_signatures.eip712Domain, typed_signatures.DOMAIN_SEPARATOR)


# @dev See `channel_bounds.MIN_CHALLENGE_DURATION`.
MIN_CHALLENGE_DURATION: public(constant(uint64)) = channel_bounds.MIN_CHALLENGE_DURATION


# @dev See `channel_bounds.MAX_CHALLENGE_DURATION`.
MAX_CHALLENGE_DURATION: public(constant(uint64)) = channel_bounds.MAX_CHALLENGE_DURATION


# @dev See `channel_bounds.MAX_AMOUNT`.
MAX_AMOUNT: public(constant(uint256)) = channel_bounds.MAX_AMOUNT


# @dev One record per virtual channel (SPEC 5.1). Zero while nobody
# registered the channel.
_records: HashMap[bytes32, uint256]


event Registered:
    channel: indexed(bytes32)
    version: uint64
    deadline: uint64
    balance_alice: uint256
    balance_bob: uint256
    is_final: bool


@deploy
def __init__():
    """
    @dev Sets the EIP-712 domain ("PerunVirtual", "1").
    """
    typed_signatures.__init__("PerunVirtual", "1")


@external
def register(
    params: IVirtualAdjudicator.VirtualParams,
    state: virtual_types.VirtualState,
    sig_alice: typed_signatures.Signature,
    sig_bob: typed_signatures.Signature,
):
    """
    @notice Registers a virtual state Alice and Bob both signed. Opening a
            dispute with a non-final state: Alice or Bob at any time before
            `validity + challenge_duration`; anyone else (Ingrid, a
            watchtower) only from `validity` on. Once open, anyone may
            answer with a higher version until the deadline, which is never
            extended. A final state may be registered by anyone before
            `validity + challenge_duration` and settles the outcome at once
            (fast close). Re-registering the registered state is a no-op
            (its signatures are still checked).
    @param params The virtual channel's parameters.
    @param state A state of this virtual channel.
    @param sig_alice Alice's EIP-712 signature of `state`.
    @param sig_bob Bob's EIP-712 signature of `state`.
    """
    channel: bytes32 = virtual_types._virtual_id(params)
    if state.channel != channel:
        revert_reason._raise("virtual: state for another channel")
    # One comparison of the OR: MAX_AMOUNT is 2**120 - 1.
    if state.balance_alice | state.balance_bob > channel_bounds.MAX_AMOUNT:
        virtual_types._refuse_amount_too_large()
    # Every amount is below 2**120 (the funding checked by `_virtual_id`):
    # no sum overflows.
    if unsafe_add(state.balance_alice, state.balance_bob) != unsafe_add(params.funding_alice, params.funding_bob):
        revert_reason._raise("virtual: balances do not match funding")
    # Signatures first, as in the ledger adjudicator: a re-registration
    # with invalid signatures reverts instead of passing as a no-op.
    signed: uint256 = typed_signatures._check_signers(virtual_types._state_hash(state), sig_alice, params.alice, sig_bob, params.bob)
    if signed != typed_signatures.SIGNED:
        self._refuse_signature(signed)
    record: uint256 = self._records[channel]
    deadline: uint256 = 0
    if record == 0:
        # A final state may be registered by anyone at any time: Alice and
        # Bob both agreed to end the channel with it, and it lets Ingrid
        # settle the outcome both of her ledger channels will use.
        if not state.is_final and msg.sender != params.alice and msg.sender != params.bob:
            if block.timestamp < convert(params.validity, uint256):
                revert_reason._raise("virtual: only Alice or Bob before validity")
        if block.timestamp >= virtual_types._expiry(params):
            revert_reason._raise("virtual: channel expired")
        # A timestamp plus a uint64 cannot overflow a uint256.
        deadline = unsafe_add(block.timestamp, convert(params.challenge_duration, uint256))
    else:
        if record & packed_words.FINAL_BIT != 0:
            revert_reason._raise("virtual: channel concluded")
        deadline = convert(packed_words._deadline(record), uint256)
        if block.timestamp >= deadline:
            revert_reason._raise("virtual: challenge period over")
        version: uint64 = packed_words._version(record)
        if state.version == version and not state.is_final and state.balance_alice == packed_words._balance_alice(record):
            return
        if state.version <= version:
            revert_reason._raise("virtual: stale version")
    self._records[channel] = packed_words._pack_record(state.version, deadline, state.balance_alice, state.is_final)
    log Registered(
        channel=channel,
        version=state.version,
        deadline=convert(deadline, uint64),
        balance_alice=state.balance_alice,
        balance_bob=state.balance_bob,
        is_final=state.is_final,
    )


@external
@view
def settlement(params: IVirtualAdjudicator.VirtualParams) -> (bytes32, bool, uint256, uint256):
    """
    @notice The outcome a ledger channel uses to split a lock of this
            virtual channel.
    @param params The virtual channel's parameters.
    @return channel The virtual channel id.
    @return settled Whether the outcome is final: a final state was
            registered, or the challenge period of the registered state is
            over, or nobody registered before `validity +
            challenge_duration`.
    @return balance_alice Alice's share (the registered balance, or her
            initial funding if nobody registered).
    @return balance_bob Bob's share, likewise.
    """
    channel: bytes32 = virtual_types._virtual_id(params)
    record: uint256 = self._records[channel]
    if record == 0:
        return channel, block.timestamp >= virtual_types._expiry(params), params.funding_alice, params.funding_bob
    balance_alice: uint256 = packed_words._balance_alice(record)
    # The registered state conserved the funding total, so this cannot underflow.
    balance_bob: uint256 = params.funding_alice + params.funding_bob - balance_alice
    settled: bool = record & packed_words.FINAL_BIT != 0 or block.timestamp >= convert(packed_words._deadline(record), uint256)
    return channel, settled, balance_alice, balance_bob


@external
@view
def record(channel: bytes32) -> (uint64, uint64, uint256, bool):
    """
    @notice The on-chain record of a virtual channel.
    @param channel The virtual channel id.
    @return version The registered version (0 if none).
    @return deadline The end of the challenge period (0 if never registered).
    @return balance_alice Alice's registered balance.
    @return is_final Whether a final state was registered.
    """
    word: uint256 = self._records[channel]
    return (
        packed_words._version(word),
        packed_words._deadline(word),
        packed_words._balance_alice(word),
        word & packed_words.FINAL_BIT != 0,
    )


@internal
@pure
def _refuse_signature(code: uint256):
    """
    @dev Reverts with the reason for a `typed_signatures._check_signers`
         code other than `SIGNED`.
    @param code `INVALID_SIGNATURE` or `WRONG_SIGNER`.
    """
    if code == typed_signatures.INVALID_SIGNATURE:
        revert_reason._raise("virtual: invalid signature")
    revert_reason._raise("virtual: wrong signer")
