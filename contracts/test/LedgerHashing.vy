# pragma version ~=0.4.3
"""
@title Hashing views of the ledger adjudicator, for clients and tests
@custom:contract-name LedgerHashing
@license Apache-2.0
@notice The channel id, state hash and state digest exactly as
        `LedgerAdjudicator` computes them: built from the same modules, so
        the off-chain code is tested against the code the adjudicator runs.
        Not deployed with the protocol (the adjudicator never calls these
        views; leaving them out keeps its deployment cheaper).
"""


# @dev Stateless: the ledger types and their hashing, as the adjudicator compiles them.
from ..modules import ledger_types
# @dev Only its pure `_digest`: no domain of its own is initialised here.
from ..modules import typed_signatures


@external
@pure
def channel_id(params: ledger_types.ChannelParams) -> bytes32:
    """
    @notice The id of the channel with these parameters. Reverts on
            parameters no channel may use, with the adjudicator's reasons.
    @param params The channel's parameters.
    @return The channel id: the EIP-712 struct hash of `params` with bit
            255 replaced by the asset kind (0 ETH, 1 token).
    """
    return ledger_types._channel_id(params)


@external
@pure
def state_hash(state: ledger_types.LedgerState) -> bytes32:
    """
    @notice The EIP-712 struct hash of a ledger state.
    @param state The state.
    @return `hashStruct(state)`.
    """
    return ledger_types._state_hash(state)


@external
@pure
def state_digest(state: ledger_types.LedgerState, domain_separator: bytes32) -> bytes32:
    """
    @notice The digest participants sign for `state` in the domain given
            (an adjudicator's `DOMAIN_SEPARATOR()`).
    @param state The state.
    @param domain_separator The adjudicator's EIP-712 domain separator.
    @return The EIP-712 digest.
    """
    return typed_signatures._digest(domain_separator, ledger_types._state_hash(state))
