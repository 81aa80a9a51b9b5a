"""The track a worker session sends back: the pipeline's output for the newest input
frame, and which input frame each output was made from (``FrameTiming``) once sent."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import av
from aiortc import MediaStreamTrack, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError

from tether import protocol, timing
from tether.media import trace
from tether.media.frames import FrameSlot, Restamper
from tether.rtc.measures import TIMESTAMP_ROUNDING, wire_timestamp

# Output frames remembered until sent (the sender takes one at a time).
MADE_KEPT = 8


class ProcessedTrack(MediaStreamTrack):
    """Takes the newest frame of ``source``, runs it through ``process``, and reports
    each sent frame's timing to ``report``."""

    kind = "video"

    def __init__(
        self,
        source: FrameSlot,
        process: Callable[[av.VideoFrame], Awaitable[av.VideoFrame]],
        report: Callable[[protocol.FrameTiming], None],
        receiver: RTCRtpReceiver | None = None,
    ) -> None:
        super().__init__()
        self._source = source
        self._process = process
        self._report = report
        self._receiver = receiver  # where the input comes from: its wire timestamps
        # A resumed session's slot still holds the old stream's last frame: skip it.
        self._seq = source.seq
        # Our own timestamps: the input's restart with each new peer connection, and
        # an encoder fails on timestamps that go backwards.
        self._restamper = Restamper()
        # Output frames not yet sent: our timestamp -> (input's wire timestamp, ms).
        self._made: OrderedDict[int, tuple[int, float]] = OrderedDict()
        self._reported_at = -1e9

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        self._seq, frame = await self._source.newer_than(self._seq)
        source = None
        if self._receiver is not None and frame.pts is not None:
            source = wire_timestamp(self._receiver, frame.pts)
        started = time.monotonic()
        out = await self._process(frame)
        worker_ms = (time.monotonic() - started) * 1000.0
        trace.mark("worker.out", out)
        out = self._restamper.stamp(out)
        if source is not None:
            self._made[out.pts] = (source, worker_ms)
            while len(self._made) > MADE_KEPT:
                self._made.popitem(last=False)
        return out

    def sent(self, timestamp: int, rtp_timestamp: int) -> None:
        """aiortc's sender put our frame ``timestamp`` on the wire as ``rtp_timestamp``."""
        candidates = range(timestamp, timestamp + TIMESTAMP_ROUNDING + 1)
        made = next((self._made.pop(pts) for pts in candidates if pts in self._made), None)
        now = time.monotonic()
        if made is None or now - self._reported_at < timing.FRAME_TIMING_INTERVAL_S:
            return
        self._reported_at = now
        source, worker_ms = made
        self._report(
            protocol.FrameTiming(input=source, output=rtp_timestamp, worker_ms=round(worker_ms, 2))
        )
