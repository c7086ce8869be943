# pragma version ~=0.4.3
"""
@title Hashing views of the app adjudicator, for clients and tests
@custom:contract-name AppHashing
@license Apache-2.0
@notice The app channel id, state hash, state digest and registration hash
        exactly as `AppAdjudicator` computes them: built from the same
        modules, so the off-chain code is tested against the code the
        adjudicator runs. Not deployed with the protocol.
"""


# @dev The app interface's parameter and state types.
from ..interfaces import IApp
# @dev Stateless: the app types and their hashing, as the adjudicator compiles them.
from ..modules import app_types
# @dev Only its pure `_digest`: no domain of its own is initialised here.
from ..modules import typed_signatures


@external
@pure
def channel_id(params: IApp.AppParams) -> bytes32:
    """
    @notice The id of the app channel with these parameters. Reverts on
            parameters no channel may use, with the adjudicator's reasons.
    @param params The app channel's parameters.
    @return The ledger id of the channel's funding parameters.
    """
    return app_types._channel_id(params)


@external
@pure
def state_hash(state: IApp.AppState) -> bytes32:
    """
    @notice The EIP-712 struct hash of an app state.
    @param state The state.
    @return `hashStruct(state)`.
    """
    return app_types._state_hash(state)


@external
@pure
def state_digest(state: IApp.AppState, domain_separator: bytes32) -> bytes32:
    """
    @notice The digest participants sign for `state` in the domain given
            (the app adjudicator's `DOMAIN_SEPARATOR()`).
    @param state The state.
    @param domain_separator The adjudicator's EIP-712 domain separator.
    @return The EIP-712 digest.
    """
    return typed_signatures._digest(domain_separator, app_types._state_hash(state))


@external
@pure
def registration_hash(registered: app_types.Registration) -> bytes32:
    """
    @notice The word the adjudicator stores for a registration.
    @param registered The registration.
    @return Its hash.
    """
    return app_types._registration_hash(registered.state_hash, registered.version, registered.deadline, registered.agreed)
