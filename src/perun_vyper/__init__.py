"""Off-chain side of perun-vyper: channel parameters, states, EIP-712 hashing and signing."""

from importlib.metadata import version as _version

from .channel import ChannelParams
from .client import ChainUnavailable, LedgerChannel, VirtualChannel, exchange, pay, resume
from .constants import ETH, MAX_AMOUNT, MAX_CHALLENGE_DURATION, MAX_LOCKS, MIN_CHALLENGE_DURATION
from .eip712 import Domain
from .errors import InvalidParams, InvalidSignature, InvalidState, PerunError, RefusedUpdate, Unenforceable
from .hub import Hub, close_virtual_channel, open_virtual_channel
from .locks import close_virtual, lock_for, open_virtual
from .onchain import ChainView, LedgerStatus, VirtualStatus
from .protocol import Update, VirtualFinal
from .signing import compact, expand, recover_digest, sign_digest, sign_state, verify_state
from .state import LedgerState, Lock
from .store import ChannelRecord, SignedState, Store, StoreError
from .virtual import VirtualParams, VirtualState

__version__ = _version("perun_vyper")

__all__ = [
    "ETH",
    "MAX_AMOUNT",
    "MAX_CHALLENGE_DURATION",
    "MAX_LOCKS",
    "MIN_CHALLENGE_DURATION",
    "ChainUnavailable",
    "ChainView",
    "ChannelParams",
    "ChannelRecord",
    "Domain",
    "Hub",
    "InvalidParams",
    "InvalidSignature",
    "InvalidState",
    "LedgerChannel",
    "LedgerState",
    "LedgerStatus",
    "Lock",
    "PerunError",
    "RefusedUpdate",
    "SignedState",
    "Store",
    "StoreError",
    "Unenforceable",
    "Update",
    "VirtualChannel",
    "VirtualFinal",
    "VirtualParams",
    "VirtualState",
    "VirtualStatus",
    "__version__",
    "close_virtual",
    "close_virtual_channel",
    "compact",
    "exchange",
    "expand",
    "lock_for",
    "open_virtual",
    "open_virtual_channel",
    "pay",
    "recover_digest",
    "resume",
    "sign_digest",
    "sign_state",
    "verify_state",
]
