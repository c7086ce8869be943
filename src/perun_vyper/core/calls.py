"""The arguments of every adjudicator call that carries states or signatures, built in one place for the
client, the watchtower, the hub and the gas report. Each function returns the positional arguments of
the contract function of the same name (pass them as ``contract.register(*args, sender=...)``).

Signatures go in the EIP-2098 form (``compact``), which refuses a malformed signature before it costs gas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import InvalidState
from .channel import ChannelParams
from .keys import compact
from .protocol import SignedState, VirtualFinal
from .state import LedgerState, Lock
from .virtual import VirtualParams, VirtualState


def register(params: ChannelParams | VirtualParams, signed: SignedState) -> tuple[Any, ...]:
    """``LedgerAdjudicator.register`` (a ledger state) or ``VirtualAdjudicator.register`` (a virtual one)."""
    sig_a, sig_b = signed.signatures()
    kind = LedgerState if isinstance(params, ChannelParams) else VirtualState
    if not isinstance(signed.state, kind) or signed.state.channel != params.channel_id:
        raise InvalidState(f"the state is not a {kind.__name__} of channel 0x{params.channel_id.hex()}")
    return params.as_tuple(), signed.state.as_tuple(), compact(sig_a), compact(sig_b)


def register_final(params: VirtualParams, evidence: VirtualFinal) -> tuple[Any, ...]:
    """``VirtualAdjudicator.register`` of a final virtual state Alice and Bob signed."""
    return register(params, SignedState(evidence.state, evidence.sig_alice, evidence.sig_bob))


def close(params: ChannelParams, signed: SignedState) -> tuple[Any, ...]:
    """``LedgerAdjudicator.close``: the final state as a ``FinalState`` (the contract fills in the rest)."""
    sig_a, sig_b = signed.signatures()
    state = signed.state
    if not isinstance(state, LedgerState) or state.channel != params.channel_id:
        raise InvalidState(f"the state is not a ledger state of channel 0x{params.channel_id.hex()}")
    return params.as_tuple(), state.final_tuple(), compact(sig_a), compact(sig_b)


def conclude(
    params: ChannelParams, locks: Sequence[Lock] = (), virtuals: Sequence[VirtualParams] = ()
) -> tuple[Any, ...]:
    """``LedgerAdjudicator.conclude``: the registered state's locks and, in the same order, the parameters
    of each lock's virtual channel (both empty unless the registered state has locks)."""
    if [lock.channel for lock in locks] != [virtual.channel_id for virtual in virtuals]:
        raise InvalidState("conclude takes the parameters of each lock's virtual channel, in the locks' order")
    return params.as_tuple(), [lock.as_tuple() for lock in locks], [virtual.as_tuple() for virtual in virtuals]
