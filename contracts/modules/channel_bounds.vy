# pragma version ~=0.4.3
"""
@title Bounds shared by the Perun adjudicators
@custom:contract-name channel_bounds
@license Apache-2.0
@notice Constants both adjudicators enforce, kept in one place so a ledger
        channel and the virtual channels it funds obey the same limits.
"""


# @dev The shortest challenge period a channel may use: long enough for a
# participant or its watchtower to answer a stale state.
MIN_CHALLENGE_DURATION: constant(uint64) = 3600


# @dev The longest challenge period (30 days): bounds how long a dispute can
# keep funds locked, so every dispute ends.
MAX_CHALLENGE_DURATION: constant(uint64) = 2592000


# @dev The largest amount one side may hold: 2**120 - 1. Sums of a few of
# them never overflow a uint256, and two fit in one storage word.
MAX_AMOUNT: constant(uint256) = 2**120 - 1
