"""The studio: owns the stream session, the parameters and the worker link."""

from __future__ import annotations

import logging
from typing import Any

from tether import forwarding
from tether.config import StudioSettings
from tether.media import FrameSlot
from tether.studio.link import LinkState, WorkerLink
from tether.studio.parameters import ParameterStore
from tether.studio.stream import OutputTrack, StreamSession
from tether.tasks import TaskOwner

logger = logging.getLogger(__name__)

# The worker's frames missing this long while ours flow: show the fallback. (The link
# declares a stall, and reconnects, only later: MEDIA_STALL_S.)
FALLBACK_AFTER_S = 1.0


class Studio:
    def __init__(self, settings: StudioSettings) -> None:
        self.settings = settings
        forwarding.use_forwarding(settings.forward_video)
        self.source = FrameSlot("studio.in")
        self.processed = FrameSlot("studio.back")
        self.params = ParameterStore()
        self.link = WorkerLink(settings, self.source, self.processed, self.params)
        self.stream: StreamSession | None = None
        self.previous_stream_reason: str | None = None
        self._tasks = TaskOwner("studio")

    async def start(self) -> None:
        if self.settings.worker_url:
            token = self.settings.worker_token
            await self.link.connect(
                self.settings.worker_url, token.get_secret_value() if token else None
            )

    # --- stream ---
    def output_live(self) -> bool:
        """Whether the client sees the worker's frames (else the fallback)."""
        return self.link.media_healthy() and self.link.worker_lag_s() <= FALLBACK_AFTER_S

    async def offer(
        self, sdp: str, sdp_type: str, initial_parameters: dict[str, Any] | None
    ) -> dict[str, Any]:
        """A new client stream; it takes over from the previous one."""
        if self.stream is not None:
            await self._end_stream("taken over by a new stream session")
        changes = dict(initial_parameters or {})
        if self.settings.pipeline and "pipeline" not in {**self.params.parameters, **changes}:
            changes["pipeline"] = self.settings.pipeline
        if changes:
            self.params.update(changes)
        output = OutputTrack(
            self.processed, self.source, self.settings.fallback, self.output_live, self.link.changed
        )
        stream = StreamSession(self.source, output)
        stream.on_ended = self._stream_ended
        try:
            answer = await stream.accept(sdp, sdp_type)
        except Exception:
            await stream.close()
            raise
        self.stream = stream
        await self.link.set_streaming(True)
        return {"sdp": answer.sdp, "type": answer.type, "sessionId": stream.id}

    def _stream_ended(self, stream: StreamSession) -> None:
        if stream is self.stream:
            self._tasks.spawn(self._end_stream("client closed the stream"), "end-stream")

    async def _end_stream(self, reason: str, clear_parameters: bool = False) -> None:
        stream, self.stream = self.stream, None
        if stream is None:
            return
        logger.info("stream %s ended: %s", stream.id, reason)
        self.previous_stream_reason = reason
        await stream.close()
        await self.link.set_streaming(False)
        if clear_parameters:  # only the user's stop; a takeover or reload keeps them
            self.params.clear()
        self.link.notify()

    async def stop_stream(self) -> None:
        await self._end_stream("stopped by user", clear_parameters=True)

    # --- parameters ---
    def update_parameters(self, changes: dict[str, Any]) -> dict[str, Any]:
        self.params.update(changes)
        self.link.send_parameters()
        self.link.notify()
        return self.params.snapshot()

    def known_pipelines(self) -> list[dict[str, Any]]:
        return self.link.pipelines

    # --- status ---
    def status(self) -> dict[str, Any]:
        link = self.link
        sup = link.supervisor
        peer = link.peer
        error = link.error
        output = self.stream.output if self.stream else None
        return {
            "state": link.state.value,
            "connected": link.signaling is not None and link.signaling.is_open,
            "connecting": link.state in (LinkState.CONNECTING, LinkState.RECONNECTING),
            "error": error,
            "connect_stage": link.connect_stage,
            "worker_url": link.worker_url,
            "connection_id": link.signaling.connection_id if link.signaling else None,
            "webrtc_connected": link.webrtc_connected,
            "webrtc_error": link.webrtc_error,
            "webrtc_reconnecting": link.state == LinkState.RECONNECTING,
            "reconnect_attempt": sup.attempt if link.state == LinkState.RECONNECTING else 0,
            "reconnect_tries": sup.schedule.tries,
            "next_retry_in_s": _round(sup.next_retry_in_s),
            "params_version": self.params.version,
            "params_acked_version": self.params.acked_version,
            "params_error": peer.params_error if peer else None,
            "last_outage_s": _round(sup.last_outage_s),
            "outage_for_s": _round(sup.outage_for_s),
            "recent_outages_s": [round(o, 3) for o in sup.recent_outages],
            "session_id": link.session_id,
            "stream_id": self.stream.id if self.stream else None,
            "streaming": self.stream is not None,
            "fallback": self.settings.fallback.value,
            "debug": self.settings.debug_endpoints,
            "previous_stream_reason": self.previous_stream_reason,
            "fallback_active": output.showing_fallback.value
            if output and output.showing_fallback
            else None,
            "stats": {
                "frames_sent": self.source.seq,
                "frames_received": self.processed.seq,
                "fps_in": round(self.source.fps, 1),
                "fps_out": round(self.processed.fps, 1),
                "heartbeat_rtt_ms": round(peer.rtt_ms, 2)
                if peer and peer.rtt_ms and link.media_healthy()
                else None,
                "outages": sup.outages,
                "reconnects": sup.reconnects,
            },
            "events": [e.as_dict() for e in sup.history[-10:]],
        }

    async def close(self) -> None:
        await self._tasks.close()
        await self._end_stream("studio shutting down")
        await self.link.close()


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
