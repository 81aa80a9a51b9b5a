"""Signaling and data-channel messages between studio and worker.

Signaling runs over the worker's WebSocket ``/ws`` as JSON objects with a ``type``.
Requests carry a ``request_id`` that the reply echoes. The ``parameters`` data channel
carries parameter sets (studio -> worker), their acknowledgements, and heartbeats.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from tether import safe_json
from tether.media.sdp_check import MAX_SDP_BYTES

AUTH_FAILED_CLOSE_CODE = 4401
# One signaling message: an offer's SDP plus its parameters, with room to spare.
MAX_MESSAGE_BYTES = 256 * 1024
DATA_CHANNEL_LABEL = "parameters"


class ProtocolError(ValueError):
    """A message that is not valid JSON or not a known, well-formed message."""

    def __init__(self, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    request_id: str | None = None


# --- studio -> worker (signaling) ---
class GetIceServers(_Message):
    type: Literal["get_ice_servers"]


class Offer(_Message):
    type: Literal["offer"]
    sdp: str = Field(min_length=1, max_length=MAX_SDP_BYTES)
    sdp_type: Literal["offer"] = "offer"
    initial_parameters: dict[str, Any] = Field(default_factory=dict, alias="initialParameters")
    parameters_version: int = Field(default=0, ge=0)
    resume_session_id: str | None = Field(default=None, max_length=64)
    # The secret the worker gave this session's studio in its answer: ids are listed by
    # GET /api/v1/sessions, so an id alone must not let anyone take a session over.
    resume_secret: str | None = Field(default=None, max_length=256)


class IceCandidate(_Message):
    type: Literal["icecandidate"]
    session_id: str | None = Field(default=None, alias="sessionId")
    candidate: dict[str, Any] | None = None


class Ping(_Message):
    type: Literal["ping"]
    t: float | None = None


StudioMessage = Annotated[GetIceServers | Offer | IceCandidate | Ping, Field(discriminator="type")]
_studio_adapter: TypeAdapter[StudioMessage] = TypeAdapter(StudioMessage)


def parse_studio_message(raw: str | bytes) -> GetIceServers | Offer | IceCandidate | Ping:
    """Parse one signaling message sent to the worker, or raise ProtocolError."""
    try:
        data = safe_json.loads(raw, MAX_MESSAGE_BYTES)
    except safe_json.BadJson as exc:
        raise ProtocolError(f"bad message: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError("message must be a JSON object with a 'type'")
    request_id = data.get("request_id")
    request_id = request_id if isinstance(request_id, str) else None
    if "type" not in data:
        raise ProtocolError("message has no 'type'", request_id)
    known = ("get_ice_servers", "offer", "icecandidate", "ping")
    if data["type"] not in known:
        raise ProtocolError(
            f"unknown message type {str(data['type'])[:40]!r}; expected one of {', '.join(known)}",
            request_id,
        )
    try:
        return _studio_adapter.validate_python(data)
    except ValidationError as exc:
        raise ProtocolError(
            f"bad {data['type']!r} message: {_first_error(exc)}", request_id
        ) from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"] if not isinstance(p, int) or p) or "message"
    return f"{where}: {err['msg']}"


# --- worker -> studio (signaling) ---
def ready(connection_id: str, instance_id: str, pipelines: list[dict[str, Any]]) -> dict[str, Any]:
    # instance_id changes when the worker process restarts: its media sessions are gone.
    return {
        "type": "ready",
        "connection_id": connection_id,
        "instance_id": instance_id,
        "pipelines": pipelines,
    }


def answer(
    request_id: str | None, sdp: str, session_id: str, resumed: bool, resume_secret: str
) -> dict[str, Any]:
    return {
        "type": "answer",
        "request_id": request_id,
        "sdp": sdp,
        "sdp_type": "answer",
        "sessionId": session_id,
        "resumed": resumed,
        "resume_secret": resume_secret,
    }


def error(request_id: str | None, message: str, code: str = "bad_request") -> dict[str, Any]:
    return {"type": "error", "request_id": request_id, "code": code, "message": message}


# --- data channel ---
# Typed messages on the peer connection's data channels, used by both ends. The
# ``parameters`` channel (reliable, ordered) carries parameter sets and their replies;
# the heartbeat rides its own unordered, no-retransmit channel, so a lost packet never
# holds a pong back behind a retransmit.
HEARTBEAT_CHANNEL_LABEL = "heartbeat"


class _ChannelMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Parameters(_ChannelMessage):
    """studio -> worker: the full, merged parameter set at one version."""

    type: Literal["parameters"] = "parameters"
    version: int = Field(ge=0)
    parameters: dict[str, Any]


class ParametersAck(_ChannelMessage):
    """worker -> studio: the worker applied exactly this version."""

    type: Literal["parameters_ack"] = "parameters_ack"
    version: int = Field(ge=0)


class ParametersError(_ChannelMessage):
    """worker -> studio: this version was rejected; the previous one stays applied."""

    type: Literal["parameters_error"] = "parameters_error"
    version: int
    message: str


class HeartbeatPing(_ChannelMessage):
    type: Literal["ping"] = "ping"
    seq: int
    t: float


class HeartbeatPong(_ChannelMessage):
    type: Literal["pong"] = "pong"
    seq: int
    t: float
    # Frames the worker's pipeline has put out in this session: while it rises, frames
    # missing at the studio are the path's fault (congestion), not a stuck pipeline.
    frames_out: int | None = None
    # Frames that reached the pipeline: while these do not grow either, our frames are
    # not getting through (congestion upstream), and the pipeline is not to blame.
    frames_in: int | None = None


class ChannelError(_ChannelMessage):
    """Either way: a message that could not be understood."""

    type: Literal["error"] = "error"
    message: str


class PipelineError(_ChannelMessage):
    """worker -> studio: the pipeline failed on ``count`` frames so far (``message``: the
    latest failure; None once it works again)."""

    type: Literal["pipeline_error"] = "pipeline_error"
    count: int = Field(ge=0)
    message: str | None = None


_RTP_TIMESTAMP = Field(ge=0, lt=1 << 32)


class FrameTiming(_ChannelMessage):
    """worker -> studio, on the heartbeat channel: the frame the worker sent with RTP
    timestamp ``output`` was made from the one that came with ``input``, and the
    pipeline took ``worker_ms`` on it. The studio matches both against the frames it
    sent and got back: latency measured from the frames themselves."""

    type: Literal["timing"] = "timing"
    input: int = _RTP_TIMESTAMP
    output: int = _RTP_TIMESTAMP
    worker_ms: float = Field(ge=0, le=3_600_000)


ChannelMessage = Annotated[
    Parameters | ParametersAck | ParametersError | HeartbeatPing | HeartbeatPong
    | ChannelError | PipelineError | FrameTiming,
    Field(discriminator="type"),
]  # fmt: skip
_channel_adapter: TypeAdapter[ChannelMessage] = TypeAdapter(ChannelMessage)
CHANNEL_TYPES = (
    "parameters", "parameters_ack", "parameters_error", "ping", "pong", "error",
    "pipeline_error", "timing",
)  # fmt: skip


def parse_channel_message(raw: str | bytes) -> ChannelMessage:
    """Parse one data-channel message, or raise ProtocolError."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ProtocolError("data-channel message is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError("data-channel message must be an object with a 'type'")
    if data["type"] not in CHANNEL_TYPES:
        raise ProtocolError(f"unknown message type {data['type']!r}")
    try:
        return _channel_adapter.validate_python(data)
    except ValidationError as exc:
        raise ProtocolError(f"bad {data['type']!r} message: {_first_error(exc)}") from None


def encode(message: BaseModel) -> str:
    """A protocol model as compact JSON, with its wire names."""
    return message.model_dump_json(by_alias=True, exclude_none=False)


def json_dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))
