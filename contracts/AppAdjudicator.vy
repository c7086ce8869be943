# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Perun app channel adjudicator
@custom:contract-name AppAdjudicator
@license Apache-2.0
@notice Holds the deposits of two-party app channels: state channels whose
        states carry app data and whose rules an app contract (`IApp`)
        decides. Off-chain both participants sign every state. On-chain a
        final state both signed pays out at once (`close`); otherwise a
        dispute registers the latest state both signed (`register`), and
        while it lasts the participant whose turn it is may advance the
        registered state alone with a move its app accepts (`progress`,
        force-move). Every registration and every move gives the other
        side a full challenge period to answer; when a period passes with
        no answer, the last registered or moved state pays out
        (`conclude`).
@custom:security Every external mutating function holds the contract-wide
                 reentrancy lock; the app is only ever `staticcall`ed.
                 Payouts are pushed with a gas cap and credited when the
                 push fails (the ledger's `asset_holder`, shared). One
                 storage word per dispute commits to the registered state,
                 its version, its deadline and the last agreed version;
                 callers name them
                 (`Registration`), so a front-run registration or move
                 makes a call fail with "app: not the registered state",
                 never act on a state it did not name.
"""


# @dev The app interface and the app channel types.
from .interfaces import IApp
# @dev Stateless: the bounds every adjudicator enforces.
from .modules import channel_bounds
# @dev Stateless: app channel ids, state hashes and stateless checks.
from .modules import app_types
# @dev Stateless: the amount checks of ledger channels, shared.
from .modules import ledger_types
# @dev Stateless: the layout of the holdings word.
from .modules import packed_words
# @dev Stateless: the one function that raises a revert reason.
from .modules import revert_reason
# @dev `initializes`: the domain separator is this contract's (its
# immutables are set by our constructor).
from .modules import typed_signatures
# @dev `initializes`: deposits, credits and payouts, as in the ledger.
from .modules import asset_holder


initializes: typed_signatures
initializes: asset_holder


exports: (
    typed_signatures.eip712Domain,
    typed_signatures.DOMAIN_SEPARATOR,
    asset_holder.deposit,
    asset_holder.deposit_token,
    asset_holder.holdings,
    asset_holder.credits,
    asset_holder.withdraw,
)


# @dev See `channel_bounds.MIN_CHALLENGE_DURATION`.
MIN_CHALLENGE_DURATION: public(constant(uint64)) = channel_bounds.MIN_CHALLENGE_DURATION


# @dev See `channel_bounds.MAX_CHALLENGE_DURATION`.
MAX_CHALLENGE_DURATION: public(constant(uint64)) = channel_bounds.MAX_CHALLENGE_DURATION


# @dev See `channel_bounds.MAX_AMOUNT`.
MAX_AMOUNT: public(constant(uint256)) = channel_bounds.MAX_AMOUNT


# @dev See `app_types.MAX_APP_DATA`.
MAX_APP_DATA: public(constant(uint256)) = app_types.MAX_APP_DATA


# @dev Open disputes: `app_types._registration_hash` of the registered (or
# last moved) state, its version, its deadline and the version of the last
# registered state both signed. Zero when no dispute is open; cleared at
# conclusion.
registrations: public(HashMap[bytes32, bytes32])


event Registered:
    channel: indexed(bytes32)
    state_hash: bytes32
    version: uint64
    deadline: uint64


event Progressed:
    channel: indexed(bytes32)
    state_hash: bytes32
    version: uint64
    deadline: uint64
    mover: uint256
    # The moved state's balances and app data: with the state it moved from
    # (channel and funding unchanged, not final), the other side rebuilds
    # the new state from this event alone.
    balance_a: uint256
    balance_b: uint256
    app_data: Bytes[app_types.MAX_APP_DATA]


event Concluded:
    channel: indexed(bytes32)
    version: uint64
    payout_a: uint256
    payout_b: uint256


@deploy
def __init__():
    """
    @dev Sets the EIP-712 domain ("PerunApp", "1").
    """
    typed_signatures.__init__("PerunApp", "1")


@external
def close(
    params: IApp.AppParams,
    state: IApp.AppState,
    sig_a: typed_signatures.Signature,
    sig_b: typed_signatures.Signature,
):
    """
    @notice Cooperative close: a final state signed by both participants
            pays both sides at once. Only while no dispute is open; during
            one, `register` the final state and `conclude` at once.
    @param params The channel's parameters.
    @param state A final state of this channel.
    @param sig_a Participant A's EIP-712 signature of `state`.
    @param sig_b Participant B's EIP-712 signature of `state`.
    """
    channel: bytes32 = app_types._channel_id(params)
    app_types._check_state(channel, state)
    if not state.is_final:
        revert_reason._raise("app: state not final")
    holdings: uint256 = asset_holder._open_holdings(channel)
    if holdings & packed_words.DISPUTED_BIT != 0:
        revert_reason._raise("app: channel disputed")
    self._check_both_signed(params, app_types._state_hash(state), sig_a, sig_b)
    self._finish(channel, params, holdings, state, False)


@external
def register(
    params: IApp.AppParams,
    state: IApp.AppState,
    sig_a: typed_signatures.Signature,
    sig_b: typed_signatures.Signature,
    registered: app_types.Registration,
):
    """
    @notice Registers a state both participants signed: opens a dispute,
            or, during one and before its deadline, replaces the registered
            (or last moved) state with a version higher than the last
            registered state both signed (moves since do not count). The other side
            then has a full challenge period to answer. A final state may
            be concluded at once. Anyone may call.
    @param params The channel's parameters.
    @param state The state to register.
    @param sig_a Participant A's EIP-712 signature of `state`.
    @param sig_b Participant B's EIP-712 signature of `state`.
    @param registered The open dispute's registration (from the last
           `Registered` or `Progressed` event); ignored when none is open.
    """
    channel: bytes32 = app_types._channel_id(params)
    state_hash: bytes32 = self._register(channel, params, state, sig_a, sig_b, registered)
    deadline: uint64 = self._deadline(params, state.is_final)
    self.registrations[channel] = app_types._registration_hash(state_hash, state.version, deadline, state.version)
    log Registered(channel=channel, state_hash=state_hash, version=state.version, deadline=deadline)


@external
def register_and_progress(
    params: IApp.AppParams,
    state: IApp.AppState,
    sig_a: typed_signatures.Signature,
    sig_b: typed_signatures.Signature,
    registered: app_types.Registration,
    move: app_types.Move,
    sig: typed_signatures.Signature,
):
    """
    @notice `register` and then `progress` from the registered state, in
            one transaction: what a participant does when it is its turn
            and the other side does not answer off-chain. The other side
            has a full challenge period from now to answer the move (or to
            register a higher version both signed).
    @param params The channel's parameters; `params.app` decides the move.
    @param state The state to register, not final.
    @param sig_a Participant A's EIP-712 signature of `state`.
    @param sig_b Participant B's EIP-712 signature of `state`.
    @param registered The open dispute's registration; ignored when none
           is open.
    @param move The move from `state`.
    @param sig The mover's EIP-712 signature of the state the move leads to.
    """
    channel: bytes32 = app_types._channel_id(params)
    state_hash: bytes32 = self._register(channel, params, state, sig_a, sig_b, registered)
    log Registered(channel=channel, state_hash=state_hash, version=state.version, deadline=self._deadline(params, False))
    self._progress(channel, params, state, state.version, move, sig)


@external
def progress(
    params: IApp.AppParams,
    from_state: IApp.AppState,
    deadline: uint64,
    agreed: uint64,
    move: app_types.Move,
    sig: typed_signatures.Signature,
):
    """
    @notice Force-move: advances the registered (or last moved) state by
            one version with a state signed by the mover alone, if the app
            accepts the transition. Allowed until the registration's
            deadline; the other side then has a full challenge period to
            answer. Anyone may submit a move the mover signed.
    @param params The channel's parameters; `params.app` decides.
    @param from_state The registered (or last moved) state.
    @param deadline Its deadline (from the last `Registered` or
           `Progressed` event).
    @param agreed The version of the last registered state both signed
           (the last `Registered` event's version).
    @param move The move: the mover, and the balances and app data of the
           next state (same channel and funding, version one higher, not
           final).
    @param sig The mover's EIP-712 signature of the next state.
    """
    channel: bytes32 = app_types._channel_id(params)
    self._check_registered(
        channel,
        app_types.Registration(
            state_hash=app_types._state_hash(from_state), version=from_state.version, deadline=deadline, agreed=agreed
        ),
    )
    self._check_period_open(deadline)
    self._progress(channel, params, from_state, agreed, move, sig)


@external
def conclude(params: IApp.AppParams, state: IApp.AppState, deadline: uint64, agreed: uint64):
    """
    @notice Concludes a disputed channel once its challenge period is over
            (`block.timestamp >= deadline`), paying both sides by the
            registered (or last moved) state. Anyone may call.
    @param params The channel's parameters.
    @param state The registered (or last moved) state.
    @param deadline Its deadline.
    @param agreed The version of the last registered state both signed.
    """
    channel: bytes32 = app_types._channel_id(params)
    state_hash: bytes32 = app_types._state_hash(state)
    self._check_registered(
        channel,
        app_types.Registration(state_hash=state_hash, version=state.version, deadline=deadline, agreed=agreed),
    )
    if block.timestamp < convert(deadline, uint256):
        revert_reason._raise("app: challenge period not over")
    self._finish(channel, params, asset_holder._holdings[channel], state, True)


@internal
def _register(
    channel: bytes32,
    params: IApp.AppParams,
    state: IApp.AppState,
    sig_a: typed_signatures.Signature,
    sig_b: typed_signatures.Signature,
    registered: app_types.Registration,
) -> bytes32:
    """
    @dev The checks and the dispute flag of a registration; the caller
         stores the registration and logs it.
    @param channel The app channel id.
    @param params The channel's parameters.
    @param state The state to register.
    @param sig_a Participant A's signature of `state`.
    @param sig_b Participant B's signature of `state`.
    @param registered The open dispute's registration, if one is open.
    @return The state's struct hash.
    """
    app_types._check_state(channel, state)
    holdings: uint256 = asset_holder._open_holdings(channel)
    if holdings & packed_words.DISPUTED_BIT != 0:
        self._check_registered(channel, registered)
        self._check_period_open(registered.deadline)
        # Against the last state both signed, not the last move: moves
        # built on a stale registration never keep the latest state both
        # signed out, however many of them the other side makes.
        if state.version <= registered.agreed:
            revert_reason._raise("app: stale version")
    state_hash: bytes32 = app_types._state_hash(state)
    self._check_both_signed(params, state_hash, sig_a, sig_b)
    if holdings & packed_words.DISPUTED_BIT == 0:
        asset_holder._holdings[channel] = holdings | packed_words.DISPUTED_BIT
    return state_hash


@internal
def _progress(
    channel: bytes32,
    params: IApp.AppParams,
    from_state: IApp.AppState,
    agreed: uint64,
    move: app_types.Move,
    sig: typed_signatures.Signature,
):
    """
    @dev Applies a move to the registered (or last moved) state, which the
         caller has checked: the mover's signature, conservation, the app's
         verdict; then stores the new registration with a full challenge
         period and logs it.
    @param channel The app channel id.
    @param params The channel's parameters.
    @param from_state The registered (or last moved) state.
    @param agreed The version of the last registered state both signed.
    @param move The move.
    @param sig The mover's signature of the next state.
    """
    to_state: IApp.AppState = app_types._next_state(from_state, move)
    ledger_types._check_amounts(to_state.balance_a, to_state.balance_b, to_state.funding_a, to_state.funding_b, 0)
    signer: address = params.participant_a
    if move.mover == 1:
        signer = params.participant_b
    elif move.mover != 0:
        revert_reason._raise("app: invalid mover")
    to_hash: bytes32 = app_types._state_hash(to_state)
    # The mover is never the zero address (`_channel_id`), which is what a
    # refused signature recovers.
    recovered: address = typed_signatures._recover(typed_signatures._typed_digest(to_hash), sig)
    if recovered != signer:
        if recovered == empty(address):
            self._refuse_signature(typed_signatures.INVALID_SIGNATURE)
        self._refuse_signature(typed_signatures.WRONG_SIGNER)
    if not params.app.is_contract:
        revert_reason._raise("app: app is not a contract")
    # An app that refuses may revert with its own reason, which bubbles up.
    if not staticcall IApp(params.app).valid_transition(params, from_state, to_state, move.mover):
        revert_reason._raise("app: invalid transition")
    deadline: uint64 = self._deadline(params, False)
    self.registrations[channel] = app_types._registration_hash(to_hash, to_state.version, deadline, agreed)
    log Progressed(
        channel=channel,
        state_hash=to_hash,
        version=to_state.version,
        deadline=deadline,
        mover=move.mover,
        balance_a=to_state.balance_a,
        balance_b=to_state.balance_b,
        app_data=to_state.app_data,
    )


@internal
@view
def _check_registered(channel: bytes32, registered: app_types.Registration):
    """
    @dev Asserts that `registered` is the channel's open registration: a
         dispute is open and the stored word commits to exactly this state
         hash, version, deadline and agreed version. A registration only exists between
         the first `register` and the conclusion, so a channel that passes
         has deposits and has not concluded. The caller checks the deadline.
    @param channel The app channel id.
    @param registered The registration the caller names.
    """
    stored: bytes32 = self.registrations[channel]
    if stored == empty(bytes32):
        revert_reason._raise("app: no dispute")
    if stored != app_types._registration_hash(
        registered.state_hash, registered.version, registered.deadline, registered.agreed
    ):
        revert_reason._raise("app: not the registered state")


@internal
@view
def _check_period_open(deadline: uint64):
    """
    @dev Asserts that a registration's challenge period is still running.
    @param deadline The registration's deadline.
    """
    if block.timestamp >= convert(deadline, uint256):
        revert_reason._raise("app: challenge period over")


@internal
@view
def _check_both_signed(
    params: IApp.AppParams, state_hash: bytes32, sig_a: typed_signatures.Signature, sig_b: typed_signatures.Signature
):
    """
    @dev Asserts that both participants signed the state.
    @param params The channel's parameters.
    @param state_hash The state's struct hash.
    @param sig_a Participant A's signature.
    @param sig_b Participant B's signature.
    """
    signed: uint256 = typed_signatures._check_signers(state_hash, sig_a, params.participant_a, sig_b, params.participant_b)
    if signed != typed_signatures.SIGNED:
        self._refuse_signature(signed)


@internal
@view
def _deadline(params: IApp.AppParams, is_final: bool) -> uint64:
    """
    @dev The deadline of a new registration or move: a full challenge
         period from now, or now for a final state (it concludes at once).
    @param params The channel's parameters.
    @param is_final Whether the state is final.
    @return The deadline.
    """
    if is_final:
        return convert(block.timestamp, uint64)
    # A timestamp plus a uint64 cannot overflow a uint256; the conversion
    # refuses a deadline beyond uint64.
    return convert(unsafe_add(block.timestamp, convert(params.challenge_duration, uint256)), uint64)


@internal
def _finish(
    channel: bytes32, params: IApp.AppParams, holdings: uint256, state: IApp.AppState, disputed: bool
):
    """
    @dev Pays a state's outcome: marks the channel concluded, clears its
         dispute, then pushes both payouts (effects before interactions).
    @param channel The app channel id.
    @param params The channel's parameters.
    @param holdings The channel's holdings word.
    @param state The state paid out (checked against the deposits here).
    @param disputed Whether a dispute is open (its registration is cleared).
    """
    payout_a: uint256 = 0
    payout_b: uint256 = 0
    funded: bool = False
    payout_a, payout_b, funded = asset_holder._base_payouts(
        holdings, state.balance_a, state.balance_b, state.funding_a, state.funding_b
    )
    asset_holder._holdings[channel] = packed_words.CONCLUDED_BIT
    if disputed:
        self.registrations[channel] = empty(bytes32)
    log Concluded(channel=channel, version=state.version, payout_a=payout_a, payout_b=payout_b)
    asset_holder._pay(channel, params.asset, params.participant_a, payout_a)
    asset_holder._pay(channel, params.asset, params.participant_b, payout_b)


@internal
@pure
def _refuse_signature(code: uint256):
    """
    @dev Reverts with the reason for a `typed_signatures._check_signers`
         code other than `SIGNED`.
    @param code `INVALID_SIGNATURE` or `WRONG_SIGNER`.
    """
    if code == typed_signatures.INVALID_SIGNATURE:
        revert_reason._raise("app: invalid signature")
    revert_reason._raise("app: wrong signer")
