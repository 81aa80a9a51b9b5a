"""Signaling messages from the studio to the worker.

Signaling runs over the worker's WebSocket ``/ws`` as JSON objects with a ``type``.
Requests carry a ``request_id`` that the reply echoes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from tether.media.sdp_check import MAX_SDP_BYTES
from tether.protocol.wire import MAX_MESSAGE_BYTES, json_dumps, parse_signaling


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    request_id: str | None = None


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
# What the studio asks and waits an answer for.
StudioRequest = GetIceServers | Offer | Ping
_studio_adapter: TypeAdapter[StudioMessage] = TypeAdapter(StudioMessage)
STUDIO_TYPES = ("get_ice_servers", "offer", "icecandidate", "ping")


def parse_studio_message(raw: str | bytes) -> GetIceServers | Offer | IceCandidate | Ping:
    """Parse one signaling message sent to the worker, or raise ProtocolError."""
    return parse_signaling(raw, _studio_adapter, STUDIO_TYPES, MAX_MESSAGE_BYTES)


def request_text(message: StudioRequest, request_id: str) -> str:
    """A request as the worker reads it: unset fields left out, the id last."""
    wire = message.model_dump(by_alias=True, exclude_none=True, exclude={"request_id"})
    return json_dumps({**wire, "request_id": request_id})
