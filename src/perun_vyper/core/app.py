"""App channels: parameters that name an app, states that carry app data, and the registration a dispute
stores (contracts/AppAdjudicator.vy, docs/SPEC.md section 9)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from eth_abi import encode
from eth_utils import is_address, to_checksum_address

from ..errors import InvalidParams, InvalidState
from .channel import ChannelParams
from .codec import APP_STATE, keccak256
from .constants import ETH, MAX_APP_DATA, MAX_VERSION, MIN_CHALLENGE_DURATION
from .state import check_amount

# keccak256("PerunAppChannel"): the tag of an app channel's funding nonce (app_types._FUNDING_NONCE_TAG).
_FUNDING_NONCE_TAG = keccak256(b"PerunAppChannel")


@dataclass(frozen=True)
class AppParams:
    """The fixed parameters of an app channel: a ledger channel's, and the app whose rules it follows.
    Construction refuses what the contract refuses."""

    participant_a: str
    participant_b: str
    app: str
    asset: str = ETH
    challenge_duration: int = MIN_CHALLENGE_DURATION
    nonce: int = 0

    def __post_init__(self) -> None:
        if not is_address(self.app) or int(self.app, 16) == 0:
            raise InvalidParams(f"app {self.app!r} is not a contract address; pass the deployed app's address")
        object.__setattr__(self, "app", to_checksum_address(self.app))
        funding = self.funding_params  # checks the participants, asset and duration like a ledger channel
        object.__setattr__(self, "participant_a", funding.participant_a)
        object.__setattr__(self, "participant_b", funding.participant_b)
        object.__setattr__(self, "asset", funding.asset)

    @cached_property
    def funding_params(self) -> ChannelParams:
        """The ledger parameters the channel is funded under (``deposit_token`` takes these): the nonce
        commits to the app and this channel's nonce."""
        if not 0 <= self.nonce < 2**256:
            raise InvalidParams("nonce must fit in a uint256")
        nonce = keccak256(encode(["bytes32", "address", "uint256"], [_FUNDING_NONCE_TAG, self.app, self.nonce]))
        return ChannelParams(
            self.participant_a, self.participant_b, self.asset, self.challenge_duration, int.from_bytes(nonce, "big")
        )

    @property
    def channel_id(self) -> bytes:
        """The app channel id: the ledger id of the funding parameters."""
        return self.funding_params.channel_id

    def as_tuple(self) -> tuple[Any, ...]:
        """The ABI tuple the adjudicator takes."""
        return (self.participant_a, self.participant_b, self.asset, self.challenge_duration, self.nonce, self.app)


@dataclass(frozen=True)
class AppState:
    """One version of an app channel. Conservation: ``balance_a + balance_b == funding_a + funding_b``."""

    channel: bytes
    version: int
    balance_a: int
    balance_b: int
    funding_a: int
    funding_b: int
    app_data: bytes = b""
    is_final: bool = False

    def __post_init__(self) -> None:
        if len(self.channel) != 32:
            raise InvalidState("channel must be the 32-byte app channel id (AppParams.channel_id)")
        if not 0 <= self.version <= MAX_VERSION:
            raise InvalidState(f"version {self.version} does not fit in a uint64")
        for name in ("balance_a", "balance_b", "funding_a", "funding_b"):
            check_amount(name, getattr(self, name))
        if len(self.app_data) > MAX_APP_DATA:
            raise InvalidState(f"{len(self.app_data)} bytes of app data; a state carries at most {MAX_APP_DATA}")
        if self.balance_a + self.balance_b != self.funding_a + self.funding_b:
            raise InvalidState(
                f"balances {self.balance_a} + {self.balance_b} do not sum to the funding {self.funding_a} + "
                f"{self.funding_b}; a state must conserve the channel's funds"
            )

    def struct_hash(self) -> bytes:
        """EIP-712 ``hashStruct(state)``, as the adjudicator computes it."""
        return APP_STATE.hash(self.as_tuple())

    def as_tuple(self) -> tuple[Any, ...]:
        """The ABI tuple the adjudicator takes."""
        return (
            self.channel,
            self.version,
            self.balance_a,
            self.balance_b,
            self.funding_a,
            self.funding_b,
            bytes(self.app_data),
            self.is_final,
        )

    def finalized(self) -> AppState:
        """The next version, final: what both sign to close cooperatively."""
        if self.is_final:
            raise InvalidState("the state is already final")
        return replace(self, version=self.version + 1, is_final=True)

    def moved(self, move: Move) -> AppState:
        """The state ``move`` leads to, as the adjudicator builds it (``app_types._next_state``): same channel
        and funding, version one higher, not final. Refused (``InvalidState``) after a final state, or when
        the balances do not conserve the funding."""
        if self.is_final:
            raise InvalidState("no move follows a final state")
        return replace(
            self,
            version=self.version + 1,
            balance_a=move.balance_a,
            balance_b=move.balance_b,
            app_data=bytes(move.app_data),
        )

    @classmethod
    def initial(cls, channel: bytes, deposit_a: int, deposit_b: int, app_data: bytes) -> AppState:
        """Version 0: each side owns what it is about to deposit. Both sign it before funding."""
        return cls(channel, 0, deposit_a, deposit_b, deposit_a, deposit_b, app_data)


@dataclass(frozen=True)
class Move:
    """A force-move (``progress``): who moves, and the balances and app data of the next state. The
    adjudicator builds the next state from these and the state moved from (same channel and funding,
    version one higher, not final), so a move can change nothing else."""

    mover: int
    balance_a: int
    balance_b: int
    app_data: bytes

    @classmethod
    def between(cls, from_state: AppState, to_state: AppState, mover: int) -> Move:
        """The move from ``from_state`` to ``to_state``; refused (``InvalidState``) if no move leads there."""
        if mover not in (0, 1):
            raise InvalidState(f"mover {mover} is neither side 0 nor side 1")
        if from_state.is_final:
            raise InvalidState("no move follows a final state")
        kept = (to_state.channel, to_state.funding_a, to_state.funding_b, to_state.version, to_state.is_final)
        if kept != (from_state.channel, from_state.funding_a, from_state.funding_b, from_state.version + 1, False):
            raise InvalidState(
                "a move changes only the balances and the app data, adds one to the version and is not final"
            )
        return cls(mover, to_state.balance_a, to_state.balance_b, bytes(to_state.app_data))

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.mover, self.balance_a, self.balance_b, self.app_data)


@dataclass(frozen=True)
class Registration:
    """What an open dispute commits to (the adjudicator stores its hash): the registered or last moved
    state's hash, its version, its deadline, and ``agreed``, the version of the last registered state both
    signed (a ``Registered`` event's version; moves keep it). Calls that act on a dispute name it."""

    state_hash: bytes
    version: int
    deadline: int
    agreed: int

    @classmethod
    def of(cls, state: AppState, deadline: int, agreed: int | None = None) -> Registration:
        """The registration of ``state``: registered (``agreed`` is its own version) or moved to."""
        return cls(state.struct_hash(), state.version, deadline, state.version if agreed is None else agreed)

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.state_hash, self.version, self.deadline, self.agreed)

    def stored(self) -> bytes:
        """The word the adjudicator's ``registrations`` holds for this registration."""
        return keccak256(
            encode(
                ["bytes32", "uint64", "uint64", "uint64"], [self.state_hash, self.version, self.deadline, self.agreed]
            )
        )


NO_REGISTRATION = Registration(bytes(32), 0, 0, 0)
