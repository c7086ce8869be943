"""Channel clients: the parties' durable views of ledger, virtual and app channels, and Ingrid's hub."""

from .app import AppChannel
from .app_dispute import AppDispute
from .hub import Hub, close_virtual_channel, open_virtual_channel
from .ledger import LedgerChannel
from .party import Acceptance, Party
from .session import exchange, pay, resume
from .virtual import VirtualChannel

__all__ = [
    "Acceptance",
    "AppChannel",
    "AppDispute",
    "Hub",
    "LedgerChannel",
    "Party",
    "VirtualChannel",
    "close_virtual_channel",
    "exchange",
    "open_virtual_channel",
    "pay",
    "resume",
]
