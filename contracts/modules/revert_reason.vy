# pragma version ~=0.4.3
"""
@title One place that raises a revert reason
@custom:contract-name revert_reason
@license Apache-2.0
@notice Every refusal of the adjudicators goes through `_raise`, so the
        `Error(string)` payload is encoded by one piece of code instead of
        one copy per check.
@custom:security Code size, not behaviour: `if bad: revert_reason._raise(r)`
                 reverts with exactly the data `assert not bad, r` does
                 (the selector 0x08c379a0 and the ABI-encoded string), and
                 the happy path runs the same comparison and jump. Why
                 this form and not `assert`: docs/SPEC.md, section 4.
"""


# @dev The longest reason either contract uses (45 characters) fits.
_MAX_REASON: constant(uint256) = 48


@internal
@pure
def _raise(reason: String[_MAX_REASON]):
    """
    @dev Reverts with `reason` as the `Error(string)` revert data; never
         returns.
    @param reason The revert reason, prefixed by the contract
           (`ledger: ...`, `virtual: ...`).
    """
    raise reason
