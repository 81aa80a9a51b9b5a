"""What the link says about itself: one frozen snapshot, taken at one moment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tether.protocol import PipelineState
from tether.studio.link.events import LinkEvent, LinkState, Recovery


@dataclass(frozen=True)
class LinkStatus:
    state: LinkState
    error: str | None  # the media error while it stands, else the supervisor's
    signaling_up: bool
    connect_stage: str | None
    worker_url: str | None
    connection_id: str | None
    webrtc_connected: bool
    webrtc_error: str | None
    attempt: int  # the try in progress or next (1-based) while (re)connecting, else 0
    tries: int
    next_retry_in_s: float | None
    probing: bool  # failed, but checking the worker slowly: will recover by itself
    last_outage_s: float | None
    outage_for_s: float | None
    recent_outages_s: tuple[float, ...]
    outages: int
    reconnects: int
    session_id: str | None
    streaming: bool  # a stream wants the media path
    media_healthy: bool
    output_live: bool  # a client should see the worker's frames (else the fallback)
    params_version: int
    params_acked_version: int
    params_error: str | None
    pipeline_error: str | None
    heartbeat_rtt_ms: float | None
    events: tuple[LinkEvent, ...]  # the recent transitions and moves (the timeline)
    workers: tuple[dict[str, Any], ...] = ()  # a fleet's workers and their state
    media_loss: float | None = None  # packets lost on the media path, recent window, 0..1
    bandwidth_kbps: float | None = None  # what the media path can carry now
    bandwidth_limited: bool = False  # ...and the video comes close to it
    # Our video's estimate where the path holds it back (the worker's video, at a slow
    # model's pace, says nothing of the path).
    upstream_limited_kbps: float | None = None
    # Sent to the worker until its result is back, measured from the frames (median).
    media_latency_ms: float | None = None
    worker_ms: float | None = None  # the worker's pipeline time per frame (median)
    # The pipeline's pace as the worker measures it: frames out per second, median ms.
    pipeline_fps: float | None = None
    pipeline_ms: float | None = None
    # The recovery under way beside the schedule (a socket reopen, a drain handover, a
    # move to another worker); None: none.
    recovery: Recovery | None = None
    # The worker's pipeline: loading (a model, its time so far), ready or failing.
    pipeline_state: PipelineState | None = None
    # Frames a second sent to the worker, and the most allowed while its pipeline is
    # slower than the camera (None: every frame goes).
    upstream_fps: float | None = None
    upstream_fps_limit: float | None = None

    @property
    def connecting(self) -> bool:
        return self.state in (LinkState.CONNECTING, LinkState.RECONNECTING)

    @property
    def params_in_sync(self) -> bool:
        return self.params_acked_version == self.params_version
