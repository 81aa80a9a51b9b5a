"""The studio: owns the stream session, the parameters and the worker link."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from tether import timing
from tether.config import StudioSettings
from tether.media import forwarding
from tether.media.frames import FrameSlot
from tether.studio.cloud_status import CloudStatus, StudioSide, build_status
from tether.studio.link import LinkState, LinkStatus, WorkerLink
from tether.studio.link.quality import (
    LargestPicture,
    Quality,
    QualityMeter,
    Sample,
    pipeline_bound,
)
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
        self._incoming: StreamSession | None = None  # an offer's stream, until it connects
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
        nothing). With no stream running it starts at once; else it takes over only once
        it connects (make before break): one that never connects leaves the running
        stream as it was."""
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
            await self._drop_incoming_locked("replaced by a newer offer")
            stream.on_ended = self._stream_ended
            if self.stream is None:
                self.stream = stream
                await self.link.set_streaming(True)
            else:
                self._incoming = stream
            self._tasks.spawn(self._take_over_when_connected(stream), f"connect-{stream.id}")
            self.link.parameters_changed()
        return {"sdp": answer.sdp, "type": answer.type, "sessionId": stream.id}

    async def _take_over_when_connected(self, stream: StreamSession) -> None:
        deadline = timing.CLIENT_CONNECT_TIMEOUT_S
        connected = await stream.wait_connected(deadline)
        async with self._streams:
            if stream is self._incoming:
                self._incoming = None
                if connected:
                    # The new stream is current before the old one closes: no status
                    # may show neither as this tab's (the page would end itself).
                    previous, self.stream = self.stream, stream
                    if previous is None:  # it ended meanwhile: the link stopped streaming
                        await self.link.set_streaming(True)
                    else:
                        # The worker's media path carries on: only the client changes.
                        self.previous_stream_reason = "taken over by a new stream session"
                        await previous.close(self.previous_stream_reason)
                    self.link.notify()
                else:
                    await stream.close(f"a new stream did not connect within {deadline:g} s")
            elif stream is self.stream and not connected:
                await self._end_stream_locked(f"the stream did not connect within {deadline:g} s")
                await self.link.set_streaming(False)

    async def _drop_incoming_locked(self, reason: str) -> None:
        stream, self._incoming = self._incoming, None
        if stream is not None:
            await stream.close(reason)

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
            if stream is self._incoming:
                await self._drop_incoming_locked("a new stream failed to connect")
            elif stream is self.stream:
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
            await self._drop_incoming_locked("stopped by user")
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
    def status(self) -> CloudStatus:
        """CloudStatus, built from one snapshot of the link."""
        link = self.link.status()
        return build_status(link, self._side(), self._quality(link))

    def _side(self) -> StudioSide:
        stream = self.stream
        showing = stream.output.showing_fallback if stream else None
        return StudioSide(
            stream_id=stream.id if stream else None,
            incoming_stream_id=self._incoming.id if self._incoming else None,
            fallback=self.settings.fallback,
            fallback_active=showing,
            debug=self.settings.debug_endpoints,
            previous_stream_reason=self.previous_stream_reason,
            frames_sent=self.source.seq,
            frames_received=self.processed.seq,
            fps_in=self.source.fps,
            fps_out=self.processed.fps,
        )

    def _quality(self, link: LinkStatus) -> Quality | None:
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
            # Frames that wait for a load (not a load beside a running pipeline).
            pipeline_loading=link.pipeline_state is not None
            and link.pipeline_state.state == "loading"
            and link.pipeline_state.running is None,
        )
        if pipeline_bound(sample):
            # The worker's video flows at the model's pace, and its estimate follows
            # that: only ours still says whether the path holds the video back.
            sample = replace(sample, bitrate_kbps=link.upstream_limited_kbps)
        return self.quality.update(sample)

    async def close(self) -> None:
        await self._tasks.close()
        async with self._streams:
            await self._drop_incoming_locked("studio shutting down")
            await self._end_stream_locked("studio shutting down")
        await self.link.close()
