"""Off-chain side of perun-vyper: channel parameters, states, EIP-712 hashing and signing."""

from importlib.metadata import version as _version

from .channel import ChannelParams
from .constants import ETH, MAX_AMOUNT, MAX_CHALLENGE_DURATION, MAX_LOCKS, MIN_CHALLENGE_DURATION
from .eip712 import Domain
from .errors import InvalidParams, InvalidSignature, InvalidState, PerunError
from .locks import close_virtual, lock_for, open_virtual
from .signing import recover_digest, sign_digest, sign_state, verify_state
from .state import LedgerState, Lock
from .virtual import VirtualParams, VirtualState

__version__ = _version("perun_vyper")

__all__ = [
    "ETH",
    "MAX_AMOUNT",
    "MAX_CHALLENGE_DURATION",
    "MAX_LOCKS",
    "MIN_CHALLENGE_DURATION",
    "ChannelParams",
    "Domain",
    "InvalidParams",
    "InvalidSignature",
    "InvalidState",
    "LedgerState",
    "Lock",
    "PerunError",
    "VirtualParams",
    "VirtualState",
    "__version__",
    "close_virtual",
    "lock_for",
    "open_virtual",
    "recover_digest",
    "sign_digest",
    "sign_state",
    "verify_state",
]
