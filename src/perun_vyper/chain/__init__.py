"""What the chain says about a channel, read before every signature (SPEC 11.1)."""

from .view import REACTION_TIME, ChainReader, ChainView, Head, LedgerStatus, VirtualStatus

__all__ = ["REACTION_TIME", "ChainReader", "ChainView", "Head", "LedgerStatus", "VirtualStatus"]
