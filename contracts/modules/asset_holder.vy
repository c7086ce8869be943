# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Payouts and credits of the ledger adjudicator
@custom:contract-name asset_holder
@license Apache-2.0
@notice The `AssetHolder` role: pushes a concluded channel's payouts in ETH
        or an ERC20 token, credits every payout that cannot be pushed, and
        lets the owner of a credit withdraw it.
@custom:security A push forwards a capped amount of gas and never reverts:
                 a recipient that reverts, needs more gas or re-enters is
                 credited instead, so no participant can block another's
                 payout. `withdraw` clears the credit before the transfer
                 and holds the contract-wide reentrancy lock.
"""


from ethereum.ercs import IERC20
# @dev Stateless: the bounds both adjudicators enforce.
from . import channel_bounds
# @dev Stateless: the channel id and parameter checks of `deposit_token`.
from . import ledger_types
# @dev Stateless: the layout of the holdings word.
from . import packed_words
# @dev Stateless: `revert_reason` holds only the one raising function.
from . import revert_reason


# @dev Gas forwarded to an ETH recipient when a payout is pushed. Enough for
# a smart-contract wallet's `receive`; a recipient that needs more (or
# reverts) is credited and withdraws with all the gas it wants.
_ETH_PAYOUT_GAS: constant(uint256) = 10_000


# @dev Gas forwarded to a token's `transfer` when a payout is pushed: enough
# for proxied tokens writing a new holder's balance, small enough that a
# token hook cannot burn the block.
_TOKEN_PAYOUT_GAS: constant(uint256) = 150_000


# @dev Deposits and flags of each channel: the holdings word (SPEC 5.1).
# One slot, so the second deposit only rewrites a non-zero word.
_holdings: HashMap[bytes32, uint256]


# @dev Payouts that could not be pushed, per asset and recipient; withdrawn
# with `withdraw`.
credits: public(HashMap[address, HashMap[address, uint256]])


event Deposited:
    channel: indexed(bytes32)
    # Both sides' deposits after this one, as the holdings word stores them
    # (SPEC 5.1): one data word instead of two.
    deposits: uint256


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
         derive `channel` from checked parameters first (`perun_vyper`).
    @custom:security The one entry point outside the reentrancy lock (a
                     cheaper deposit, docs/GAS.md): it makes no external
                     call and only adds `msg.value` to one open, undisputed
                     ETH channel. Entered from a payout hook, it can
                     neither reach the channel being paid (marked concluded
                     before any payout) nor a token channel (bit 255), so
                     it is the same as a deposit in a later transaction.
    @param channel The channel id; its bit 255 must be 0 (an ETH channel).
    @param side 0 for participant A, 1 for participant B.
    """
    if convert(channel, uint256) & ledger_types.TOKEN_CHANNEL_BIT != 0:
        self._refuse_wrong_asset()
    if msg.value == 0:
        self._refuse_zero_amount()
    self._add_deposit(channel, side, msg.value)


@external
def deposit_token(params: ledger_types.ChannelParams, side: uint256, amount: uint256):
    """
    @notice Pulls `amount` of the channel's ERC20 token from the caller
            (approve first) and credits what actually arrived to one side.
    @dev A fee-on-transfer token is credited by the balance increase, so
         the contract never owes more than it holds. The credit follows the
         transfer because it needs the measured amount; the reentrancy
         lock keeps every other entry point closed meanwhile.
    @param params The channel's parameters; `asset` must be an ERC20 token.
    @param side 0 for participant A, 1 for participant B.
    @param amount The amount to pull, at most channel_bounds.MAX_AMOUNT.
    """
    channel: bytes32 = ledger_types._channel_id(params)
    if params.asset == empty(address):
        self._refuse_wrong_asset()
    if not params.asset.is_contract:
        revert_reason._raise("ledger: asset is not a contract")
    if amount == 0:
        self._refuse_zero_amount()
    if amount > channel_bounds.MAX_AMOUNT:
        ledger_types._refuse_amount_too_large()
    if side >= 2:
        self._refuse_invalid_side()
    # The channel's own checks (open, undisputed, total at most channel_bounds.MAX_AMOUNT)
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
    deposit_a: uint256 = 0
    deposit_b: uint256 = 0
    deposit_a, deposit_b = packed_words._deposits(word)
    return deposit_a, deposit_b, word & packed_words.CONCLUDED_BIT != 0


@internal
def _add_deposit(channel: bytes32, side: uint256, amount: uint256):
    """
    @dev Credits `amount` to `side` of an unconcluded channel.
    @param channel The channel id.
    @param side 0 or 1.
    @param amount The amount that arrived.
    """
    if side >= 2:
        self._refuse_invalid_side()
    word: uint256 = self._holdings[channel]
    # The channel takes deposits: not concluded, and no dispute registered
    # (its payouts were settled at registration). Both flags are the top
    # bits: one comparison on the common path.
    if word >= packed_words.DISPUTED_BIT:
        if word & packed_words.CONCLUDED_BIT != 0:
            self._refuse_channel_concluded()
        revert_reason._raise("ledger: channel disputed")
    # side < 2 (checked above): the product is 0 or 120.
    offset: uint256 = unsafe_mul(side, packed_words.AMOUNT_BITS)
    total: uint256 = ((word >> offset) & channel_bounds.MAX_AMOUNT) + amount
    if total > channel_bounds.MAX_AMOUNT:
        ledger_types._refuse_amount_too_large()
    # The side's old amount is replaced: clear its 120 bits, then set them.
    word = (word & ~(channel_bounds.MAX_AMOUNT << offset)) | (total << offset)
    self._holdings[channel] = word
    log Deposited(channel=channel, deposits=word)


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
    if word & packed_words.CONCLUDED_BIT != 0:
        self._refuse_channel_concluded()
    if word == 0:
        revert_reason._raise("ledger: unknown channel")
    return word


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
    deposit_a: uint256 = 0
    deposit_b: uint256 = 0
    deposit_a, deposit_b = packed_words._deposits(holdings)
    if deposit_a >= funding_a and deposit_b >= funding_b:
        # balances + lock shares + funding difference: sums to deposit_a +
        # deposit_b, since `_check_state` enforced balance_a + balance_b +
        # locked == funding_a + funding_b and each lock's shares sum to its
        # amounts (`_split_lock`). Every amount is at most `MAX_AMOUNT`
        # (checked with the state, and deposits never exceed it) and each
        # deposit covers its funding here: no overflow, no underflow.
        return (
            unsafe_sub(unsafe_add(balance_a, deposit_a), funding_a),
            unsafe_sub(unsafe_add(balance_b, deposit_b), funding_b),
            True,
        )
    return deposit_a, deposit_b, False


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
@pure
def _refuse_zero_amount():
    """
    @dev Reverts with "ledger: zero amount": one raising site for the
         several checks that refuse with this reason.
    """
    revert_reason._raise("ledger: zero amount")


@internal
@pure
def _refuse_wrong_asset():
    """
    @dev Reverts with "ledger: wrong asset": one raising site for the
         several checks that refuse with this reason.
    """
    revert_reason._raise("ledger: wrong asset")


@internal
@pure
def _refuse_invalid_side():
    """
    @dev Reverts with "ledger: invalid side": one raising site for the
         several checks that refuse with this reason.
    """
    revert_reason._raise("ledger: invalid side")


@internal
@pure
def _refuse_channel_concluded():
    """
    @dev Reverts with "ledger: channel concluded": one raising site for the
         several checks that refuse with this reason.
    """
    revert_reason._raise("ledger: channel concluded")
