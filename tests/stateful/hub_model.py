"""The hub machine's model (hub_machine.py): the network's layout, one ledger channel with Ingrid per user,
the virtual channels between users, and the adjudicators' views the machine reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from perun_vyper import (
    ChannelParams,
    LedgerState,
    VirtualParams,
    VirtualState,
)
from tests.stateful import model
from tests.stateful.chain_helpers import selector

USERS = ("alice", "bob", "carol")
# (user, is the user side A, ledger challenge duration). Bob's channel is (Ingrid, Bob) so that locks
# are laid out in both orientations; his longer duration makes the deadlines of the channels differ.
LEDGER_SPECS: tuple[tuple[str, bool, int], ...] = (("alice", True, 3600), ("bob", False, 7200), ("carol", True, 3600))
# At most this many virtual channels locked in one ledger state at once (the contract allows 16): keeps
# room for the other actions in 30 steps.
MAX_OPEN_LOCKS = 4
VIRTUAL_DURATIONS = (3600, 5400)

HOLDINGS = selector("holdings(bytes32)")
DISPUTE = selector("dispute(bytes32)")
CREDITS = selector("credits(address,address)")
VIRTUAL_PARAMS_ABI = (
    "(address,address,address,address,address,uint256,bytes32,bytes32,uint256,uint256,uint64,uint64,uint256)"
)
SETTLEMENT = selector(f"settlement({VIRTUAL_PARAMS_ABI})")
RECORD = selector("record(bytes32)")


def balances(state: LedgerState) -> tuple[int, int]:
    return state.balance_a, state.balance_b


@dataclass
class Ledger:
    """One user's ledger channel with Ingrid."""

    user: str
    params: ChannelParams
    parties: tuple[str, str]
    user_side: int
    deposits: list[int]
    # Every state both signed, oldest first (version == index). All non-final: ledgers end by disputes.
    states: list[LedgerState]
    registered: LedgerState | None = None
    # Both sides' payouts before the lock shares, settled by the contract when `registered` was
    # registered (deposits are refused from then on, so conclusion pays exactly these plus the shares).
    base_outcome: tuple[int, int] | None = None
    registered_at: int = 0
    deadline: int = 0
    concluded: bool = False
    concluded_state: LedgerState | None = None
    payouts: tuple[int, int] | None = None
    # Who answered the current dispute with the latest state ("user" or "watcher"), if anybody.
    answered_by: str | None = None

    @property
    def latest(self) -> LedgerState:
        return self.states[-1]

    @property
    def ingrid_side(self) -> int:
        return 1 - self.user_side

    @property
    def live(self) -> bool:
        """Off-chain updates go on: no dispute, not concluded."""
        return self.registered is None and not self.concluded

    @property
    def disputed(self) -> bool:
        return self.registered is not None and not self.concluded

    def balance(self, side: int) -> int:
        return (self.latest.balance_a, self.latest.balance_b)[side]


@dataclass
class Virtual:
    """One virtual channel between users[0] (the params' alice) and users[1] (the params' bob)."""

    name: str
    params: VirtualParams
    users: tuple[str, str]
    ledgers: tuple[int, int]
    honest: int
    # Every non-final state both endpoints signed (version == index).
    states: list[VirtualState]
    final: VirtualState | None = None
    # The final state replaced the lock in both ledger channels (cooperative close off-chain).
    closed_offchain: bool = False
    # The on-chain record.
    record: VirtualState | None = None
    registered_at: int = 0
    deadline: int = 0
    # Who registered the honest endpoint's best state ("honest" or "watcher"), if anybody.
    answered_by: str | None = None
    # Outcome (balance_alice, balance_bob) each ledger channel split the lock by, read at its conclusion.
    outcomes: dict[int, tuple[int, int]] = field(default_factory=dict)

    @property
    def best(self) -> VirtualState:
        """The state the honest endpoint registers: the final one if signed, else the latest."""
        return self.final or self.states[-1]

    @property
    def expiry(self) -> int:
        return self.params.validity + self.params.challenge_duration

    @property
    def dishonest_user(self) -> str:
        return self.users[1 - self.honest]

    @property
    def honest_user(self) -> str:
        return self.users[self.honest]

    def settlement(self, ts: int) -> tuple[bool, int, int]:
        """The outcome the spec promises at time `ts`: (settled, balance_alice, balance_bob)."""
        return model.virtual_settlement(self.params, self.record, self.deadline, ts)

    def settle_bound(self) -> int:
        """When the outcome is settled at the latest, as things stand: the deadline of a registered
        channel (fixed by the first registration, never extended), or `validity + challenge_duration`
        for one nobody registered (no registration is possible from then on). Either way at most
        `validity + 2 * challenge_duration`."""
        return self.deadline if self.record is not None else self.expiry

    def answered_in_time(self) -> bool:
        """The honest endpoint's best state is what settles (or there was nothing to answer)."""
        if self.record is None:
            return self.best.version == 0
        return self.record.version == self.best.version
