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
