# pragma version ~=0.4.3
"""
@title Test token that re-enters its caller
@license Apache-2.0
@notice A plain ERC20 with a hook: once armed, every `transfer` and
        `transferFrom` first calls `target` with `payload` (forwarding all
        the gas it has, never reverting on the call's failure) and records
        the attempt, then moves the tokens as usual.
"""

# @dev Token balances.
balanceOf: public(HashMap[address, uint256])
# @dev Allowances, owner => spender => amount.
allowance: public(HashMap[address, HashMap[address, uint256]])
# @dev Whether transfers call `target`.
armed: public(bool)
# @dev The contract the hook calls.
target: public(address)
# @dev The calldata the hook sends.
payload: public(Bytes[2048])
# @dev Wei sent with the hook's call (the token must hold it).
call_value: public(uint256)
# @dev How many times the hook called `target`.
attempts: public(uint256)
# @dev Whether the last call succeeded.
last_success: public(bool)
# @dev What the last call returned or reverted with (truncated).
last_response: public(Bytes[256])


@external
@payable
def __default__():
    """
    @notice Accepts ETH, so the hook can forward value.
    """
    pass


@external
def arm(target: address, payload: Bytes[2048], call_value: uint256 = 0):
    """
    @notice Makes every later transfer call `target` with `payload` first.
    """
    self.target = target
    self.payload = payload
    self.call_value = call_value
    self.armed = True


@external
def disarm():
    """
    @notice Stops the hook.
    """
    self.armed = False


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
    @notice Runs the hook, then transfers tokens.
    """
    self._hook()
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @notice Runs the hook, then transfers on behalf of `owner`.
    """
    self._hook()
    self.allowance[owner][msg.sender] -= amount
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
    return True


@internal
def _hook():
    if not self.armed:
        return
    ok: bool = False
    response: Bytes[256] = b""
    ok, response = raw_call(
        self.target, self.payload, max_outsize=256, value=self.call_value, revert_on_failure=False
    )
    self.attempts += 1
    self.last_success = ok
    self.last_response = response
