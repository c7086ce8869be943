"""What the chain says about a channel, read before every signature (SPEC 11.1); the accounts and the
adjudicators' EIP-712 domains as the chain holds them."""

from .accounts import signer_of
from .domain import check_domain, read_domain
from .view import REACTION_TIME, AppStatus, ChainReader, ChainView, Head, LedgerStatus, VirtualStatus

__all__ = [
    "REACTION_TIME",
    "AppStatus",
    "ChainReader",
    "ChainView",
    "Head",
    "LedgerStatus",
    "VirtualStatus",
    "check_domain",
    "read_domain",
    "signer_of",
]
