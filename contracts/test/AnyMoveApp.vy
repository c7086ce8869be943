# pragma version ~=0.4.3
"""
@title An app that accepts every transition
@custom:contract-name AnyMoveApp
@license Apache-2.0
@notice Test tool: lets one side make any number of moves in a row, to show that
        moves built on a stale registration never keep out the latest state both signed.
"""

from ..interfaces import IApp

implements: IApp


@external
@view
def valid_transition(params: IApp.AppParams, from_state: IApp.AppState, to_state: IApp.AppState, mover: uint256) -> bool:
    """
    @notice Accepts every transition.
    @param params Unused.
    @param from_state Unused.
    @param to_state Unused.
    @param mover Unused.
    @return True.
    """
    return True
