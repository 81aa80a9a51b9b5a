"""The picture comes back at the size it was sent, with real studio and worker
processes on a clean loopback, from a camera on a desk (a still picture with fresh sensor noise:
the stream needs its bitrate): at 60 fps, for the first stream and for the next one
(issue 19: the second stream came back at 256x256 for its whole length, shrunk by the
worker's fitted encoder for a bandwidth limit the loopback does not have)."""

from __future__ import annotations

import time

import pytest

from tests.helpers import Services, wait_until
from tether.tools.probe import FrameSink, NumberedSource, StudioClient

pytestmark = pytest.mark.timeout(120)

# The receiver's first estimate comes 3 s into a stream; the encoder follows it at once.
SETTLED_S = 5.0
MEASURED_FRAMES = 300  # 5 s at 60 fps


async def stream_sizes(studio_url: str, fps: float) -> tuple[list[int], float]:
    """One stream: the widths of the pictures that came back once it settled, and the
    distinct frames a second among them."""
    source = NumberedSource(512, 512, fps=fps, scene="desk")
    sink = FrameSink(source=source, keep_rgb=False)
    client = StudioClient(studio_url, source, sink)
    try:
        await client.start({"pipeline": "passthrough"})
        await wait_until(lambda: sink.frames > 0, 30, "the first processed frame")
        settled = time.monotonic() + SETTLED_S

        def measured() -> list[tuple[float, int]]:
            return [(t, w) for t, w in sink.widths if t >= settled]

        window = await wait_until(
            lambda: len(measured()) >= MEASURED_FRAMES and measured(), 60, "frames to measure"
        )
        t0, t1 = window[0][0], window[-1][0]
        distinct = {i for t, i in sink.history if t0 <= t <= t1}
        return [w for _, w in window], len(distinct) / max(t1 - t0, 1e-3)
    finally:
        await client.close()


async def test_a_60_fps_stream_and_the_next_come_back_full_size(services: Services) -> None:
    worker = services.worker()
    studio = services.studio(worker)
    for stream in ("first", "second"):
        widths, fps = await stream_sizes(studio.url, 60)
        full = sum(w == 512 for w in widths) / len(widths)
        assert full >= 0.9, f"{stream} stream: {full:.0%} of pictures at 512x512: {set(widths)}"
        assert fps > 20, f"{stream} stream: {fps:.1f} distinct fps"
