# pragma version ~=0.4.3
"""
@title ETH receiver that always reverts
@license Apache-2.0
@notice Its runtime code is put on a participant's address in tests, so the
        participant still signs with its key but cannot receive ETH.
"""


@external
@payable
def __default__():
    """
    @notice Refuses every payment.
    """
    raise "receiver: refused"
