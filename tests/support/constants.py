"""Values many test modules use: zero words, units, durations, byte codes, signature bits, revert reasons.

The revert reasons are the adjudicators' exact ``Error(string)`` messages (contracts/): the tests check
them letter for letter, so each is spelled once, here.
"""

from __future__ import annotations

# --- words and addresses -----------------------------------------------------------------------------

ZERO_HASH = b"\x00" * 32
ZERO_ADDRESS = "0x" + "00" * 20
# The compact (EIP-2098) form of "no signature": r = 0, vs = 0.
NO_SIG = (ZERO_HASH, ZERO_HASH)
# The selector of a revert's ``Error(string)`` data.
ERROR_SELECTOR = bytes.fromhex("08c379a0")
# Runtime code that returns one zero word to every call: an ERC20 whose transfers "return false".
RETURNS_FALSE_CODE = bytes.fromhex("60206000f3")

# --- units and durations -----------------------------------------------------------------------------

E = 10**18  # one ether
M = 10**15  # one milli-ether
HOUR = 3600
DAY = 86400
BLOCK_GAS_LIMIT = 30_000_000
MNEMONIC = "test test test test test test test test test test test junk"

# --- compact signatures: the top bit of vs is v - 27, the other 255 bits are s ------------------------

V_BIT = 1 << 255
S_MASK = V_BIT - 1

# --- revert reasons of the ledger adjudicator --------------------------------------------------------

LEDGER_CONCLUDED = "ledger: channel concluded"
LEDGER_DISPUTED = "ledger: channel disputed"
LEDGER_STALE = "ledger: stale version"
LEDGER_WRONG_SIGNER = "ledger: wrong signer"
LEDGER_PERIOD_OVER = "ledger: challenge period over"
LEDGER_PERIOD_NOT_OVER = "ledger: challenge period not over"
LEDGER_OTHER_CHANNEL = "ledger: state for another channel"
LEDGER_AMOUNT_TOO_LARGE = "ledger: amount too large"
LEDGER_RANGE = "ledger: challenge duration out of range"
LOCKS_NOT_REGISTERED = "ledger: locks not registered"
PARAMS_NOT_LOCKS = "ledger: virtual params do not match locks"
VIRTUAL_NOT_SETTLED = "ledger: virtual channel not settled"
TRANSFER_FAILED = "ledger: token transfer failed"
NO_DISPUTE = "ledger: no dispute"
NOTHING_TO_WITHDRAW = "ledger: nothing to withdraw"
CALL_CLOSE = "ledger: final state, call close"
FUNDING_MISMATCH = "ledger: balances do not match funding"
WRONG_ASSET = "ledger: wrong asset"
UNKNOWN_CHANNEL = "ledger: unknown channel"

# --- revert reasons of the virtual adjudicator -------------------------------------------------------

VIRTUAL_CONCLUDED = "virtual: channel concluded"
VIRTUAL_STALE = "virtual: stale version"
VIRTUAL_PERIOD_OVER = "virtual: challenge period over"
VIRTUAL_EXPIRED = "virtual: channel expired"
ONLY_ENDPOINTS = "virtual: only Alice or Bob before validity"
VIRTUAL_RANGE = "virtual: challenge duration out of range"
