"""The studio: owns the stream session, the parameters and the worker link."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from tether.config import StudioSettings
from tether.media import forwarding
from tether.media.frames import FrameSlot
from tether.studio.link import LinkState, LinkStatus, WorkerLink
from tether.studio.link.quality import LargestPicture, QualityMeter, Sample
from tether.studio.parameters import ParameterStore
from tether.studio.stream import OutputTrack, StreamSession
from tether.tasks import TaskOwner

logger = logging.getLogger(__name__)


class Studio:
    def __init__(self, settings: StudioSettings) -> None:
        self.settings = settings
        forwarding.use_forwarding(settings.forward_video)
        self.source = FrameSlot("studio.in")
        self.processed = FrameSlot("studio.back")
        self.params = ParameterStore()
        self.link = WorkerLink(settings, self.source, self.processed, self.params)
        self.quality = QualityMeter(self.link.clock)
        self._picture = LargestPicture()
        self.stream: StreamSession | None = None
        self.previous_stream_reason: str | None = None
        self._streams = asyncio.Lock()  # offers, stops and ends: one at a time
        self._tasks = TaskOwner("studio")

    async def start(self) -> None:
        if self.settings.worker_url:
            token = self.settings.worker_token
            await self.link.connect(
                self.settings.worker_url, token.get_secret_value() if token else None
            )

    async def disconnect(self) -> None:
        """The user's disconnect: intentional, and the session's parameters go with it."""
        await self.link.disconnect()
        self.params.clear()
        self.link.parameters_changed()

    # --- stream ---
    async def offer(
        self, sdp: str, sdp_type: str, initial_parameters: dict[str, Any] | None
    ) -> dict[str, Any]:
        """A new client stream. It is accepted in full first (a rejected offer changes
        nothing); then it takes over from the previous one, which is closed."""
        async with self._streams:
            stream = StreamSession(self.source, self._output_track())
            try:
                answer = await stream.accept(sdp, sdp_type)
            except BaseException:
                await stream.close("offer rejected")
                raise
            changes = dict(initial_parameters or {})
            if self.settings.pipeline and "pipeline" not in {**self.params.parameters, **changes}:
                changes["pipeline"] = self.settings.pipeline
            if changes:
                self.params.update(changes)
            # The worker's media path carries on: only the client changes.
            await self._end_stream_locked("taken over by a new stream session")
            self.stream = stream
            stream.on_ended = self._stream_ended
            await self.link.set_streaming(True)
            self.link.parameters_changed()
        return {"sdp": answer.sdp, "type": answer.type, "sessionId": stream.id}

    def _output_track(self) -> OutputTrack:
        """What the client gets back: the worker's frames, or the fallback."""
        return OutputTrack(
            self.processed,
            self.source,
            self.settings.fallback,
            self.link.output_live,
            self.link.changed,
        )

    def _stream_ended(self, stream: StreamSession) -> None:
        self._tasks.spawn(self._end_if_current(stream), "end-stream")

    async def _end_if_current(self, stream: StreamSession) -> None:
        async with self._streams:
            if stream is self.stream:
                await self._end_stream_locked("client closed the stream")
                await self.link.set_streaming(False)

    async def _end_stream_locked(self, reason: str) -> None:
        stream, self.stream = self.stream, None
        if stream is None:
            return
        self.previous_stream_reason = reason
        await stream.close(reason)
        self.link.notify()

    async def stop_stream(self) -> None:
        """The user's stop: the stream ends and its parameters are cleared (at a new
        version: a warm session on the worker must not come back with the old ones)."""
        async with self._streams:
            await self._end_stream_locked("stopped by user")
            await self.link.set_streaming(False)
            self.params.clear()
            self.link.parameters_changed()

    # --- parameters ---
    def update_parameters(self, changes: dict[str, Any]) -> dict[str, Any]:
        self.params.update(changes)
        self.link.parameters_changed()
        return self.params.snapshot()

    def known_pipelines(self) -> list[dict[str, Any]]:
        return self.link.pipelines

    # --- status ---
    def status(self) -> dict[str, Any]:
        """CloudStatus, built from one snapshot of the link."""
        link = self.link.status()
        return cloud_status(link, self, self._quality(link))

    def _quality(self, link: LinkStatus) -> dict[str, Any] | None:
        """Only a connected link streaming media has a quality to speak of."""
        if link.state != LinkState.CONNECTED or self.stream is None or not link.webrtc_connected:
            self.quality.reset()
            return None
        frame = self.source.frame
        size = forwarding.largest_size_of(frame) if frame is not None else None
        sample = Sample(
            rtt_ms=link.heartbeat_rtt_ms,
            loss=link.media_loss,
            # An estimate that runs well ahead of the video says nothing against the path.
            bitrate_kbps=link.bandwidth_kbps if link.bandwidth_limited else None,
            fps_in=self.source.fps,
            fps_out=self.processed.fps,
            pixels=self._picture.see(self.stream, size),
            latency_ms=link.media_latency_ms,
            worker_ms=link.worker_ms,
        )
        return self.quality.update(sample).as_dict()

    async def close(self) -> None:
        await self._tasks.close()
        async with self._streams:
            await self._end_stream_locked("studio shutting down")
        await self.link.close()


def cloud_status(
    link: LinkStatus, studio: Studio, quality: dict[str, Any] | None
) -> dict[str, Any]:
    stream = studio.stream
    showing = stream.output.showing_fallback if stream else None
    return {
        "state": link.state.value,
        "connected": link.signaling_up,
        "connecting": link.connecting,
        "error": link.error,
        "connect_stage": link.connect_stage,
        "worker_url": link.worker_url,
        "workers": list(link.workers),
        "connection_id": link.connection_id,
        "webrtc_connected": link.webrtc_connected,
        "webrtc_error": link.webrtc_error,
        "webrtc_reconnecting": link.state == LinkState.RECONNECTING,
        "reconnect_attempt": link.attempt if link.state == LinkState.RECONNECTING else 0,
        "reconnect_tries": link.tries,
        "next_retry_in_s": _round(link.next_retry_in_s),
        "failed_probing": link.probing,
        "params_version": link.params_version,
        "params_acked_version": link.params_acked_version,
        "params_error": link.params_error,
        "pipeline_error": link.pipeline_error,
        "quality": quality,
        "last_outage_s": _round(link.last_outage_s),
        "outage_for_s": _round(link.outage_for_s),
        "recent_outages_s": [round(o, 3) for o in link.recent_outages_s],
        "session_id": link.session_id,
        "stream_id": stream.id if stream else None,
        "streaming": stream is not None,
        "fallback": studio.settings.fallback.value,
        "debug": studio.settings.debug_endpoints,
        "previous_stream_reason": studio.previous_stream_reason,
        "fallback_active": showing.value if showing else None,
        "stats": {
            "frames_sent": studio.source.seq,
            "frames_received": studio.processed.seq,
            "fps_in": round(studio.source.fps, 1),
            "fps_out": round(studio.processed.fps, 1),
            "heartbeat_rtt_ms": _round(link.heartbeat_rtt_ms, 2),
            "media_loss": _round(link.media_loss, 4),
            "bandwidth_kbps": _round(link.bandwidth_kbps, 1),
            "bandwidth_limited": link.bandwidth_limited,
            "media_latency_ms": _round(link.media_latency_ms, 1),
            "worker_ms": _round(link.worker_ms, 2),
            "outages": link.outages,
            "reconnects": link.reconnects,
        },
        "events": [e.as_dict() for e in link.events],
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
