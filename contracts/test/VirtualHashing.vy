# pragma version ~=0.4.3
"""
@title Hashing views of the virtual adjudicator, for clients and tests
@custom:contract-name VirtualHashing
@license Apache-2.0
@notice The virtual channel id, state hash and state digest exactly as
        `VirtualAdjudicator` computes them: built from the same modules, so
        the off-chain code is tested against the code the adjudicator runs.
        Not deployed with the protocol (the adjudicator never calls these
        views; leaving them out keeps its deployment cheaper).
"""


# @dev The parameter struct of a virtual channel.
from ..interfaces import IVirtualAdjudicator
# @dev Only its pure `_digest`: no domain of its own is initialised here.
from ..modules import typed_signatures
# @dev Stateless: the virtual types and their hashing, as the adjudicator compiles them.
from ..modules import virtual_types


@external
@pure
def virtual_id(params: IVirtualAdjudicator.VirtualParams) -> bytes32:
    """
    @notice The id of the virtual channel with these parameters. Reverts on
            parameters no virtual channel may use, with the adjudicator's
            reasons.
    @param params The virtual channel's parameters.
    @return The EIP-712 struct hash of `params`.
    """
    return virtual_types._virtual_id(params)


@external
@pure
def state_hash(state: virtual_types.VirtualState) -> bytes32:
    """
    @notice The EIP-712 struct hash of a virtual state.
    @param state The state.
    @return `hashStruct(state)`.
    """
    return virtual_types._state_hash(state)


@external
@pure
def state_digest(state: virtual_types.VirtualState, domain_separator: bytes32) -> bytes32:
    """
    @notice The digest Alice and Bob sign for `state` in the domain given
            (the virtual adjudicator's `DOMAIN_SEPARATOR()`).
    @param state The state.
    @param domain_separator The adjudicator's EIP-712 domain separator.
    @return The EIP-712 digest.
    """
    return typed_signatures._digest(domain_separator, virtual_types._state_hash(state))
