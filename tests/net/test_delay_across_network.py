"""A long path with room: 150 ms one way (± 10 ms), no cap. The processed pictures come
back at the size they were sent, at the source's frame rate, for a stream and for the
next one, and nothing is taken for a lost link (issue 19: 256x256 pictures at 19
distinct fps; the receivers' estimates followed what the stream sent while it started,
a round trip away, and the fitted encoder shrank the picture for a limit the path did
not have)."""

from __future__ import annotations

import time

import pytest

from tests.net.lab import Lab
from tests.net.rig import LabStream
from tether.tools.probe import FrameSink, NumberedSource, StudioClient

pytestmark = pytest.mark.timeout(200)

WARMUP_S = 10.0
MEASURED_S = 12.0


async def measure(rig: LabStream, states: set[str]) -> tuple[float, float, list[int]]:
    """Wait out the warm-up and the measured window of the rig's current stream: the
    distinct frames a second it returned, the frames a second its source sent, and the
    widths of the pictures that came back."""
    t0 = time.monotonic() + WARMUP_S
    t1 = t0 + MEASURED_S

    async def measured() -> bool:
        states.add((await rig.status())["state"])
        return bool(rig.sink.history) and rig.sink.history[-1][0] >= t1

    await rig.wait(measured, WARMUP_S + MEASURED_S + 20, "the measured window", every_s=0.25)
    widths = [w for t, w in rig.sink.widths if t0 <= t <= t1]
    sent = sum(1 for s in rig.source.sent_at.values() if t0 <= s <= t1) / MEASURED_S
    return rig.fps_between(t0, t1), sent, widths  # distinct frame numbers: no repeats


async def next_stream(rig: LabStream) -> None:
    """Stop the client's stream and start a new one through the same studio and worker."""
    assert rig.client is not None
    await rig.client.close()
    rig.source = NumberedSource(512, 512, fps=30, scene="desk")
    rig.sink = FrameSink(source=rig.source, keep_rgb=False)
    rig.client = StudioClient(rig.studio.url, rig.source, rig.sink)
    await rig.client.start({"pipeline": "tint", "strength": 0.0, "prompt": "seq 0"})
    await rig.wait(lambda: rig.sink.frames > 10, 30, "the next stream's frames")


async def test_a_150_ms_path_returns_full_size_pictures_at_the_source_rate(lab: Lab) -> None:
    lab.delay(140, jitter_ms=20)  # 150 ± 10 ms: the element adds 0-20 ms to 140
    # A camera on a desk: a still picture with sensor noise, which needs a bitrate.
    async with LabStream(lab, 512, 30, scene="desk") as rig:
        states: set[str] = set()
        for stream in ("first", "next"):
            if stream == "next":
                await next_stream(rig)
            fps, sent, widths = await measure(rig, states)
            full = sum(w == 512 for w in widths) / max(len(widths), 1)
            assert full >= 0.9, f"{stream}: {full:.0%} at 512x512 ({sorted(set(widths))})"
            # The target is 28 (bench.network, a quiet machine). On a shared machine the
            # four processes (client, studio, worker, delay element) get a fraction of a
            # core, and a full-size picture costs four times the quarter's to code.
            assert fps >= 0.5 * sent and fps >= 12, f"{stream}: {fps:.1f} fps of {sent:.1f}"
        assert states == {"connected"}, states  # delay is not a lost link
