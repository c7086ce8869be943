# pragma version ~=0.4.3
"""
@title Test token that returns nothing
@license Apache-2.0
@notice Like USDT: `transfer` and `transferFrom` return no value.
"""

# @dev Token balances.
balanceOf: public(HashMap[address, uint256])
# @dev Allowances, owner => spender => amount.
allowance: public(HashMap[address, HashMap[address, uint256]])


@external
def mint(to: address, amount: uint256):
    """
    @notice Mints tokens (test only).
    """
    self.balanceOf[to] += amount


@external
def approve(spender: address, amount: uint256):
    """
    @notice Approves `spender`; returns nothing.
    """
    self.allowance[msg.sender][spender] = amount


@external
def transfer(to: address, amount: uint256):
    """
    @notice Transfers tokens; returns nothing.
    """
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount


@external
def transferFrom(owner: address, to: address, amount: uint256):
    """
    @notice Transfers on behalf of `owner`; returns nothing.
    """
    self.allowance[owner][msg.sender] -= amount
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
