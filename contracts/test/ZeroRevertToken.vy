# pragma version ~=0.4.3
"""
@title Test token that reverts on zero-amount transfers
@license Apache-2.0
@notice A plain ERC20, except that `transfer` and `transferFrom` of zero
        revert (some deployed tokens, e.g. LEND, do this).
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
def approve(spender: address, amount: uint256) -> bool:
    """
    @notice Approves `spender`.
    """
    self.allowance[msg.sender][spender] = amount
    return True


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @notice Transfers tokens; reverts on a zero amount.
    """
    self._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @notice Transfers on behalf of `owner`; reverts on a zero amount.
    """
    self.allowance[owner][msg.sender] -= amount
    self._transfer(owner, to, amount)
    return True


@internal
def _transfer(owner: address, to: address, amount: uint256):
    assert amount != 0, "token: zero amount"
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
