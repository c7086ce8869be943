"""Ledger channel parameters and the channel id the adjudicator derives from them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from eth_utils import is_address, to_checksum_address

from ..errors import InvalidParams
from .codec import CHANNEL_PARAMS
from .constants import ETH, MAX_CHALLENGE_DURATION, MIN_CHALLENGE_DURATION

_TOKEN_CHANNEL_BIT = 1 << 255


@dataclass(frozen=True)
class ChannelParams:
    """The fixed parameters of a ledger channel. Construction refuses what the contract refuses."""

    participant_a: str
    participant_b: str
    asset: str = ETH
    challenge_duration: int = MIN_CHALLENGE_DURATION
    nonce: int = 0

    def __post_init__(self) -> None:
        for name in ("participant_a", "participant_b", "asset"):
            value = getattr(self, name)
            if not is_address(value):
                raise InvalidParams(f"{name} {value!r} is not an address; pass a 20-byte hex address")
            object.__setattr__(self, name, to_checksum_address(value))
        if int(self.participant_a, 16) == 0 or int(self.participant_b, 16) == 0:
            raise InvalidParams("a participant is the zero address; use the participants' signing addresses")
        if self.participant_a == self.participant_b:
            raise InvalidParams("participant_a and participant_b are the same; a channel needs two parties")
        if not MIN_CHALLENGE_DURATION <= self.challenge_duration <= MAX_CHALLENGE_DURATION:
            raise InvalidParams(
                f"challenge_duration {self.challenge_duration}s is outside "
                f"[{MIN_CHALLENGE_DURATION}, {MAX_CHALLENGE_DURATION}]; pick a duration inside the bounds"
            )
        if not 0 <= self.nonce < 2**256:
            raise InvalidParams("nonce must fit in a uint256")

    @property
    def is_eth(self) -> bool:
        return int(self.asset, 16) == 0

    @cached_property
    def channel_id(self) -> bytes:
        """``hashStruct(params)`` with bit 255 replaced by the asset kind (0 ETH, 1 token)."""
        digest = CHANNEL_PARAMS.hash(self.as_tuple())
        value = int.from_bytes(digest, "big") & ~_TOKEN_CHANNEL_BIT
        if not self.is_eth:
            value |= _TOKEN_CHANNEL_BIT
        return value.to_bytes(32, "big")

    def side_of(self, address: str) -> int:
        """0 for participant A, 1 for participant B."""
        address = to_checksum_address(address)
        if address == self.participant_a:
            return 0
        if address == self.participant_b:
            return 1
        raise InvalidParams(f"{address} is not a participant of channel 0x{self.channel_id.hex()}")

    def as_tuple(self) -> tuple[Any, ...]:
        """The ABI tuple the adjudicator takes."""
        return (self.participant_a, self.participant_b, self.asset, self.challenge_duration, self.nonce)
