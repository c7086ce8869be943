"""Durable storage of channels and signed states (SQLite today)."""

from ..core.protocol import SignedState
from ..errors import StoreError
from .meta import SCHEMA_VERSION, StoreIdentity
from .records import ChannelRecord, Kind
from .sqlite import Store

__all__ = ["SCHEMA_VERSION", "ChannelRecord", "Kind", "SignedState", "Store", "StoreError", "StoreIdentity"]
