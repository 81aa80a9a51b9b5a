"""Latest-frame-wins plumbing between tracks.

Every hop drains its source into a FrameSlot that keeps only the newest frame, and
outgoing tracks read from slots. A slow consumer therefore skips frames instead of
building a queue, so latency never accumulates.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from tether.media import trace

VIDEO_CLOCK_RATE = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)
RECENT_FRAMES = 16

Stampable = TypeVar("Stampable", av.VideoFrame, av.Packet)


class Signal:
    """A reusable wake-up: every waiter registered before ``fire`` is woken.

    Waiters share one future, but each gets it behind a shield: a waiter that is
    cancelled (a closed peer's sender, say) must not cancel the wake-up of the others."""

    def __init__(self) -> None:
        self._future: asyncio.Future[None] | None = None

    def future(self) -> asyncio.Future[None]:
        if self._future is None or self._future.done():
            self._future = asyncio.get_running_loop().create_future()
        return asyncio.shield(self._future)

    def fire(self) -> None:
        if self._future is not None and not self._future.done():
            self._future.set_result(None)


class FrameSlot:
    """Holds the newest frame only. ``stage`` names it for tracing."""

    def __init__(self, stage: str | None = None) -> None:
        self.stage = stage
        self.frame: av.VideoFrame | None = None
        self.seq = 0
        self.updated_at: float | None = None
        self.changed = Signal()
        self._times: deque[float] = deque(maxlen=31)
        # The last few frames, for readers that must see every one (a forwarded
        # encoded stream); a reader further behind gets a gap.
        self._recent: deque[tuple[int, Any]] = deque(maxlen=RECENT_FRAMES)

    def put(self, frame: Any) -> None:
        self.frame = frame
        self.seq += 1
        self._recent.append((self.seq, frame))
        self.updated_at = time.monotonic()
        self._times.append(self.updated_at)
        self.changed.fire()
        if self.stage is not None:
            trace.mark(self.stage, frame)

    @property
    def fps(self) -> float:
        """Frame rate over the last 30 frames; 0 once frames stop for a second."""
        times = self._times
        if len(times) < 2 or time.monotonic() - times[-1] > 1.0:
            return 0.0
        return (len(times) - 1) / max(times[-1] - times[0], 1e-6)

    async def newer_than(self, seq: int) -> tuple[int, av.VideoFrame]:
        while self.seq <= seq or self.frame is None:
            await self.changed.future()
        return self.seq, self.frame

    def next_after(self, seq: int) -> tuple[int, Any] | None:
        """The oldest kept frame newer than ``seq`` (its seq is seq + 1 unless frames
        were missed), or None if there is none yet."""
        if self.seq <= seq:
            return None
        for item in self._recent:
            if item[0] > seq:
                return item
        return None

    async def wait_next_after(self, seq: int) -> tuple[int, Any]:
        while (item := self.next_after(seq)) is None:
            await self.changed.future()
        return item


async def pump(
    track: MediaStreamTrack, slot: FrameSlot, seen: Callable[[Any], None] | None = None
) -> None:
    """Drain a (remote) track into a slot until the track ends; ``seen`` hears of each
    frame as it arrives."""
    try:
        while True:
            frame = await track.recv()
            if seen is not None:
                seen(frame)
            slot.put(frame)
    except MediaStreamError:
        return


class Restamper:
    """Gives outgoing frames pts from one monotonic clock, so a track whose source
    changes (worker frames, fallback frames) still has steadily rising timestamps."""

    def __init__(self) -> None:
        self._start = time.monotonic()
        self._last = -1

    def stamp(self, frame: Stampable) -> Stampable:
        pts = int((time.monotonic() - self._start) * VIDEO_CLOCK_RATE)
        self._last = pts if pts > self._last else self._last + 1
        frame.pts = self._last
        frame.time_base = VIDEO_TIME_BASE
        return frame


class SlotTrack(MediaStreamTrack):
    """An outgoing video track that sends each new frame put into a slot."""

    kind = "video"

    def __init__(self, slot: FrameSlot, stage: str | None = None) -> None:
        super().__init__()
        self._slot = slot
        self._seq = 0
        self._restamper = Restamper()
        self._stage = stage

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        self._seq, frame = await self._slot.newer_than(self._seq)
        if self._stage is not None:
            trace.mark(self._stage, frame)
        return self._restamper.stamp(frame)


def black_like(frame: av.VideoFrame) -> av.VideoFrame:
    black = av.VideoFrame(frame.width, frame.height, "yuv420p")
    planes = black.planes
    for plane, value in zip(planes, (16, 128, 128), strict=True):
        plane.update(bytes([value]) * plane.buffer_size)
    return black


def moving_pattern(width: int, height: int, index: int) -> np.ndarray:
    """A colourful moving pattern (RGB), for sources that have no camera."""
    y, x = np.mgrid[0:height, 0:width]
    shift = index * 4
    rgb = np.empty((height, width, 3), dtype=np.uint8)
    rgb[:, :, 0] = ((x + shift) * 255 // max(width - 1, 1)) % 256
    rgb[:, :, 1] = (y * 255 // max(height - 1, 1)).astype(np.uint8)
    rgb[:, :, 2] = 200
    size = max(min(width, height) // 6, 4)
    left = (shift * 2) % max(width - size, 1)
    top = height // 2 - size // 2
    rgb[top : top + size, left : left + size] = (255, 255, 255)
    return rgb
