"""Signaling messages from the worker to the studio: built as these models at the
worker, and parsed back into them at the studio by ``parse_worker_message``.

Replies echo their request's ``request_id``; ``ready`` (first, once per socket) and
``draining`` come unasked. Field order is the wire's key order."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from tether.protocol.wire import MAX_WORKER_MESSAGE_BYTES, parse_signaling


class _WorkerMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Ready(_WorkerMessage):
    """The first message on every socket: who answers, and what it can run."""

    type: Literal["ready"] = "ready"
    connection_id: str
    # Changes when the worker process restarts: its media sessions are gone.
    instance_id: str
    # One description per pipeline (name, summary, parameters' JSON Schema).
    pipelines: list[dict[str, Any]] = Field(default_factory=list)


class Answer(_WorkerMessage):
    """The reply to an offer: the worker's SDP and how to resume the session."""

    type: Literal["answer"] = "answer"
    request_id: str | None
    sdp: str
    sdp_type: Literal["answer"] = "answer"
    session_id: str = Field(alias="sessionId")
    resumed: bool
    # Given only to the studio that made the session; a resume must present it.
    resume_secret: str


class WorkerError(_WorkerMessage):
    """The reply to a request that failed; ``code`` says why (e.g. ``busy``)."""

    type: Literal["error"] = "error"
    request_id: str | None
    code: str = "bad_request"
    message: str


class Pong(_WorkerMessage):
    type: Literal["pong"] = "pong"
    request_id: str | None
    t: float | None = None


class IceServersReply(_WorkerMessage):
    """STUN and TURN servers (TURN with fresh credentials) for this studio's peers."""

    type: Literal["ice_servers"] = "ice_servers"
    request_id: str | None
    ice_servers: list[dict[str, Any]]


class Draining(_WorkerMessage):
    """Unasked: the worker takes nobody new and stops within ``deadline_s``."""

    type: Literal["draining"] = "draining"
    deadline_s: float


# What the worker says unasked, after ``ready``.
Notice = Draining
WorkerReply = Answer | WorkerError | Pong | IceServersReply
WorkerMessage = Annotated[
    Ready | Answer | WorkerError | Pong | IceServersReply | Draining, Field(discriminator="type")
]
_worker_adapter: TypeAdapter[WorkerMessage] = TypeAdapter(WorkerMessage)
WORKER_TYPES = ("ready", "answer", "error", "pong", "ice_servers", "draining")


def parse_worker_message(
    raw: str | bytes,
) -> Ready | Answer | WorkerError | Pong | IceServersReply | Draining:
    """Parse one signaling message sent to the studio, or raise ProtocolError."""
    return parse_signaling(raw, _worker_adapter, WORKER_TYPES, MAX_WORKER_MESSAGE_BYTES)
