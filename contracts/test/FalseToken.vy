# pragma version ~=0.4.3
"""
@title Test token that returns false
@license Apache-2.0
@notice A plain ERC20 until `fail` is switched on; from then on `transfer`
        and `transferFrom` move nothing and return false (the old-style
        failure signal). Lets a test fund a channel first and fail the payout.
"""

# @dev Token balances.
balanceOf: public(HashMap[address, uint256])
# @dev Allowances, owner => spender => amount.
allowance: public(HashMap[address, HashMap[address, uint256]])
# @dev While true, transfers move nothing and return false.
fail: public(bool)


@external
def mint(to: address, amount: uint256):
    """
    @notice Mints tokens (test only).
    """
    self.balanceOf[to] += amount


@external
def set_fail(fail: bool):
    """
    @notice Switches the failure mode (test only).
    """
    self.fail = fail


@external
def approve(spender: address, amount: uint256) -> bool:
    """
    @notice Approves `spender`.
    """
    self.allowance[msg.sender][spender] = amount
    return True


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @notice Transfers tokens, or returns false without moving any.
    """
    if self.fail:
        return False
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @notice Transfers on behalf of `owner`, or returns false without moving any.
    """
    if self.fail:
        return False
    self.allowance[owner][msg.sender] -= amount
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
    return True
