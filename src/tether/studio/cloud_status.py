"""CloudStatus: what the studio says about its worker link and its stream, as one typed,
frozen model built from one snapshot of the link (``LinkStatus``) and the studio's own
stream state.

The API (``GET /api/v1/cloud/status``, the ``status`` events, the connect, disconnect
and reconnect replies), the metrics, ``tether status`` and the page all read this model.
Its JSON Schema is served at ``/api/v1/cloud/status/schema`` and committed beside the
page as ``web/cloud-status.schema.json`` (regenerate it with
``python -m tether.studio.cloud_status > src/tether/web/cloud-status.schema.json``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from tether.config import Fallback
from tether.studio.fleet import WorkerState
from tether.studio.link import LinkEvent, LinkState, LinkStatus, Recovery
from tether.studio.link.quality import Factor, Quality
from tether.studio.pipeline_status import PipelineStatus, pipeline_status

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class _Frozen(BaseModel):
    # Unknown keys are refused: the schema says exactly what the studio sends.
    model_config = ConfigDict(
        frozen=True, extra="forbid", serialize_by_alias=True, validate_by_name=True
    )


class LinkQuality(_Frozen):
    """How good a connected, streaming link is, and what limits it (None: nothing)."""

    level: Literal["good", "fair", "poor", "bad"]
    factor: Factor | None


class LinkStats(_Frozen):
    """Counters and measures, rounded as shown (None: not measured now)."""

    frames_sent: int
    frames_received: int
    fps_in: float
    fps_out: float
    heartbeat_rtt_ms: float | None
    media_loss: float | None
    bandwidth_kbps: float | None
    bandwidth_limited: bool
    media_latency_ms: float | None
    worker_ms: float | None
    # The pipeline's pace as the worker measures it: frames out per second, median ms.
    pipeline_fps: float | None = None
    pipeline_ms: float | None = None
    outages: int
    reconnects: int
    # Frames a second sent on to the worker, and the most allowed while its pipeline is
    # slower than the camera (None: every frame goes).
    upstream_fps: float | None
    upstream_fps_limit: float | None


class StateChange(_Frozen):
    """A transition of the link: ``from`` and ``to`` are link states."""

    kind: str
    from_: LinkState = Field(alias="from")
    to: LinkState
    reason: str
    at: float  # seconds since the epoch


class WorkerMove(_Frozen):
    """A move between a fleet's workers: ``from`` and ``to`` are worker URLs."""

    kind: str
    from_: str = Field(alias="from")
    to: str
    reason: str
    state: LinkState
    at: float


class FleetWorker(_Frozen):
    """A fleet's worker as last surveyed (the one in use marked ``active``)."""

    url: str
    state: WorkerState
    sessions: int | None
    max_sessions: int | None
    error: str | None


class ActiveWorker(_Frozen):
    """The worker in use before a survey saw it: nothing known of it but its URL."""

    url: str
    sessions: int | None
    max_sessions: int | None
    state: WorkerState


class CloudStatus(_Frozen):
    state: LinkState
    connected: bool  # the signaling socket is open
    connecting: bool
    error: str | None
    connect_stage: str | None
    worker_url: str | None
    workers: tuple[FleetWorker | ActiveWorker, ...]
    connection_id: str | None
    webrtc_connected: bool
    webrtc_error: str | None
    webrtc_reconnecting: bool
    reconnect_attempt: int
    reconnect_tries: int
    next_retry_in_s: float | None
    failed_probing: bool
    recovery: Recovery | None  # reopen, handover or move: under way beside the schedule
    params_version: int
    params_acked_version: int
    params_error: str | None
    pipeline_error: str | None
    pipeline_state: PipelineStatus | None  # None: the worker has not said (yet)
    quality: LinkQuality | None
    last_outage_s: float | None
    outage_for_s: float | None
    recent_outages_s: tuple[float, ...]
    session_id: str | None
    stream_id: str | None
    streaming: bool  # a client stream is open
    incoming_stream_id: str | None  # a new offer's stream, until it connects and takes over
    fallback: Fallback
    debug: bool
    previous_stream_reason: str | None
    fallback_active: Fallback | None
    stats: LinkStats
    events: tuple[StateChange | WorkerMove, ...]


@dataclass(frozen=True)
class StudioSide:
    """What the studio knows beside the link: its client stream and its frame slots."""

    stream_id: str | None
    fallback: Fallback
    fallback_active: Fallback | None
    debug: bool
    previous_stream_reason: str | None
    frames_sent: int
    frames_received: int
    fps_in: float
    fps_out: float
    incoming_stream_id: str | None = None


def build_status(link: LinkStatus, side: StudioSide, quality: Quality | None) -> CloudStatus:
    """The status from one link snapshot: nothing here reads the link a second time."""
    reconnecting = link.state == LinkState.RECONNECTING
    # (The JSON keeps the fields' order above, whatever the order here.)
    return CloudStatus(
        # the link and its worker
        state=link.state,
        connecting=link.connecting,
        connected=link.signaling_up,
        connect_stage=link.connect_stage,
        workers=tuple(_WORKER_ROW.validate_python(row) for row in link.workers),
        error=link.error,
        worker_url=link.worker_url,
        connection_id=link.connection_id,
        session_id=link.session_id,
        # its media path, and how it recovers
        webrtc_reconnecting=reconnecting,
        webrtc_connected=link.webrtc_connected,
        webrtc_error=link.webrtc_error,
        reconnect_attempt=link.attempt if reconnecting else 0,
        reconnect_tries=link.tries,
        next_retry_in_s=_round(link.next_retry_in_s),
        failed_probing=link.probing,
        recovery=link.recovery,
        last_outage_s=_round(link.last_outage_s),
        outage_for_s=_round(link.outage_for_s),
        recent_outages_s=tuple(round(o, 3) for o in link.recent_outages_s),
        quality=_quality(quality),
        stats=_stats(link, side),
        events=tuple(_event(e) for e in link.events),
        # the parameters
        params_version=link.params_version,
        params_acked_version=link.params_acked_version,
        params_error=link.params_error,
        pipeline_error=link.pipeline_error,
        pipeline_state=pipeline_status(link.pipeline_state),
        # the client's stream
        stream_id=side.stream_id,
        streaming=side.stream_id is not None,
        incoming_stream_id=side.incoming_stream_id,
        fallback=side.fallback,
        fallback_active=side.fallback_active,
        debug=side.debug,
        previous_stream_reason=side.previous_stream_reason,
    )


def _stats(link: LinkStatus, side: StudioSide) -> LinkStats:
    return LinkStats(
        frames_sent=side.frames_sent,
        frames_received=side.frames_received,
        fps_in=round(side.fps_in, 1),
        fps_out=round(side.fps_out, 1),
        heartbeat_rtt_ms=_round(link.heartbeat_rtt_ms, 2),
        media_loss=_round(link.media_loss, 4),
        bandwidth_kbps=_round(link.bandwidth_kbps, 1),
        bandwidth_limited=link.bandwidth_limited,
        media_latency_ms=_round(link.media_latency_ms, 1),
        worker_ms=_round(link.worker_ms, 2),
        pipeline_fps=_round(link.pipeline_fps, 1),
        pipeline_ms=_round(link.pipeline_ms, 2),
        outages=link.outages,
        reconnects=link.reconnects,
        upstream_fps=_round(link.upstream_fps, 1),
        upstream_fps_limit=_round(link.upstream_fps_limit, 1),
    )


def _quality(quality: Quality | None) -> LinkQuality | None:
    if quality is None:
        return None
    return LinkQuality(level=quality.level.label, factor=quality.factor)


def _event(event: LinkEvent) -> StateChange | WorkerMove:
    if event.workers is not None:  # a move: from and to name workers, not states
        old, new = event.workers
        return WorkerMove(
            kind=event.kind, from_=old, to=new, reason=event.reason, state=event.new, at=event.at
        )
    return StateChange(
        kind=event.kind, from_=event.old, to=event.new, reason=event.reason, at=event.at
    )


# The link reports a fleet's workers as plain rows: each becomes one of the two kinds.
_WORKER_ROW: TypeAdapter[FleetWorker | ActiveWorker] = TypeAdapter(FleetWorker | ActiveWorker)


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def status_schema() -> dict[str, Any]:
    """CloudStatus as JSON Schema (draft 2020-12): what the API sends."""
    return {"$schema": JSON_SCHEMA_DIALECT, **CloudStatus.model_json_schema(mode="serialization")}


if __name__ == "__main__":
    print(json.dumps(status_schema(), indent=2))
