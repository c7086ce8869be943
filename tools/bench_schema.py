"""Decode and validate one typical ``ledger.update`` request (envelope, then params) with msgspec, as
perun_vyper.node does, and with pydantic v2 models of the same schema; prints microseconds per request.
The figures in docs/API.md ("Message validation") come from this script:

    PYTHONPATH=src python tools/bench_schema.py
"""

from __future__ import annotations

import json
import timeit
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from perun_vyper import ChannelParams, LedgerState, Signer
from perun_vyper.core.codec import Domain
from perun_vyper.node import rpc, schema

Bytes32 = Annotated[str, StringConstraints(pattern="^0x[0-9a-fA-F]{64}$")]
Sig = Annotated[str, StringConstraints(pattern="^0x[0-9a-fA-F]{130}$")]
Uint = Annotated[str, StringConstraints(pattern="^(0|[1-9][0-9]{0,77})$")]


class Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True, strict=True)


class LockModel(Model):
    channel: Bytes32
    amount_a: Uint
    amount_b: Uint


class StateModel(Model):
    channel: Bytes32
    version: Annotated[int, Field(ge=0, le=2**53 - 1)]
    balance_a: Uint
    balance_b: Uint
    funding_a: Uint
    funding_b: Uint
    locks: Annotated[list[LockModel], Field(max_length=16)] = []
    is_final: bool = False


class UpdateModel(Model):
    state: StateModel
    signature: Sig


class UpdateParamsModel(Model):
    update: UpdateModel


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    jsonrpc: Literal["2.0"]
    method: str
    id: int | str | None
    params: UpdateParamsModel


def _frame() -> bytes:
    key = bytes.fromhex("a1" * 32)
    signer = Signer(key)
    params = ChannelParams(signer.address, Signer(bytes.fromhex("1d" * 32)).address, nonce=1)
    state = LedgerState.initial(params.channel_id, 10**18, 10**18).pay(12345, 0)
    domain = Domain.ledger(1, "0x" + "5e" * 20)
    update = schema.UpdateMsg(schema.state_to_msg(state), "0x" + signer.sign_state(state, domain).hex())
    body = {"jsonrpc": "2.0", "id": 7, "method": "ledger.update", "params": {"update": update}}
    import msgspec

    return msgspec.json.encode(body)


def main() -> None:
    frame = _frame()

    def with_msgspec() -> object:
        request = rpc.parse_request(frame)
        return rpc.decode_params(request, schema.UpdateParams)

    def with_pydantic() -> object:
        return RequestModel.model_validate_json(frame)

    assert with_pydantic().params.update.signature == json.loads(frame)["params"]["update"]["signature"]
    number = 20_000
    print(f"ledger.update request: {len(frame)} bytes")
    for name, fn in (("msgspec", with_msgspec), ("pydantic", with_pydantic)):
        best = min(timeit.repeat(fn, number=number, repeat=5)) / number
        print(f"{name:9} {best * 1e6:6.2f} us per request (decode + validate, best of 5 x {number})")


if __name__ == "__main__":
    main()
