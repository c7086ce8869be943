"""JSON-RPC 2.0 as the hub speaks it (docs/API.md): the request envelope, the error codes, and the mapping
of every perun_vyper exception to one of them. Nothing here touches a channel."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from ..errors import (
    ChainUnavailable,
    InvalidParams,
    InvalidSignature,
    InvalidState,
    RefusedUpdate,
    StoreError,
    Unenforceable,
)

# JSON-RPC 2.0 standard codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# Session errors (1xxx): the request was not run.
UNAUTHENTICATED = 1001
AUTH_FAILED = 1002
NOT_YOUR_CHANNEL = 1003
RATE_LIMITED = 1004
REQUEST_TOO_LARGE = 1005
PEER_OFFLINE = 1006
# Protocol refusals (2xxx), one per perun_vyper exception: the hub checked the request and refused it.
REFUSED_UPDATE = 2001
UNENFORCEABLE = 2002
INVALID_SIGNATURE = 2003
INVALID_STATE = 2004
INVALID_CHANNEL_PARAMS = 2005
STORE_ERROR = 2006
CHAIN_UNAVAILABLE = 2007

# Most specific first: Unenforceable is a RefusedUpdate.
_PERUN_CODES: tuple[tuple[type[Exception], int], ...] = (
    (Unenforceable, UNENFORCEABLE),
    (RefusedUpdate, REFUSED_UPDATE),
    (InvalidSignature, INVALID_SIGNATURE),
    (InvalidState, INVALID_STATE),
    (InvalidParams, INVALID_CHANNEL_PARAMS),
    (StoreError, STORE_ERROR),
    (ChainUnavailable, CHAIN_UNAVAILABLE),
)

RequestId = int | str | None
_MAX_ID_LENGTH = 128


class RpcError(Exception):
    """A JSON-RPC error to answer with: ``code``, a message that says what to do, optional ``data``."""

    def __init__(self, code: int, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def from_exception(exc: Exception, hide: tuple[str, ...] = ()) -> RpcError | None:
    """The error a perun_vyper refusal maps to (None for anything else, which is an internal error). The
    message is the exception's own, with every string of ``hide`` (the hub's file paths) removed."""
    for kind, code in _PERUN_CODES:
        if isinstance(exc, kind):
            message = str(exc)
            for secret in hide:
                message = message.replace(secret, "the hub's store")
            data: dict[str, Any] = {"type": kind.__name__}
            if isinstance(exc, Unenforceable):
                data |= {"channel": "0x" + exc.channel.hex(), "situation": exc.situation}
            return RpcError(code, message, data)
    return None


class Request(msgspec.Struct, forbid_unknown_fields=True):
    """One JSON-RPC request; ``params`` is decoded later, by the method's own schema."""

    jsonrpc: Literal["2.0"]
    method: str
    id: int | str | msgspec.UnsetType | None = msgspec.UNSET
    params: msgspec.Raw = msgspec.Raw(b"{}")


_request_decoder = msgspec.json.Decoder(Request)
_encoder = msgspec.json.Encoder()


def _salvage_id(frame: bytes | str) -> RequestId:
    """The id of a request that failed validation, if it has a usable one (else null, per JSON-RPC)."""
    try:
        data = msgspec.json.decode(frame)
    except msgspec.DecodeError:
        return None
    if isinstance(data, dict):
        value = data.get("id")
        if isinstance(value, bool):
            return None
        if isinstance(value, int) or (isinstance(value, str) and len(value) <= _MAX_ID_LENGTH):
            return value
    return None


def parse_request(frame: bytes | str) -> Request:
    """Decode one frame into a request, or raise ``(RpcError, id)`` as an ``InvalidFrame``."""
    try:
        request = _request_decoder.decode(frame)
    except msgspec.ValidationError as exc:
        request_id = _salvage_id(frame)
        try:
            is_batch = isinstance(msgspec.json.decode(frame), list)
        except msgspec.DecodeError:
            is_batch = False
        if is_batch:
            raise InvalidFrame(
                INVALID_REQUEST, "batch requests are not supported; send one request per frame"
            ) from None
        raise InvalidFrame(INVALID_REQUEST, f"not a JSON-RPC 2.0 request: {exc}", request_id) from None
    except msgspec.DecodeError as exc:
        raise InvalidFrame(PARSE_ERROR, f"the frame is not valid JSON: {exc}") from None
    if request.id is msgspec.UNSET:
        raise InvalidFrame(
            INVALID_REQUEST, "the request has no id; every hub method answers, so send requests, not notifications"
        )
    if isinstance(request.id, str) and len(request.id) > _MAX_ID_LENGTH:
        raise InvalidFrame(INVALID_REQUEST, f"the id is longer than {_MAX_ID_LENGTH} characters")
    return request


class InvalidFrame(RpcError):
    """A frame that is not a usable request, with the id to answer under (null when none can be read)."""

    def __init__(self, code: int, message: str, request_id: RequestId = None) -> None:
        super().__init__(code, message)
        self.request_id = request_id


def decode_params(request: Request, schema: type[Any]) -> Any:
    """The request's params as ``schema`` (a msgspec Struct); INVALID_PARAMS naming the first bad field."""
    try:
        return msgspec.json.decode(request.params, type=schema)
    except msgspec.ValidationError as exc:
        raise RpcError(INVALID_PARAMS, f"invalid params of {request.method}: {exc}") from None
    except msgspec.DecodeError as exc:  # pragma: no cover - the envelope decoded, so its params are JSON
        raise RpcError(INVALID_PARAMS, f"invalid params of {request.method}: {exc}") from None


def result(request_id: RequestId, value: Any) -> bytes:
    return _encoder.encode({"jsonrpc": "2.0", "id": request_id, "result": value})


def error(request_id: RequestId, err: RpcError) -> bytes:
    body: dict[str, Any] = {"code": err.code, "message": err.message}
    if err.data is not None:
        body["data"] = err.data
    return _encoder.encode({"jsonrpc": "2.0", "id": request_id, "error": body})


def notification(method: str, params: Any) -> bytes:
    return _encoder.encode({"jsonrpc": "2.0", "method": method, "params": params})
