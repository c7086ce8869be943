# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Perun ledger channel adjudicator
@custom:contract-name LedgerAdjudicator
@license Apache-2.0
@notice Holds the ETH or ERC20 deposits of two-party payment channels and
        pays them out by the latest state both participants signed: at once
        for a final state (cooperative close), or after a challenge period
        in which a newer state replaces an older one (dispute). A channel is
        never stored on-chain before it is used: its id is the hash of its
        fixed parameters, and deposits are kept under that id.
@custom:security Every external mutating function holds the contract-wide
                 reentrancy lock (`pragma nonreentrancy on`). Payouts at
                 conclusion are pushed with a gas cap and never revert: a
                 payout that fails is credited to the recipient, who
                 withdraws it later (`withdraw`), so neither participant can
                 block the other. Invariant: for every asset, this
                 contract's balance is at least the sum of the deposits of
                 unconcluded channels plus all credits (equal, unless
                 someone sends ETH or tokens without a deposit).
"""


from ethereum.ercs import IERC20
# @dev The interface of the virtual adjudicator, whose `settlement` splits locks.
from .interfaces import IVirtualAdjudicator
# @dev Stateless: the bounds both adjudicators enforce.
from .modules import channel_bounds
# @dev Stateless: the ledger types, their hashing and their stateless checks.
from .modules import ledger_types
# @dev Stateless: the layout of the holdings and dispute words.
from .modules import packed_words
# @dev Stateless: the one function that raises a revert reason.
from .modules import revert_reason
# @dev `initializes`: the domain separator is this contract's (its
# immutables are set by our constructor).
from .modules import typed_signatures
# @dev `initializes`: the credits are this contract's storage; the
# adjudicator pays through `asset_holder._pay`.
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


# @dev See `ledger_types.MAX_LOCKS`.
MAX_LOCKS: public(constant(uint256)) = ledger_types.MAX_LOCKS


# @dev See `channel_bounds.MAX_AMOUNT`. Two of them are packed into one
# storage word; every sum below fits in a uint256.
MAX_AMOUNT: public(constant(uint256)) = channel_bounds.MAX_AMOUNT


# @dev The virtual channel adjudicator whose outcomes split the locks.
VIRTUAL_ADJUDICATOR: public(immutable(IVirtualAdjudicator))


# @dev Open disputes: the dispute word (SPEC 5.1). Side A's payout is final
# when the state is registered because deposits are refused during a
# dispute. Zero when no dispute was registered; cleared at conclusion.
_disputes: HashMap[bytes32, uint256]


# @dev EIP-712 hash of the registered state's `Lock[]`, only while a funded
# registered state has locks (the has-locks bit); `conclude` checks the
# locks it is given against it.
_dispute_locks: HashMap[bytes32, bytes32]


event Registered:
    channel: indexed(bytes32)
    version: uint64
    deadline: uint64


event Concluded:
    channel: indexed(bytes32)
    version: uint64
    payout_a: uint256
    payout_b: uint256


@deploy
def __init__(virtual_adjudicator: IVirtualAdjudicator):
    """
    @dev Sets the EIP-712 domain ("PerunLedger", "1") and the virtual
         channel adjudicator that locks are split by.
    @param virtual_adjudicator The deployed VirtualAdjudicator.
    """
    if not virtual_adjudicator.address.is_contract:
        revert_reason._raise("ledger: virtual adjudicator is not a contract")
    typed_signatures.__init__("PerunLedger", "1")
    VIRTUAL_ADJUDICATOR = virtual_adjudicator


@external
def close(
    params: ledger_types.ChannelParams,
    final: ledger_types.FinalState,
    sig_a: typed_signatures.Signature,
    sig_b: typed_signatures.Signature,
):
    """
    @notice Cooperative close: a final state signed by both participants
            concludes the channel at once and pays both sides. Allowed
            until the channel concludes, also during a dispute if the final
            state is newer than the registered one.
    @dev Only the fields a final state can vary are passed: the signed
         `LedgerState` is rebuilt with `channel` = this channel's id, no
         locks and `is_final` = true, so the signatures verify only for a
         final, lock-free state of this channel (virtual channels are
         closed off-chain first, or settled by a dispute).
    @param params The channel's parameters.
    @param final The final state's version, balances and funding.
    @param sig_a Participant A's EIP-712 signature of the final state.
    @param sig_b Participant B's EIP-712 signature of the final state.
    """
    channel: bytes32 = ledger_types._channel_id(params)
    ledger_types._check_amounts(final.balance_a, final.balance_b, final.funding_a, final.funding_b, 0)
    holdings: uint256 = asset_holder._open_holdings(channel)
    dispute: uint256 = 0
    if holdings & packed_words.DISPUTED_BIT != 0:
        dispute = self._disputes[channel]
        if final.version <= packed_words._version(dispute):
            self._refuse_stale_version()
    state_hash: bytes32 = ledger_types._hash_state_fields(
        channel,
        final.version,
        final.balance_a,
        final.balance_b,
        final.funding_a,
        final.funding_b,
        ledger_types.EMPTY_ARRAY_HASH,
        True,
    )
    signed: uint256 = typed_signatures._check_signers(state_hash, sig_a, params.participant_a, sig_b, params.participant_b)
    if signed != typed_signatures.SIGNED:
        self._refuse_signature(signed)
    payout_a: uint256 = 0
    payout_b: uint256 = 0
    funded: bool = False
    payout_a, payout_b, funded = asset_holder._base_payouts(
        holdings, final.balance_a, final.balance_b, final.funding_a, final.funding_b
    )
    self._finish(channel, params, final.version, dispute, payout_a, payout_b)


@external
def register(
    params: ledger_types.ChannelParams,
    state: ledger_types.LedgerState,
    sig_a: typed_signatures.Signature,
    sig_b: typed_signatures.Signature,
):
    """
    @notice Registers a non-final state both participants signed. The
            first registration starts the challenge period; until it ends a
            state with a higher version replaces the registered one. The
            period is never extended, and deposits are refused until the
            channel concludes. Re-registering a state with the registered
            version and outcome is a harmless no-op, so a front-run cannot
            fail an honest call. Anyone may call.
    @dev The outcome is settled here, not at conclusion: side A's base
         payout (deposits are frozen from now on) and, for a funded state
         with locks, the hash of its locks. `conclude` then needs only the
         locks, never the state.
    @param params The channel's parameters.
    @param state A non-final state of this channel.
    @param sig_a Participant A's EIP-712 signature of `state`.
    @param sig_b Participant B's EIP-712 signature of `state`.
    """
    channel: bytes32 = ledger_types._channel_id(params)
    ledger_types._check_state(channel, state)
    if state.is_final:
        revert_reason._raise("ledger: final state, call close")
    holdings: uint256 = asset_holder._open_holdings(channel)
    dispute: uint256 = 0
    deadline: uint64 = 0
    if holdings & packed_words.DISPUTED_BIT == 0:
        # A timestamp plus a uint64 cannot overflow a uint256; the
        # conversion refuses a deadline beyond uint64.
        deadline = convert(unsafe_add(block.timestamp, convert(params.challenge_duration, uint256)), uint64)
    else:
        dispute = self._disputes[channel]
        deadline = packed_words._deadline(dispute)
        if block.timestamp >= convert(deadline, uint256):
            revert_reason._raise("ledger: challenge period over")
        if state.version < packed_words._version(dispute):
            self._refuse_stale_version()
    locks_hash: bytes32 = ledger_types._locks_hash(state.locks)
    signed: uint256 = typed_signatures._check_signers(
        ledger_types._hash_state_fields(
            channel,
            state.version,
            state.balance_a,
            state.balance_b,
            state.funding_a,
            state.funding_b,
            locks_hash,
            False,
        ),
        sig_a,
        params.participant_a,
        sig_b,
        params.participant_b,
    )
    if signed != typed_signatures.SIGNED:
        self._refuse_signature(signed)
    payout_a: uint256 = 0
    payout_b: uint256 = 0
    funded: bool = False
    payout_a, payout_b, funded = asset_holder._base_payouts(
        holdings, state.balance_a, state.balance_b, state.funding_a, state.funding_b
    )
    word: uint256 = packed_words._pack_dispute(state.version, deadline, payout_a, funded, len(state.locks) != 0)
    if dispute != 0 and state.version == packed_words._version(dispute):
        # Same version: a no-op for the registered outcome, stale otherwise.
        if word != dispute or (word & packed_words.HAS_LOCKS_BIT != 0 and self._dispute_locks[channel] != locks_hash):
            self._refuse_stale_version()
        return
    if dispute == 0:
        asset_holder._holdings[channel] = holdings | packed_words.DISPUTED_BIT
    self._disputes[channel] = word
    if word & packed_words.HAS_LOCKS_BIT != 0:
        self._dispute_locks[channel] = locks_hash
    elif dispute & packed_words.HAS_LOCKS_BIT != 0:
        self._dispute_locks[channel] = empty(bytes32)
    log Registered(channel=channel, version=state.version, deadline=deadline)


@external
def conclude(
    params: ledger_types.ChannelParams,
    locks: DynArray[ledger_types.Lock, MAX_LOCKS] = [],
    virtuals: DynArray[IVirtualAdjudicator.VirtualParams, MAX_LOCKS] = [],
):
    """
    @notice Concludes a disputed channel once its challenge period is over
            (`block.timestamp >= deadline`), paying both sides by the
            registered state's outcome; each lock is split by the settled
            outcome of its virtual channel. Anyone may call.
    @param params The channel's parameters.
    @param locks The registered state's locks when `dispute` reports a
           locks hash; empty otherwise (no locks, or an unfunded state,
           whose locks move nothing).
    @param virtuals The parameters of each lock's virtual channel, in the
           order of `locks`.
    """
    channel: bytes32 = ledger_types._channel_id(params)
    holdings: uint256 = asset_holder._open_holdings(channel)
    if holdings & packed_words.DISPUTED_BIT == 0:
        revert_reason._raise("ledger: no dispute")
    dispute: uint256 = self._disputes[channel]
    if block.timestamp < convert(packed_words._deadline(dispute), uint256):
        revert_reason._raise("ledger: challenge period not over")
    if dispute & packed_words.HAS_LOCKS_BIT != 0:
        if ledger_types._locks_hash(locks) != self._dispute_locks[channel]:
            self._refuse_locks_not_registered()
    else:
        if len(locks) != 0:
            self._refuse_locks_not_registered()
    if len(virtuals) != len(locks):
        self._refuse_virtual_params_do_not_match_locks()
    payout_a: uint256 = packed_words._payout_a(dispute)
    # Base payouts sum to the deposits less what is locked (conservation,
    # checked at registration; the locks are the registered ones), and
    # every lock's shares sum to its amounts (`_split_lock`).
    locked: uint256 = 0
    for lock: ledger_types.Lock in locks:
        locked += lock.amount_a + lock.amount_b
    deposit_a: uint256 = 0
    deposit_b: uint256 = 0
    deposit_a, deposit_b = packed_words._deposits(holdings)
    payout_b: uint256 = deposit_a + deposit_b - payout_a - locked
    for i: uint256 in range(len(locks), bound=MAX_LOCKS):
        share_a: uint256 = 0
        share_b: uint256 = 0
        share_a, share_b = self._split_lock(channel, params, locks[i], virtuals[i])
        payout_a += share_a
        payout_b += share_b
    self._finish(channel, params, packed_words._version(dispute), dispute, payout_a, payout_b)


@external
@view
def dispute(channel: bytes32) -> (uint64, uint64, bytes32):
    """
    @notice The open dispute of a channel, if any.
    @param channel The channel id.
    @return version The registered version (0 if none).
    @return deadline The end of the challenge period (0 if no dispute).
    @return locks_hash The EIP-712 hash of the registered state's locks,
            which `conclude` must be given; zero when it takes none.
    """
    word: uint256 = self._disputes[channel]
    return packed_words._version(word), packed_words._deadline(word), self._dispute_locks[channel]


@internal
def _finish(
    channel: bytes32, params: ledger_types.ChannelParams, version: uint64, dispute: uint256, payout_a: uint256, payout_b: uint256
):
    """
    @dev Marks a channel concluded, clears its dispute, then pushes both
         payouts (effects before interactions).
    @param channel The channel id.
    @param params The channel's parameters.
    @param version The version of the state settled by.
    @param dispute The channel's dispute word (zero if none).
    @param payout_a What side A receives.
    @param payout_b What side B receives.
    """
    asset_holder._holdings[channel] = packed_words.CONCLUDED_BIT
    if dispute != 0:
        self._disputes[channel] = 0
        if dispute & packed_words.HAS_LOCKS_BIT != 0:
            self._dispute_locks[channel] = empty(bytes32)
    log Concluded(channel=channel, version=version, payout_a=payout_a, payout_b=payout_b)
    asset_holder._pay(channel, params.asset, params.participant_a, payout_a)
    asset_holder._pay(channel, params.asset, params.participant_b, payout_b)


@internal
@view
def _split_lock(
    channel: bytes32,
    params: ledger_types.ChannelParams,
    lock: ledger_types.Lock,
    virtual: IVirtualAdjudicator.VirtualParams,
) -> (uint256, uint256):
    """
    @dev Splits one lock by its virtual channel's settled outcome. In the
         Alice-Ingrid channel Alice's side receives Alice's virtual balance
         and Ingrid's side Bob's; in the Ingrid-Bob channel Ingrid's side
         receives Alice's and Bob's side Bob's. Ingrid thus gains in one
         channel exactly what she gives up in the other. A lock that does
         not match the virtual channel it names (another asset, ledger
         adjudicator or chain; wrong ledger channel, participants or
         amounts) moves nothing: each side gets back what it locked.
    @param channel This ledger channel's id.
    @param params This ledger channel's parameters.
    @param lock The lock.
    @param virtual The parameters of the lock's virtual channel.
    @return share_a What side A receives from the lock.
    @return share_b What side B receives from the lock.
    """
    virtual_channel: bytes32 = empty(bytes32)
    settled: bool = False
    balance_alice: uint256 = 0
    balance_bob: uint256 = 0
    virtual_channel, settled, balance_alice, balance_bob = staticcall VIRTUAL_ADJUDICATOR.settlement(virtual)
    if virtual_channel != lock.channel:
        self._refuse_virtual_params_do_not_match_locks()
    if not settled:
        revert_reason._raise("ledger: virtual channel not settled")
    # Only a lock in a leg of the asset, adjudicator and chain the virtual
    # channel names follows its outcome: two legs that both follow it
    # therefore hold the same asset and read the same record.
    if virtual.asset != params.asset or virtual.ledger_adjudicator != self or virtual.chain_id != chain.id:
        return lock.amount_a, lock.amount_b
    # `left` locks Alice's initial balance and receives hers; `right` Bob's.
    left: address = empty(address)
    right: address = empty(address)
    if channel == virtual.ledger_alice:
        left = virtual.alice
        right = virtual.ingrid
    elif channel == virtual.ledger_bob:
        left = virtual.ingrid
        right = virtual.bob
    if params.participant_a == left and params.participant_b == right:
        if lock.amount_a == virtual.funding_alice and lock.amount_b == virtual.funding_bob:
            return balance_alice, balance_bob
    elif params.participant_a == right and params.participant_b == left:
        if lock.amount_a == virtual.funding_bob and lock.amount_b == virtual.funding_alice:
            return balance_bob, balance_alice
    return lock.amount_a, lock.amount_b


@internal
@pure
def _refuse_signature(code: uint256):
    """
    @dev Reverts with the reason for a `typed_signatures._check_signers`
         code other than `SIGNED`.
    @param code `INVALID_SIGNATURE` or `WRONG_SIGNER`.
    """
    if code == typed_signatures.INVALID_SIGNATURE:
        revert_reason._raise("ledger: invalid signature")
    revert_reason._raise("ledger: wrong signer")


@internal
@pure
def _refuse_stale_version():
    """
    @dev Reverts with "ledger: stale version": one raising site for the
         several checks that refuse with this reason.
    """
    revert_reason._raise("ledger: stale version")


@internal
@pure
def _refuse_virtual_params_do_not_match_locks():
    """
    @dev Reverts with "ledger: virtual params do not match locks": one raising site for the
         several checks that refuse with this reason.
    """
    revert_reason._raise("ledger: virtual params do not match locks")


@internal
@pure
def _refuse_locks_not_registered():
    """
    @dev Reverts with "ledger: locks not registered": one raising site for the
         several checks that refuse with this reason.
    """
    revert_reason._raise("ledger: locks not registered")
