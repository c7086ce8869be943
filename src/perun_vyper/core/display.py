"""How values a person reads are printed: amounts in units beside the exact base value, times in UTC with
how far they are from now, counts with their noun, ids and hashes in full hex. The one home of these
rules: the watchtower's and the hub's log lines and the demo print through it. A reader copies ids and
checks amounts against an explorer, so nothing here rounds or shortens. Pure formatting (in ``core``), so
every layer may print through it."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from eth_abi import decode

from .codec import hexstr

ETH_SYMBOL = "ETH"
UNKNOWN_SYMBOL, UNKNOWN_DECIMALS = "units", 18  # a token that does not say what it is
MAX_DECIMALS = 36  # beyond this a token's decimals() is nonsense, not a unit anyone reads
# A token names itself: a symbol with spaces, control characters or a newline could fake a log line.
_SYMBOL = re.compile(r"[A-Za-z0-9$._+-]{1,16}")
_SYMBOL_CALL, _DECIMALS_CALL = bytes.fromhex("95d89b41"), bytes.fromhex("313ce567")  # symbol(), decimals()
_UNITS = (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1))


def hex_of(value: bytes | str) -> str:
    """``0x``-prefixed lower-case hex of bytes (a channel id) or of a hex string (a transaction hash),
    every digit of it."""
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return hexstr(value)


def amount(value: int, symbol: str = ETH_SYMBOL, decimals: int = 18) -> str:
    """``1.5 ETH (1500000000000000000 wei)``: exact (integer arithmetic), no trailing zeros; a token's
    base value is in ``base units``."""
    whole, fraction = divmod(abs(value), 10**decimals)
    digits = str(fraction).rjust(decimals, "0").rstrip("0") if decimals else ""
    units = f"{'-' if value < 0 else ''}{whole}" + (f".{digits}" if digits else "")
    base = "wei" if symbol == ETH_SYMBOL else "base units"
    return f"{units} {symbol} ({value} {base})"


def utc(timestamp: int) -> str:
    """``2026-12-04 05:30:00 UTC``; a time past year 9999 (a uint64 deadline can be) as the raw number."""
    try:
        return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"unix time {timestamp}"


def duration(seconds: int) -> str:
    """The two largest units, truncated (a deadline 59 min 59 s away is not yet "1 h" away):
    ``45 s``, ``59 min 59 s``, ``2 h 5 min``, ``3 d``."""
    parts: list[str] = []
    for name, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count or parts:
            parts.append(f"{count} {name}")
        if len(parts) == 2:
            break
    parts = [part for part in parts if not part.startswith("0 ")]
    return " ".join(parts) or "0 s"


def when(timestamp: int, now: int) -> str:
    """``2026-12-04 05:30:00 UTC (in 59 min)``, ``(2 h 5 min ago)`` or ``(now)``, relative to ``now``
    (the block time a watchtower round read, not this machine's clock)."""
    delta = timestamp - now
    relative = "now" if delta == 0 else f"in {duration(delta)}" if delta > 0 else f"{duration(-delta)} ago"
    return f"{utc(timestamp)} ({relative})"


def plural(count: int, noun: str, plural: str | None = None) -> str:
    """``1 action``, ``2 actions``, ``0 channels``; ``plural`` for the irregular ones."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


class AssetUnits:
    """The unit of each asset: ETH for the zero address; for a token its ``symbol()`` and ``decimals()``,
    read once through ``call(address, calldata) -> return data`` and kept. A token whose answers are
    missing or unusable is shown in ``units`` with 18 decimals: the base value beside it stays exact."""

    def __init__(self, call: Callable[[str, bytes], bytes]) -> None:
        self._call = call
        self._known: dict[str, tuple[str, int]] = {}

    def of(self, asset: str) -> tuple[str, int]:
        """``(symbol, decimals)`` of ``asset`` (an address)."""
        key = asset.lower()
        if int(key, 16) == 0:
            return ETH_SYMBOL, 18
        if key not in self._known:
            self._known[key] = self._read(asset)
        return self._known[key]

    def amount(self, value: int, asset: str) -> str:
        return amount(value, *self.of(asset))

    def _read(self, asset: str) -> tuple[str, int]:
        # Display only: whatever a token (or the node) answers, the watchtower's round goes on.
        try:
            symbol = _symbol(self._call(asset, _SYMBOL_CALL))
            (decimals,) = decode(["uint256"], self._call(asset, _DECIMALS_CALL))
        except Exception:
            return UNKNOWN_SYMBOL, UNKNOWN_DECIMALS
        # A token calling itself ETH would have its amounts read as ether.
        if symbol is None or symbol.upper() == ETH_SYMBOL or not 0 <= decimals <= MAX_DECIMALS:
            return UNKNOWN_SYMBOL, UNKNOWN_DECIMALS
        return symbol, int(decimals)


def _symbol(data: bytes) -> str | None:
    """An ABI string, or the bytes32 some early tokens (MKR) return; None if it is not a plain symbol."""
    try:
        (text,) = decode(["string"], data)
    except Exception:
        text = bytes(data[:32]).rstrip(b"\0").decode("ascii", "replace") if len(data) == 32 else ""
    return text if _SYMBOL.fullmatch(text) else None
