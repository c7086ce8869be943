"""Off-chain side of perun-vyper, by layer (each imports only from the layers above it in this list):

- ``errors``: every exception, under ``PerunError``;
- ``contracts``: the adjudicators' ABIs (shipped in the package) and the addresses ``ape run deploy`` recorded;
- ``core``: parameters, states, EIP-712, signatures, the update rules, adjudicator call arguments (pure);
- ``store``: the durable store of channels and signed states; ``chain``: what the adjudicators say;
- ``client``: the parties' channel clients and Ingrid's hub; ``watchtower``: the dispute guard;
- ``node``: the hub as a WebSocket JSON-RPC service and the wallet's client of it (docs/API.md);
- ``tools``: deployment, demo, gas report and benchmark behind the ``ape run`` scripts.

The names below are the public API.
"""

from importlib.metadata import version as _version

from .chain import AppStatus, ChainView, LedgerStatus, VirtualStatus, check_domain, read_domain, signer_of
from .client import (
    Acceptance,
    AppChannel,
    AppDispute,
    Hub,
    LedgerChannel,
    VirtualChannel,
    close_virtual_channel,
    exchange,
    open_virtual_channel,
    pay,
    resume,
)
from .contracts import abi, deployed_addresses
from .core import calls
from .core.app import AppParams, AppState, Move, Registration
from .core.channel import ChannelParams
from .core.codec import Domain
from .core.constants import (
    DOMAIN_VERSION,
    ETH,
    LEDGER_DOMAIN_NAME,
    MAX_AMOUNT,
    MAX_CHALLENGE_DURATION,
    MAX_LOCKS,
    MIN_CHALLENGE_DURATION,
    VIRTUAL_DOMAIN_NAME,
)
from .core.keys import (
    Signer,
    compact,
    expand,
    recover,
    recover_digest,
    sign_digest,
    sign_state,
    verify,
    verify_state,
)
from .core.locks import close_virtual, lock_for, open_virtual
from .core.protocol import SignedState, Update, VirtualFinal, verify_final
from .core.state import LedgerState, Lock
from .core.virtual import VirtualParams, VirtualState
from .errors import (
    AccountError,
    ChainUnavailable,
    DemoFailed,
    DeploymentError,
    InvalidParams,
    InvalidSignature,
    InvalidState,
    PerunError,
    RefusedUpdate,
    StoreError,
    Unenforceable,
)
from .store import ChannelRecord, ChannelStore, PostgresStore, Store, StoreIdentity, open_store

__version__ = _version("perun_vyper")

__all__ = [
    "DOMAIN_VERSION",
    "ETH",
    "LEDGER_DOMAIN_NAME",
    "MAX_AMOUNT",
    "MAX_CHALLENGE_DURATION",
    "MAX_LOCKS",
    "MIN_CHALLENGE_DURATION",
    "VIRTUAL_DOMAIN_NAME",
    "Acceptance",
    "AccountError",
    "AppChannel",
    "AppDispute",
    "AppParams",
    "AppState",
    "AppStatus",
    "ChainUnavailable",
    "ChainView",
    "ChannelParams",
    "ChannelRecord",
    "ChannelStore",
    "DemoFailed",
    "DeploymentError",
    "Domain",
    "Hub",
    "InvalidParams",
    "InvalidSignature",
    "InvalidState",
    "LedgerChannel",
    "LedgerState",
    "LedgerStatus",
    "Lock",
    "Move",
    "PerunError",
    "PostgresStore",
    "RefusedUpdate",
    "Registration",
    "SignedState",
    "Signer",
    "Store",
    "StoreError",
    "StoreIdentity",
    "Unenforceable",
    "Update",
    "VirtualChannel",
    "VirtualFinal",
    "VirtualParams",
    "VirtualState",
    "VirtualStatus",
    "__version__",
    "abi",
    "calls",
    "check_domain",
    "close_virtual",
    "close_virtual_channel",
    "compact",
    "deployed_addresses",
    "exchange",
    "expand",
    "lock_for",
    "open_store",
    "open_virtual",
    "open_virtual_channel",
    "pay",
    "read_domain",
    "recover",
    "recover_digest",
    "resume",
    "sign_digest",
    "sign_state",
    "signer_of",
    "verify",
    "verify_final",
    "verify_state",
]
