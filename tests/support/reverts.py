"""Assert that a view call reverts with an exact reason, through plain JSON-RPC.

Under `ape test --coverage` Ape traces calls instead of executing them and stops raising reverts, so
`ape.reverts` around a view call would pass or fail depending on the mode; this helper does not.
"""

from __future__ import annotations

from typing import Any

from eth_abi import decode
from web3.exceptions import ContractLogicError

from tests.support.constants import ERROR_SELECTOR


def revert_reason(data: bytes) -> str:
    """The message of an ``Error(string)`` revert."""
    assert data[:4] == ERROR_SELECTOR, f"not an Error(string) revert: 0x{data.hex()}"
    return decode(["string"], data[4:])[0]


def assert_view_reverts(method: Any, *args: Any, reason: str) -> None:
    """``method`` is a contract's view (e.g. ``ledger.channel_id``); ``args`` its arguments."""
    from ape import chain

    call = {"to": str(method.contract.address), "data": "0x" + bytes(method.encode_input(*args)).hex()}
    try:
        chain.provider.web3.eth.call(call)
    except ContractLogicError as error:
        data = error.data if isinstance(error.data, str) else ""
        raw = bytes.fromhex(data[2:]) if data.startswith("0x") else b""
        assert revert_reason(raw) == reason
        return
    raise AssertionError(f"{method} did not revert (expected {reason!r})")
