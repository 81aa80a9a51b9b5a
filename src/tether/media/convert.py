"""Converting a video frame (its size, its pixel format) safely from any thread.

PyAV converts a frame with the frame's own libswscale context (``frame.reformat``,
``frame.to_ndarray(format=...)``), and that context is not thread-safe. The same frame
does get converted in two threads at once: a worker's running pipeline and a loading
one's first call both take the newest input frame; two senders each scale the picture
they share for their own link. That crashes the process or hangs a thread. Here each
thread has a context of its own."""

from __future__ import annotations

import threading

import av
import numpy as np
from av.video.reformatter import VideoReformatter

_local = threading.local()


def reformatted(
    frame: av.VideoFrame,
    width: int | None = None,
    height: int | None = None,
    format: str | None = None,  # (PyAV's own name)
) -> av.VideoFrame:
    """A new frame, ``frame`` at that size and in that format (the frame itself when
    nothing changes)."""
    reformatter = getattr(_local, "reformatter", None)
    if reformatter is None:
        reformatter = _local.reformatter = VideoReformatter()
    return reformatter.reformat(frame, width=width, height=height, format=format)


def to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """The frame as an H x W x 3 RGB uint8 array."""
    return reformatted(frame, format="rgb24").to_ndarray()
