"""The browser's (or any client's) stream session, and the track it gets back.

The studio runs one stream at a time. The client's video is drained into the
studio's input slot; the client gets the worker's processed frames back, or the
fallback (held frame, raw input, or black) while those are not arriving
(``tether.studio.output``). Video is forwarded encoded (``tether.media.forwarding``)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

from aiortc import MediaStreamTrack, RTCSessionDescription

from tether.media import forwarding
from tether.media.frames import FrameSlot, pump
from tether.media.sdp_check import check_offer_sdp
from tether.rtc.ice import create_peer_connection
from tether.studio.output import OutputTrack
from tether.tasks import TaskOwner

logger = logging.getLogger(__name__)


class StreamSession:
    def __init__(self, source: FrameSlot, output: OutputTrack) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.pc = create_peer_connection()
        self.output = output
        self._source = source
        self._tasks = TaskOwner(f"stream-{self.id}")
        self.on_ended: Callable[[StreamSession], None] | None = None
        self._settled = asyncio.Event()  # connected, or never will be

    async def wait_connected(self, within_s: float) -> bool:
        """Whether the client's peer connects within ``within_s`` seconds."""
        try:
            await asyncio.wait_for(self._settled.wait(), within_s)
        except TimeoutError:
            return False
        return self.connected

    async def accept(self, sdp: str, sdp_type: str) -> RTCSessionDescription:
        pc = self.pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                pc.addTrack(self.output)
                forwarding.attach(pc, track)
                self._tasks.spawn(pump(track, self._source), "pump")

        @pc.on("connectionstatechange")
        def on_state() -> None:
            logger.info("stream %s: client peer %s", self.id, pc.connectionState)
            if pc.connectionState in ("connected", "failed", "closed"):
                self._settled.set()
            if pc.connectionState in ("failed", "closed") and self.on_ended is not None:
                self.on_ended(self)

        check_offer_sdp(sdp)  # again: the one door, whoever calls
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
        self._settled.set()
        logger.info("stream %s closed: %s", self.id, reason)
        self.on_ended = None
        self.output.stop()
        await self._tasks.close()
        await self.pc.close()
