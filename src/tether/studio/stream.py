"""The browser's (or any client's) stream session, and the track it gets back.

The studio runs one stream at a time. The client's video is drained into the
studio's input slot; the client gets the worker's processed frames back, or the
fallback (held frame, raw input, or black) while those are not arriving."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

import av
from aiortc import MediaStreamTrack, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import SessionDescription

from tether import trace
from tether.config import Fallback
from tether.media import FrameSlot, Restamper, Signal, black_like, pump
from tether.rtc import create_peer_connection
from tether.tasks import TaskOwner

logger = logging.getLogger(__name__)


class OutputTrack(MediaStreamTrack):
    """Processed frames while the link is live, else fallback frames paced by the input."""

    kind = "video"

    def __init__(
        self,
        processed: FrameSlot,
        source: FrameSlot,
        fallback: Fallback,
        is_live: Callable[[], bool],
        live_changed: Signal,
    ) -> None:
        super().__init__()
        self._processed = processed
        self._source = source
        self._fallback = fallback
        self._is_live = is_live
        self._live_changed = live_changed
        self._processed_seq = processed.seq
        self._source_seq = source.seq
        self._restamper = Restamper()
        self.showing_fallback: Fallback | None = None
        self._shown: av.VideoFrame | None = None  # the last processed frame sent
        self._black: av.VideoFrame | None = None

    async def recv(self) -> av.VideoFrame:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            if self._is_live():
                if self._processed.seq > self._processed_seq and self._processed.frame is not None:
                    self._processed_seq = self._processed.seq
                    self._source_seq = self._source.seq
                    self.showing_fallback = None
                    self._shown = self._processed.frame
                    trace.mark("studio.to_client", self._shown)
                    return self._restamper.stamp(self._shown)
            elif self._source.seq > self._source_seq and self._source.frame is not None:
                self._source_seq = self._source.seq
                self.showing_fallback = self._fallback
                return self._restamper.stamp(self._fallback_frame(self._source.frame))
            waits = [
                self._processed.changed.future(),
                self._source.changed.future(),
                self._live_changed.future(),
            ]
            await asyncio.wait(waits, timeout=0.5, return_when=asyncio.FIRST_COMPLETED)

    def _fallback_frame(self, source: av.VideoFrame) -> av.VideoFrame:
        if self._fallback == Fallback.PASSTHROUGH:
            return source
        # Hold what the client last saw, not a newer frame it never got.
        if self._fallback == Fallback.HOLD and self._shown is not None:
            return self._shown
        black = self._black
        if black is None or (black.width, black.height) != (source.width, source.height):
            black = self._black = black_like(source)  # one per size, not one per frame
        return black


def check_offer(sdp: str) -> None:
    """Refuse an offer that cannot become a video stream, before anything changes."""
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser raises whatever it trips on
        raise ValueError(f"the offer's SDP does not parse ({type(exc).__name__})") from None
    if not any(m.kind == "video" for m in parsed.media):
        raise ValueError("the offer has no video")


class StreamSession:
    def __init__(self, source: FrameSlot, output: OutputTrack) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.pc = create_peer_connection()
        self.output = output
        self._source = source
        self._tasks = TaskOwner(f"stream-{self.id}")
        self.on_ended: Callable[[StreamSession], None] | None = None

    async def accept(self, sdp: str, sdp_type: str) -> RTCSessionDescription:
        pc = self.pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                self._tasks.spawn(pump(track, self._source), "pump")
                pc.addTrack(self.output)

        @pc.on("connectionstatechange")
        def on_state() -> None:
            logger.info("stream %s: client peer %s", self.id, pc.connectionState)
            if pc.connectionState in ("failed", "closed") and self.on_ended is not None:
                self.on_ended(self)

        check_offer(sdp)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=sdp_type))
        if not any(t.kind == "video" for t in pc.getTransceivers()):
            raise ValueError("the offer has no video")
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription

    @property
    def connected(self) -> bool:
        return self.pc.connectionState == "connected"

    async def close(self, reason: str) -> None:
        """End this client's stream: its track stops, its peer connection closes."""
        logger.info("stream %s closed: %s", self.id, reason)
        self.on_ended = None
        self.output.stop()
        await self._tasks.close()
        await self.pc.close()
