"""Per-frame timing at each stage of the path, for the latency benchmark.

Off by default and then free. ``enable(dir)`` makes each process append
``stage frame_number monotonic_time`` lines to its own file in ``dir``; frame
numbers are read from the pixels stamped by ``tether.media.frame_id.stamp_id``, and
CLOCK_MONOTONIC is shared by every process on the machine, so stages line up."""

from __future__ import annotations

import atexit
import os
import time
from pathlib import Path
from typing import IO

import av
import numpy as np

from tether.media.frame_id import read_id

_out: IO[str] | None = None


def enable(directory: str | Path) -> None:
    global _out
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    # Line-buffered: the benchmark reads the files while the processes still run.
    _out = (path / f"trace-{os.getpid()}.txt").open("a", buffering=1)
    atexit.register(_out.close)


def mark(stage: str, frame: object) -> None:
    if _out is None or not isinstance(frame, av.VideoFrame):
        return  # off, or an encoded frame the studio forwards without decoding
    now = time.monotonic()
    plane = frame.planes[0]
    luma = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
    _out.write(f"{stage} {read_id(luma)} {now:.6f}\n")
