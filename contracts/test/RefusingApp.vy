# pragma version ~=0.4.3
"""
@title An app that refuses every transition by returning false
@custom:contract-name RefusingApp
@license Apache-2.0
@notice Test tool: `AppAdjudicator.progress` must refuse a move whose app
        answers false instead of reverting.
"""

from ..interfaces import IApp

implements: IApp


@external
@view
def valid_transition(params: IApp.AppParams, from_state: IApp.AppState, to_state: IApp.AppState, mover: uint256) -> bool:
    """
    @notice Refuses every transition.
    @param params Unused.
    @param from_state Unused.
    @param to_state Unused.
    @param mover Unused.
    @return False.
    """
    return False
