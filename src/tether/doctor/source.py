"""The synthetic video the media check sends, and what it records of what comes back.

The source is ``NumberedSource`` (frame numbers drawn into the pixels) with fresh noise
below the number band on every frame: a still test picture compresses to almost
nothing and would never press on a thin path, where a camera's picture does. The
recorder reads each returned frame's number, so it counts distinct pictures (a repeat
is not a new one) and times each round trip."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import av
import numpy as np

from tether.media.frame_id import BAND, read_id
from tether.media.frames import FrameSlot
from tether.tools.probe import NumberedSource

NOISE = 12  # the grain's amplitude, in luma steps


class GrainySource(NumberedSource):
    def __init__(self, width: int, height: int, fps: float) -> None:
        super().__init__(width, height, fps=fps)
        self._rng = np.random.default_rng(1)
        self._luma_rows = height

    def planes(self, frame_id: int) -> np.ndarray:
        planes = super().planes(frame_id)
        luma = planes[BAND : self._luma_rows]
        noise = self._rng.integers(-NOISE, NOISE + 1, luma.shape, np.int16)
        planes[BAND : self._luma_rows] = np.clip(luma + noise, 0, 255).astype(np.uint8)
        return planes

    def sent_between(self, start: float, end: float) -> int:
        return sum(1 for t in list(self.sent_at.values()) if start <= t < end)


@dataclass
class Arrival:
    at: float
    frame_id: int | None  # None: not one of ours (a pipeline that hides the number)
    width: int
    height: int


@dataclass
class Recorder:
    """Every frame the worker sends back: when, which, and how large."""

    source: GrainySource
    arrivals: list[Arrival] = field(default_factory=list)
    round_trips_ms: list[tuple[float, float]] = field(default_factory=list)  # (at, ms)
    _seen: set[int] = field(default_factory=set)

    def record(self, frame: av.VideoFrame) -> None:
        now = time.monotonic()
        size = (frame.width, frame.height)
        if frame.width != self.source.width or frame.height != self.source.height:
            frame = frame.reformat(width=self.source.width, height=self.source.height)
        frame_id: int | None = read_id(frame.to_ndarray(format="gray"))
        sent = self.source.sent_at.get(frame_id) if frame_id is not None else None
        if sent is None:
            frame_id = None
        elif frame_id not in self._seen:
            self._seen.add(frame_id)
            self.round_trips_ms.append((now, (now - sent) * 1000))
        self.arrivals.append(Arrival(now, frame_id, *size))

    def between(self, start: float, end: float) -> list[Arrival]:
        return [a for a in self.arrivals if start <= a.at < end]


class RecordingSlot(FrameSlot):
    """The slot a WorkerPeer puts the worker's frames into, recording each."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    def put(self, frame: av.VideoFrame) -> None:
        super().put(frame)
        self.recorder.record(frame)
