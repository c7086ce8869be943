# pragma version ~=0.4.3
"""
@title Test ERC20 token
@license Apache-2.0
@notice A plain ERC20 for tests, with open minting and a blocklist that
        makes transfers to a listed recipient revert (USDC-style).
"""

from ethereum.ercs import IERC20

implements: IERC20

# @dev Token balances.
balanceOf: public(HashMap[address, uint256])
# @dev Allowances, owner => spender => amount.
allowance: public(HashMap[address, HashMap[address, uint256]])
# @dev Total minted.
totalSupply: public(uint256)
# @dev Recipients that transfers revert for.
blocked: public(HashMap[address, bool])


@external
def mint(to: address, amount: uint256):
    """
    @notice Mints tokens (test only).
    """
    self.balanceOf[to] += amount
    self.totalSupply += amount
    log IERC20.Transfer(sender=empty(address), receiver=to, value=amount)


@external
def set_blocked(account: address, is_blocked: bool):
    """
    @notice Blocks or unblocks a recipient (test only).
    """
    self.blocked[account] = is_blocked


@external
def approve(spender: address, amount: uint256) -> bool:
    """
    @notice Approves `spender`.
    """
    self.allowance[msg.sender][spender] = amount
    log IERC20.Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @notice Transfers tokens.
    """
    self._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @notice Transfers tokens on behalf of `owner`.
    """
    self.allowance[owner][msg.sender] -= amount
    self._transfer(owner, to, amount)
    return True


@internal
def _transfer(owner: address, to: address, amount: uint256):
    assert not self.blocked[to], "token: recipient blocked"
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
    log IERC20.Transfer(sender=owner, receiver=to, value=amount)
