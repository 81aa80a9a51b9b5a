"""What every signaling and data-channel message shares: the error type, the limits,
the channel labels, and JSON in and out."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from tether import safe_json

AUTH_FAILED_CLOSE_CODE = 4401
# One signaling message to the worker: an offer's SDP plus its parameters, with room
# to spare.
MAX_MESSAGE_BYTES = 256 * 1024
# One signaling message from the worker: its ``ready`` lists every pipeline's schema.
MAX_WORKER_MESSAGE_BYTES = 4 * 1024 * 1024
DATA_CHANNEL_LABEL = "parameters"
HEARTBEAT_CHANNEL_LABEL = "heartbeat"

Message = TypeVar("Message")


class ProtocolError(ValueError):
    """A message that is not valid JSON or not a known, well-formed message."""

    def __init__(self, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


def parse_signaling(
    raw: str | bytes, adapter: TypeAdapter[Message], known: tuple[str, ...], max_bytes: int
) -> Message:
    """Parse one signaling message of the ``known`` types, or raise ProtocolError (with
    the message's request_id, when it has one, so that the reply can echo it)."""
    try:
        data = safe_json.loads(raw, max_bytes)
    except safe_json.BadJson as exc:
        raise ProtocolError(f"bad message: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError("message must be a JSON object with a 'type'")
    request_id = data.get("request_id")
    request_id = request_id if isinstance(request_id, str) else None
    if "type" not in data:
        raise ProtocolError("message has no 'type'", request_id)
    if data["type"] not in known:
        raise ProtocolError(
            f"unknown message type {str(data['type'])[:40]!r}; expected one of {', '.join(known)}",
            request_id,
        )
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise ProtocolError(
            f"bad {data['type']!r} message: {first_error(exc)}", request_id
        ) from None


def first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"] if not isinstance(p, int) or p) or "message"
    return f"{where}: {err['msg']}"


def encode(message: BaseModel) -> str:
    """A protocol model as compact JSON, with its wire names."""
    return message.model_dump_json(by_alias=True, exclude_none=False)


def json_dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))
