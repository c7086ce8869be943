# pragma version ~=0.4.3
"""
@title Test token that returns nothing
@license Apache-2.0
@notice Like USDT: `transfer` and `transferFrom` return no value, and a
        blocklist makes a transfer to a blocked account revert.
"""

# @dev Token balances.
balanceOf: public(HashMap[address, uint256])
# @dev Allowances, owner => spender => amount.
allowance: public(HashMap[address, HashMap[address, uint256]])
# @dev Accounts no transfer may pay (test only).
blocked: public(HashMap[address, bool])


@external
def mint(to: address, amount: uint256):
    """
    @notice Mints tokens (test only).
    """
    self.balanceOf[to] += amount


@external
def set_blocked(account: address, is_blocked: bool):
    """
    @notice Blocks or unblocks transfers to `account` (test only).
    """
    self.blocked[account] = is_blocked


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
    assert not self.blocked[to], "token: recipient blocked"
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
