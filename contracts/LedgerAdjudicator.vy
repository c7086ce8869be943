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
from .interfaces import IVirtualAdjudicator
from .modules import channel_bounds
from .modules import revert_reason
from .modules import typed_signatures


initializes: typed_signatures


exports: (typed_signatures.eip712Domain, typed_signatures.DOMAIN_SEPARATOR)


# @dev See `channel_bounds.MIN_CHALLENGE_DURATION`.
MIN_CHALLENGE_DURATION: public(constant(uint64)) = channel_bounds.MIN_CHALLENGE_DURATION


# @dev See `channel_bounds.MAX_CHALLENGE_DURATION`.
MAX_CHALLENGE_DURATION: public(constant(uint64)) = channel_bounds.MAX_CHALLENGE_DURATION


# @dev The most virtual-channel locks a ledger state may carry: bounds the
# duplicate check and the split loop. At the cap, register costs ~126k gas
# and conclude ~210k (tests/scenarios, scenario 8): well inside a block.
MAX_LOCKS: public(constant(uint256)) = 16


# @dev See `channel_bounds.MAX_AMOUNT`. Two of them are packed into one
# storage word; every sum below fits in a uint256.
MAX_AMOUNT: public(constant(uint256)) = channel_bounds.MAX_AMOUNT


# @dev Bit 255 of a channel id says which kind of asset it holds: 0 for ETH,
# 1 for an ERC20 token. The other 255 bits come from the parameter hash.
_TOKEN_CHANNEL_BIT: constant(uint256) = 2**255


# @dev Bit 255 of a holdings word marks a concluded channel.
_CONCLUDED_BIT: constant(uint256) = 2**255


# @dev Bit 254 of a holdings word marks a channel with a registered
# dispute, so `close` reads the dispute slot only when there is one (a
# cold SLOAD saved on every cooperative close; the first registration
# pays one warm rewrite of the holdings word instead).
_DISPUTED_BIT: constant(uint256) = 2**254


# @dev Width of one side's deposit inside a holdings word.
_AMOUNT_BITS: constant(uint256) = 120


# @dev Mask of a 64-bit field of a dispute word (version, deadline).
_U64_MASK: constant(uint256) = 2**64 - 1


# @dev Position of side A's base payout in a dispute word (bits 128-248).
_PAYOUT_SHIFT: constant(uint256) = 128


# @dev Mask of side A's base payout in a dispute word: 121 bits, since a
# payout can reach the sum of both deposits (2 * MAX_AMOUNT < 2**121).
_PAYOUT_MASK: constant(uint256) = 2**121 - 1


# @dev Bit 254 of a dispute word: the registered state has locks, and
# `_dispute_locks` holds their hash.
_HAS_LOCKS_BIT: constant(uint256) = 2**254


# @dev Bit 255 of a dispute word: the registered state is funded (both
# sides deposited at least what it accounts for), so its balances and
# locks decide the payouts; otherwise each side gets back its deposit.
_FUNDED_BIT: constant(uint256) = 2**255


# @dev Gas forwarded to an ETH recipient when a payout is pushed. Enough for
# a smart-contract wallet's `receive`; a recipient that needs more (or
# reverts) is credited and withdraws with all the gas it wants.
_ETH_PAYOUT_GAS: constant(uint256) = 10000


# @dev Gas forwarded to a token's `transfer` when a payout is pushed: enough
# for proxied tokens writing a new holder's balance, small enough that a
# token hook cannot burn the block.
_TOKEN_PAYOUT_GAS: constant(uint256) = 150000


# @dev EIP-712 type hash of `ChannelParams`; the channel id is derived from
# the struct hash of the parameters.
_PARAMS_TYPE_HASH: constant(bytes32) = keccak256(
    "ChannelParams(address participantA,address participantB,address asset,uint64 challengeDuration,uint256 nonce)"
)


# @dev EIP-712 type hash of `Lock`.
_LOCK_TYPE_HASH: constant(bytes32) = keccak256(
    "Lock(bytes32 channel,uint256 amountA,uint256 amountB)"
)


# @dev EIP-712 type hash of `LedgerState` (referenced types appended, as the
# standard requires).
_STATE_TYPE_HASH: constant(bytes32) = keccak256(
    "LedgerState(bytes32 channel,uint64 version,uint256 balanceA,uint256 balanceB,uint256 fundingA,uint256 fundingB,Lock[] locks,bool isFinal)Lock(bytes32 channel,uint256 amountA,uint256 amountB)"
)


# @dev keccak256 of zero bytes: the EIP-712 hash of an empty `Lock[]`.
_EMPTY_ARRAY_HASH: constant(bytes32) = keccak256(b"")


struct ChannelParams:
    # @dev The first participant (side 0).
    participant_a: address
    # @dev The second participant (side 1).
    participant_b: address
    # @dev The asset: the zero address for ETH, otherwise an ERC20 token.
    asset: address
    # @dev Seconds between the first registration and the end of a dispute.
    challenge_duration: uint64
    # @dev Chosen by the participants so that the same pair can open many channels.
    nonce: uint256


struct Lock:
    # @dev The virtual channel this lock funds.
    channel: bytes32
    # @dev What side A of the ledger channel locks for the virtual channel.
    amount_a: uint256
    # @dev What side B of the ledger channel locks for the virtual channel.
    amount_b: uint256


struct LedgerState:
    # @dev The channel id (see `channel_id`).
    channel: bytes32
    # @dev Strictly increasing with every update both sign.
    version: uint64
    # @dev What side A is owed by this state.
    balance_a: uint256
    # @dev What side B is owed by this state.
    balance_b: uint256
    # @dev Side A's total deposits this state accounts for.
    funding_a: uint256
    # @dev Side B's total deposits this state accounts for.
    funding_b: uint256
    # @dev Funds set aside for virtual channels, split by their outcome.
    locks: DynArray[Lock, MAX_LOCKS]
    # @dev A final state ends the channel at once.
    is_final: bool


struct FinalState:
    # @dev The version of the final state.
    version: uint64
    # @dev What side A is owed.
    balance_a: uint256
    # @dev What side B is owed.
    balance_b: uint256
    # @dev Side A's total deposits the state accounts for.
    funding_a: uint256
    # @dev Side B's total deposits the state accounts for.
    funding_b: uint256


# @dev The virtual channel adjudicator whose outcomes split the locks.
VIRTUAL_ADJUDICATOR: public(immutable(IVirtualAdjudicator))


# @dev Deposits of each channel, packed: bits 0-119 side A, bits 120-239
# side B, bit 254 the disputed flag, bit 255 the concluded flag. One slot,
# so the second deposit only rewrites a non-zero word.
_holdings: HashMap[bytes32, uint256]


# @dev Open disputes, packed: bits 0-63 the registered version, bits 64-127
# the deadline (first registration plus the challenge duration), bits
# 128-248 side A's base payout by the registered state, bit 254 "has
# locks", bit 255 "funded". The payout is final when the state is
# registered because deposits are refused during a dispute. Zero when no
# dispute was registered; cleared at conclusion.
_disputes: HashMap[bytes32, uint256]


# @dev EIP-712 hash of the registered state's `Lock[]`, only while a funded
# registered state has locks (the has-locks bit); `conclude` checks the
# locks it is given against it.
_dispute_locks: HashMap[bytes32, bytes32]


# @dev Payouts that could not be pushed, per asset and recipient; withdrawn
# with `withdraw`.
credits: public(HashMap[address, HashMap[address, uint256]])


event Deposited:
    channel: indexed(bytes32)
    # Both sides' deposits after this one, packed as in storage: side A in
    # bits 0-119, side B in bits 120-239 (one data word instead of two).
    deposits: uint256


event Registered:
    channel: indexed(bytes32)
    version: uint64
    deadline: uint64


event Concluded:
    channel: indexed(bytes32)
    version: uint64
    payout_a: uint256
    payout_b: uint256


event Credited:
    channel: indexed(bytes32)
    owner: indexed(address)
    asset: address
    amount: uint256


event Withdrawn:
    owner: indexed(address)
    asset: indexed(address)
    receiver: address
    amount: uint256


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
@payable
@reentrant
def deposit(channel: bytes32, side: uint256):
    """
    @notice Deposits the sent ETH for one side of an ETH channel. Allowed
            until a dispute is registered or the channel concludes (top-ups
            included). The deposit is credited to the side named, whoever
            sends it.
    @dev The contract cannot see the channel's parameters here; clients
         derive `channel` with `channel_id` from checked parameters first.
    @custom:security The one entry point outside the reentrancy lock (it
                     saves ~300 gas per deposit): it makes no external
                     call and only adds `msg.value` to one open, undisputed
                     ETH channel. Entered from a payout hook, it can
                     neither reach the channel being paid (marked concluded
                     before any payout) nor a token channel (bit 255), so
                     it is the same as a deposit in a later transaction.
    @param channel The channel id; its bit 255 must be 0 (an ETH channel).
    @param side 0 for participant A, 1 for participant B.
    """
    if convert(channel, uint256) & _TOKEN_CHANNEL_BIT != 0:
        revert_reason._raise("ledger: wrong asset")
    if msg.value == 0:
        revert_reason._raise("ledger: zero amount")
    self._add_deposit(channel, side, msg.value)


@external
def deposit_token(params: ChannelParams, side: uint256, amount: uint256):
    """
    @notice Pulls `amount` of the channel's ERC20 token from the caller
            (approve first) and credits what actually arrived to one side.
    @dev A fee-on-transfer token is credited by the balance increase, so
         the contract never owes more than it holds. The credit follows the
         transfer because it needs the measured amount; the reentrancy
         lock keeps every other entry point closed meanwhile.
    @param params The channel's parameters; `asset` must be an ERC20 token.
    @param side 0 for participant A, 1 for participant B.
    @param amount The amount to pull, at most MAX_AMOUNT.
    """
    channel: bytes32 = self._channel_id(params)
    if params.asset == empty(address):
        revert_reason._raise("ledger: wrong asset")
    if not params.asset.is_contract:
        revert_reason._raise("ledger: asset is not a contract")
    if amount == 0:
        revert_reason._raise("ledger: zero amount")
    if amount > MAX_AMOUNT:
        revert_reason._raise("ledger: amount too large")
    if side >= 2:
        revert_reason._raise("ledger: invalid side")
    # The channel's own checks (open, undisputed, total at most MAX_AMOUNT)
    # run once, in `_add_deposit`, on the word read after the pull: the
    # lock closes every entry point that could change a token channel
    # (`deposit`, outside it, takes only ETH channels), and a failing check
    # reverts the pull with the rest.
    token: IERC20 = IERC20(params.asset)
    before: uint256 = staticcall token.balanceOf(self)
    if not extcall token.transferFrom(msg.sender, self, amount, default_return_value=True):
        revert_reason._raise("ledger: token transfer failed")
    received: uint256 = staticcall token.balanceOf(self) - before
    if received == 0:
        revert_reason._raise("ledger: nothing received")
    self._add_deposit(channel, side, received)


@external
def close(
    params: ChannelParams,
    final: FinalState,
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
    channel: bytes32 = self._channel_id(params)
    self._check_amounts(final.balance_a, final.balance_b, final.funding_a, final.funding_b, 0)
    holdings: uint256 = self._open_holdings(channel)
    dispute: uint256 = 0
    if holdings & _DISPUTED_BIT != 0:
        dispute = self._disputes[channel]
        if final.version <= self._unpack_version(dispute):
            revert_reason._raise("ledger: stale version")
    state_hash: bytes32 = self._hash_state_fields(
        channel,
        final.version,
        final.balance_a,
        final.balance_b,
        final.funding_a,
        final.funding_b,
        _EMPTY_ARRAY_HASH,
        True,
    )
    self._check_signatures(params, state_hash, sig_a, sig_b)
    payout_a: uint256 = 0
    payout_b: uint256 = 0
    funded: bool = False
    payout_a, payout_b, funded = self._base_payouts(
        holdings, final.balance_a, final.balance_b, final.funding_a, final.funding_b
    )
    self._finish(channel, params, final.version, dispute, payout_a, payout_b)


@external
def register(
    params: ChannelParams,
    state: LedgerState,
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
    channel: bytes32 = self._channel_id(params)
    self._check_state(channel, state)
    if state.is_final:
        revert_reason._raise("ledger: final state, call close")
    holdings: uint256 = self._open_holdings(channel)
    dispute: uint256 = 0
    deadline: uint64 = 0
    if holdings & _DISPUTED_BIT == 0:
        deadline = convert(block.timestamp, uint64) + params.challenge_duration
    else:
        dispute = self._disputes[channel]
        deadline = self._unpack_deadline(dispute)
        if block.timestamp >= convert(deadline, uint256):
            revert_reason._raise("ledger: challenge period over")
        if state.version < self._unpack_version(dispute):
            revert_reason._raise("ledger: stale version")
    locks_hash: bytes32 = self._locks_hash(state.locks)
    self._check_signatures(
        params,
        self._hash_state_fields(
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
        sig_b,
    )
    payout_a: uint256 = 0
    payout_b: uint256 = 0
    funded: bool = False
    payout_a, payout_b, funded = self._base_payouts(
        holdings, state.balance_a, state.balance_b, state.funding_a, state.funding_b
    )
    word: uint256 = convert(state.version, uint256) | (convert(deadline, uint256) << 64) | (payout_a << _PAYOUT_SHIFT)
    if funded:
        word |= _FUNDED_BIT
        if len(state.locks) != 0:
            word |= _HAS_LOCKS_BIT
    if dispute != 0 and state.version == self._unpack_version(dispute):
        # Same version: a no-op for the registered outcome, stale otherwise.
        if word != dispute or (word & _HAS_LOCKS_BIT != 0 and self._dispute_locks[channel] != locks_hash):
            revert_reason._raise("ledger: stale version")
        return
    if dispute == 0:
        self._holdings[channel] = holdings | _DISPUTED_BIT
    self._disputes[channel] = word
    if word & _HAS_LOCKS_BIT != 0:
        self._dispute_locks[channel] = locks_hash
    elif dispute & _HAS_LOCKS_BIT != 0:
        self._dispute_locks[channel] = empty(bytes32)
    log Registered(channel=channel, version=state.version, deadline=deadline)


@external
def conclude(
    params: ChannelParams,
    locks: DynArray[Lock, MAX_LOCKS] = [],
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
    channel: bytes32 = self._channel_id(params)
    holdings: uint256 = self._open_holdings(channel)
    if holdings & _DISPUTED_BIT == 0:
        revert_reason._raise("ledger: no dispute")
    dispute: uint256 = self._disputes[channel]
    if block.timestamp < convert(self._unpack_deadline(dispute), uint256):
        revert_reason._raise("ledger: challenge period not over")
    if dispute & _HAS_LOCKS_BIT != 0:
        if self._locks_hash(locks) != self._dispute_locks[channel]:
            revert_reason._raise("ledger: locks not registered")
    else:
        if len(locks) != 0:
            revert_reason._raise("ledger: locks not registered")
    if len(virtuals) != len(locks):
        revert_reason._raise("ledger: virtual params do not match locks")
    payout_a: uint256 = (dispute >> _PAYOUT_SHIFT) & _PAYOUT_MASK
    # Base payouts sum to the deposits less what is locked (conservation,
    # checked at registration; the locks are the registered ones), and
    # every lock's shares sum to its amounts (`_split_lock`).
    locked: uint256 = 0
    for lock: Lock in locks:
        locked += lock.amount_a + lock.amount_b
    payout_b: uint256 = self._side_amount(holdings, 0) + self._side_amount(holdings, 1) - payout_a - locked
    for i: uint256 in range(len(locks), bound=MAX_LOCKS):
        share_a: uint256 = 0
        share_b: uint256 = 0
        share_a, share_b = self._split_lock(channel, params, locks[i], virtuals[i])
        payout_a += share_a
        payout_b += share_b
    self._finish(channel, params, self._unpack_version(dispute), dispute, payout_a, payout_b)


@external
def withdraw(asset: address, receiver: address):
    """
    @notice Pays the caller's whole credit in `asset` (payouts that could
            not be pushed at conclusion) to `receiver`, forwarding all gas.
    @param asset The zero address for ETH, otherwise the token.
    @param receiver Where to send the funds; lets a recipient that cannot
           receive (a reverting contract, a blocklisted address) collect
           elsewhere.
    """
    amount: uint256 = self.credits[asset][msg.sender]
    if amount == 0:
        revert_reason._raise("ledger: nothing to withdraw")
    if receiver == empty(address):
        revert_reason._raise("ledger: zero receiver")
    self.credits[asset][msg.sender] = 0
    log Withdrawn(owner=msg.sender, asset=asset, receiver=receiver, amount=amount)
    if asset == empty(address):
        if not raw_call(receiver, b"", value=amount, revert_on_failure=False):
            revert_reason._raise("ledger: ETH transfer failed")
    else:
        if not extcall IERC20(asset).transfer(receiver, amount, default_return_value=True):
            revert_reason._raise("ledger: token transfer failed")


@external
@pure
def channel_id(params: ChannelParams) -> bytes32:
    """
    @notice The id of the channel with these parameters. Reverts on
            parameters no channel may use.
    @param params The channel's parameters.
    @return The channel id: the EIP-712 struct hash of `params` with bit
            255 replaced by the asset kind (0 ETH, 1 token).
    """
    return self._channel_id(params)


@external
@pure
def state_hash(state: LedgerState) -> bytes32:
    """
    @notice The EIP-712 struct hash of a ledger state.
    @param state The state.
    @return `hashStruct(state)`.
    """
    return self._state_hash(state)


@external
@view
def state_digest(state: LedgerState) -> bytes32:
    """
    @notice The digest participants sign for `state` in this contract's
            domain (what `eth_signTypedData_v4` signs).
    @param state The state.
    @return The EIP-712 digest.
    """
    return typed_signatures._typed_digest(self._state_hash(state))


@external
@view
def holdings(channel: bytes32) -> (uint256, uint256, bool):
    """
    @notice The deposits of a channel.
    @param channel The channel id.
    @return deposit_a Side A's deposits (zero once concluded).
    @return deposit_b Side B's deposits (zero once concluded).
    @return concluded Whether the channel has concluded.
    """
    word: uint256 = self._holdings[channel]
    return self._side_amount(word, 0), self._side_amount(word, 1), word & _CONCLUDED_BIT != 0


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
    return self._unpack_version(word), self._unpack_deadline(word), self._dispute_locks[channel]


@internal
def _add_deposit(channel: bytes32, side: uint256, amount: uint256):
    """
    @dev Credits `amount` to `side` of an unconcluded channel.
    @param channel The channel id.
    @param side 0 or 1.
    @param amount The amount that arrived.
    """
    if side >= 2:
        revert_reason._raise("ledger: invalid side")
    word: uint256 = self._holdings[channel]
    self._check_depositable(word)
    # side < 2 (checked above): the product is 0 or 120.
    offset: uint256 = unsafe_mul(side, _AMOUNT_BITS)
    total: uint256 = ((word >> offset) & MAX_AMOUNT) + amount
    if total > MAX_AMOUNT:
        revert_reason._raise("ledger: amount too large")
    # The side's old amount is replaced: clear its 120 bits, then set them.
    word = (word & ~(MAX_AMOUNT << offset)) | (total << offset)
    self._holdings[channel] = word
    log Deposited(channel=channel, deposits=word)


@internal
@pure
def _base_payouts(
    holdings: uint256, balance_a: uint256, balance_b: uint256, funding_a: uint256, funding_b: uint256
) -> (uint256, uint256, bool):
    """
    @dev What each side receives from a state's balances against the
         channel's actual deposits, before any lock is split. Each side
         receives its balance plus any deposit the state does not account
         for (a late top-up). If a side deposited less than the state says
         it funded (the partner never funded the initial state), nothing
         moved yet, and each side gets back exactly its own deposit.
    @param holdings The channel's holdings word.
    @param balance_a The state's balance of side A.
    @param balance_b The state's balance of side B.
    @param funding_a The deposits of side A the state accounts for.
    @param funding_b The deposits of side B the state accounts for.
    @return payout_a Side A's payout before lock shares.
    @return payout_b Side B's payout before lock shares.
    @return funded Whether the state is funded (its locks are split).
    """
    deposit_a: uint256 = self._side_amount(holdings, 0)
    deposit_b: uint256 = self._side_amount(holdings, 1)
    if deposit_a >= funding_a and deposit_b >= funding_b:
        # balances + lock shares + funding difference: sums to deposit_a +
        # deposit_b, since `_check_state` enforced balance_a + balance_b +
        # locked == funding_a + funding_b and each lock's shares sum to its
        # amounts (`_split_lock`).
        return balance_a + deposit_a - funding_a, balance_b + deposit_b - funding_b, True
    return deposit_a, deposit_b, False


@internal
def _finish(
    channel: bytes32, params: ChannelParams, version: uint64, dispute: uint256, payout_a: uint256, payout_b: uint256
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
    self._holdings[channel] = _CONCLUDED_BIT
    if dispute != 0:
        self._disputes[channel] = 0
        if dispute & _HAS_LOCKS_BIT != 0:
            self._dispute_locks[channel] = empty(bytes32)
    log Concluded(channel=channel, version=version, payout_a=payout_a, payout_b=payout_b)
    self._pay(channel, params.asset, params.participant_a, payout_a)
    self._pay(channel, params.asset, params.participant_b, payout_b)


@internal
def _pay(channel: bytes32, asset: address, recipient: address, amount: uint256):
    """
    @dev Pushes a payout with a gas cap; if the push fails for any reason
         (reverting, gas-hungry or re-entering receiver, a token that
         reverts or returns false), credits it for `withdraw` instead.
    @param channel The channel id (for the event).
    @param asset The zero address for ETH, otherwise the token.
    @param recipient The participant paid.
    @param amount The payout.
    """
    if amount == 0:
        return
    ok: bool = False
    if asset == empty(address):
        ok = raw_call(recipient, b"", value=amount, gas=_ETH_PAYOUT_GAS, revert_on_failure=False)
    else:
        response: Bytes[32] = b""
        ok, response = raw_call(
            asset,
            abi_encode(recipient, amount, method_id=method_id("transfer(address,uint256)")),
            max_outsize=32,
            gas=_TOKEN_PAYOUT_GAS,
            revert_on_failure=False,
        )
        # Tokens that return nothing count as success (USDT-style); a
        # returned value must be exactly `true`.
        if ok and len(response) != 0:
            ok = len(response) == 32 and convert(response, uint256) == 1
    if not ok:
        self.credits[asset][recipient] += amount
        log Credited(channel=channel, owner=recipient, asset=asset, amount=amount)


@internal
@view
def _split_lock(
    channel: bytes32,
    params: ChannelParams,
    lock: Lock,
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
        revert_reason._raise("ledger: virtual params do not match locks")
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
@view
def _open_holdings(channel: bytes32) -> uint256:
    """
    @dev The holdings word of a channel that has deposits and has not
         concluded.
    @param channel The channel id.
    @return The holdings word.
    """
    word: uint256 = self._holdings[channel]
    if word & _CONCLUDED_BIT != 0:
        revert_reason._raise("ledger: channel concluded")
    if word == 0:
        revert_reason._raise("ledger: unknown channel")
    return word


@internal
@view
def _check_signatures(
    params: ChannelParams,
    state_hash: bytes32,
    sig_a: typed_signatures.Signature,
    sig_b: typed_signatures.Signature,
):
    """
    @dev Asserts that both participants signed the state.
    @param params The channel's parameters (participants are non-zero).
    @param state_hash The struct hash of the state.
    @param sig_a Participant A's signature.
    @param sig_b Participant B's signature.
    """
    digest: bytes32 = typed_signatures._typed_digest(state_hash)
    self._check_signer(digest, sig_a, params.participant_a)
    self._check_signer(digest, sig_b, params.participant_b)


@internal
@pure
def _check_signer(digest: bytes32, signature: typed_signatures.Signature, expected: address):
    """
    @dev Asserts that `expected` signed `digest`.
    @param digest The EIP-712 digest.
    @param signature The signature.
    @param expected The participant (never the zero address).
    """
    signer: address = typed_signatures._recover(digest, signature)
    if signer == empty(address):
        revert_reason._raise("ledger: invalid signature")
    if signer != expected:
        revert_reason._raise("ledger: wrong signer")


@internal
@pure
def _check_state(channel: bytes32, state: LedgerState):
    """
    @dev Asserts what can be checked of a state without storage: it belongs
         to this channel, every amount is at most MAX_AMOUNT, no virtual
         channel is locked twice, and it conserves funds (balances plus
         locked amounts sum to the funding).
    @param channel The channel id.
    @param state The state.
    """
    if state.channel != channel:
        revert_reason._raise("ledger: state for another channel")
    locked: uint256 = 0
    for i: uint256 in range(len(state.locks), bound=MAX_LOCKS):
        lock: Lock = state.locks[i]
        if lock.amount_a > MAX_AMOUNT or lock.amount_b > MAX_AMOUNT:
            revert_reason._raise("ledger: amount too large")
        locked += lock.amount_a + lock.amount_b
        for j: uint256 in range(i, bound=MAX_LOCKS):
            if state.locks[j].channel == lock.channel:
                revert_reason._raise("ledger: duplicate lock")
    self._check_amounts(state.balance_a, state.balance_b, state.funding_a, state.funding_b, locked)


@internal
@pure
def _check_amounts(balance_a: uint256, balance_b: uint256, funding_a: uint256, funding_b: uint256, locked: uint256):
    """
    @dev Asserts that every amount of a state is at most MAX_AMOUNT and
         that it conserves funds: balances plus locked amounts sum to the
         funding.
    @param balance_a Side A's balance.
    @param balance_b Side B's balance.
    @param funding_a Side A's funding.
    @param funding_b Side B's funding.
    @param locked The sum of the state's lock amounts (each checked).
    """
    if balance_a > MAX_AMOUNT or balance_b > MAX_AMOUNT or funding_a > MAX_AMOUNT or funding_b > MAX_AMOUNT:
        revert_reason._raise("ledger: amount too large")
    if balance_a + balance_b + locked != funding_a + funding_b:
        revert_reason._raise("ledger: balances do not match funding")


@internal
@pure
def _check_depositable(word: uint256):
    """
    @dev Asserts that a channel takes deposits: not concluded, and no
         dispute registered (its payouts were settled at registration).
    @param word The channel's holdings word.
    """
    # Both flags are the top bits: one comparison on the common path.
    if word >= _DISPUTED_BIT:
        if word & _CONCLUDED_BIT != 0:
            revert_reason._raise("ledger: channel concluded")
        revert_reason._raise("ledger: channel disputed")


@internal
@pure
def _channel_id(params: ChannelParams) -> bytes32:
    """
    @dev Checks the parameters and derives the channel id.
    @param params The channel's parameters.
    @return The channel id.
    """
    if params.participant_a == empty(address) or params.participant_b == empty(address):
        revert_reason._raise("ledger: zero participant")
    if params.participant_a == params.participant_b:
        revert_reason._raise("ledger: same participant")
    if params.challenge_duration < MIN_CHALLENGE_DURATION or params.challenge_duration > MAX_CHALLENGE_DURATION:
        revert_reason._raise("ledger: challenge duration out of range")
    digest: uint256 = convert(
        keccak256(
            abi_encode(
                _PARAMS_TYPE_HASH,
                params.participant_a,
                params.participant_b,
                params.asset,
                params.challenge_duration,
                params.nonce,
            )
        ),
        uint256,
    )
    # Keep 255 bits of the hash (collisions still cost ~2**127 work) and use
    # bit 255 for the asset kind, so an ETH deposit cannot land in a token
    # channel.
    digest &= ~_TOKEN_CHANNEL_BIT
    if params.asset != empty(address):
        digest |= _TOKEN_CHANNEL_BIT
    return convert(digest, bytes32)


@internal
@pure
def _state_hash(state: LedgerState) -> bytes32:
    """
    @dev The EIP-712 struct hash of a ledger state.
    @param state The state.
    @return `hashStruct(state)`.
    """
    return self._hash_state_fields(
        state.channel,
        state.version,
        state.balance_a,
        state.balance_b,
        state.funding_a,
        state.funding_b,
        self._locks_hash(state.locks),
        state.is_final,
    )


@internal
@pure
def _hash_state_fields(
    channel: bytes32,
    version: uint64,
    balance_a: uint256,
    balance_b: uint256,
    funding_a: uint256,
    funding_b: uint256,
    locks_hash: bytes32,
    is_final: bool,
) -> bytes32:
    """
    @dev The EIP-712 struct hash of a ledger state given field by field,
         its locks already hashed (`close` rebuilds a final state this way).
    @param channel The channel id.
    @param version The version.
    @param balance_a Side A's balance.
    @param balance_b Side B's balance.
    @param funding_a Side A's funding.
    @param funding_b Side B's funding.
    @param locks_hash The EIP-712 hash of the state's `Lock[]`.
    @param is_final Whether the state is final.
    @return `hashStruct(state)`.
    """
    return keccak256(
        abi_encode(
            _STATE_TYPE_HASH, channel, version, balance_a, balance_b, funding_a, funding_b, locks_hash, is_final
        )
    )


@internal
@pure
def _locks_hash(locks: DynArray[Lock, MAX_LOCKS]) -> bytes32:
    """
    @dev The EIP-712 hash of a `Lock[]`: keccak256 of the concatenated
         struct hashes.
    @param locks The locks.
    @return The array hash.
    """
    if len(locks) == 0:
        return _EMPTY_ARRAY_HASH
    hashes: DynArray[bytes32, MAX_LOCKS] = []
    for lock: Lock in locks:
        hashes.append(keccak256(abi_encode(_LOCK_TYPE_HASH, lock.channel, lock.amount_a, lock.amount_b)))
    # abi_encode of a bare dynamic array is `length || items`; skip the length word.
    packed: Bytes[32 + 32 * MAX_LOCKS] = abi_encode(hashes, ensure_tuple=False)
    return keccak256(slice(packed, 32, 32 * len(hashes)))


@internal
@pure
def _side_amount(word: uint256, side: uint256) -> uint256:
    """
    @dev One side's deposit from a holdings word.
    @param word The holdings word.
    @param side 0 or 1.
    @return The deposit.
    """
    return (word >> (side * _AMOUNT_BITS)) & MAX_AMOUNT


@internal
@pure
def _unpack_version(word: uint256) -> uint64:
    """
    @dev The registered version from a dispute word.
    @param word The dispute word.
    @return The version.
    """
    return convert(word & _U64_MASK, uint64)


@internal
@pure
def _unpack_deadline(word: uint256) -> uint64:
    """
    @dev The deadline from a dispute word.
    @param word The dispute word.
    @return The deadline (a timestamp).
    """
    return convert((word >> 64) & _U64_MASK, uint64)
