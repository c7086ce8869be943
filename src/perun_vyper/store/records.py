"""What a store holds, as text: a channel's record (parameters, domain, owner) and the JSON form of
parameters, states and domains. Any backend stores these strings; JSON keeps a store readable with
standard tools, and every value round-trips exactly (integers are arbitrary precision in Python's JSON).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Literal, TypeVar

from ..core.app import AppParams, AppState
from ..core.channel import ChannelParams
from ..core.codec import Domain, hexstr, unhex
from ..core.state import LedgerState, Lock
from ..core.virtual import VirtualParams, VirtualState

Kind = Literal["ledger", "virtual", "app"]
Params = ChannelParams | VirtualParams | AppParams
State = LedgerState | VirtualState | AppState
T = TypeVar("T")


@dataclass(frozen=True)
class ChannelRecord:
    """A channel this store's owner takes part in (or watches for someone)."""

    channel_id: bytes
    kind: Kind
    params: Params
    domain: Domain
    owner: str


def _plain(value: object) -> object:
    """One field in JSON: bytes as ``0x`` hex, a lock tuple as ``[[channel, amount_a, amount_b], ...]``."""
    if isinstance(value, bytes):
        return hexstr(value)
    if isinstance(value, tuple):
        return [[hexstr(lock.channel), lock.amount_a, lock.amount_b] for lock in value]
    return value


# Each stored type's fields, and which of them hold bytes, read once from the dataclasses.
_FIELDS = {
    cls: tuple(f.name for f in fields(cls))
    for cls in (ChannelParams, VirtualParams, AppParams, LedgerState, VirtualState, AppState, Domain)
}
_BYTES = {cls: tuple(f.name for f in fields(cls) if f.type == "bytes") for cls in _FIELDS}
_PARAMS = {"ledger": ChannelParams, "virtual": VirtualParams, "app": AppParams}
_STATES = {"ledger": LedgerState, "virtual": VirtualState, "app": AppState}
# The kinds a store holds, as the CHECK of its channels table in both backends (and of a migrated one).
KIND_CHECK = "CHECK (kind IN (" + ", ".join(f"'{kind}'" for kind in _PARAMS) + "))"


def _encode(value: Params | State | Domain) -> str:
    return json.dumps({name: _plain(getattr(value, name)) for name in _FIELDS[type(value)]})


def _decode(cls: type[T], text: str) -> T:
    data = json.loads(text)
    for name in _BYTES[cls]:
        data[name] = unhex(data[name])
    if "locks" in data:
        data["locks"] = tuple(Lock(unhex(channel), a, b) for channel, a, b in data["locks"])
    return cls(**data)


def encode_params(params: Params) -> str:
    return _encode(params)


def decode_params(kind: Kind, text: str) -> Params:
    return _decode(_PARAMS[kind], text)


def encode_state(state: State) -> str:
    return _encode(state)


def decode_state(kind: Kind, text: str) -> State:
    return _decode(_STATES[kind], text)


def encode_domain(domain: Domain) -> str:
    return _encode(domain)


def decode_domain(text: str) -> Domain:
    return _decode(Domain, text)
