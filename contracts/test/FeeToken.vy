# pragma version ~=0.4.3
"""
@title Test token with a fee on transfer
@license Apache-2.0
@notice Burns 1% of every transfer: the recipient gets 99% of the amount.
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
    @notice Transfers `amount` and burns 1% of it.
    """
    self._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @notice Transfers on behalf of `owner`, burning 1%.
    """
    self.allowance[owner][msg.sender] -= amount
    self._transfer(owner, to, amount)
    return True


@internal
def _transfer(owner: address, to: address, amount: uint256):
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount - amount // 100
