"""Chain access shared by the stateful machines (ledger_machine.py, hub_machine.py).

- Each hypothesis example starts from the same chain: the machine snapshots in ``__init__`` and
  restores in ``teardown`` (Ape isolates state per pytest test, not per example).
- Time is deterministic: the tests run Anvil with a block-timestamp interval of 1, so every mined
  transaction lands exactly one second after the head and the model knows the timestamp a transaction
  will see (``next_ts``) before sending it.
- Reads go straight to JSON-RPC (Ape's call path costs ~4 ms each), and transactions the model says
  must fail are sent raw: Ape prints and enriches a call trace for every revert (~150 ms each).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

from eth_abi import decode
from eth_utils import keccak
from hexbytes import HexBytes
from hypothesis import event
from hypothesis import strategies as st

# Gas for transactions expected to revert: sent without estimation, so they are mined and fail on-chain.
FAILING_TX_GAS = 1_000_000


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


class ChainMachine:
    """Snapshot per example, a model clock, raw reads and expected-revert transactions."""

    # Ape fixtures, set as class attributes by the test: hypothesis instantiates the machine itself.
    chain: ClassVar[Any]
    accounts: ClassVar[dict[str, Any]]

    def __init__(self) -> None:
        super().__init__()
        self.rpc = self.chain.provider.make_request
        self.snap = self.chain.snapshot()
        self.head_ts = self._chain_head_ts()

    def teardown(self) -> None:
        self.chain.restore(self.snap)

    # ------------------------------------------------------------------ clock

    def _chain_head_ts(self) -> int:
        return int(self.rpc("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)

    @property
    def next_ts(self) -> int:
        """The timestamp the next transaction is mined at."""
        return self.head_ts + 1

    def do_mine_at(self, timestamp: int) -> None:
        """Mine an empty block at `timestamp`: the next transaction then runs at `timestamp + 1`."""
        assert timestamp > self.head_ts
        self.chain.mine(timestamp=timestamp)
        self.head_ts = timestamp

    def check_clock(self) -> None:
        assert self._chain_head_ts() == self.head_ts

    # ------------------------------------------------------------------ reads

    def _view(self, to: str, data: bytes, out: list[str]) -> tuple[Any, ...]:
        """An eth_call at the head block (its timestamp is `head_ts`)."""
        raw = self.rpc("eth_call", [{"to": str(to), "data": "0x" + data.hex()}, "latest"])
        return tuple(decode(out, bytes(HexBytes(raw))))

    def _eth_balance(self, owner: str) -> int:
        return int(self.rpc("eth_getBalance", [str(owner), "latest"]), 16)

    def _all_views(self) -> tuple[Any, ...]:
        """Everything a refused transaction must leave as it was."""
        raise NotImplementedError

    # ------------------------------------------------------------------ transactions

    def _receipt(self, tx_hash: str) -> dict[str, Any]:
        # Anvil may answer eth_sendTransaction a moment before the automined block is stored; on a loaded
        # machine that moment can last seconds, and a failure here would make hypothesis see flaky data.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            receipt = self.rpc("eth_getTransactionReceipt", [tx_hash])
            if receipt is not None:
                return receipt
            time.sleep(0.005)
        raise AssertionError(f"transaction {tx_hash} was not mined within 60 s")

    def _expect_revert(self, sender: str, method: Any, args: Sequence[Any], reason: str, value: int = 0) -> None:
        """Send a transaction the model says must fail; check the exact reason and that nothing changed.

        `method` is an Ape contract method (its contract is the recipient). A real mined transaction
        (rather than an eth_call) is what shows the refusal leaves the state alone.
        """
        before = self._all_views()
        tx = {
            "from": str(self.accounts[sender].address),
            "to": str(method.contract.address),
            "data": "0x" + bytes(method.encode_input(*args)).hex(),
            "gas": hex(FAILING_TX_GAS),
            "value": hex(value),
        }
        tx_hash = self.rpc("eth_sendTransaction", [tx])
        self.head_ts += 1
        receipt = self._receipt(tx_hash)
        trace = self.rpc("debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}])
        assert int(receipt["status"], 16) == 0, f"expected revert {reason!r}, but the transaction succeeded"
        assert trace.get("revertReason") == reason, f"expected revert {reason!r}, got {trace.get('revertReason')!r}"
        assert self._all_views() == before, f"a transaction reverting with {reason!r} changed the chain"


T = TypeVar("T")


def draw_by_kind(data: st.DataObject, options: Sequence[T], kind_of: Callable[[T], str], label: str) -> T:
    """Kind first, then the option: otherwise kinds with many versions or channels crowd out the rest."""
    kind = data.draw(st.sampled_from(sorted({kind_of(o) for o in options})), label=f"{label} kind")
    event(f"{label}: {kind}")
    return data.draw(st.sampled_from([o for o in options if kind_of(o) == kind]), label=label)
