"""Every exception perun_vyper raises, under one base class. Each message says what to do about it.

Callers catch ``PerunError`` for "perun_vyper refused", or one subclass for one kind of refusal. A
``ValueError`` subclass marks bad input that the caller can fix by passing something else.
"""


class PerunError(Exception):
    """Base class of every error raised by perun_vyper."""


class InvalidParams(PerunError, ValueError):
    """Channel parameters (or another argument) that the adjudicator or this package would refuse."""


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


class StoreError(PerunError):
    """The store refused a write that would replace or contradict what it already holds, or cannot be used."""


class HubError(PerunError):
    """The hub answered a request with a JSON-RPC error (docs/API.md, "Errors"): ``code`` and ``data`` as
    sent, the hub's message as the exception's text. Nothing the request asked for was done unless the
    error says so."""

    def __init__(self, code: int, message: str, data: object = None) -> None:
        self.code = code
        self.data = data
        super().__init__(message)


class HubUnavailable(PerunError):
    """The connection to the hub is closed (or was never opened); reconnect, log in and ``resume()``."""


class WalletUnavailable(PerunError):
    """The hub's proposal could not reach the wallet, or the wallet did not countersign it in time. The
    proposal stays in flight in the hub's store; it completes when the wallet logs in again and resumes
    (``HubClient.resume`` countersigns what ``ledger.proposals`` lists)."""


class AccountError(PerunError):
    """An account cannot be used to sign unattended (locked keyfile without its passphrase, a hardware
    wallet, a key that does not match its address)."""


class ChainUnavailable(PerunError):
    """A chain operation was asked of a client that has no adjudicator contract attached."""


class DeploymentError(PerunError):
    """A deployment cannot go on as asked (wrong network, a mismatching record, code that differs)."""


class DemoFailed(PerunError):
    """A check of the demo failed: a balance or an outcome differs from what the protocol guarantees."""


class LoadTestFailed(PerunError):
    """The load test could not run (a process failed, a phase timed out) or a balance check failed."""
