"""A long path with room: 150 ms one way (± 10 ms), no cap. The processed pictures come
back at the size they were sent, at the source's frame rate, and nothing is taken for
a lost link (issue 19: 256x256 pictures at 19 distinct fps; the receivers' estimates
started from the slow start of a stream a round trip away, or fell on delay noise, and
the fitted encoder shrank the picture for a limit the path did not have)."""

from __future__ import annotations

import time

import pytest

from tests.net.lab import Lab
from tests.net.rig import LabStream

pytestmark = pytest.mark.timeout(150)

WARMUP_S = 10.0
MEASURED_S = 15.0


async def test_a_150_ms_path_returns_full_size_pictures_at_the_source_rate(lab: Lab) -> None:
    lab.delay(140, jitter_ms=20)  # 150 ± 10 ms: the element adds 0-20 ms to 140
    async with LabStream(lab, 512, 30, scene="camera") as rig:  # it needs the bitrate
        t0 = time.monotonic() + WARMUP_S
        t1 = t0 + MEASURED_S
        states: set[str] = set()

        async def measured() -> bool:
            states.add((await rig.status())["state"])
            return bool(rig.sink.history) and rig.sink.history[-1][0] >= t1

        await rig.wait(measured, WARMUP_S + MEASURED_S + 20, "the measured window", every_s=0.25)
        widths = [w for t, w in rig.sink.widths if t0 <= t <= t1]
        full = sum(w == 512 for w in widths) / max(len(widths), 1)
        fps = rig.fps_between(t0, t1)  # distinct frame numbers: a repeat does not count
        sent = sum(1 for s in rig.source.sent_at.values() if t0 <= s <= t1) / MEASURED_S
        assert full >= 0.9, f"{full:.0%} of pictures at 512x512 ({sorted(set(widths))})"
        # The target is 28 (bench.network, a quiet machine). On a shared machine the four
        # processes (client, studio, worker, delay element) get a core's fraction, and a
        # full-size picture costs four times the quarter's to encode and decode.
        assert fps >= 0.5 * sent and fps >= 12, f"{fps:.1f} distinct fps of {sent:.1f} sent"
        assert states == {"connected"}, states  # delay is not a lost link
