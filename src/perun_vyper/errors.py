"""Typed exceptions of the off-chain side. Each message says what to do about it."""


class PerunError(Exception):
    """Base class of every error raised by perun_vyper."""


class InvalidParams(PerunError, ValueError):
    """Channel parameters that the adjudicator would refuse."""


class InvalidState(PerunError, ValueError):
    """A state that breaks the channel's rules (conservation, bounds, versions)."""


class InvalidSignature(PerunError, ValueError):
    """A signature that is malformed, malleable, or not by the expected signer."""


class RefusedUpdate(PerunError):
    """An update this party will not sign or accept (a rule of the protocol forbids it); nothing was stored."""


class Unenforceable(RefusedUpdate):
    """A state this party will not sign because the chain could no longer enforce it (SPEC 11.1): the
    channel it depends on is registered, concluded, or too close to its expiry. ``channel`` names that
    channel and ``situation`` what the chain says about it."""

    def __init__(self, channel: bytes, situation: str, advice: str) -> None:
        self.channel = channel
        self.situation = situation
        super().__init__(f"channel 0x{channel.hex()} is {situation}; {advice}")
