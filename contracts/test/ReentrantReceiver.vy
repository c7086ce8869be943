# pragma version ~=0.4.3
"""
@title ETH receiver that re-enters its payer
@license Apache-2.0
@notice Its runtime code is put on a participant's address in tests, so the
        participant still signs with its key. Once armed, every ETH payment
        makes it call `target` with `payload` (forwarding all the gas it
        has, never reverting on the call's failure) and record the attempt;
        it accepts the ETH whatever the call did.
"""

# @dev Whether a payment triggers the call.
armed: public(bool)
# @dev The contract called on payment.
target: public(address)
# @dev The calldata sent.
payload: public(Bytes[2048])
# @dev Wei sent with the call (from this account's balance).
call_value: public(uint256)
# @dev How many times a payment triggered the call.
attempts: public(uint256)
# @dev Whether the last call succeeded.
last_success: public(bool)
# @dev What the last call returned or reverted with (truncated).
last_response: public(Bytes[256])


@external
def arm(target: address, payload: Bytes[2048], call_value: uint256 = 0):
    """
    @notice Makes every later payment call `target` with `payload`.
    """
    self.target = target
    self.payload = payload
    self.call_value = call_value
    self.armed = True


@external
def disarm():
    """
    @notice Stops the call on payment.
    """
    self.armed = False


@external
@payable
def __default__():
    """
    @notice Accepts ETH; when armed, first calls `target` with `payload`.
    """
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
