"""Durable storage of channels and signed states (SQLite today)."""

from ..core.protocol import SignedState
from ..errors import StoreError
from .records import ChannelRecord, Kind
from .sqlite import Store

__all__ = ["ChannelRecord", "Kind", "SignedState", "Store", "StoreError"]
