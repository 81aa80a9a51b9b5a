"""Typed messages on the peer connection's data channels, used by both ends.

The ``parameters`` channel (reliable, ordered) carries parameter sets and their replies;
the heartbeat rides its own unordered, no-retransmit channel, so a lost packet never
holds a pong back behind a retransmit."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from tether.protocol.wire import ProtocolError, first_error


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
    # The pipeline as the worker measures it: frames it put out per second lately, and
    # its median time per frame (None: no frames lately).
    pipeline_fps: float | None = Field(default=None, ge=0)
    pipeline_ms: float | None = Field(default=None, ge=0)


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


class PipelineState(_ChannelMessage):
    """worker -> studio: the session's chosen ``pipeline`` is ``loading`` (its load step
    or its first call has not returned: a model loads or warms up; ``elapsed_s`` so far,
    ``progress`` where the pipeline says), ``ready``, or in ``error`` (``error`` in
    words; a failing frame also comes as ``PipelineError``). ``running`` names the
    pipeline whose frames come back meanwhile: the previous one while the next loads
    (make-before-break), None while none does (the fallback shows); ``note`` says why
    the previous one was not kept. Sent on each change and about once a second while
    it loads."""

    type: Literal["pipeline_state"] = "pipeline_state"
    state: Literal["loading", "ready", "error"]
    pipeline: str
    stage: str | None = None  # what the load is doing ("first frame")
    elapsed_s: float | None = Field(default=None, ge=0)  # loading so far, or the load took
    progress: float | None = Field(default=None, ge=0, le=1)  # the load's fraction done
    running: str | None = None
    error: str | None = None
    note: str | None = None


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
    | ChannelError | PipelineError | PipelineState | FrameTiming,
    Field(discriminator="type"),
]  # fmt: skip
_channel_adapter: TypeAdapter[ChannelMessage] = TypeAdapter(ChannelMessage)
CHANNEL_TYPES = (
    "parameters", "parameters_ack", "parameters_error", "ping", "pong", "error",
    "pipeline_error", "pipeline_state", "timing",
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
        raise ProtocolError(f"bad {data['type']!r} message: {first_error(exc)}") from None
