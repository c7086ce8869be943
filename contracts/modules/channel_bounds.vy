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
MIN_CHALLENGE_DURATION: constant(uint64) = 3_600


# @dev The longest challenge period (30 days): bounds how long a dispute can
# keep funds locked, so every dispute ends.
MAX_CHALLENGE_DURATION: constant(uint64) = 2_592_000


# @dev The largest amount one side may hold: 2**120 - 1. Sums of a few of
# them never overflow a uint256, and two fit in one storage word.
MAX_AMOUNT: constant(uint256) = 2**120 - 1


# @dev `MAX_CHALLENGE_DURATION - MIN_CHALLENGE_DURATION`: a duration `d` is
# in range exactly when `unsafe_sub(d, MIN_CHALLENGE_DURATION)` is at most
# this (below the minimum the uint64 difference wraps around).
CHALLENGE_DURATION_SPAN: constant(uint64) = MAX_CHALLENGE_DURATION - MIN_CHALLENGE_DURATION
