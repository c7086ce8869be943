# pragma version ~=0.4.3
"""
@title The packed storage words of both adjudicators
@custom:contract-name packed_words
@license Apache-2.0
@notice One home for the three bit layouts: the ledger's holdings word and
        dispute word, and the virtual adjudicator's record. Each field has
        a named position and mask here; the unpack functions are used
        wherever a call costs no measured gas, and the hot paths combine
        the same named constants inline (an internal call costs gas on
        every register, conclude and settlement).
@custom:security Every packed amount is at most `channel_bounds.MAX_AMOUNT`
                 (120 bits) or a sum of two of them (121 bits), and every
                 time or version fits 64 bits, so no field overlaps another.
"""


# @dev Stateless: `channel_bounds` holds only constants.
from . import channel_bounds


# Holdings word (ledger): bits 0-119 side A's deposits, bits 120-239 side
# B's, bit 254 the disputed flag, bit 255 the concluded flag.

# @dev Width of one side's deposit inside a holdings word.
AMOUNT_BITS: constant(uint256) = 120


# @dev Bit 255 of a holdings word marks a concluded channel.
CONCLUDED_BIT: constant(uint256) = 2**255


# @dev Bit 254 of a holdings word marks a channel with a registered
# dispute, so `close` reads the dispute slot only when there is one.
DISPUTED_BIT: constant(uint256) = 2**254


# Dispute word (ledger): bits 0-63 the registered version, bits 64-127 the
# deadline, bits 128-248 side A's base payout, bit 254 "has locks", bit
# 255 "funded".
# Record (virtual): bits 0-63 the registered version, bits 64-127 the
# deadline, bits 128-247 Alice's balance, bit 255 "final".

# @dev Mask of a 64-bit field (version, deadline) of a dispute word or record.
U64_MASK: constant(uint256) = 2**64 - 1


# @dev Position of the deadline in a dispute word or record.
DEADLINE_SHIFT: constant(uint256) = 64


# @dev Position of side A's base payout in a dispute word, and of Alice's
# balance in a record.
PAYOUT_SHIFT: constant(uint256) = 128


# @dev Mask of side A's base payout in a dispute word: 121 bits, since a
# payout can reach the sum of both deposits (2 * MAX_AMOUNT < 2**121).
PAYOUT_MASK: constant(uint256) = 2**121 - 1


# @dev Bit 254 of a dispute word: the registered state has locks, and the
# ledger's `_dispute_locks` holds their hash.
HAS_LOCKS_BIT: constant(uint256) = 2**254


# @dev Bit 255 of a dispute word: the registered state is funded (both
# sides deposited at least what it accounts for), so its balances and
# locks decide the payouts; otherwise each side gets back its deposit.
FUNDED_BIT: constant(uint256) = 2**255


# @dev Bit 255 of a record marks a final state: the outcome settled at once.
FINAL_BIT: constant(uint256) = 2**255


@internal
@pure
def _side_amount(word: uint256, side: uint256) -> uint256:
    """
    @dev One side's deposit from a holdings word.
    @param word The holdings word.
    @param side 0 or 1.
    @return The deposit.
    """
    return (word >> (side * AMOUNT_BITS)) & channel_bounds.MAX_AMOUNT


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
def _balance_alice(record: uint256) -> uint256:
    """
    @dev Alice's registered balance from a record.
    @param record The record.
    @return Alice's balance.
    """
    return (record >> PAYOUT_SHIFT) & channel_bounds.MAX_AMOUNT
