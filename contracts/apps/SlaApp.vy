# pragma version ~=0.4.3
"""
@title Service-level agreement enforced by challenge and response
@custom:contract-name SlaApp
@license Apache-2.0
@notice The rules of an SLA app channel between a client (side A) and a
        provider (side B). The provider's balance is its bond. The client
        requests (a 32-byte request, or the hash of a longer one it sent
        off-chain): the penalty moves from the provider to the client at
        once. The provider answers with a non-zero 32-byte response (or
        the hash of a longer one): the penalty comes back and the client
        pays the price. Off-chain both sign each step; a request the
        provider leaves unanswered is forced on-chain with
        `AppAdjudicator.progress`, and if the provider does not answer it
        there within the challenge period, the channel concludes with the
        penalty paid. The terms (price, penalty) never change by a move,
        and each request spends one of a fixed number of requests, so a
        dispute has at most two moves per request left.
@custom:security What an answer proves: the provider received the request
                 (it was public on-chain, or it signed a state naming it)
                 and, before the deadline, committed to a response it
                 signed together with the request. What it cannot prove:
                 that the response is correct or useful, or that the body
                 of a hashed request or response was delivered; those are
                 for the parties (or an arbiter) to judge from the signed
                 states. `valid_transition` is `view` and reads nothing
                 but its arguments.
"""


# @dev The interface this contract implements.
from ..interfaces import IApp


implements: IApp


# @dev The length of the app data: `abi_encode` of `Terms` (six words).
_DATA_LENGTH: constant(uint256) = 192


# @dev Side A of an SLA channel: the client, who requests.
CLIENT: public(constant(uint256)) = 0


# @dev Side B of an SLA channel: the provider, who answers.
PROVIDER: public(constant(uint256)) = 1


struct Terms:
    # @dev What the client pays for each request answered.
    price: uint256
    # @dev What the provider owes for a request left unanswered.
    penalty: uint256
    # @dev Requests the client may still make in this channel.
    requests_left: uint64
    # @dev Whether a request waits for its response.
    pending: bool
    # @dev The last request (zero before the first).
    request: bytes32
    # @dev The response to the last request (zero while it is pending).
    response: bytes32


@external
@view
def valid_transition(
    params: IApp.AppParams, from_state: IApp.AppState, to_state: IApp.AppState, mover: uint256
) -> bool:
    """
    @notice Whether `to_state` may follow `from_state` by a move of
            `mover`: the client's request when none is pending, or the
            provider's response to the pending one. Reverts with the reason
            otherwise.
    @dev The adjudicator has checked the channel, the version, the funding,
         conservation and the mover's signature.
    @param params The channel's parameters (unused: the rules are the
           same for every SLA channel).
    @param from_state The registered (or last moved) state.
    @param to_state The proposed next state.
    @param mover 0 for the client, 1 for the provider.
    @return True (every refusal reverts).
    """
    before: Terms = self._terms(from_state.app_data)
    after: Terms = self._terms(to_state.app_data)
    if after.price != before.price or after.penalty != before.penalty:
        raise "sla: terms changed"
    if mover == CLIENT:
        if before.pending:
            raise "sla: request pending"
        if before.requests_left == 0:
            raise "sla: no requests left"
        if not after.pending or after.request == empty(bytes32) or after.response != empty(bytes32):
            raise "sla: not a request"
        if after.requests_left != before.requests_left - 1:
            raise "sla: requests left wrong"
        # Checked here so that the provider's answer can always be paid for.
        if from_state.balance_a < before.price:
            raise "sla: client cannot pay"
        if from_state.balance_b < before.penalty:
            raise "sla: bond too small"
        # Both below MAX_AMOUNT: the sum cannot overflow.
        if to_state.balance_a != from_state.balance_a + before.penalty:
            raise "sla: wrong balances"
        return True
    if not before.pending:
        raise "sla: no request pending"
    if after.pending or after.request != before.request or after.response == empty(bytes32):
        raise "sla: not a response"
    if after.requests_left != before.requests_left:
        raise "sla: requests left wrong"
    owed: uint256 = before.penalty + before.price
    if from_state.balance_a < owed:
        raise "sla: client cannot pay"
    if to_state.balance_a != from_state.balance_a - owed:
        raise "sla: wrong balances"
    return True


@internal
@pure
def _terms(data: Bytes[512]) -> Terms:
    """
    @dev Decodes a state's app data.
    @param data The app data.
    @return The terms and request state it encodes.
    """
    if len(data) != _DATA_LENGTH:
        self._refuse_malformed()
    price: uint256 = 0
    penalty: uint256 = 0
    requests_left: uint256 = 0
    pending: uint256 = 0
    request: bytes32 = empty(bytes32)
    response: bytes32 = empty(bytes32)
    # Decoded as words, then range-checked: a bad field gets this contract's
    # reason instead of the bare revert of a typed `abi_decode`.
    price, penalty, requests_left, pending, request, response = abi_decode(
        data, (uint256, uint256, uint256, uint256, bytes32, bytes32)
    )
    if requests_left > convert(max_value(uint64), uint256) or pending > 1:
        self._refuse_malformed()
    return Terms(
        price=price,
        penalty=penalty,
        requests_left=convert(requests_left, uint64),
        pending=pending == 1,
        request=request,
        response=response,
    )


@internal
@pure
def _refuse_malformed():
    """
    @dev Reverts with "sla: malformed app data": one raising site for the
         checks of the encoding.
    """
    raise "sla: malformed app data"
