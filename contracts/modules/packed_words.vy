# pragma version ~=0.4.3
"""
@title The packed storage words of both adjudicators
@custom:contract-name packed_words
@license Apache-2.0
@notice One home for the three bit layouts: the ledger's holdings word and
        dispute word, and the virtual adjudicator's record (docs/SPEC.md,
        section 5.1). Each field has a named position and mask here; every
        multi-bit field is read through an unpack function, the dispute
        word and the record are built by a pack function, and one-bit flags
        are tested with their named bit. Only the deposit path combines the
        named constants inline, where a call would cost gas on every
        deposit (SPEC 5.1 gives the decision and the measured cost).
@custom:security Every packed amount is at most `channel_bounds.MAX_AMOUNT`
                 (120 bits) or a sum of two of them (121 bits), and every
                 time or version fits 64 bits, so no field overlaps another.
"""


# @dev Stateless: `channel_bounds` holds only constants.
from . import channel_bounds


# @dev Width of one side's deposit inside a holdings word.
AMOUNT_BITS: constant(uint256) = 120


# @dev Bit 255 of a holdings word: the channel concluded.
CONCLUDED_BIT: constant(uint256) = 2**255


# @dev Bit 254 of a holdings word: a dispute was registered.
DISPUTED_BIT: constant(uint256) = 2**254


# @dev Mask of a 64-bit field (version, deadline) of a dispute word or record.
U64_MASK: constant(uint256) = 2**64 - 1


# @dev Position of the deadline in a dispute word or record.
DEADLINE_SHIFT: constant(uint256) = 64


# @dev Position of side A's payout in a dispute word and Alice's balance in a record.
PAYOUT_SHIFT: constant(uint256) = 128


# @dev Mask of side A's payout in a dispute word: 121 bits (up to both deposits).
PAYOUT_MASK: constant(uint256) = 2**121 - 1


# @dev Bit 254 of a dispute word: the registered state's locks hash is stored.
HAS_LOCKS_BIT: constant(uint256) = 2**254


# @dev Bit 255 of a dispute word: the registered state is funded.
FUNDED_BIT: constant(uint256) = 2**255


# @dev Bit 255 of a record: a final state was registered.
FINAL_BIT: constant(uint256) = 2**255


@internal
@pure
def _deposits(word: uint256) -> (uint256, uint256):
    """
    @dev Both sides' deposits from a holdings word, in one call.
    @param word The holdings word.
    @return deposit_a Side A's deposits.
    @return deposit_b Side B's deposits.
    """
    return word & channel_bounds.MAX_AMOUNT, (word >> AMOUNT_BITS) & channel_bounds.MAX_AMOUNT


@internal
@pure
def _version(word: uint256) -> uint64:
    """
    @dev The registered version from a dispute word or record.
    @param word The dispute word or record.
    @return The version.
    """
    return convert(word & U64_MASK, uint64)


@internal
@pure
def _deadline(word: uint256) -> uint64:
    """
    @dev The deadline from a dispute word or record.
    @param word The dispute word or record.
    @return The deadline (a timestamp).
    """
    return convert((word >> DEADLINE_SHIFT) & U64_MASK, uint64)


@internal
@pure
def _payout_a(word: uint256) -> uint256:
    """
    @dev Side A's base payout from a dispute word.
    @param word The dispute word.
    @return The payout.
    """
    return (word >> PAYOUT_SHIFT) & PAYOUT_MASK


@internal
@pure
def _pack_dispute(version: uint64, deadline: uint64, payout_a: uint256, funded: bool, has_locks: bool) -> uint256:
    """
    @dev A dispute word, built in one call.
    @param version The registered version.
    @param deadline The end of the challenge period.
    @param payout_a Side A's base payout (at most 2 * `MAX_AMOUNT`).
    @param funded Whether the registered state is funded.
    @param has_locks Whether the registered state has locks; kept only
           for a funded state (an unfunded state's locks move nothing).
    @return The dispute word.
    """
    word: uint256 = convert(version, uint256) | (convert(deadline, uint256) << DEADLINE_SHIFT) | (payout_a << PAYOUT_SHIFT)
    if funded:
        word |= FUNDED_BIT
        if has_locks:
            word |= HAS_LOCKS_BIT
    return word


@internal
@pure
def _balance_alice(record: uint256) -> uint256:
    """
    @dev Alice's registered balance from a record.
    @param record The record.
    @return Alice's balance.
    """
    return (record >> PAYOUT_SHIFT) & channel_bounds.MAX_AMOUNT


@internal
@pure
def _pack_record(version: uint64, deadline: uint256, balance_alice: uint256, is_final: bool) -> uint256:
    """
    @dev A virtual record, built in one call.
    @param version The registered version.
    @param deadline The end of the challenge period (fits 64 bits).
    @param balance_alice Alice's balance (at most `MAX_AMOUNT`).
    @param is_final Whether the state is final.
    @return The record.
    """
    word: uint256 = convert(version, uint256) | (deadline << DEADLINE_SHIFT) | (balance_alice << PAYOUT_SHIFT)
    if is_final:
        word |= FINAL_BIT
    return word
