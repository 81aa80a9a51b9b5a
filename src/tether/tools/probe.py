"""A measuring client: a synthetic source that stamps a frame number into each
frame, and a sink that reads it back to count frames and time each round trip.

Used by the tests and benchmarks; handy for checking a deployment by hand too."""

from __future__ import annotations

import asyncio
import fractions
import time
from dataclasses import dataclass, field

import av
import httpx
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from tether.media.frame_id import ID_BITS, read_id, stamp_id
from tether.media.frames import FrameSlot
from tether.tasks import TaskOwner
from tether.tools.scene import make_scene
from tether.tools.viewing import Arrival, report


class NumberedSource(MediaStreamTrack):
    """Sends numbered frames at a steady rate and remembers when each was sent."""

    kind = "video"

    def __init__(
        self,
        width: int = 512,
        height: int = 512,
        fps: float = 30.0,
        id_offset: int = 0,
        scene: str = "still",
        seed: int = 1,
    ) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self.id_offset = id_offset  # several sources side by side: tell their frames apart
        self.sent_at: dict[int, float] = {}
        self.count = 0
        # "still" (the default) is what tests comparing pictures need; benchmarks and the
        # network lab send "camera", which needs bitrate as a real camera does.
        self.scene = make_scene(scene, width, height, seed)
        self._start: float | None = None

    def planes(self, frame_id: int) -> np.ndarray:
        """The yuv420p picture (stacked planes) of frame ``frame_id``, number drawn in."""
        planes = self.scene.planes(frame_id)
        stamp_id(planes, self.width, frame_id)
        return planes

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self.count / self.fps
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame_id = (self.count + self.id_offset) % (1 << ID_BITS)
        frame = av.VideoFrame.from_ndarray(self.planes(frame_id), format="yuv420p")
        frame.pts = int(self.count * 90000 / self.fps)
        frame.time_base = fractions.Fraction(1, 90000)
        self.sent_at[frame_id] = time.monotonic()
        self.count += 1
        return frame


class PictureSource(NumberedSource):
    """A NumberedSource that sends a given picture (H x W x 3 RGB) instead of the
    colour ramp: a model that looks for something (a person) needs a real picture. The
    frame number still goes into the top band."""

    def __init__(self, picture: np.ndarray, fps: float = 30.0) -> None:
        height, width = picture.shape[:2]
        super().__init__(width, height, fps)
        rgb = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")
        self._picture = rgb.reformat(format="yuv420p").to_ndarray()

    def planes(self, frame_id: int) -> np.ndarray:
        planes = self._picture.copy()
        stamp_id(planes, self.width, frame_id)
        return planes


@dataclass
class FrameSink:
    """Receives a track, reads frame numbers, keeps latencies and the last frame."""

    source: NumberedSource | None = None
    inverted: bool = False
    frames: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)
    last_rgb: np.ndarray | None = None
    last_id: int | None = None
    keep_rgb: bool = True

    history: list[tuple[float, int]] = field(default_factory=list)  # (received at, frame id)
    widths: list[tuple[float, int]] = field(default_factory=list)  # (received at, width)
    arrivals: list[Arrival] = field(default_factory=list)  # what a viewer saw: see viewing
    _seen: set[int] = field(default_factory=set)

    def record(self, frame: av.VideoFrame) -> None:
        now = time.monotonic()
        self.frames += 1
        self.received_at.append(now)
        self.widths.append((now, frame.width))
        size = frame.width, frame.height
        source = self.source
        if source is not None and frame.width < source.width:
            # A link short of bitrate shrinks the picture: read it at the source's size.
            frame = frame.reformat(width=source.width, height=source.height)
        luma = frame.to_ndarray(format="gray")
        self.last_id = read_id(luma, self.inverted)
        self.history.append((now, self.last_id))
        self.arrivals.append(Arrival(now, self.last_id, *size))
        sent = self.source.sent_at.get(self.last_id) if self.source is not None else None
        # Count each frame number once: a held (repeated) frame is not a new round trip.
        if sent is not None and self.last_id not in self._seen:
            self._seen.add(self.last_id)
            self.latencies_ms.append((now - sent) * 1000)
        if self.keep_rgb:
            self.last_rgb = frame.to_ndarray(format="rgb24")

    async def consume(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                self.record(await track.recv())
        except MediaStreamError:
            return

    def windows(self, t0: float, t1: float, **options: float) -> dict:
        """What a viewer saw in ``[t0, t1)``, per window and in all (``viewing.report``)."""
        source = self.source
        sent_at = source.sent_at if source is not None else {}
        full = (source.width, source.height) if source is not None else (0, 0)
        return report(self.arrivals, sent_at, full, t0, t1, **options)

    def fps_since(self, since: float) -> float:
        times = [t for t in self.received_at if t >= since]
        if len(times) < 2:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])


class RecordingSlot(FrameSlot):
    """A frame slot that also hands every frame to a sink (for a WorkerPeer's output)."""

    def __init__(self, sink: FrameSink) -> None:
        super().__init__()
        self.sink = sink

    def put(self, frame: av.VideoFrame) -> None:
        super().put(frame)
        self.sink.record(frame)


class StudioClient:
    """A client stream session with a studio: the same calls the web page makes."""

    def __init__(self, studio_url: str, source: MediaStreamTrack, sink: FrameSink) -> None:
        from tether.rtc.ice import create_peer_connection

        self.studio_url = studio_url.rstrip("/")
        self.pc: RTCPeerConnection = create_peer_connection()
        self.source = source
        self.sink = sink
        self.session_id: str | None = None
        self._tasks = TaskOwner("studio-client")

    async def start(self, initial_parameters: dict | None = None) -> None:
        pc = self.pc
        pc.addTransceiver(self.source, direction="sendrecv")

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._tasks.spawn(self.sink.consume(track), "sink")

        await pc.setLocalDescription(await pc.createOffer())
        body = {"sdp": pc.localDescription.sdp, "type": "offer"}
        if initial_parameters is not None:
            body["initialParameters"] = initial_parameters
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{self.studio_url}/api/v1/webrtc/offer", json=body, timeout=20
            )
        response.raise_for_status()
        answer = response.json()
        self.session_id = answer["sessionId"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))

    async def close(self) -> None:
        await self._tasks.close()
        await self.pc.close()


class WorkerClient:
    """A client stream straight to a worker (no studio): the direct path."""

    def __init__(
        self, worker_url: str, token: str | None, source: MediaStreamTrack, sink: FrameSink
    ) -> None:
        from tether.client.signaling import SignalingClient

        self.signaling = SignalingClient(worker_url, token)
        self.source = source
        self.sink = sink
        self.peer = None

    async def start(self, parameters: dict) -> None:
        from tether.client.worker_peer import WorkerPeer

        await self.signaling.connect(10)
        self.peer = WorkerPeer(self.source, RecordingSlot(self.sink))
        await self.peer.start(self.signaling, parameters, 1)

    async def close(self) -> None:
        if self.peer is not None:
            await self.peer.close()
        await self.signaling.close()
