# pragma version ~=0.4.3
"""
@title ETH receiver that burns all the gas it is given
@license Apache-2.0
@notice Loops until the forwarded gas runs out.
"""

# @dev Written in a loop to burn gas.
counter: public(uint256)


@external
@payable
def __default__():
    """
    @notice Burns all forwarded gas.
    """
    for i: uint256 in range(1000000):
        self.counter += 1
